package postgres_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/postgres"
	"github.com/corp/herald/store/storetest"
)

// withPushSubscriber opens a store whose employee 1 has one push
// subscription.
func withPushSubscriber(t *testing.T) *postgres.DB {
	t.Helper()
	db := MustOpen(t)
	storetest.Seed(t, db, 1, 0)
	sub := store.PushSubscription{Employee: 1, Endpoint: "https://push.example/1",
		P256DH: bytes.Repeat([]byte{1}, 65), Auth: bytes.Repeat([]byte{1}, 16)}
	if _, err := db.SavePushSubscription(context.Background(), sub, 10); err != nil {
		t.Fatal(err)
	}
	return db
}

// TestClaimedPushCarriesData: a claimed job's notification carries its
// data as published, and none for a notification published without.
func TestClaimedPushCarriesData(t *testing.T) {
	db := withPushSubscriber(t)
	ctx := context.Background()
	to := store.Targets{Employees: []int64{1}}
	if _, err := db.Publish(ctx, store.Message{To: to, Type: "t", Title: "with data", Data: []byte(`{"k":1}`)}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Publish(ctx, store.Message{To: to, Type: "t", Title: "without"}, nil); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if n, _, err := db.QueuePushes(ctx, store.PushRule{Now: later, Delay: time.Second, TTL: time.Hour, Limit: 10}); err != nil || n != 2 {
		t.Fatalf("QueuePushes = %d, %v; want 2", n, err)
	}
	jobs, err := db.ClaimPushes(ctx, later, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("ClaimPushes = %d jobs, %v; want 2", len(jobs), err)
	}
	for _, j := range jobs {
		n := j.Notification
		switch n.Title {
		case "with data":
			if string(n.Data) != `{"k":1}` {
				t.Errorf("%q: data %q, want {\"k\":1}", n.Title, n.Data)
			}
		case "without":
			if n.Data != nil {
				t.Errorf("%q: data %q, want none", n.Title, n.Data)
			}
		default:
			t.Errorf("claimed %q", n.Title)
		}
	}
}

// TestPushSubscriptionUnknownEmployee: saving a subscription for an
// employee who does not exist is ErrNotFound, a definite answer: not an
// unavailable database nor an outcome in doubt.
func TestPushSubscriptionUnknownEmployee(t *testing.T) {
	db := MustOpen(t)
	sub := store.PushSubscription{Employee: 99, Endpoint: "https://push.example/x",
		P256DH: bytes.Repeat([]byte{1}, 65), Auth: bytes.Repeat([]byte{1}, 16)}
	_, err := db.SavePushSubscription(context.Background(), sub, 10)
	if !errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrUnavailable) || errors.Is(err, store.ErrOutcomeUnknown) {
		t.Fatalf("SavePushSubscription(unknown employee) = %v; want ErrNotFound only", err)
	}
}

// TestSettledRetryWaitsForItsTime: a job settled for a retry is claimed
// again at its retry time, not when its lease runs out (a minute here),
// beside a job of the same settlement completed.
func TestSettledRetryWaitsForItsTime(t *testing.T) {
	db := withPushSubscriber(t)
	ctx := context.Background()
	for _, title := range []string{"sent", "retried"} {
		if _, err := db.Publish(ctx, store.Message{To: store.Targets{Employees: []int64{1}}, Type: "t", Title: title}, nil); err != nil {
			t.Fatal(err)
		}
	}
	later := time.Now().Add(time.Minute)
	if n, _, err := db.QueuePushes(ctx, store.PushRule{Now: later, Delay: time.Second, TTL: 24 * time.Hour, Limit: 10}); err != nil || n != 2 {
		t.Fatalf("QueuePushes = %d, %v; want 2", n, err)
	}
	jobs, err := db.ClaimPushes(ctx, later, time.Minute, 10)
	if err != nil || len(jobs) != 2 {
		t.Fatalf("ClaimPushes = %d jobs, %v; want 2", len(jobs), err)
	}
	retryAt := later.Add(time.Hour)
	var outcomes []store.PushOutcome
	for _, j := range jobs {
		o := store.PushOutcome{Job: j.ID}
		if j.Notification.Title == "retried" {
			o.Retry = retryAt
		}
		outcomes = append(outcomes, o)
	}
	if err := db.SettlePushes(ctx, outcomes); err != nil {
		t.Fatal(err)
	}
	if again, err := db.ClaimPushes(ctx, later.Add(2*time.Minute), time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("claimed %d jobs, %v after the lease, before the retry time; want none", len(again), err)
	}
	again, err := db.ClaimPushes(ctx, retryAt, time.Minute, 10)
	if err != nil || len(again) != 1 || again[0].Notification.Title != "retried" || again[0].Attempts != 2 {
		t.Fatalf("claimed at the retry time: %+v, %v; want the retried job, second attempt", again, err)
	}
}
