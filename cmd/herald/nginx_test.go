package main_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/sse"
)

// nginxBinary returns nginx's path, skipping the test outside CI when there
// is none and failing it under CI=true, where it must run.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true but no nginx found: .ci/run installs Debian's nginx")
	}
	t.Skip("no nginx: install Debian's nginx (apt-get install nginx) to test the README's proxy configuration")
	return ""
}

// readmeNginx returns the nginx configuration of README.md ("Behind nginx").
func readmeNginx(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```nginx\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, "upstream herald") {
			return block
		}
	}
	t.Fatal("README.md has no nginx block with 'upstream herald'")
	return ""
}

// startNginx runs nginx with the README's configuration in front of the
// Herald at heraldAddr, on TLS with the test certificate, and returns its
// address.
func startNginx(t *testing.T, heraldAddr, certFile, keyFile string) string {
	t.Helper()
	bin := nginxBinary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	site := readmeNginx(t)
	for _, r := range [][2]string{
		{"server 127.0.0.1:3000;", "server " + heraldAddr + ";"},
		{"listen 443 ssl http2;", "listen " + addr + " ssl http2;"},
		{"/etc/ssl/certs/herald.example.com.pem", certFile},
		{"/etc/ssl/private/herald.example.com.key", keyFile},
	} {
		if strings.Count(site, r[0]) != 1 {
			t.Fatalf("README's nginx block should hold %q once (the test replaces it); it changed: update this test", r[0])
		}
		site = strings.Replace(site, r[0], r[1], 1)
	}
	dir := t.TempDir()
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, site)
	confFile := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confFile)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx output:\n%s\nerror.log:\n%s", out, log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited: %v\n%s\n%s", err, out, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx does not listen on %s", addr)
		}
	}
}

// TestNginxInFront runs nginx with README.md's exact configuration in front
// of Herald: streams over HTTP/2 from nginx, a WebSocket whose Origin is
// the page's own (nginx passes Host), a foreign Origin refused, and the
// Socket.IO path routed to Herald.
func TestNginxInFront(t *testing.T) {
	certFile, keyFile, pool := testCert(t)
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret, "HEARTBEAT_INTERVAL=1s")
	addr := startNginx(t, strings.TrimPrefix(p.URL, "http://"), certFile, keyFile)
	base := "https://" + addr
	c := newH2Client(&tls.Config{RootCAs: pool})
	svc := mint(t, "svc", "service", "Directory.Write")
	if status, proto, body := c.do(t, "PUT", base+"/employees/1", svc, `{"username":"ann"}`); status != 201 || proto != "HTTP/2.0" {
		t.Fatalf("PUT through nginx: %d %s %s", status, proto, body)
	}
	ann := mint(t, "ann")

	// SSE: two streams over one HTTP/2 connection to nginx.
	s1, proto := c.openStream(t, base+"/events", ann)
	s2, _ := c.openStream(t, base+"/events", ann)
	if proto != "HTTP/2.0" {
		t.Fatalf("stream through nginx over %s, want HTTP/2.0", proto)
	}

	// WebSocket from a page served through nginx: its Origin is nginx's
	// address, which Herald accepts because nginx passes the Host header.
	status, _, page := c.do(t, "GET", base+"/docs", "", "")
	if status != 200 || !strings.Contains(page, "<html") {
		t.Fatalf("the docs page through nginx: %d %.100s", status, page)
	}
	wsClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	hdr := http.Header{"Authorization": {"Bearer " + ann}, "Origin": {base}}
	ws, resp, err := websocket.Dial(ctx, "wss://"+addr+"/ws", &websocket.DialOptions{HTTPClient: wsClient, HTTPHeader: hdr})
	if err != nil {
		t.Fatalf("WebSocket through nginx with the page's origin: %v (%v)", err, resp)
	}
	defer ws.CloseNow()
	hdr.Set("Origin", "https://evil.example")
	if _, resp, err := websocket.Dial(ctx, "wss://"+addr+"/ws", &websocket.DialOptions{HTTPClient: wsClient, HTTPHeader: hdr}); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("WebSocket through nginx with a foreign origin: %v, want 403", resp)
	}

	status, _, body := c.do(t, "POST", base+"/notifications", svc, `{"to":{"employees":[1]},"type":"t","title":"through nginx"}`)
	if status != 201 {
		t.Fatalf("publish through nginx: %d %s", status, body)
	}
	expectEach(t, []<-chan sse.Message{s1, s2}, "through nginx")
	_, frame, err := ws.Read(ctx)
	if err != nil || !strings.Contains(string(frame), "through nginx") {
		t.Fatalf("WebSocket through nginx: %s %v", frame, err)
	}
	if n := c.dials.Load(); n != 1 {
		t.Errorf("%d connections to nginx for streams and requests, want 1 (HTTP/2)", n)
	}

	// /socket.io/ reaches Herald (whatever Herald answers there), not an
	// nginx error page.
	req, _ := http.NewRequest("GET", base+"/socket.io/?EIO=4&transport=polling", nil)
	resp2, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp2.Body)
	resp2.Body.Close()
	if resp2.StatusCode == 502 || resp2.StatusCode == 504 || strings.Contains(string(b), "<center>nginx") {
		t.Fatalf("/socket.io/ through nginx: %d %s", resp2.StatusCode, b)
	}
}

// TestNginxInBrowser: Chromium opens a page through nginx (the README's
// configuration, HTTP/2 over TLS) and, from that page, an EventSource and
// a WebSocket with the page's own origin; both get a notification.
func TestNginxInBrowser(t *testing.T) {
	nginxBinary(t)
	ctx := browser(t, chromedp.Flag("ignore-certificate-errors", true))
	certFile, keyFile, _ := testCert(t)
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret)
	addr := startNginx(t, strings.TrimPrefix(p.URL, "http://"), certFile, keyFile)
	svc := mint(t, "svc", "service", "Directory.Write")
	if status, _, out := heraldtest.Do(t, "PUT", p.URL+"/employees/1", svc, map[string]any{"username": "ann"}); status != 201 {
		t.Fatalf("PUT employee: %d %s", status, out)
	}
	ann := mint(t, "ann")
	if err := chromedp.Do(ctx, chromedp.Navigate("https://"+addr+"/healthz")); err != nil {
		t.Fatal(err)
	}
	open := `(() => {
		document.cookie = "token=` + ann + `; path=/; Secure; SameSite=Lax";
		window.got = [];
		const es = new EventSource("/events");
		es.addEventListener("notification", (e) => got.push("sse:" + JSON.parse(e.data).title));
		es.onopen = () => got.push("sse-open");
		const ws = new WebSocket("wss://" + location.host + "/ws");
		ws.onopen = () => got.push("ws-open");
		ws.onmessage = (e) => got.push("ws:" + JSON.parse(e.data).data.title);
		ws.onclose = (e) => got.push("ws-closed:" + e.code);
		return true;
	})()`
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](open)); err != nil {
		t.Fatal(err)
	}
	waitText(t, ctx, `got.join(" ")`, "sse-open")
	waitText(t, ctx, `got.join(" ")`, "ws-open")
	status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", svc,
		map[string]any{"to": map[string]any{"employees": []int{1}}, "type": "t", "title": "via nginx"})
	if status != 201 {
		t.Fatalf("publish: %d %s", status, out)
	}
	waitText(t, ctx, `got.join(" ")`, "sse:via nginx")
	waitText(t, ctx, `got.join(" ")`, "ws:via nginx")
	// A stream never finishes, so it has no timing entry; the page's own
	// request shows the protocol the browser speaks to nginx.
	proto, err := chromedp.Run(ctx, chromedp.Evaluate[string](`performance.getEntriesByType("navigation")[0].nextHopProtocol`))
	if err != nil || proto != "h2" {
		t.Errorf("the page came through nginx over %q (%v), want h2", proto, err)
	}
}
