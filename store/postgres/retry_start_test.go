package postgres_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestRetryStartBacksOff: with WithRetryStart on an unreachable server,
// Open logs a warning through the configured logger, each failed retry
// is logged as a warning with its attempt number and the next delay
// (doubling from 1 s), and the retry that succeeds logs how many attempts
// it took; the store then works.
func TestRetryStartBacksOff(t *testing.T) {
	u := pgtest.NewPreparedDatabase(t, "migrated", migrate)
	proxy, viaProxy := proxied(t, u)
	proxy.Cut()
	logs := &recordingHandler{}
	db := mustOpenURL(t, viaProxy, postgres.WithRetryStart(), postgres.WithLogger(slog.New(logs)))
	if r, ok := logs.first("PostgreSQL cannot be reached; serving 503 and retrying in the background"); !ok || r.Level != slog.LevelWarn {
		t.Fatalf("Open on an unreachable server logged %v; want its warning through WithLogger's logger", logs.messages())
	}
	const failed, reached = "PostgreSQL still not usable; retrying", "PostgreSQL reached; schema up to date"
	eventually(t, "a failed retry logged", func() bool { return len(logs.all(failed)) > 0 })
	proxy.Restore()
	eventually(t, "the retry that reached PostgreSQL logged", func() bool { return len(logs.all(reached)) > 0 })

	// A retry may have failed after the first one (the proxy restored a
	// little late): each failure has its number and delay.
	fails := logs.all(failed)
	delay := time.Second
	for i, r := range fails {
		delay = min(delay*2, 30*time.Second)
		if r.Level != slog.LevelWarn || attr(r, "attempt").Int64() != int64(i+2) || attr(r, "retry_in").Duration() != delay {
			t.Fatalf("failed retry %d logged at %v with attempt %v, retry_in %v; want WARN, attempt %d, retry_in %v",
				i+1, r.Level, attr(r, "attempt"), attr(r, "retry_in"), i+2, delay)
		}
	}
	ok, _ := logs.first(reached)
	if got, want := attr(ok, "attempts").Int64(), int64(len(fails)+2); got != want {
		t.Errorf("the retry that reached PostgreSQL logged attempts=%d, want %d (Open's attempt, %d failed retries, itself)", got, want, len(fails))
	}
	if _, err := db.EmployeeByLogin(context.Background(), "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("EmployeeByLogin once PostgreSQL is reached: %v, want ErrNotFound", err)
	}
}

// recordingHandler is a slog.Handler that keeps every record.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// all returns the records with message msg, oldest first.
func (h *recordingHandler) all(msg string) []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []slog.Record
	for _, r := range h.recs {
		if r.Message == msg {
			out = append(out, r)
		}
	}
	return out
}

func (h *recordingHandler) first(msg string) (slog.Record, bool) {
	rs := h.all(msg)
	if len(rs) == 0 {
		return slog.Record{}, false
	}
	return rs[0], true
}

func (h *recordingHandler) messages() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		out = append(out, r.Message)
	}
	return out
}

// attr returns the value of r's attribute key (the zero Value if absent).
func attr(r slog.Record, key string) slog.Value {
	var v slog.Value
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}
