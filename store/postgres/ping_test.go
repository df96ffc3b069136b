package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/corp/herald/store"
	"github.com/corp/herald/store/storetest"
)

// TestPingNeedsListenerAndDatabase: an instance is ready only while its
// Listen runs (else it would not hear the other instances' publishes) and
// the database answers: Ping fails before Listen, even though the
// database answers, and fails when its query does, even with the
// listener up.
func TestPingNeedsListenerAndDatabase(t *testing.T) {
	db := MustOpen(t)
	ctx := context.Background()
	if err := db.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ping without Listen: %v, want ErrUnavailable", err)
	}
	listen(t, db, storetest.NewRecorder()) // waits until Ping succeeds
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := db.Ping(cancelled); !errors.Is(err, context.Canceled) {
		t.Fatalf("Ping with a cancelled context while listening: %v, want context.Canceled", err)
	}
}
