package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// BenchCenter measures the notification center's calls on one employee
// whose inbox holds 100,000 notifications (the newest 1,000 unread and
// unseen, the rest read, as a long-lived inbox is), each the way a server
// makes it:
//
//   - inbox: the first page of GET /notifications (50 items and the counts);
//   - inbox-unread-type: the same filtered by unread and a type prefix;
//   - counts: GET /notifications/counts;
//   - state: a state change of one item (read and unread in turn), with
//     its counts and its state event.
//
// Besides the mean (ns/op) each reports its 99th percentile (p99-ms).
func BenchCenter(b *testing.B, open BenchOpener) {
	s := newBenchStore(b, open, 2)
	seedInbox(b, s.st, 1, 99_000)
	if _, _, err := s.st.SetState(context.Background(), 1, store.OpRead, nil, true); err != nil {
		b.Fatal(err)
	}
	seedInbox(b, s.st, 1, 1_000)
	ctx := context.Background()
	// A server store's statistics are refreshed as a long-lived database's
	// would have been (autovacuum), not left as those of the empty tables.
	if a, ok := s.st.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("inbox", func(b *testing.B) {
		timed(b, func() error {
			p, err := s.st.Inbox(ctx, store.InboxQuery{Employee: 1, Limit: 50})
			if err == nil && (len(p.Items) != 50 || p.UnreadCount != 1_000) {
				err = fmt.Errorf("page of %d items, %d unread", len(p.Items), p.UnreadCount)
			}
			return err
		})
	})
	b.Run("inbox-unread-type", func(b *testing.B) {
		timed(b, func() error {
			_, err := s.st.Inbox(ctx, store.InboxQuery{Employee: 1, Limit: 50, UnreadOnly: true, Type: "bench.*"})
			return err
		})
	})
	b.Run("counts", func(b *testing.B) {
		timed(b, func() error {
			c, err := s.st.Counts(ctx, 1)
			if err == nil && c.Unread != 1_000 {
				err = fmt.Errorf("counts %+v", c)
			}
			return err
		})
	})
	b.Run("state", func(b *testing.B) {
		i := 0
		timed(b, func() error {
			i++
			op := store.OpUnread
			if i%2 == 0 {
				op = store.OpRead
			}
			n, _, err := s.st.SetState(ctx, 1, op, []int64{50_000}, false)
			if err == nil && n != 1 {
				err = fmt.Errorf("%s changed %d", op, n)
			}
			return err
		})
	})
}

// timed runs fn b.N times and reports the 99th percentile of its latency.
func timed(b *testing.B, fn func() error) {
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}

// seedInbox publishes n notifications to employee, from several goroutines
// so the stores batch them.
func seedInbox(tb testing.TB, st store.Store, employee int64, n int) {
	tb.Helper()
	const workers = 32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				m := benchMessage(store.Targets{Employees: []int64{employee}})
				if _, err := st.Publish(context.Background(), m, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
}
