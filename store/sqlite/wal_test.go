package sqlite_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// TestWALStaysBounded writes hard for a while — a directory import, then
// broadcasts and unicasts from several goroutines while readers keep
// reading — and samples the size of the -wal file throughout. The WAL may
// pass the limit by what one transaction writes, which is at most the
// whole database. Without the truncation (limit set out of reach) the same
// run leaves a WAL about six times the bound after the directory import
// and grows it with every batch after that.
func TestWALStaysBounded(t *testing.T) {
	const (
		employees  = 200
		broadcasts = 8  // per broadcasting goroutine
		unicasts   = 30 // per unicasting goroutine
		limit      = 1 << 20
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "h.db")
	db, err := sqlite.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetWALLimit(limit)
	h := storetest.NewHarness(t, db)

	var biggest atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > biggest.Load() {
				biggest.Store(fi.Size())
			}
			select {
			case <-stopSampling:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	start := time.Now()
	storetest.Seed(t, db, employees, 0)
	t.Logf("directory of %d in %v: WAL at most %d bytes", employees, time.Since(start), biggest.Load())
	start = time.Now()
	readCtx, stopReading := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			// Readers hold snapshots, which a truncation must wait out.
			for i := 0; readCtx.Err() == nil; i++ {
				_, _ = db.Since(readCtx, int64((r*7+i)%employees+1), 0, 50)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	var writers sync.WaitGroup
	for w := range 6 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			n := broadcasts
			if w >= 2 {
				n = unicasts
			}
			for i := range n {
				to := store.Targets{All: true}
				if w >= 2 {
					to = store.Targets{Employees: []int64{int64((w*1000+i)%employees + 1)}}
				}
				if _, err := db.Publish(context.Background(), store.Message{To: to, Type: "t", Title: fmt.Sprintf("w%d-%d", w, i)}, nil); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
			}
		}()
	}
	writers.Wait()
	stopReading()
	readers.Wait()
	close(stopSampling)
	<-sampled

	size := db.Size(t)
	bound := int64(limit) + size + 1<<20
	t.Logf("publishes in %v: WAL at most %d bytes (limit %d, database %d bytes, bound %d); %d deliveries",
		time.Since(start), biggest.Load(), limit, size, bound, len(h.Sink.Deliveries()))
	if biggest.Load() > bound {
		t.Fatalf("the WAL reached %d bytes; want at most %d (the limit %d plus one transaction, at most the database's %d bytes, plus 1 MiB)",
			biggest.Load(), bound, limit, size)
	}
}

// TestWALTruncatedAfterEveryWrite: with no reader holding a snapshot, a
// truncation of the WAL succeeds, and the next write past the limit
// truncates it again at once (only an attempt that readers kept from
// completing waits walRetry before the next). Push subscriptions are
// written under writeMu, which bounds the WAL before the call returns; no
// listener runs, so no checkpoint of its own meets the truncation.
func TestWALTruncatedAfterEveryWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	db, err := sqlite.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetWALLimit(1)
	if _, _, err := db.PutEmployee(context.Background(), store.Employee{ID: 1, Email: "a@corp.example"}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		s := store.PushSubscription{Employee: 1, Endpoint: fmt.Sprintf("https://push.example/%d", i), P256DH: make([]byte, 65), Auth: make([]byte, 16)}
		if _, err := db.SavePushSubscription(context.Background(), s, 100); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != 0 {
			t.Fatalf("after write %d the WAL has %d bytes; want 0 (truncated after each write)", i+1, fi.Size())
		}
	}
}

// TestWALRestartsUnderSteadyWrites: with writes back to back, the
// listener's checkpoints still let the WAL start again from its beginning,
// so it is overwritten in place instead of growing until the writer
// truncates it. The WAL header's checkpoint sequence number (bytes 12–15)
// counts the restarts; the truncation is set out of reach, so only a
// restart moves it. A single PASSIVE checkpoint per tick never completes
// beside back-to-back writes, and this test fails with it.
func TestWALRestartsUnderSteadyWrites(t *testing.T) {
	const employees = 50
	path := filepath.Join(t.TempDir(), "h.db")
	db, err := sqlite.Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetWALLimit(1 << 40)
	db.SetCheckpointEvery(50*time.Millisecond, 100*time.Millisecond)
	storetest.NewHarness(t, db)
	storetest.Seed(t, db, employees, 0)
	restarts := func() uint32 {
		t.Helper()
		f, err := os.Open(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var h [16]byte
		if _, err := io.ReadFull(f, h[:]); err != nil {
			t.Fatalf("WAL header: %v", err)
		}
		return binary.BigEndian.Uint32(h[12:16])
	}

	ctx, stop := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	var published atomic.Int64
	for w := range 4 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := 0; ctx.Err() == nil; i++ {
				to := store.Targets{Employees: []int64{int64((w*131+i)%employees + 1)}}
				if _, err := db.Publish(context.Background(), store.Message{To: to, Type: "t", Title: "steady"}, nil); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				published.Add(1)
			}
		}()
	}
	defer func() { stop(); writers.Wait() }()

	first := restarts()
	deadline := time.Now().Add(20 * time.Second)
	for restarts() < first+3 {
		if time.Now().After(deadline) {
			fi, _ := os.Stat(path + "-wal")
			t.Fatalf("the WAL restarted %d times in 20 s of back-to-back writes (%d publishes); want 3 or more (WAL now %d bytes)",
				restarts()-first, published.Load(), fi.Size())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("3 restarts after %d publishes", published.Load())
}
