package sse

import "testing"

// TestDeliverToSeveralEmployees: a delivery to several employees by ID
// (no roles) reaches each of their streams, and only theirs.
func TestDeliverToSeveralEmployees(t *testing.T) {
	h := testHub(t)
	_, a := subscribe(t, h, 1)
	_, b := subscribe(t, h, 2)
	_, other := subscribe(t, h, 3)
	if n := h.DeliverTo(Targets{Employees: []int64{1, 2}}, ev(0)); n != 2 {
		t.Fatalf("reached %d streams, want 2", n)
	}
	if len(a.messages(t)) != 1 || len(b.messages(t)) != 1 || len(other.messages(t)) != 0 {
		t.Fatal("the event did not reach exactly employees 1 and 2")
	}
	if n := h.DeliverTo(Targets{}, ev(0)); n != 0 {
		t.Fatalf("no targets reached %d streams", n)
	}
}
