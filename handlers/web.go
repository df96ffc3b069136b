package handlers

import (
	"bytes"
	"compress/gzip"
	"embed"
	"net/http"
	"strconv"
	"strings"
)

// webFiles is the browser client (README, "In the browser"): herald.js and
// the <herald-inbox> element it imports, plain ES modules served as written,
// and herald-sw.js, the service worker code a front end's /sw.js imports
// (README, "Web Push").
//
//go:embed web/herald.js web/herald-inbox.js web/herald-sw.js
var webFiles embed.FS

// webModule is one module of the browser client, as written and gzipped.
// Each has its own ETag, so a revalidation of either is a 304.
type webModule struct{ plain, gzipped asset }

// webModules are the client's modules by route.
type webModules map[string]webModule

// newWebModules reads the embedded modules and compresses each once.
func newWebModules() webModules {
	m := webModules{}
	for _, name := range []string{"herald.js", "herald-inbox.js", "herald-sw.js"} {
		src, err := webFiles.ReadFile("web/" + name)
		if err != nil {
			panic("embedded " + name + ": " + err.Error()) // the build embeds them
		}
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(src)
		_ = zw.Close()
		const ct = "text/javascript; charset=utf-8"
		m["/"+name] = webModule{plain: newAsset(src, ct), gzipped: newAsset(gz.Bytes(), ct)}
	}
	return m
}

// webClient serves GET /herald.js, GET /herald-inbox.js and GET /herald-sw.js.
//
// Cache-Control is no-cache: a browser keeps the module but revalidates it
// on each page load (a 304 while Herald has not changed), so a deploy
// reaches every page at once and the two modules never mix versions. CORS
// comes from the router (FRONTEND_URL): a module script from another origin
// is a CORS request, so front ends on their own origin can import it.
func (h *Handler) webClient(w http.ResponseWriter, r *http.Request) {
	mod, ok := h.web[r.URL.Path]
	if !ok {
		h.writeError(w, r, notFound("no route GET "+r.URL.Path))
		return
	}
	w.Header().Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		w.Header().Set("Content-Encoding", "gzip")
		mod.gzipped.serve(w, r)
		return
	}
	mod.plain.serve(w, r)
}

// acceptsGzip reports whether an Accept-Encoding value admits gzip: named
// (or through *) without q=0.
func acceptsGzip(header string) bool {
	star := false
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		switch strings.ToLower(strings.TrimSpace(coding)) {
		case "gzip", "x-gzip":
			return positiveQuality(params) // a named gzip decides
		case "*":
			star = positiveQuality(params)
		}
	}
	return star
}

// positiveQuality reads the q parameter of a coding: absent means 1.
func positiveQuality(params string) bool {
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q > 0
		}
	}
	return true
}
