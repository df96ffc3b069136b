package main_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/handlers/webpush"
	"github.com/corp/herald/internal/heraldtest"
	"github.com/corp/herald/internal/pushtest"
	"github.com/corp/herald/store/postgres/pgtest"
)

// The Web Push tests run the binary against pushtest's fake push service
// (HTTPS on 127.0.0.1, its CA given through SSL_CERT_FILE, PUSH_HOSTS=127.0.0.1),
// which checks every push's VAPID JWT and decrypts its body with the
// subscriber's private key.

// pushEnv is the environment of a Herald with Web Push on.
func pushEnv(t *testing.T, svc *pushtest.Service, delay string) []string {
	t.Helper()
	key, err := webpush.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return []string{"JWT_SECRET=" + e2eSecret, "VAPID_PRIVATE_KEY=" + key.Private(),
		"VAPID_SUBJECT=mailto:ops@corp.example", "PUSH_DELAY=" + delay, "PUSH_HOSTS=127.0.0.1",
		"SSL_CERT_FILE=" + svc.CAFile}
}

// putEmployees puts employees 1..8 through p.
func putEmployees(t *testing.T, p *proc) {
	t.Helper()
	svc := mint(t, "hr-sync", "service", "Directory.Write")
	for id := 1; id <= 8; id++ {
		status, _, out := heraldtest.Do(t, "PUT", fmt.Sprintf("%s/employees/%d", p.URL, id), svc, map[string]any{
			"username": fmt.Sprintf("user%d", id), "email": fmt.Sprintf("user%d@corp.example", id),
		})
		if status != 201 {
			t.Fatalf("PUT employee %d: %d %s", id, status, out)
		}
	}
	waitReady(t, p, 200)
}

func subscribe(t *testing.T, p *proc, user string, sub map[string]any) {
	t.Helper()
	status, _, out := heraldtest.Do(t, "POST", p.URL+"/push/subscriptions", mint(t, user), sub)
	if status != http.StatusCreated {
		t.Fatalf("subscribe %s: %d %s", user, status, out)
	}
}

func publishPush(t *testing.T, p *proc, tok, title string, to ...int) {
	t.Helper()
	status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications", tok, map[string]any{
		"to": map[string]any{"employees": to}, "type": "push.test", "title": title, "body": "body of " + title,
	})
	if status != http.StatusCreated {
		t.Fatalf("publish %q: %d %s", title, status, out)
	}
}

type pushPayload struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title"`
	Body      string `json:"body"`
	URL       string `json:"url"`
	CreatedAt string `json:"created_at"`
}

func payloadOf(t *testing.T, p pushtest.Push) pushPayload {
	t.Helper()
	var pl pushPayload
	dec := json.NewDecoder(strings.NewReader(string(p.Payload)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pl); err != nil {
		t.Fatalf("payload %s: %v", p.Payload, err)
	}
	return pl
}

// delivered counts the pushes the service accepted per subscriber and
// title, and fails on a push the service refused as malformed.
func delivered(t *testing.T, all []pushtest.Push) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, p := range all {
		if p.Status == http.StatusBadRequest {
			t.Fatalf("a malformed push reached the service: %v", p.Err)
		}
		if p.Status == http.StatusCreated {
			var pl pushPayload
			_ = json.Unmarshal(p.Payload, &pl)
			out[p.Subscriber+"/"+pl.Title]++
		}
	}
	return out
}

// TestWebPush: who is pushed and who is not, once each, with the retries
// and removals the push service's answers call for.
func TestWebPush(t *testing.T) {
	svc := pushtest.Start(t)
	p := startHerald(t, []string{"serve"}, pushEnv(t, svc, "1s")...)
	putEmployees(t, p)
	pub := mint(t, "billing", "service")

	status, _, out := heraldtest.Do(t, "GET", p.URL+"/push/key", "", nil)
	key := heraldtest.DecodeJSON[struct {
		PublicKey string `json:"public_key"`
	}](t, out)
	if status != 200 || len(key.PublicKey) != 87 {
		t.Fatalf("GET /push/key: %d %s", status, out)
	}

	// user2 is offline with two browsers, one behind a push service that
	// answers 503 once; user3 has a stream open; user4 reads at once;
	// user5's push service says the subscription is gone; user6 sees it
	// at once (the inbox opened elsewhere), user7 muted its type, user8
	// turned push off.
	subscribe(t, p, "user2", svc.Subscribe("u2"))
	subscribe(t, p, "user2", svc.Subscribe("u2-retry", pushtest.Answer{Status: 503, RetryAfter: "1"}))
	stream := heraldtest.MustOpenStream(t, p.URL+"/events", mint(t, "user3"))
	defer stream.Close()
	subscribe(t, p, "user3", svc.Subscribe("u3"))
	subscribe(t, p, "user4", svc.Subscribe("u4"))
	subscribe(t, p, "user5", svc.Subscribe("u5", pushtest.Answer{Status: 410}))
	for user, prefs := range map[string]map[string]any{
		"user7": {"muted": []string{"push.*"}, "push": true},
		"user8": {"muted": []string{}, "push": false},
	} {
		if status, _, out := heraldtest.Do(t, "PUT", p.URL+"/preferences", mint(t, user), prefs); status != 200 && status != 204 {
			t.Fatalf("PUT /preferences for %s: %d %s", user, status, out)
		}
	}
	for _, u := range []string{"6", "7", "8"} {
		subscribe(t, p, "user"+u, svc.Subscribe("u"+u))
	}

	reader, seer := mint(t, "user4"), mint(t, "user6") // minted before: minting runs the binary
	start := time.Now()
	publishPush(t, p, pub, "approval needed", 2, 3, 4, 5, 6, 7, 8)
	if status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications/read", reader, map[string]any{"all": true}); status != 200 {
		t.Fatalf("read: %d %s", status, out)
	}
	if status, _, out := heraldtest.Do(t, "POST", p.URL+"/notifications/seen", seer, map[string]any{"all": true}); status != 200 {
		t.Fatalf("seen: %d %s", status, out)
	}
	if m := stream.MustNext(t, 5*time.Second); m.Event != "notification" {
		t.Fatalf("user3's stream got %+v", m)
	}

	all := svc.Wait(t, "u2 and u2-retry pushed, u5 answered 410", 20*time.Second, func(all []pushtest.Push) bool {
		d := map[string]int{}
		for _, p := range all {
			d[fmt.Sprintf("%s %d", p.Subscriber, p.Status)]++
		}
		return d["u2 201"] == 1 && d["u2-retry 503"] == 1 && d["u2-retry 201"] == 1 && d["u5 410"] == 1
	})
	if took := time.Since(start); took < time.Second {
		t.Errorf("pushed %s after the publish; PUSH_DELAY is 1s", took)
	}
	u2 := svc.Pushes("u2")[0]
	pl := payloadOf(t, u2)
	var inbox struct {
		Items []struct {
			ID        string `json:"id"`
			CreatedAt string `json:"created_at"`
		} `json:"notifications"`
	}
	_, _, out = heraldtest.Do(t, "GET", p.URL+"/notifications", mint(t, "user2"), nil)
	json.Unmarshal(out, &inbox)
	if len(inbox.Items) != 1 || pl.ID != inbox.Items[0].ID || pl.Type != "push.test" || pl.Title != "approval needed" ||
		pl.Body != "body of approval needed" || pl.URL != "" || pl.CreatedAt != inbox.Items[0].CreatedAt {
		t.Errorf("payload %s; inbox %s", u2.Payload, out)
	}
	if u2.TTL < 86000 || u2.TTL > 86400 {
		t.Errorf("TTL %d; want about 24 h", u2.TTL)
	}
	if retry := svc.Pushes("u2-retry"); retry[1].At.Sub(retry[0].At) < time.Second {
		t.Errorf("retried %s after a 503 with Retry-After: 1", retry[1].At.Sub(retry[0].At))
	}

	// Nothing more comes: not to the stream's owner, not to the reader,
	// not twice; a new publish to user5 finds no subscription.
	publishPush(t, p, pub, "second", 5)
	time.Sleep(3 * time.Second)
	all = svc.All()
	d := delivered(t, all)
	want := map[string]int{"u2/approval needed": 1, "u2-retry/approval needed": 1}
	if fmt.Sprint(d) != fmt.Sprint(want) || len(svc.Pushes("u3")) != 0 || len(svc.Pushes("u4")) != 0 || len(svc.Pushes("u5")) != 1 ||
		len(svc.Pushes("u6"))+len(svc.Pushes("u7"))+len(svc.Pushes("u8")) != 0 {
		t.Fatalf("pushes %v; want %v and nothing else:%s", d, want, pushtest.Describe(all))
	}
	_, _, metrics := heraldtest.Do(t, "GET", p.URL+"/metrics", "", nil)
	for _, m := range []string{
		"herald_push_sent_total 2",
		`herald_push_failed_total{reason="gone"} 1`,
		`herald_push_failed_total{reason="server_error"} 1`,
		"herald_push_subscriptions_removed_total 1",
		"herald_push_queue_depth 0",
	} {
		if !strings.Contains(string(metrics), m+"\n") {
			t.Errorf("metrics lack %q", m)
		}
	}
}

// TestWebPushSurvivesRestart: a push in flight when Herald stops (the
// push service hangs) and one not decided yet both go out after a
// restart on the same database, once each.
func TestWebPushSurvivesRestart(t *testing.T) {
	svc := pushtest.Start(t)
	env := pushEnv(t, svc, "1s")
	db := "DATABASE_URL=sqlite:" + t.TempDir() + "/push.db"
	p := startHerald(t, []string{"serve"}, append(env, db)...)
	putEmployees(t, p)
	pub := mint(t, "billing", "service")
	subscribe(t, p, "user2", svc.Subscribe("u2", pushtest.Answer{Hold: true}))
	publishPush(t, p, pub, "in flight", 2)
	deadline := time.Now().Add(20 * time.Second)
	for svc.Held() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no push reached the service:\n%s", p.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	publishPush(t, p, pub, "not decided", 2)
	stopHerald(t, p)

	q := startHerald(t, []string{"serve"}, append(env, db)...)
	waitReady(t, q, 200)
	svc.Wait(t, "both pushed after the restart", 20*time.Second, func(all []pushtest.Push) bool {
		d := delivered(t, all)
		return d["u2/in flight"] == 1 && d["u2/not decided"] == 1
	})
	time.Sleep(2 * time.Second)
	if d := delivered(t, svc.All()); len(d) != 2 || d["u2/in flight"] != 1 || d["u2/not decided"] != 1 {
		t.Fatalf("pushes %v; want each once", d)
	}
}

// TestWebPushTwoInstances: two instances on one PostgreSQL database push
// each notification once per subscription.
func TestWebPushTwoInstances(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	svc := pushtest.Start(t)
	env := append(pushEnv(t, svc, "1s"), "DATABASE_URL="+dsn)
	a := startHerald(t, []string{"serve"}, env...)
	b := startHerald(t, []string{"serve"}, env...)
	putEmployees(t, a)
	pub := mint(t, "billing", "service")
	waitReady(t, b, 200)
	for id := 2; id <= 5; id++ {
		inst := a
		if id%2 == 0 {
			inst = b
		}
		subscribe(t, inst, fmt.Sprintf("user%d", id), svc.Subscribe(fmt.Sprintf("u%d", id)))
	}
	const n = 10
	for i := range n {
		inst := a
		if i%2 == 0 {
			inst = b
		}
		publishPush(t, inst, pub, fmt.Sprintf("n%d", i), 2, 3, 4, 5)
	}
	svc.Wait(t, "40 pushes", 30*time.Second, func(all []pushtest.Push) bool {
		return len(delivered(t, all)) == 4*n
	})
	time.Sleep(3 * time.Second)
	all := svc.All()
	for k, c := range delivered(t, all) {
		if c != 1 {
			t.Errorf("%s pushed %d times", k, c)
		}
	}
	if len(all) != 4*n {
		t.Errorf("%d requests reached the push service; want %d:%s", len(all), 4*n, pushtest.Describe(all))
	}
}
