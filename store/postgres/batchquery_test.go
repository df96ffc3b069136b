package postgres

import (
	"testing"

	"github.com/corp/herald/store"
)

// TestBatchQuery: small batches to employee IDs only go to
// herald_publish_ids; a batch with an email, a role or everyone anywhere,
// or of more than idsBatchMax messages, to herald_publish_batch.
func TestBatchQuery(t *testing.T) {
	ids := store.Targets{Employees: []int64{1, 2}}
	batch := func(n int, odd store.Targets) []targetArgs {
		out := make([]targetArgs, n)
		for i := range out {
			out[i] = targetsOf(ids)
		}
		out[n-1] = targetsOf(odd)
		return out
	}
	for _, tt := range []struct {
		name    string
		targets []targetArgs
		want    string
	}{
		{"one to IDs", batch(1, ids), publishIDsSQL},
		{"four to IDs", batch(idsBatchMax, ids), publishIDsSQL},
		{"five to IDs", batch(idsBatchMax+1, ids), publishBatchSQL},
		{"one to an email", batch(1, store.Targets{Emails: []string{"a@corp.example"}}), publishBatchSQL},
		{"a role among IDs", batch(3, store.Targets{Employees: []int64{3}, Roles: []string{"staff"}}), publishBatchSQL},
		{"everyone among IDs", batch(2, store.Targets{All: true}), publishBatchSQL},
	} {
		if got := batchQuery(tt.targets); got != tt.want {
			t.Errorf("%s: %s; want %s", tt.name, got, tt.want)
		}
	}
}
