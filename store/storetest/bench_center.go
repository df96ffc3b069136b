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
// whose inbox holds 101,000 notifications (1,000 of them archived, one in
// 101), among other employees' 100,000 (so that every query must find its
// employee's rows through an index), each call the way a server makes it,
// in two states of the inbox:
//
//   - unread=100000: nothing read yet but the archived items, the worst
//     case for the counts;
//   - unread=1000: the newest 1,000 unread and unseen, the rest read, as a
//     long-lived inbox is (1,000 more notifications, so 102,000).
//
// One notification in ten has the type "build.failed", the others
// "bench.publish". The calls:
//
//   - inbox: the first page of GET /notifications (the default 50 items,
//     and the counts);
//   - inbox-unread, inbox-unseen, inbox-archived: the same filtered by
//     unread=true, unseen=true, archived=true;
//   - inbox-type, inbox-type-exact: filtered by a type prefix (build.*)
//     and by the type itself (build.failed);
//   - inbox-unread-type, inbox-unread-type-exact: unread and each of them;
//   - counts: GET /notifications/counts;
//   - state: a state change of one item (read and unread in turn), with
//     its counts and its state event;
//   - state-archive: the same with archive and unarchive;
//   - read-all (unread=1000 only): {"all":true} read, the 1,000 unread
//     made unread again between the timed calls.
//
// Besides the mean (ns/op) each reports its median and 99th percentile
// (p50-ms, p99-ms). Marking all 100,000 read, between the two states, is
// timed once and logged.
func BenchCenter(b *testing.B, open BenchOpener) {
	s := newBenchStore(b, open, 6)
	ctx := context.Background()
	seedCenter(b, s.st, []int64{1}, 101_000)
	seedCenter(b, s.st, []int64{2, 3, 4, 5, 6}, 20_000)
	archived := make([]int64, 1_000)
	for i := range archived {
		archived[i] = int64(i+1) * 101
	}
	if n, _, err := s.st.SetState(ctx, 1, store.OpArchive, archived, false); err != nil || n != len(archived) {
		b.Fatalf("archive: %d, %v", n, err)
	}
	analyze(b, s.st)
	b.Run("unread=100000", func(b *testing.B) { centerCalls(b, s.st, 100_000) })
	start := time.Now()
	if n, _, err := s.st.SetState(ctx, 1, store.OpRead, nil, true); err != nil || n != 100_000 {
		b.Fatalf("read all: %d, %v", n, err)
	}
	b.Logf("marking 100,000 notifications read ({\"all\":true}) took %v", time.Since(start).Round(time.Microsecond))
	seedCenter(b, s.st, []int64{1}, 1_000)
	analyze(b, s.st)
	b.Run("unread=1000", func(b *testing.B) {
		centerCalls(b, s.st, 1_000)
		b.Run("read-all", func(b *testing.B) {
			newest := make([]int64, 1_000)
			for i := range newest {
				newest[i] = 101_001 + int64(i)
			}
			timedPrepared(b, func() error {
				_, _, err := s.st.SetState(ctx, 1, store.OpUnread, newest, false)
				return err
			}, func() error {
				n, c, err := s.st.SetState(ctx, 1, store.OpRead, nil, true)
				if err == nil && (n != 1_000 || c.Unread != 0) {
					err = fmt.Errorf("read all changed %d, counts %+v", n, c)
				}
				return err
			})
		})
	})
}

// analyze refreshes a server store's statistics as a long-lived
// database's would have been (autovacuum), not left as those of the empty
// tables.
func analyze(b *testing.B, st store.Store) {
	if a, ok := st.(interface{ Analyze(context.Context) error }); ok {
		if err := a.Analyze(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// centerCalls runs the calls' benchmarks on employee 1, who has unread
// unread items.
func centerCalls(b *testing.B, st store.Store, unread int) {
	ctx := context.Background()
	page := func(q store.InboxQuery, check func(p store.InboxPage) error) func(b *testing.B) {
		q.Employee, q.Limit = 1, 50
		return func(b *testing.B) {
			timed(b, func() error {
				p, err := st.Inbox(ctx, q)
				if err == nil && p.UnreadCount != unread {
					err = fmt.Errorf("%d unread, want %d", p.UnreadCount, unread)
				}
				if err == nil && check != nil {
					err = check(p)
				}
				return err
			})
		}
	}
	full := func(p store.InboxPage) error {
		if len(p.Items) != 50 {
			return fmt.Errorf("page of %d items", len(p.Items))
		}
		return nil
	}
	b.Run("inbox", page(store.InboxQuery{}, full))
	b.Run("inbox-unread", page(store.InboxQuery{UnreadOnly: true}, full))
	b.Run("inbox-unseen", page(store.InboxQuery{UnseenOnly: true}, full))
	b.Run("inbox-archived", page(store.InboxQuery{Archived: true}, full))
	b.Run("inbox-type", page(store.InboxQuery{Type: "build.*"}, full))
	b.Run("inbox-type-exact", page(store.InboxQuery{Type: "build.failed"}, full))
	b.Run("inbox-unread-type", page(store.InboxQuery{UnreadOnly: true, Type: "build.*"}, full))
	b.Run("inbox-unread-type-exact", page(store.InboxQuery{UnreadOnly: true, Type: "build.failed"}, full))
	b.Run("counts", func(b *testing.B) {
		timed(b, func() error {
			c, err := st.Counts(ctx, 1)
			if err == nil && c.Unread != unread {
				err = fmt.Errorf("counts %+v, want %d unread", c, unread)
			}
			return err
		})
	})
	// Items among the unread ones (none archived), in the middle of the
	// inbox when all are.
	seq := int64(101_000 + 500)
	if unread == 100_000 {
		seq = 50_000
	}
	state := func(seq int64, do, undo store.StateOp) func(b *testing.B) {
		return func(b *testing.B) {
			i := 0
			timed(b, func() error {
				i++
				op := do
				if i%2 == 0 {
					op = undo
				}
				n, _, err := st.SetState(ctx, 1, op, []int64{seq}, false)
				if err == nil && n != 1 {
					err = fmt.Errorf("%s changed %d", op, n)
				}
				return err
			})
			// Leave it as found: not archived, unread.
			for _, op := range []store.StateOp{store.OpUnarchive, store.OpUnread} {
				if _, _, err := st.SetState(ctx, 1, op, []int64{seq}, false); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("state", state(seq, store.OpRead, store.OpUnread))
	b.Run("state-archive", state(seq+1, store.OpArchive, store.OpUnarchive))
}

// timed runs fn b.N times and reports the median and the 99th
// percentile of its latency.
func timed(b *testing.B, fn func() error) { timedPrepared(b, nil, fn) }

// timedPrepared runs prepare (untimed, when not nil) and fn b.N times.
func timedPrepared(b *testing.B, prepare, fn func() error) {
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		if prepare != nil {
			b.StopTimer()
			if err := prepare(); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		start := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2])/1e6, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100])/1e6, "p99-ms")
}

// seedCenter publishes n notifications to employees (each publish to all
// of them), from several goroutines so the stores batch them. One in ten
// has a type starting "build.".
func seedCenter(tb testing.TB, st store.Store, employees []int64, n int) {
	tb.Helper()
	const workers = 32
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				m := benchMessage(store.Targets{Employees: employees})
				if i%10 == 0 {
					m.Type = "build.failed"
				}
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
