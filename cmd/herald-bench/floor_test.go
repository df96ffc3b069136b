package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/auth"
)

// TestFloorDeliversThePublish: the floor server streams to the employee a
// bench token names, and writes a publish's event to that stream only, in
// the shape the bench reads (event: notification, the data as sent).
func TestFloorDeliversThePublish(t *testing.T) {
	f := &floor{streams: map[int64]*floorStream{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tok, err := auth.MintHS256([]byte("any"), auth.TokenSpec{User: username(7), TTL: time.Hour}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := floorEmployee(tok); !ok || id != 7 {
		t.Fatalf("token of %s read as employee %d (%v)", username(7), id, ok)
	}
	for _, bad := range []string{"", "a.b", "x.!!.y", "x.eyJ1c2VyIjoiYWxpY2UifQ.y"} { // the last: user "alice"
		if _, ok := floorEmployee(bad); ok {
			t.Fatalf("token %q accepted", bad)
		}
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	read := func(lines int) string {
		var b strings.Builder
		for range lines {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v after %q", err, b.String())
			}
			b.WriteString(l)
		}
		return b.String()
	}
	if got := read(3); got != "retry: 5000\n: connected\n\n" {
		t.Fatalf("preamble %q", got)
	}
	publish := func(to string) string {
		body := `{"to":{"employees":[` + to + `]},"type":"bench.load","title":"t","data":{"n":1}}`
		resp, err := http.Post(srv.URL+"/notifications", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.Status + " " + b.String()
	}
	if got := publish("8"); got != `202 Accepted {"recipients":0}` {
		t.Fatalf("publish to another employee: %s", got)
	}
	if got := publish("7"); got != `202 Accepted {"recipients":1}` {
		t.Fatalf("publish: %s", got)
	}
	if got, want := read(3), "event: notification\ndata: {\"type\":\"bench.load\",\"title\":\"t\",\"data\":{\"n\":1}}\n\n"; got != want {
		t.Fatalf("event %q, want %q", got, want)
	}
}
