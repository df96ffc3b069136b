// Package heraldtest holds test helpers that talk to a Herald over real
// sockets: an SSE stream client and JSON request helpers. It imports none of
// Herald's server packages, so end-to-end tests of the binary use it too.
package heraldtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/sse"
)

// Client is an HTTP client for tests, with a timeout.
var Client = &http.Client{Timeout: 30 * time.Second}

// Do sends a request with an optional JSON body and bearer token and returns
// the status, headers and body.
func Do(tb testing.TB, method, url, token string, body any, header ...string) (int, http.Header, []byte) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			tb.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := Client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, out
}

// DecodeJSON unmarshals body into a new T or fails the test.
func DecodeJSON[T any](tb testing.TB, body []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		tb.Fatalf("decode %s: %v", body, err)
	}
	return v
}

// Problem is a problem+json body as clients see it.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// Fields returns the fields named by a problem's errors.
func (p Problem) Fields() []string {
	out := make([]string, len(p.Errors))
	for i, e := range p.Errors {
		out[i] = e.Field
	}
	return out
}

// Stream is an open SSE stream read by a background goroutine.
type Stream struct {
	Resp   *http.Response
	msgs   chan sse.Message
	done   chan struct{}
	err    error
	cancel context.CancelFunc
}

// OpenStream connects to url with the token (as a bearer, unless header
// overrides Authorization) and extra header pairs. On a non-200 answer it
// returns nil and the response (body read into Body).
func OpenStream(tb testing.TB, url, token string, header ...string) (*Stream, *http.Response, []byte) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{}).Do(req) // no timeout: streams live long
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		return nil, resp, body
	}
	s := &Stream{Resp: resp, msgs: make(chan sse.Message, 4096), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(s.done)
		defer close(s.msgs)
		rd := sse.NewReader(resp.Body)
		for {
			m, err := rd.Next()
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.msgs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	tb.Cleanup(s.Close)
	return s, resp, nil
}

// MustOpenStream is OpenStream that fails the test on a non-200 answer.
func MustOpenStream(tb testing.TB, url, token string, header ...string) *Stream {
	tb.Helper()
	s, resp, body := OpenStream(tb, url, token, header...)
	if s == nil {
		tb.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return s
}

// ErrStreamClosed is returned by NextBlock when the server ended the stream.
var ErrStreamClosed = errors.New("stream closed by the server")

// NextBlock returns the next block of any kind (comments included).
func (s *Stream) NextBlock(timeout time.Duration) (sse.Message, error) {
	select {
	case m, ok := <-s.msgs:
		if !ok {
			return sse.Message{}, ErrStreamClosed
		}
		return m, nil
	case <-time.After(timeout):
		return sse.Message{}, fmt.Errorf("no block within %v", timeout)
	}
}

// Next returns the next dispatched event (comment-only blocks are skipped).
func (s *Stream) Next(timeout time.Duration) (sse.Message, error) {
	deadline := time.Now().Add(timeout)
	for {
		m, err := s.NextBlock(time.Until(deadline))
		if err != nil || m.Dispatched() {
			return m, err
		}
	}
}

// MustNext is Next that fails the test on error.
func (s *Stream) MustNext(tb testing.TB, timeout time.Duration) sse.Message {
	tb.Helper()
	m, err := s.Next(timeout)
	if err != nil {
		tb.Fatalf("waiting for an event: %v", err)
	}
	return m
}

// ExpectQuiet fails if an event arrives within d.
func (s *Stream) ExpectQuiet(tb testing.TB, d time.Duration) {
	tb.Helper()
	if m, err := s.Next(d); err == nil {
		tb.Fatalf("expected no event, got %s id=%q data=%s", m.Event, m.ID, m.Data)
	}
}

// WaitClosed waits until the server ends the stream.
func (s *Stream) WaitClosed(tb testing.TB, timeout time.Duration) []sse.Message {
	tb.Helper()
	var seen []sse.Message
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				return seen
			}
			seen = append(seen, m)
		case <-deadline:
			tb.Fatalf("stream still open after %v", timeout)
		}
	}
}

// Close ends the stream from the client side.
func (s *Stream) Close() {
	s.cancel()
	s.Resp.Body.Close()
	<-s.done
}
