package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/sqlite"
	"github.com/corp/herald/store/storetest"
)

// TestMarksCommitWithoutFlush: a batch of marks (read, unread, seen,
// archive, unarchive) commits with synchronous=NORMAL and holds marks only;
// every other write (publishes, deletions) commits with FULL, even when
// marks and publishes come at once and a mark's batch takes a publish,
// which then starts the next batch.
func TestMarksCommitWithoutFlush(t *testing.T) {
	db, err := sqlite.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.Seed(t, db, 2, 0)
	ctx := context.Background()
	for i := range 2 {
		if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: fmt.Sprint("seed ", i)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu                  sync.Mutex
		lazy, full, bad     int
		markBatchesWithMore int
	)
	db.SetBeforeCommit(func(level, marks, others int) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case level == 1 && others == 0:
			lazy++
		case level == 2:
			full++
		default:
			bad++
			if others > 0 {
				markBatchesWithMore++
			}
		}
	})
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for g := range 4 {
		wg.Go(func() {
			ops := []store.StateOp{store.OpRead, store.OpUnread, store.OpSeen, store.OpArchive, store.OpUnarchive}
			for i := range 60 {
				op := ops[(g+i)%len(ops)]
				if _, _, err := db.SetState(ctx, 1, op, []int64{1}, i%7 == 0); err != nil {
					errs <- fmt.Errorf("%s: %w", op, err)
				}
			}
		})
	}
	for g := range 2 {
		wg.Go(func() {
			for i := range 60 {
				if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{2}}, Type: "t", Title: fmt.Sprint(g, " ", i)}, nil); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, _, err := db.SetState(ctx, 1, store.OpDelete, []int64{2}, false); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if bad > 0 {
		t.Errorf("%d batches committed without the flush held other writes than marks (%d) or read no level", bad, markBatchesWithMore)
	}
	if lazy == 0 || full == 0 {
		t.Errorf("%d batches of marks, %d others: want both", lazy, full)
	}
	before := full
	mu.Unlock()
	// The pool's connections are back to FULL: a publish after the marks
	// commits with it (the deletion above too).
	if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{2}}, Type: "t", Title: "last"}, nil); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if full != before+1 {
		t.Errorf("the last publish did not commit with FULL (%d lazy, %d full, %d bad)", lazy, full, bad)
	}
}
