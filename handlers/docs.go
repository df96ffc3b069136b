package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/corp/herald/openapi"
)

// asset is a document the documentation routes serve, with its validator.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

func newAsset(body []byte, contentType string) asset {
	sum := sha256.Sum256(body)
	return asset{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

// serve writes the asset. Browsers and tools revalidate each time
// (no-cache) and get 304 while the binary has not changed.
func (a asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// docsAssets are the API document and its reference page.
type docsAssets struct {
	yaml, json, page, redoc asset
	// jsonErr is set when the document could not be converted to JSON.
	jsonErr error
}

// newDocsAssets prepares what /openapi.yaml, /openapi.json and /docs serve.
// The JSON form is converted here, once.
func newDocsAssets(doc []byte) *docsAssets {
	if doc == nil {
		doc = openapi.YAML
	}
	d := &docsAssets{
		yaml:  newAsset(doc, "application/yaml"),
		page:  newAsset([]byte(docsPage), "text/html; charset=utf-8"),
		redoc: newAsset(openapi.RedocJS, "text/javascript; charset=utf-8"),
	}
	js, err := openapi.ToJSON(doc)
	d.json, d.jsonErr = newAsset(js, "application/json"), err
	return d
}

// docsPage is the API reference page: Redoc, served by this binary, renders
// the JSON document. Both URLs are relative, so the page also works behind
// a proxy that serves Herald under a path prefix.
const docsPage = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Herald API reference</title>
<link rel="icon" href="data:,">
</head>
<body style="margin:0">
<noscript>This page needs JavaScript. The API document is at <a href="openapi.yaml">openapi.yaml</a> (also as <a href="openapi.json">JSON</a>).</noscript>
<redoc spec-url="openapi.json" required-props-first="true" expand-responses="200,201,202" path-in-middle-panel="true" json-sample-expand-level="all"></redoc>
<script src="docs/redoc.standalone.js"></script>
</body>
</html>
`

// docsPolicy confines the reference page to this server: Redoc's script,
// the document it fetches, the inline styles it injects and the web worker
// (from a blob: URL) its search runs in.
const docsPolicy = "default-src 'none'; script-src 'self'; worker-src blob:; connect-src 'self'; " +
	"style-src 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// openAPIYAML serves GET /openapi.yaml, the API document as written.
func (h *Handler) openAPIYAML(w http.ResponseWriter, r *http.Request) { h.docs.yaml.serve(w, r) }

// openAPIJSON serves GET /openapi.json, the same document as JSON.
func (h *Handler) openAPIJSON(w http.ResponseWriter, r *http.Request) {
	if h.docs.jsonErr != nil {
		h.writeError(w, r, h.docs.jsonErr)
		return
	}
	h.docs.json.serve(w, r)
}

// docsPage serves GET /docs, the API reference page.
func (h *Handler) docsPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Security-Policy", docsPolicy)
	h.docs.page.serve(w, r)
}

// docsRenderer serves GET /docs/redoc.standalone.js, the page's renderer.
func (h *Handler) docsRenderer(w http.ResponseWriter, r *http.Request) { h.docs.redoc.serve(w, r) }
