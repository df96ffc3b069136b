package handlers_test

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/internal/heraldtest"
)

// syncBuffer is a log destination shared by the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLogsCarryNoSecrets: at every level (debug included), in both
// formats, no log line holds a token, a cookie or an Authorization value,
// whether the request was accepted, refused, streamed or failed (issue 14,
// item 5).
func TestLogsCarryNoSecrets(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			var logs syncBuffer
			opts := &slog.HandlerOptions{Level: slog.LevelDebug}
			var h slog.Handler = slog.NewTextHandler(&logs, opts)
			if format == "json" {
				h = slog.NewJSONHandler(&logs, opts)
			}
			e := newEnv(t, func(o *envOptions) {
				o.handlerConfig = func(c *handlers.Config) { c.Logger = slog.New(h) }
			})
			secrets := exerciseWithSecrets(t, e)
			out := logs.String()
			if !strings.Contains(out, "/notifications") || !strings.Contains(out, "request failed") {
				t.Fatalf("the debug log lacks the requests (is it written at all?):\n%s", out)
			}
			for name, s := range secrets {
				if strings.Contains(out, s) {
					t.Errorf("the log holds the %s %q:\n%s", name, s, out)
				}
			}
		})
	}
}

// exerciseWithSecrets sends requests that carry tokens, cookies and
// Authorization values every way Herald takes them, accepted and refused,
// and returns the values (and the signature part of each token, which
// alone would be enough to forge nothing but must not leak either).
func exerciseWithSecrets(t *testing.T, e *env) map[string]string {
	t.Helper()
	svc := e.service()
	user := e.token("user2")
	expired, err := auth.MintHS256(e.Secret, auth.TokenSpec{User: "user3", TTL: time.Minute}, time.Now().Add(-5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	basic := base64.StdEncoding.EncodeToString([]byte("admin:hunter2-basic-secret"))
	secrets := map[string]string{
		"service token": svc, "employee token": user, "expired token": expired,
		"basic credentials": basic, "forged bearer": "forged-bearer-secret-1234",
		"unrelated cookie": "cookie-secret-5678", "query token": "query-secret-9012",
	}
	for name, tok := range map[string]string{"service": svc, "employee": user, "expired": expired} {
		secrets[name+" token signature"] = tok[strings.LastIndex(tok, ".")+1:]
	}
	body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "t", "title": "x"}
	e.do(http.MethodPost, "/notifications", svc, body)
	e.do(http.MethodPost, "/notifications", svc, body, "Idempotency-Key", "k")
	e.do(http.MethodGet, "/notifications", "", nil, "Cookie", "token="+user+"; other=cookie-secret-5678")
	e.do(http.MethodGet, "/notifications?token=query-secret-9012&access_token=query-secret-9012", user, nil)
	e.do(http.MethodGet, "/notifications", expired, nil)
	e.do(http.MethodGet, "/notifications", "", nil, "Authorization", "Basic "+basic)
	e.do(http.MethodGet, "/notifications", "", nil, "Authorization", "Bearer forged-bearer-secret-1234")
	e.do(http.MethodGet, "/notifications", "", nil, "Cookie", "token=forged-bearer-secret-1234")
	e.do(http.MethodGet, "/nope?token=query-secret-9012", user, nil)
	e.do(http.MethodGet, "/readyz", user, nil)
	if c, _, _ := dialWS(t, e, "?lastEventId=0&token=query-secret-9012", "Authorization", "Bearer "+user); c != nil {
		c.CloseNow()
	}
	dialWS(t, e, "", "Authorization", "Bearer forged-bearer-secret-1234")
	s := heraldtest.MustOpenStream(t, e.URL+"/events?token=query-secret-9012", "", "Cookie", "token="+user)
	s.Close()
	status, hdr, _ := e.do(http.MethodPost, "/session", user, nil)
	if session := strings.SplitN(strings.TrimPrefix(hdr.Get("Set-Cookie"), "token="), ";", 2)[0]; status == http.StatusNoContent && session != "" {
		secrets["session cookie"] = session
		e.do(http.MethodGet, "/notifications", "", nil, "Cookie", "token="+session)
		e.do(http.MethodDelete, "/session", "", nil, "Cookie", "token="+session)
	} else {
		t.Fatalf("POST /session: %d", status)
	}
	// Server-side failures are logged at error level, with their cause.
	e.Store.Close()
	e.do(http.MethodPost, "/notifications", svc, body)
	e.do(http.MethodGet, "/notifications", user, nil)
	e.do(http.MethodGet, "/readyz", user, nil)
	return secrets
}
