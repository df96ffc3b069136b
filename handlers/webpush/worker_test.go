package webpush

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/corp/herald/store"
)

func TestPayload(t *testing.T) {
	created := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	job := func(body string) store.PushJob {
		return store.PushJob{Seq: 42, Notification: store.Notification{Type: "a.b", Title: "T <&>", Body: body, CreatedAt: created}}
	}
	got := string(Payload(job("short")))
	if want := `{"id":"42","type":"a.b","title":"T <&>","body":"short","created_at":"2026-12-05T10:00:00.000Z"}`; got != want {
		t.Fatalf("Payload = %s; want %s", got, want)
	}
	for _, body := range []string{strings.Repeat("x", 10_000), strings.Repeat("ñ€", 3_000), strings.Repeat("\"", 5_000)} {
		b := Payload(job(body))
		var p payload
		if err := json.Unmarshal(b, &p); err != nil || len(b) > MaxPayload || !utf8.ValidString(p.Body) || !strings.HasSuffix(p.Body, "…") {
			t.Fatalf("payload of a long body: %d bytes (max %d), body ends %q, %v", len(b), MaxPayload, p.Body[max(len(p.Body)-8, 0):], err)
		}
		if len(b) < MaxPayload-64 {
			t.Errorf("a long body was cut to %d bytes; it should fill the push (%d)", len(b), MaxPayload)
		}
	}
}

// A url that cannot fit one push message even without the body is left
// out, and the body fills what is left; a long url that fits stays, and
// the body is cut around it.
func TestPayloadLongURL(t *testing.T) {
	job := func(url, body string) store.PushJob {
		return store.PushJob{Seq: 7, Notification: store.Notification{Type: "a.b", Title: "T", Body: body, URL: url,
			CreatedAt: time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)}}
	}
	long := "https://x.example/" + strings.Repeat("€", 2_048-len("https://x.example/")) // 2,048 characters, 6 KiB
	fits := "https://x.example/" + strings.Repeat("a", 2_048-len("https://x.example/"))
	for _, tt := range []struct {
		name, url, body, wantURL string
		wantBody                 func(string) bool
	}{
		{"url too long, short body", long, "short", "", func(b string) bool { return b == "short" }},
		{"url too long, long body", long, strings.Repeat("x", 10_000), "", func(b string) bool { return strings.HasSuffix(b, "…") && len(b) > 3_000 }},
		{"long url that fits, long body", fits, strings.Repeat("x", 10_000), fits, func(b string) bool { return strings.HasSuffix(b, "…") && len(b) > 1_000 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := Payload(job(tt.url, tt.body))
			var p payload
			if err := json.Unmarshal(b, &p); err != nil || len(b) > MaxPayload {
				t.Fatalf("%d bytes (max %d): %v", len(b), MaxPayload, err)
			}
			if p.URL != tt.wantURL || !tt.wantBody(p.Body) || p.Title != "T" || p.ID != "7" {
				t.Errorf("url %d bytes (want %d), body %d bytes %q…, title %q, id %q", len(p.URL), len(tt.wantURL), len(p.Body), p.Body[:min(len(p.Body), 8)], p.Title, p.ID)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	hs := Hosts{"fcm.googleapis.com", "*.push.apple.com", "127.0.0.1"}
	for _, tt := range []struct {
		host string
		want bool
	}{
		{"fcm.googleapis.com", true},
		{"FCM.googleapis.com.", true},
		{"evil-fcm.googleapis.com", false},
		{"fcm.googleapis.com.evil.org", false},
		{"web.push.apple.com", true},
		{"a.b.push.apple.com", true},
		{"push.apple.com", false},
		{"xpush.apple.com", false},
		{"127.0.0.1", true},
		{"127.0.0.2", false},
	} {
		if got := hs.Allows(tt.host); got != tt.want {
			t.Errorf("Allows(%q) = %v; want %v", tt.host, got, tt.want)
		}
	}
	for _, p := range []string{"fcm.googleapis.com", "*.notify.windows.com", "127.0.0.1"} {
		if err := CheckHostPattern(p); err != nil {
			t.Errorf("CheckHostPattern(%q): %v", p, err)
		}
	}
	for _, p := range []string{"", "*", "*.com", "https://x.example", "x.example:443", "a*.example", "x.example/path"} {
		if err := CheckHostPattern(p); err == nil {
			t.Errorf("CheckHostPattern(%q) accepted it", p)
		}
	}
}

func TestRetryWait(t *testing.T) {
	w := NewWorker(WorkerConfig{Delay: 10 * time.Second})
	for _, tt := range []struct {
		attempts   int
		retryAfter time.Duration
		want       time.Duration
	}{
		{1, 0, 5 * time.Second},
		{2, 0, 10 * time.Second},
		{4, 0, 40 * time.Second},
		{30, 0, time.Hour},
		{1, 120 * time.Second, 120 * time.Second},
		{1, 10 * time.Millisecond, time.Second},
		{5, 48 * time.Hour, 24 * time.Hour},
	} {
		if got := w.retryWait(tt.attempts, tt.retryAfter); got != tt.want {
			t.Errorf("retryWait(%d, %s) = %s; want %s", tt.attempts, tt.retryAfter, got, tt.want)
		}
	}
	if d := retryAfter("7", time.Now()); d != 7*time.Second {
		t.Errorf("Retry-After: 7 = %s", d)
	}
	now := time.Now()
	if d := retryAfter(now.Add(90*time.Second).UTC().Format(http.TimeFormat), now); d < 88*time.Second || d > 91*time.Second {
		t.Errorf("Retry-After as a date = %s; want about 90s", d)
	}
}
