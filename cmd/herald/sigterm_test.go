package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/store/postgres/pgtest"
)

// TestSIGTERMLosesNoAcknowledgedPublish runs the real binary under
// publishing load, SIGTERMs it, checks that it exits 0 within 10 s, restarts
// it on the same database, and finds every publish that was answered 201
// in the store (the inbox) and replayed to the stream that resumes.
func TestSIGTERMLosesNoAcknowledgedPublish(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { sigtermUnderLoad(t, "sqlite:"+filepath.Join(t.TempDir(), "h.db")) })
	t.Run("postgres", func(t *testing.T) { sigtermUnderLoad(t, pgtest.NewDatabase(t)) })
}

func sigtermUnderLoad(t *testing.T, dsn string) {
	env := []string{"JWT_SECRET=" + e2eSecret, "DATABASE_URL=" + dsn}
	p := startHerald(t, []string{"serve"}, env...)
	svc := mint(t, "svc", "service", "Directory.Write")
	if status, _, out := heraldtest.Do(t, "PUT", p.URL+"/employees/1", svc, map[string]any{"username": "ann"}); status != 201 {
		t.Fatalf("PUT employee: %d %s", status, out)
	}
	ann := mint(t, "ann")
	stream := heraldtest.MustOpenStream(t, p.URL+"/events", ann)

	var (
		mu    sync.Mutex
		acked = map[string]bool{}
		stop  = make(chan struct{})
		wg    sync.WaitGroup
	)
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 15 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				title := fmt.Sprintf("w%d-%d", w, i)
				body, _ := json.Marshal(map[string]any{"to": map[string]any{"employees": []int{1}}, "type": "load", "title": title})
				req, _ := http.NewRequest("POST", p.URL+"/notifications", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+svc)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(20 * time.Millisecond) // gone: keep trying until told to stop
					continue
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated {
					mu.Lock()
					acked[title] = true
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(time.Second)
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM under load: %v, want code 0\n%s", err, p.Logs())
		}
	case <-time.After(12 * time.Second):
		t.Fatalf("still running 12s after SIGTERM\n%s", p.Logs())
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("shutdown took %v, want at most 10s", took)
	}
	close(stop)
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no publish was acknowledged before SIGTERM")
	}
	before := stream.WaitClosed(t, 10*time.Second)
	received, last := map[string]bool{}, 0
	for _, m := range before {
		if m.Event == "notification" {
			received[heraldtest.Title(t, m)] = true
			last, _ = strconv.Atoi(m.ID)
		}
	}

	p2 := startHerald(t, []string{"serve"}, env...)
	// In the store: every acknowledged publish is in ann's inbox.
	stored := map[string]bool{}
	for before := ""; ; {
		_, _, out := heraldtest.Do(t, "GET", p2.URL+"/notifications?limit=200"+before, ann, nil)
		page := heraldtest.DecodeJSON[struct {
			Notifications []struct{ Title string }
			NextBefore    string `json:"next_before"`
		}](t, out)
		for _, n := range page.Notifications {
			stored[n.Title] = true
		}
		if page.NextBefore == "" {
			break
		}
		before = "&before=" + page.NextBefore
	}
	// Replayed: the stream resumes where it was cut and gets the rest.
	resumed := heraldtest.MustOpenStream(t, p2.URL+"/events", ann, "Last-Event-ID", strconv.Itoa(last))
	for missing(acked, received) > 0 {
		m, err := resumed.Next(5 * time.Second)
		if err != nil {
			break
		}
		if m.Event == "notification" {
			received[heraldtest.Title(t, m)] = true
		}
	}
	for title := range acked {
		if !stored[title] {
			t.Errorf("%s was answered 201 but is not in the store after the restart", title)
		}
		if !received[title] {
			t.Errorf("%s was answered 201 but never reached the resuming stream", title)
		}
	}
	t.Logf("%d publishes acknowledged before and during SIGTERM; %d reached the stream before it closed; all in the store and replayed", len(acked), len(before))
}

func missing(want, got map[string]bool) int {
	n := 0
	for k := range want {
		if !got[k] {
			n++
		}
	}
	return n
}
