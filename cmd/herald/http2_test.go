package main_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corp/herald/sse"
)

// h2Client is an HTTP client that speaks only HTTP/2 (over TLS trusting
// pool, or cleartext) and counts the TCP connections it opens.
type h2Client struct {
	*http.Client
	dials atomic.Int32
}

func newH2Client(tlsConfig *tls.Config) *h2Client {
	c := &h2Client{}
	var protocols http.Protocols
	if tlsConfig != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	var d net.Dialer
	c.Client = &http.Client{Transport: &http.Transport{
		Protocols:       &protocols,
		TLSClientConfig: tlsConfig,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c.dials.Add(1)
			return d.DialContext(ctx, network, addr)
		},
	}}
	return c
}

// do sends one request with a bearer token and returns status and body.
func (c *h2Client) do(t *testing.T, method, url, token, body string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Proto, string(b)
}

// openStream opens an SSE stream and returns its messages; the stream ends
// with the test.
func (c *h2Client) openStream(t *testing.T, url, token string) (<-chan sse.Message, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	msgs := make(chan sse.Message, 64)
	go func() {
		defer close(msgs)
		defer resp.Body.Close()
		rd := sse.NewReader(resp.Body)
		for {
			m, err := rd.Next()
			if err != nil {
				return
			}
			if m.Dispatched() {
				msgs <- m
			}
		}
	}()
	return msgs, resp.Proto
}

// expectEach waits for a notification whose data holds want on every stream.
func expectEach(t *testing.T, streams []<-chan sse.Message, want string) {
	t.Helper()
	for i, s := range streams {
		select {
		case m := <-s:
			if !strings.Contains(m.Data, want) {
				t.Fatalf("stream %d got %+v, want %q", i, m, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("stream %d: no %q within 10s", i, want)
		}
	}
}

// TestStreamsShareOneHTTP2Connection: with TLS_CERT_FILE/TLS_KEY_FILE, and
// with H2C on a plain listener, several SSE streams and the publishes run
// over one HTTP/2 connection, and every stream gets its notifications.
func TestStreamsShareOneHTTP2Connection(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	tests := []struct {
		name   string
		env    []string
		scheme string
		tls    *tls.Config
	}{
		{"tls", []string{"TLS_CERT_FILE=" + certFile, "TLS_KEY_FILE=" + keyFile}, "https", &tls.Config{RootCAs: pool}},
		{"h2c", []string{"H2C=true"}, "http", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startHerald(t, []string{"serve"}, append([]string{"JWT_SECRET=" + e2eSecret}, tt.env...)...)
			base := tt.scheme + strings.TrimPrefix(p.URL, "http")
			c := newH2Client(tt.tls)
			svc := mint(t, "svc", "service", "Directory.Write")
			for id, user := range map[int]string{1: "ann", 2: "bob"} {
				if status, proto, body := c.do(t, "PUT", fmt.Sprintf("%s/employees/%d", base, id), svc, `{"username":"`+user+`"}`); status != 201 || proto != "HTTP/2.0" {
					t.Fatalf("PUT employee %d: %d %s %s", id, status, proto, body)
				}
			}
			ann, bob := mint(t, "ann"), mint(t, "bob")
			var streams []<-chan sse.Message
			for _, tok := range []string{ann, ann, ann, bob, bob} {
				s, proto := c.openStream(t, base+"/events", tok)
				if proto != "HTTP/2.0" {
					t.Fatalf("stream over %s, want HTTP/2.0", proto)
				}
				streams = append(streams, s)
			}
			status, _, body := c.do(t, "POST", base+"/notifications", svc, `{"to":{"employees":[1,2]},"type":"t","title":"over h2"}`)
			if status != 201 {
				t.Fatalf("publish: %d %s", status, body)
			}
			expectEach(t, streams, "over h2")
			if n := c.dials.Load(); n != 1 {
				t.Fatalf("%d TCP connections for 5 streams and 3 requests, want 1 (HTTP/2 multiplexing)", n)
			}
			// A plain HTTP/1.1 client still works beside them.
			if tt.tls == nil {
				resp, err := http.Get(base + "/healthz")
				if err != nil || resp.Proto != "HTTP/1.1" {
					t.Fatalf("HTTP/1.1 beside h2c: %v %v", resp, err)
				}
				resp.Body.Close()
			}
		})
	}
}

// TestTLSRefusesABadKeyPair: a certificate that does not load stops the
// start with a message naming the variables.
func TestTLSRefusesABadKeyPair(t *testing.T) {
	certFile, _, _ := testCert(t)
	_, otherKey, _ := testCert(t)
	out, err := runCLI(t, []string{"JWT_SECRET=" + e2eSecret, "HTTP_ADDR=127.0.0.1:0", "TLS_CERT_FILE=" + certFile, "TLS_KEY_FILE=" + otherKey,
		"DATABASE_URL=sqlite:" + t.TempDir() + "/h.db"}, "serve")
	if err == nil || !strings.Contains(out, "TLS_CERT_FILE") || !strings.Contains(out, "TLS_KEY_FILE") {
		t.Fatalf("serve with a mismatched key: %v\n%s", err, out)
	}
	if bytes.Contains([]byte(out), []byte("listening")) {
		t.Fatalf("it listened:\n%s", out)
	}
}
