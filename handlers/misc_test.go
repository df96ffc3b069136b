package handlers_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNotFoundAndMethod(t *testing.T) {
	e := newEnv(t)
	status, hdr, out := e.do("GET", "/nope", "", nil)
	if status != 404 || hdr.Get("Content-Type") != "application/problem+json" || problem(t, out).Code != "not_found" {
		t.Fatalf("unknown route: %d %s", status, out)
	}
	status, hdr, out = e.do("PUT", "/notifications", e.service(), nil)
	if status != 405 || hdr.Get("Allow") != "GET, POST" || problem(t, out).Status != 405 {
		t.Fatalf("wrong method: %d Allow=%q %s", status, hdr.Get("Allow"), out)
	}
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	if status, _, out := e.do("GET", "/healthz", "", nil); status != 200 || !strings.Contains(string(out), `"ok"`) {
		t.Fatalf("healthz: %d %s", status, out)
	}
	if status, _, out := e.do("GET", "/readyz", "", nil); status != 200 {
		t.Fatalf("readyz: %d %s", status, out)
	}
	e.Store.Close()
	status, _, out := e.do("GET", "/readyz", "", nil)
	if status != 503 || problem(t, out).Code != "unavailable" {
		t.Fatalf("readyz with the store closed: %d %s", status, out)
	}
	status, _, out = e.do("POST", "/notifications", e.service(), map[string]any{"to": map[string]any{"all": true}, "type": "t", "title": "x"})
	if status != 503 || problem(t, out).Code != "unavailable" {
		t.Fatalf("publish with the store closed: %d %s", status, out)
	}
}

func TestCORS(t *testing.T) {
	e := newEnv(t)
	req, _ := http.NewRequest("OPTIONS", e.URL+"/notifications", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, idempotency-key")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != origin || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	req.Header.Set("Origin", "https://evil.example")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", resp.Header)
	}
	_, hdr, _ := e.do("GET", "/notifications", e.token("user2"), nil, "Origin", origin)
	if hdr.Get("Access-Control-Allow-Origin") != origin {
		t.Fatalf("simple request: %v", hdr)
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	status, hdr, out := e.do("GET", "/openapi.yaml", "", nil)
	if status != 200 || !strings.HasPrefix(string(out), "openapi: 3.1") || !strings.Contains(hdr.Get("Content-Type"), "yaml") {
		t.Fatalf("openapi.yaml: %d %q %.40s", status, hdr.Get("Content-Type"), out)
	}
	if status, _, _ := e.do("GET", "/docs", "", nil); status != 200 {
		t.Fatalf("docs: %d", status)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	s := e.stream("user2")
	e.mustPublish("counted", 2, 3)
	s.MustNext(t, wait)
	e.do("GET", "/nope", "", nil)
	wants := []string{
		`herald_notifications_published_total{kind="persisted"} 1`,
		`herald_notification_recipients_total 2`,
		`herald_streams_open 1`,
		`herald_stream_employees 1`,
		`herald_streams_opened_total{transport="sse"} 1`,
		`herald_stream_events_sent_total{transport="sse"} 1`,
		`herald_http_requests_total{method="POST",route="/notifications",status="201"} 1`,
		`herald_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	}
	// An event is counted once its write returns, which can be just after
	// the client has read it: read the metrics again until they agree.
	deadline := time.Now().Add(wait)
	for {
		status, hdr, out := e.do("GET", "/metrics", "", nil)
		if status != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
			t.Fatalf("metrics: %d %q", status, hdr.Get("Content-Type"))
		}
		var lack []string
		for _, want := range wants {
			if !strings.Contains(string(out), want) {
				lack = append(lack, want)
			}
		}
		if len(lack) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %s", strings.Join(lack, ", "))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
