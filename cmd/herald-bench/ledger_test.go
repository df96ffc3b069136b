package main

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestSeqSetAdd(t *testing.T) {
	tests := []struct {
		name   string
		adds   []uint32
		ranges [][2]uint32
		dups   int
	}{
		{"in order is one range", []uint32{0, 1, 2, 3}, [][2]uint32{{0, 3}}, 0},
		{"gaps", []uint32{1, 3, 5}, [][2]uint32{{1, 1}, {3, 3}, {5, 5}}, 0},
		{"fill a hole joins ranges", []uint32{1, 3, 2}, [][2]uint32{{1, 3}}, 0},
		{"extend a range left", []uint32{5, 9, 4}, [][2]uint32{{4, 5}, {9, 9}}, 0},
		{"extend a range right, out of order", []uint32{5, 9, 6}, [][2]uint32{{5, 6}, {9, 9}}, 0},
		{"insert before everything", []uint32{5, 9, 1}, [][2]uint32{{1, 1}, {5, 5}, {9, 9}}, 0},
		{"duplicates, last and inner", []uint32{1, 2, 3, 7, 3, 2, 7}, [][2]uint32{{1, 3}, {7, 7}}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s seqSet
			dups := 0
			for _, n := range tt.adds {
				if !s.Add(n) {
					dups++
				}
			}
			if !slices.Equal(s.ranges, tt.ranges) || dups != tt.dups {
				t.Fatalf("after %v: ranges %v dups %d, want %v dups %d", tt.adds, s.ranges, dups, tt.ranges, tt.dups)
			}
		})
	}
}

// A shuffled sequence must end as the same set as a sorted one, with every
// repeat reported.
func TestSeqSetShuffled(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[uint32]bool{}
	var s seqSet
	for range 20_000 {
		n := uint32(rng.IntN(5000))
		if s.Add(n) == want[n] {
			t.Fatalf("Add(%d) = %v, but it was seen before: %v", n, !want[n], want[n])
		}
		want[n] = true
	}
	if s.Len() != len(want) {
		t.Fatalf("Len %d, want %d", s.Len(), len(want))
	}
	for n := range uint32(5000) {
		if s.Has(n) != want[n] {
			t.Fatalf("Has(%d) = %v, want %v", n, s.Has(n), want[n])
		}
	}
	for i := 1; i < len(s.ranges); i++ {
		if s.ranges[i-1][1]+1 >= s.ranges[i][0] {
			t.Fatalf("ranges %v and %v touch: must be merged", s.ranges[i-1], s.ranges[i])
		}
	}
}

func TestLedgerRecord(t *testing.T) {
	l := ledger{employee: 7, role: "bench-r1"}
	steps := []struct {
		n      uint32
		seq    int64
		to     target
		counts bool
	}{
		{0, 1, target{Employee: 7}, true},
		{1, 2, target{Employee: 8}, false}, // for someone else
		{2, 3, target{Role: "bench-r1"}, true},
		{3, 4, target{Role: "bench-r2"}, false}, // another role
		{4, 5, target{All: true}, true},
		{4, 6, target{All: true}, false},  // the same publish again
		{5, 6, target{Employee: 7}, true}, // id did not increase
	}
	for _, s := range steps {
		if got := l.record(s.n, s.seq, s.to); got != s.counts {
			t.Fatalf("record(%d, seq %d, %+v) = %v, want %v", s.n, s.seq, s.to, got, s.counts)
		}
	}
	if l.cross != 2 || l.dups != 1 || l.disorder != 1 || l.got.Len() != 4 {
		t.Fatalf("cross %d dups %d disorder %d got %d, want 2 1 1 4", l.cross, l.dups, l.disorder, l.got.Len())
	}
}

// The end-of-run comparison: from the publish log, each stream must have
// exactly the accepted publishes for its employee, role or everyone; a
// publish that was never answered may or may not arrive.
func TestExpectationsAndCompare(t *testing.T) {
	log := newPublishLog(8)
	set := func(n int, t target, o outcome) { log.targets[n], log.outcomes[n] = t, o }
	set(0, target{Employee: 1}, outcomeOK)
	set(1, target{Employee: 2}, outcomeOK)
	set(2, target{Role: "r"}, outcomeOK)
	set(3, target{All: true}, outcomeOK)
	set(4, target{Employee: 1}, outcomeFailed)    // never expected
	set(5, target{Employee: 1}, outcomeUncertain) // may arrive
	set(6, target{All: true}, outcomeUncertain)   // may arrive
	// 7 was never sent
	ex := log.index()
	tests := []struct {
		emp             int64
		role            string
		got             []uint32
		must, may       []uint32
		lost, unexpectd int
	}{
		{1, "r", []uint32{0, 2, 3}, []uint32{0, 2, 3}, []uint32{5, 6}, 0, 0},
		{1, "r", []uint32{0, 2, 3, 5, 6}, []uint32{0, 2, 3}, []uint32{5, 6}, 0, 0},
		{1, "", []uint32{0}, []uint32{0, 3}, []uint32{5, 6}, 1, 0},
		{2, "", []uint32{1, 3, 4, 7}, []uint32{1, 3}, []uint32{6}, 0, 2},
		{3, "x", nil, []uint32{3}, []uint32{6}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("employee %d role %q got %v", tt.emp, tt.role, tt.got), func(t *testing.T) {
			must, may := ex.forStream(tt.emp, tt.role)
			if !slices.Equal(must, tt.must) || !slices.Equal(may, tt.may) {
				t.Fatalf("must %v may %v, want %v %v", must, may, tt.must, tt.may)
			}
			var got seqSet
			for _, n := range tt.got {
				got.Add(n)
			}
			lost, unexpected := compare(must, may, &got)
			if lost != tt.lost || unexpected != tt.unexpectd {
				t.Fatalf("lost %d unexpected %d, want %d %d", lost, unexpected, tt.lost, tt.unexpectd)
			}
		})
	}
}

// A broadcast stream's one long range is compared in two searches.
func TestCompareLongRange(t *testing.T) {
	must := make([]uint32, 100_000)
	for i := range must {
		must[i] = uint32(i)
	}
	got := seqSet{ranges: [][2]uint32{{0, 49_999}, {50_001, 100_002}}}
	lost, unexpected := compare(must, []uint32{100_000}, &got)
	if lost != 1 || unexpected != 2 {
		t.Fatalf("lost %d unexpected %d, want 1 (50,000) and 2 (100,001 and 100,002)", lost, unexpected)
	}
}
