package sqlite_test

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// Helpers that drive the writer's interleaving: its test hook
// (SetAfterCommit) or a sink that blocks hold the writer between a batch's
// commit and the end of its deliveries while a test queues more requests,
// so what the writer does next is fixed, not left to the scheduler.

// gate holds the writer after committing a batch that contains hold, until
// released; batches lists the titles of every committed batch.
type gate struct {
	held     chan []string
	release  chan struct{}
	released sync.Once

	mu      sync.Mutex
	batches [][]string
}

// holdAfterCommit sets db's hook; g.open releases a held writer (also at
// cleanup, so a failing test does not leave the writer held).
func holdAfterCommit(t *testing.T, db *sqlite.DB, hold string) *gate {
	g := &gate{held: make(chan []string, 1), release: make(chan struct{})}
	t.Cleanup(g.open)
	db.SetAfterCommit(func(titles []string) {
		g.mu.Lock()
		g.batches = append(g.batches, titles)
		g.mu.Unlock()
		if slices.Contains(titles, hold) {
			g.held <- titles
			<-g.release
		}
	})
	return g
}

func (g *gate) open() { g.released.Do(func() { close(g.release) }) }

// batchOf returns the titles of the committed batch that holds title.
func (g *gate) batchOf(title string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, b := range g.batches {
		if slices.Contains(b, title) {
			return b
		}
	}
	return nil
}

type outcome struct {
	res store.PublishResult
	err error
}

// publishAsync publishes m in a goroutine; the outcome arrives on the channel.
func publishAsync(ctx context.Context, st store.Store, m store.Message, idem *store.Idempotency) <-chan outcome {
	c := make(chan outcome, 1)
	go func() {
		res, err := st.Publish(ctx, m, idem)
		c <- outcome{res, err}
	}()
	return c
}

func note(title string, to ...int64) store.Message {
	return store.Message{To: store.Targets{Employees: to}, Type: "t", Title: title, Publisher: "test"}
}

// waitQueued waits until n requests wait in the writer's queue. It fails at
// once if employee's head passes head meanwhile: something committed while
// the writer was held.
func waitQueued(t *testing.T, db *sqlite.DB, n int, employee, head int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for db.Waiting() != n {
		if got, _ := db.Head(context.Background(), employee); got != head {
			t.Fatalf("employee %d's head moved to %d while the writer was held after committing seq %d: another write committed", employee, got, head)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests wait for the writer after 10s, want %d: a request was taken while the writer was held", db.Waiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func openWithHarness(t *testing.T, employees int) (*sqlite.DB, *storetest.Harness) {
	t.Helper()
	db := MustOpen(t)
	h := storetest.NewHarness(t, db)
	storetest.Seed(t, db, employees, 0)
	return db, h
}

// holdingSink is a Recorder whose Deliver blocks on the notification titled
// hold until released.
type holdingSink struct {
	*storetest.Recorder
	hold     string
	held     chan []string
	release  chan struct{}
	released sync.Once
}

func (s *holdingSink) Deliver(d store.Delivery) {
	s.Recorder.Deliver(d)
	if d.Notification.Title == s.hold {
		s.held <- []string{s.hold}
		<-s.release
	}
}

func (s *holdingSink) open() { s.released.Do(func() { close(s.release) }) }

// listen runs db.Listen with sink until the test ends, and waits until the
// store is ready.
func listen(t testing.TB, db *sqlite.DB, sink store.Sink) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = db.Listen(ctx, sink)
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(10 * time.Second)
	for db.Ping(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("store not ready: %v", db.Ping(context.Background()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// poison adds a trigger that fails the inbox insert of any notification
// titled "poison": the publish fails after it has written its notification
// row and bumped seqs.
func poison(t *testing.T, db *sqlite.DB) {
	t.Helper()
	conn := rawConn(t, db)
	if _, err := conn.Exec(`CREATE TRIGGER poison BEFORE INSERT ON inbox
		WHEN (SELECT title FROM notifications WHERE id = NEW.notification_id) = 'poison'
		BEGIN SELECT RAISE(ABORT, 'poisoned'); END`); err != nil {
		t.Fatal(err)
	}
}

func countRows(t *testing.T, db *sqlite.DB, query string) int {
	t.Helper()
	var n int
	if err := rawConn(t, db).QueryRow(query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// rawConn opens the store's file with database/sql directly, as another
// program would.
func rawConn(t *testing.T, db *sqlite.DB) *sql.DB {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db.Path()+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
