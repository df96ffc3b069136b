package handlers_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/go-chi/chi/v5"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/openapi"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store/sqlite"
)

// pending lists the routes the document describes that this branch does not
// serve yet. Each is added by other work; remove its line when the route
// lands (TestRoutesMatchDocument fails while a served route is still here).
var pending = map[string]string{}

// devOnly are the documented routes served only with a Demo config (--dev).
var devOnly = map[string]bool{"GET /": true}

// contract is the API document as the handler tests hold Herald to it.
type contract struct {
	doc     *openapi3.T
	router  routers.Router
	problem *openapi3.Schema
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	// The documentation routes answer HTML and JavaScript, which the
	// document describes as strings.
	openapi3filter.RegisterBodyDecoder("text/html", openapi3filter.PlainBodyDecoder)
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openapi.YAML)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	// The document's server is "/", the instance serving it; tests call
	// servers on random ports, so match paths on any host.
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route openapi.yaml: %w", err)
	}
	problem := doc.Components.Schemas["Problem"]
	if problem == nil || problem.Value == nil {
		return nil, errors.New("openapi.yaml has no Problem schema")
	}
	return &contract{doc: doc, router: router, problem: problem.Value}, nil
})

func mustContract(tb testing.TB) *contract {
	tb.Helper()
	c, err := loadContract()
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// requestOptions: security is checked for presence only (the handlers
// check the tokens themselves), and the request the handler sees is never
// changed (no defaults filled in).
var requestOptions = &openapi3filter.Options{
	AuthenticationFunc:  credentialsPresent,
	SkipSettingDefaults: true,
}

// credentialsPresent satisfies a security scheme when the request carries
// its kind of credential: a non-empty bearer token, or the cookie.
func credentialsPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	switch in.SecurityScheme.Type {
	case "http":
		a := r.Header.Get("Authorization")
		if len(a) > len("bearer ") && strings.EqualFold(a[:len("bearer ")], "bearer ") && strings.TrimSpace(a[len("bearer "):]) != "" {
			return nil
		}
	case "apiKey":
		if c, err := r.Cookie(in.SecurityScheme.Name); err == nil && c.Value != "" {
			return nil
		}
	}
	return fmt.Errorf("no %s credential", in.SecuritySchemeName)
}

// validating wraps Herald's handler in the tests: every exchange is checked
// against the API document and each mismatch goes to report.
//
//   - A request the document accepts must get a response the document
//     describes: a documented status, its required headers, and a body that
//     matches its schema.
//   - A request the document refuses (the validation tables send many) still
//     reaches the handler, which must refuse it too (4xx) with a documented
//     response: a server that accepts what the document forbids, or
//     answers it with an undocumented error, is reported.
//   - A route the document does not know must be answered with the generic
//     404/405 problem.
//   - Streams (text/event-stream, 101 Switching Protocols) are checked for
//     status and headers only, when the handler sends them.
//
// Non-stream responses are held until they are checked, so a report
// always happens before the client has its answer (and so within its test).
func validating(report func(format string, args ...any), next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := loadContract()
		if err != nil {
			report("openapi: %v", err)
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodOptions {
			next.ServeHTTP(w, r) // CORS preflights are no API operation
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			report("openapi: read the request body of %s %s: %v", r.Method, r.URL.Path, err)
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		x := &exchange{c: c, report: report, name: r.Method + " " + r.URL.Path}
		x.check(r, raw)
		vw := &validatingWriter{w: w, x: x}
		next.ServeHTTP(vw, r)
		vw.finish()
	})
}

// exchange is one request's check against the document.
type exchange struct {
	c       *contract
	report  func(format string, args ...any)
	name    string
	input   *openapi3filter.RequestValidationInput
	routeOK error // nil when the document has the operation
	reqErr  error // why the document refuses the request, if it does
}

// check finds the operation and validates a copy of the request, so the
// handler sees it exactly as sent.
func (x *exchange) check(r *http.Request, raw []byte) {
	route, params, err := x.c.router.FindRoute(r)
	if err != nil {
		x.routeOK = err
		return
	}
	clone := r.Clone(r.Context())
	clone.Body = io.NopCloser(bytes.NewReader(raw))
	// Herald reads any application/*+json body as JSON (RFC 6839), as the
	// document's introduction says; the document lists application/json.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json") {
		clone.Header.Set("Content-Type", "application/json")
	}
	x.input = &openapi3filter.RequestValidationInput{Request: clone, PathParams: params, Route: route, Options: requestOptions}
	x.reqErr = openapi3filter.ValidateRequest(clone.Context(), x.input)
}

// checkResponse holds the response to the document; body is nil for streams.
func (x *exchange) checkResponse(status int, header http.Header, body []byte, stream bool) {
	where := fmt.Sprintf("openapi: %s → %d", x.name, status)
	if x.routeOK != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			x.report("%s: the document has no such operation (%v), but Herald served it", where, x.routeOK)
			return
		}
		x.checkProblem(where, header, body)
		return
	}
	if x.reqErr != nil && (status < 400 || status > 499) {
		x.report("%s: the document refuses this request, but Herald answered %d:\n%.1500s", where, status, x.reqErr)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: x.input,
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, ExcludeResponseBody: stream},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		x.report("%s: the response does not match the document:\n%.1500s\nbody: %.300s", where, err, body)
	}
}

// checkProblem checks a 404/405 of a route the document does not know.
func (x *exchange) checkProblem(where string, header http.Header, body []byte) {
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		x.report("%s: Content-Type %q, want application/problem+json", where, ct)
		return
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		x.report("%s: problem body is not JSON: %v", where, err)
		return
	}
	if err := x.c.problem.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		x.report("%s: the body is not a Problem: %v", where, err)
	}
}

// validatingWriter holds a response until it is checked. Streams pass
// straight through once their status and headers are checked. It keeps
// Flush and Unwrap, so write deadlines and hijacking reach the connection.
type validatingWriter struct {
	w        http.ResponseWriter
	x        *exchange
	status   int
	stream   bool
	body     bytes.Buffer
	finished bool
}

func (v *validatingWriter) Header() http.Header { return v.w.Header() }

func (v *validatingWriter) WriteHeader(code int) {
	if v.status != 0 {
		return
	}
	v.status = code
	ct := v.w.Header().Get("Content-Type")
	if code == http.StatusSwitchingProtocols || strings.HasPrefix(ct, "text/event-stream") {
		v.stream = true
		v.x.checkResponse(code, v.w.Header().Clone(), nil, true)
		v.w.WriteHeader(code)
	}
}

func (v *validatingWriter) Write(b []byte) (int, error) {
	if v.status == 0 {
		v.WriteHeader(http.StatusOK)
	}
	if v.stream {
		return v.w.Write(b)
	}
	return v.body.Write(b)
}

func (v *validatingWriter) Flush() {
	if v.stream {
		if f, ok := v.w.(http.Flusher); ok {
			f.Flush()
		}
	}
}

func (v *validatingWriter) Unwrap() http.ResponseWriter { return v.w }

// Hijack is a stream taken over from net/http: a parked SSE stream (it
// writes its own 200 head with the headers set so far) or a WebSocket
// (101, usually written before). Its status and headers are checked here.
func (v *validatingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if v.status == 0 {
		v.status = http.StatusSwitchingProtocols
		if strings.HasPrefix(v.w.Header().Get("Content-Type"), "text/event-stream") {
			v.status = http.StatusOK
		}
		v.stream = true
		v.x.checkResponse(v.status, v.w.Header().Clone(), nil, true)
	}
	return http.NewResponseController(v.w).Hijack()
}

// finish checks a held response and sends it.
func (v *validatingWriter) finish() {
	if v.stream {
		return
	}
	if v.status == 0 {
		v.status = http.StatusOK
	}
	v.x.checkResponse(v.status, v.w.Header().Clone(), v.body.Bytes(), false)
	v.w.WriteHeader(v.status)
	_, _ = v.w.Write(v.body.Bytes())
}

// TestRoutesMatchDocument walks the router: every route is documented, and
// every documented route is routed, but for the pending ones (other work
// adds them) and / (only with --dev).
func TestRoutesMatchDocument(t *testing.T) {
	c := mustContract(t)
	var documented []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	sort.Strings(documented)

	for _, dev := range []bool{false, true} {
		t.Run(fmt.Sprintf("dev=%v", dev), func(t *testing.T) {
			routed := map[string]bool{}
			err := chi.Walk(newRoutesHandler(t, dev).Routes(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
				routed[method+" "+route] = true
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for r := range routed {
				if !slices.Contains(documented, r) {
					t.Errorf("%s is routed but not in openapi/openapi.yaml", r)
				}
				if why, ok := pending[r]; ok {
					t.Errorf("%s is routed now: remove it from the pending list (%s)", r, why)
				}
			}
			for _, d := range documented {
				_, isPending := pending[d]
				want := !isPending && (dev || !devOnly[d])
				if routed[d] != want {
					t.Errorf("%s is documented; routed = %v, want %v", d, routed[d], want)
				}
			}
		})
	}
}

// newRoutesHandler builds a Handler only to walk its routes.
func newRoutesHandler(t *testing.T, dev bool) *handlers.Handler {
	t.Helper()
	st, err := sqlite.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "routes.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := auth.New(auth.Config{Secret: []byte(testSecret), Directory: st})
	if err != nil {
		t.Fatal(err)
	}
	cfg := handlers.Config{Store: st, Hub: sse.NewHub(), Auth: a}
	if dev {
		cfg.Demo = &handlers.Demo{}
	}
	return handlers.New(cfg)
}

// TestContractCatchesDrift proves the validating wrapper reports what it is
// there for, with a stand-in handler that drifts from the document.
func TestContractCatchesDrift(t *testing.T) {
	inbox := func(body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, body)
		}
	}
	bearer := []string{"Authorization", "Bearer x"}
	tests := []struct {
		name    string
		handler http.HandlerFunc
		method  string
		path    string
		body    any
		header  []string
		want    string // a report containing this; empty for none
	}{
		{"a documented answer", inbox(`{"notifications":[],"unread_count":0,"unseen_count":0}`), "GET", "/notifications?limit=5", nil, bearer, ""},
		{"a field renamed in code", inbox(`{"notifications":[],"unread":0}`), "GET", "/notifications", nil, bearer, "does not match the document"},
		{"a wrong type", inbox(`{"notifications":[],"unread_count":"0"}`), "GET", "/notifications", nil, bearer, "does not match the document"},
		{"an undocumented status", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) }, "GET", "/notifications", nil, bearer, "status is not supported"},
		{"accepting what the document refuses", inbox(`{"notifications":[],"unread_count":0,"unseen_count":0}`), "GET", "/notifications?limit=500", nil, bearer, "the document refuses this request"},
		{"a refused request refused", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(400)
			io.WriteString(w, `{"type":"about:blank","title":"Bad Request","status":400,"code":"invalid_request"}`)
		}, "GET", "/notifications?limit=500", nil, bearer, ""},
		{"a 401 without WWW-Authenticate", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(401)
			io.WriteString(w, `{"type":"about:blank","title":"Unauthorized","status":401,"code":"missing_token"}`)
		}, "GET", "/notifications", nil, nil, "WWW-Authenticate"},
		{"a wrong code for the status", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(403)
			io.WriteString(w, `{"type":"about:blank","title":"Forbidden","status":403,"code":"invalid_request"}`)
		}, "GET", "/notifications", nil, bearer, "does not match the document"},
		{"an undocumented route served", inbox(`{}`), "GET", "/secret", nil, nil, "no such operation"},
		{"a stream without its headers", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
		}, "GET", "/events", nil, bearer, `response header "Cache-Control" missing`},
		{"a publish the document refuses, accepted", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(201)
			io.WriteString(w, `{"id":"1","recipients":1,"unknown":[]}`)
		}, "POST", "/notifications", map[string]any{"to": map[string]any{"employees": []int{1}}, "type": "t", "headline": "renamed"}, bearer, "the document refuses this request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var reports []string
			report := func(format string, args ...any) {
				mu.Lock()
				defer mu.Unlock()
				reports = append(reports, fmt.Sprintf(format, args...))
			}
			srv := httptest.NewServer(validating(report, tt.handler))
			defer srv.Close()
			heraldtest.Do(t, tt.method, srv.URL+tt.path, "", tt.body, tt.header...)
			mu.Lock()
			defer mu.Unlock()
			got := strings.Join(reports, "\n")
			switch {
			case tt.want == "" && got != "":
				t.Fatalf("reported:\n%s\nwant nothing", got)
			case tt.want != "" && !strings.Contains(got, tt.want):
				t.Fatalf("reported:\n%s\nwant a report containing %q", got, tt.want)
			}
		})
	}
}

// TestDocsPage: /docs is Redoc, from this server, pointed at this server's
// document; each URL the page names resolves from /docs.
func TestDocsPage(t *testing.T) {
	e := newEnv(t)
	status, hdr, page := e.do("GET", "/docs", "", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("/docs: %d %q", status, hdr.Get("Content-Type"))
	}
	if csp := hdr.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("/docs Content-Security-Policy = %q, want scripts from this server only", csp)
	}
	spec := regexp.MustCompile(`<redoc spec-url="([^"]+)"`).FindSubmatch(page)
	script := regexp.MustCompile(`<script src="([^"]+)"`).FindSubmatch(page)
	if spec == nil || script == nil {
		t.Fatalf("/docs names no spec-url or script:\n%s", page)
	}
	base, _ := url.Parse(e.URL + "/docs")
	resolve := func(ref []byte) string {
		u, err := base.Parse(string(ref))
		if err != nil || u.Host != base.Host {
			t.Fatalf("%s does not resolve to this server", ref)
		}
		return u.Path
	}
	specPath, scriptPath := resolve(spec[1]), resolve(script[1])

	status, hdr, doc := e.do("GET", specPath, "", nil)
	var d struct {
		OpenAPI string `json:"openapi"`
		Paths   map[string]any
	}
	if status != 200 || hdr.Get("Content-Type") != "application/json" || json.Unmarshal(doc, &d) != nil || d.OpenAPI != "3.1.0" || d.Paths["/notifications"] == nil {
		t.Fatalf("the page's document %s: %d %q %.80s", specPath, status, hdr.Get("Content-Type"), doc)
	}
	status, hdr, js := e.do("GET", scriptPath, "", nil)
	if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/javascript") || !bytes.Equal(js, openapi.RedocJS) {
		t.Fatalf("the page's script %s: %d %q, %d bytes", scriptPath, status, hdr.Get("Content-Type"), len(js))
	}
	// Revalidation: an unchanged document is a 304.
	etag := hdr.Get("ETag")
	if status, _, body := e.do("GET", scriptPath, "", nil, "If-None-Match", etag); etag == "" || status != http.StatusNotModified || len(body) != 0 {
		t.Fatalf("If-None-Match %q: %d, %d bytes; want 304", etag, status, len(body))
	}
	status, hdr, yml := e.do("GET", "/openapi.yaml", "", nil)
	if status != 200 || hdr.Get("Content-Type") != "application/yaml" || !bytes.Equal(yml, openapi.YAML) {
		t.Fatalf("/openapi.yaml: %d %q", status, hdr.Get("Content-Type"))
	}
}
