package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/handlers"
	"github.com/corp/herald/openapi"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// fuzzHerald is a Herald in-process for fuzzing: requests go straight to
// the handler (no socket), each checked against the API document with the
// iteration's own t.
type fuzzHerald struct {
	h     http.Handler
	store *sqlite.DB
	tok   func(user string, roles ...string) string
}

func newFuzzHerald(f *testing.F) *fuzzHerald {
	st, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(f.TempDir(), "fuzz.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	storetest.Seed(f, st, 3, 1)
	hub := sse.NewHub()
	f.Cleanup(hub.Close)
	a, err := auth.New(auth.Config{Secret: []byte(testSecret), PublisherRoles: []string{"service"},
		DirectoryRoles: []string{"Directory.Write"}, Directory: st})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = st.Listen(ctx, handlers.NewFanout(hub, a, nil)) }()
	f.Cleanup(func() { cancel(); <-done })
	waitReady(f, st)
	tok := func(user string, roles ...string) string {
		s, err := auth.MintHS256([]byte(testSecret), auth.TokenSpec{User: user, Roles: roles, TTL: time.Hour}, time.Now())
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	return &fuzzHerald{h: handlers.New(handlers.Config{Store: st, Hub: hub, Auth: a, OpenAPI: openapi.YAML}), store: st, tok: tok}
}

// do serves one request, held to the API document.
func (fh *fuzzHerald) do(t *testing.T, method, path, token string, body []byte, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	validating(t.Errorf, fh.h).ServeHTTP(rec, req)
	return rec
}

// FuzzPublishBody: whatever the body of POST /notifications, the answer
// is a documented one (201, 202 or a 4xx problem, never a 5xx); what is
// accepted is stored so that every inbox stays valid UTF-8 JSON; and the
// same body again with the same Idempotency-Key is the same request.
func FuzzPublishBody(f *testing.F) {
	fh := newFuzzHerald(f)
	svc := fh.tok("svc", "service")
	for _, seed := range []string{
		`{"to":{"employees":[2]},"type":"t","title":"x"}`,
		`{"to":{"employees":[1,2,3],"emails":["user2@corp.example"],"roles":["admin"]},"type":"a.b","title":"T","body":"B","data":{"k":[1,{"n":null}]}}`,
		`{"to":{"all":true},"type":"t","title":"x","persist":false,"event":"typing"}`,
		`{"to":{"employees":[2]},"type":"t","title":"x","data":{"k":"` + "\xff" + `"}}`,
		`{"to":{"employees":[2]},"type":"t","title":"\u212Aelvin \ud83d\ude00","data":{"s":"\ud800"}}`,
		`{"to":{"emails":["\u212Aen@corp.example"]},"type":"t","title":"x","persist":true,"event":"notification"}`,
		`{"to":{"employees":[2]},"type":"t","title":"x","data":[]}`,
		`{"to":{"employees":[-1]},"type":"T","title":"","tittle":1}`,
		`{"to":{"Employees":[2]},"type":"t","Title":"x"}`,
		`[]`, `null`, `{"to":`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sum := sha256.Sum256(body)
		key := hex.EncodeToString(sum[:8])
		first := fh.do(t, http.MethodPost, "/notifications", svc, body, "Idempotency-Key", key)
		switch first.Code {
		case http.StatusCreated, http.StatusAccepted:
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			return
		default:
			t.Fatalf("POST /notifications %q: %d %s", body, first.Code, first.Body)
		}
		again := fh.do(t, http.MethodPost, "/notifications", svc, body, "Idempotency-Key", key)
		if again.Code != first.Code || again.Body.String() != first.Body.String() || again.Header().Get("Idempotent-Replayed") != "true" {
			t.Fatalf("the same body and key again: %d %s (replayed %q), want the first answer %d %s",
				again.Code, again.Body, again.Header().Get("Idempotent-Replayed"), first.Code, first.Body)
		}
		for id := 1; id <= 3; id++ {
			in := fh.do(t, http.MethodGet, "/notifications?limit=2", fh.tok("user"+strconv.Itoa(id)), nil)
			if in.Code != http.StatusOK || !utf8.Valid(in.Body.Bytes()) || !json.Valid(in.Body.Bytes()) {
				t.Fatalf("after publishing %q, user%d's inbox: %d %q", body, id, in.Code, in.Body)
			}
		}
	})
}

// FuzzEmployeeBody: whatever the body of PUT /employees/{id}, the answer is
// documented (never a 5xx); a saved employee's logins are canonical and
// name it; and no body takes another employee's login: user1..user3 keep
// naming employees 1..3, by username and by email.
func FuzzEmployeeBody(f *testing.F) {
	fh := newFuzzHerald(f)
	dir := fh.tok("hr-sync", "Directory.Write")
	for _, seed := range []string{
		`{"email":"new@corp.example","username":"newbie","name":"New","roles":["staff"]}`,
		`{"username":"USER2@corp.example"}`,
		`{"email":"User1@Corp.Example"}`,
		`{"username":"\u212Aen","name":"Kelvin"}`,
		`{"username":" user3 "}`,
		`{"username":"USER2@corp.exampl "}`, // found: Herald trimmed what the document refuses
		`{"emAil":"00000@000000000000"}`,    // found: encoding/json matched the member by case
		`{"email":"a` + "\xff" + `@corp.example"}`,
		`{"name":"no login"}`,
		`{"username":"x","roles":["", " a "]}`,
		`{"username":"x","extra":1}`,
		`[]`, `{`, "",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := fh.do(t, http.MethodPut, "/employees/50", dir, body)
		switch rec.Code {
		case http.StatusOK, http.StatusCreated:
			var e struct{ Email, Username string }
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || !utf8.Valid(rec.Body.Bytes()) {
				t.Fatalf("PUT %q answered %s: %v", body, rec.Body, err)
			}
			for _, login := range []string{e.Email, e.Username} {
				if login == "" {
					continue
				}
				if store.NormalizeLogin(login) != login {
					t.Fatalf("PUT %q stored login %q, not canonical", body, login)
				}
				if got, err := fh.store.EmployeeByLogin(t.Context(), login); err != nil || got.ID != 50 {
					t.Fatalf("PUT %q: login %q names %d (%v), want 50", body, login, got.ID, err)
				}
			}
		case http.StatusBadRequest, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		default:
			t.Fatalf("PUT /employees/50 %q: %d %s", body, rec.Code, rec.Body)
		}
		for id := int64(1); id <= 3; id++ {
			for _, login := range []string{"user" + strconv.FormatInt(id, 10), "user" + strconv.FormatInt(id, 10) + "@corp.example"} {
				got, err := fh.store.EmployeeByLogin(t.Context(), login)
				if err != nil || got.ID != id {
					t.Fatalf("after PUT %q, %s names %d (%v), want %d", body, login, got.ID, err, id)
				}
			}
		}
		if _, err := fh.store.Employee(t.Context(), 50); err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	})
}

// FuzzPublishCenterFields: whatever url, times and flags a publisher sends,
// Herald answers 201 or a 400 naming the field, never 5xx, and a link it
// accepts is one a browser follows only to http(s) or to a path of the
// front end's own origin.
func FuzzPublishCenterFields(f *testing.F) {
	fh := newFuzzHerald(f)
	svc := fh.tok("svc", "service")
	for _, seed := range []struct {
		url                 string
		expires, deliver    string
		required, noPersist bool
	}{
		{"/requests/481", "2099-01-01T00:00:00Z", "", false, false},
		{"https://intranet.example/x?y=1#z", "", "2000-01-01T00:00:00Z", true, false},
		{"javascript:alert(1)", "", "", false, false},
		{"//evil.example", "", "", false, false},
		{"/\\evil.example", "", "", false, false},
		{"HTTPS://EXAMPLE.COM", "", "", false, false},
		{"http:/x", "tomorrow", "now", false, true},
		{"", "", "", true, true},
	} {
		f.Add(seed.url, seed.expires, seed.deliver, seed.required, seed.noPersist)
	}
	f.Fuzz(func(t *testing.T, link, expires, deliver string, required, noPersist bool) {
		body := map[string]any{"to": map[string]any{"employees": []int{2}}, "type": "fuzz.center", "title": "x", "required": required}
		if link != "" {
			body["url"] = link
		}
		if expires != "" {
			body["expires_at"] = expires
		}
		if deliver != "" {
			body["deliver_at"] = deliver
		}
		if noPersist {
			body["persist"] = false
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return
		}
		res := fh.do(t, http.MethodPost, "/notifications", svc, raw)
		switch res.Code {
		case http.StatusCreated, http.StatusAccepted:
			if link == "" {
				return
			}
			lower := strings.ToLower(link)
			if !(strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") ||
				(strings.HasPrefix(link, "/") && !strings.HasPrefix(link, "//"))) || strings.ContainsAny(link, "\\ \t\r\n") {
				t.Fatalf("url %q accepted", link)
			}
		case http.StatusBadRequest:
		default:
			t.Fatalf("POST %s: %d %s", raw, res.Code, res.Body)
		}
	})
}
