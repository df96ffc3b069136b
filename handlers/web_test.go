package handlers_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestBrowserClientServed: /herald.js and the module it imports are served
// as written, as JavaScript, with an ETag that revalidates to 304, no-cache,
// and CORS for FRONTEND_URL's origins only.
func TestBrowserClientServed(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"herald.js", "herald-inbox.js", "herald-sw.js"} {
		t.Run(name, func(t *testing.T) {
			want, err := os.ReadFile("web/" + name)
			if err != nil {
				t.Fatal(err)
			}
			status, hdr, body := e.do("GET", "/"+name, "", nil, "Accept-Encoding", "identity", "Origin", origin)
			if status != 200 || !bytes.Equal(body, want) {
				t.Fatalf("GET /%s: %d, %d bytes; want 200 and the %d bytes of web/%s", name, status, len(body), len(want), name)
			}
			for k, v := range map[string]string{
				"Content-Type":                     "text/javascript; charset=utf-8",
				"Cache-Control":                    "no-cache",
				"X-Content-Type-Options":           "nosniff",
				"Access-Control-Allow-Origin":      origin,
				"Access-Control-Allow-Credentials": "true",
			} {
				if got := hdr.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			if vary := strings.Join(hdr.Values("Vary"), ", "); !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Accept-Encoding") {
				t.Errorf("Vary: %q, want Origin and Accept-Encoding", vary)
			}
			etag := hdr.Get("ETag")
			if status, hdr, body := e.do("GET", "/"+name, "", nil, "Accept-Encoding", "identity", "If-None-Match", etag); etag == "" || status != 304 || len(body) != 0 || hdr.Get("ETag") != etag {
				t.Errorf("If-None-Match %q: %d, %d bytes, ETag %q; want 304 with the same ETag", etag, status, len(body), hdr.Get("ETag"))
			}
			if _, hdr, _ := e.do("GET", "/"+name, "", nil, "Origin", "https://evil.example"); hdr.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("another origin is allowed: %q", hdr.Get("Access-Control-Allow-Origin"))
			}

			// Gzipped when accepted: the same bytes, under an ETag of their own.
			status, hdr, zipped := e.do("GET", "/"+name, "", nil, "Accept-Encoding", "gzip, br")
			if status != 200 || hdr.Get("Content-Encoding") != "gzip" || hdr.Get("ETag") == etag || hdr.Get("ETag") == "" {
				t.Fatalf("gzip: %d, Content-Encoding %q, ETag %q (plain %q)", status, hdr.Get("Content-Encoding"), hdr.Get("ETag"), etag)
			}
			zr, err := gzip.NewReader(bytes.NewReader(zipped))
			if err != nil {
				t.Fatal(err)
			}
			if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, want) {
				t.Fatalf("gunzipped: %v, %d bytes, want the %d of web/%s", err, len(plain), len(want), name)
			}
			t.Logf("%s: %d bytes, %d gzipped", name, len(want), len(zipped))
		})
	}
}

// TestBrowserClientEncoding: gzip only when the client admits it.
func TestBrowserClientEncoding(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		accept string
		gzip   bool
	}{
		{"", false},
		{"identity", false},
		{"gzip", true},
		{"GZIP;q=0.5", true},
		{"br, gzip;q=1.0", true},
		{"x-gzip", true},
		{"*", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"*;q=0.1, gzip;q=0", false},
		{"br, *;q=0", false},
		{"deflate", false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest("GET", e.URL+"/herald.js", nil)
		req.Header.Set("Accept-Encoding", tt.accept) // set, even empty: no transparent gzip
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding") == "gzip"; got != tt.gzip {
			t.Errorf("Accept-Encoding %q: gzipped = %v, want %v", tt.accept, got, tt.gzip)
		}
	}
}
