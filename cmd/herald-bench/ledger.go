package main

import (
	"slices"
	"sort"
)

// seqSet is a set of publish numbers kept as sorted, disjoint, inclusive
// ranges. A stream of a broadcast run receives every number in order, which
// is one range; a unicast stream receives scattered numbers, a few per
// stream. Arrivals are nearly sorted (publishers run concurrently, commits
// are ordered), so Add looks from the end first.
type seqSet struct {
	ranges [][2]uint32
}

// Add inserts n and reports whether it was new.
func (s *seqSet) Add(n uint32) bool {
	r := s.ranges
	if k := len(r); k == 0 || n > r[k-1][1] {
		if k > 0 && r[k-1][1]+1 == n {
			r[k-1][1] = n
		} else {
			s.ranges = append(r, [2]uint32{n, n})
		}
		return true
	}
	// i is the first range ending at or after n.
	i := sort.Search(len(r), func(i int) bool { return r[i][1] >= n })
	if r[i][0] <= n {
		return false // already there: a duplicate
	}
	switch {
	case i > 0 && r[i-1][1]+1 == n && n+1 == r[i][0]: // fills the hole between two ranges
		r[i-1][1] = r[i][1]
		s.ranges = slices.Delete(r, i, i+1)
	case i > 0 && r[i-1][1]+1 == n:
		r[i-1][1] = n
	case n+1 == r[i][0]:
		r[i][0] = n
	default:
		s.ranges = slices.Insert(r, i, [2]uint32{n, n})
	}
	return true
}

// Has reports whether n is in the set.
func (s *seqSet) Has(n uint32) bool {
	r := s.ranges
	i := sort.Search(len(r), func(i int) bool { return r[i][1] >= n })
	return i < len(r) && r[i][0] <= n
}

// Len returns how many numbers the set holds.
func (s *seqSet) Len() int {
	total := 0
	for _, r := range s.ranges {
		total += int(r[1]-r[0]) + 1
	}
	return total
}

// target says whom a publish was for. Exactly one field is set.
type target struct {
	Employee int64  // unicast
	Role     string // role mode
	All      bool   // broadcast
}

// matches reports whether a stream of employee emp holding role should get
// a publish for t.
func (t target) matches(emp int64, role string) bool {
	switch {
	case t.All:
		return true
	case t.Role != "":
		return t.Role == role
	default:
		return t.Employee == emp
	}
}

// ledger is what one stream received, checked as it arrives: each event must
// be for this stream's employee (else it is cross-delivered), no publish
// number may come twice, and persisted events' ids (the employee's seq) must
// strictly increase.
type ledger struct {
	employee int64
	role     string
	got      seqSet
	lastSeq  int64 // the last SSE id seen, for resuming and order checks
	dups     int
	cross    int
	disorder int // persisted ids that did not increase
}

// record checks one received event and reports whether it counts (it is
// new and for this stream).
func (l *ledger) record(n uint32, seq int64, to target) bool {
	if seq > 0 {
		if seq <= l.lastSeq {
			l.disorder++
		} else {
			l.lastSeq = seq
		}
	}
	if !to.matches(l.employee, l.role) {
		l.cross++
		return false
	}
	if !l.got.Add(n) {
		l.dups++
		return false
	}
	return true
}

// outcome is what became of one publish, as its publisher saw it.
type outcome uint8

const (
	outcomeNone      outcome = iota // never sent (the run ended first)
	outcomeOK                       // 201/202: the server took it
	outcomeFailed                   // an error answer: nothing was stored
	outcomeUncertain                // no answer (timeout, connection reset): it may or may not exist
)

// publishLog records every publish by number, so that the expected events of
// each stream can be derived at the end.
type publishLog struct {
	targets  []target
	outcomes []outcome
}

func newPublishLog(capacity int) *publishLog {
	return &publishLog{targets: make([]target, capacity), outcomes: make([]outcome, capacity)}
}

// expectation is, for one target, the publishes its streams must receive
// (acked) and those they may receive (uncertain), each in publish order.
type expectation struct {
	must []uint32
	may  []uint32
}

// expectations indexes the log by employee, role and broadcast, so each
// stream's expected set is found without scanning the log per stream.
type expectations struct {
	byEmployee map[int64]*expectation
	byRole     map[string]*expectation
	all        *expectation
}

func (l *publishLog) index() *expectations {
	ex := &expectations{byEmployee: map[int64]*expectation{}, byRole: map[string]*expectation{}, all: &expectation{}}
	for i, t := range l.targets {
		o := l.outcomes[i]
		if o != outcomeOK && o != outcomeUncertain {
			continue
		}
		var e *expectation
		switch {
		case t.All:
			e = ex.all
		case t.Role != "":
			e = getOrMake(ex.byRole, t.Role)
		default:
			e = getOrMake(ex.byEmployee, t.Employee)
		}
		if o == outcomeOK {
			e.must = append(e.must, uint32(i))
		} else {
			e.may = append(e.may, uint32(i))
		}
	}
	return ex
}

func getOrMake[K comparable](m map[K]*expectation, k K) *expectation {
	e := m[k]
	if e == nil {
		e = &expectation{}
		m[k] = e
	}
	return e
}

// forStream returns, sorted, what a stream of emp holding role must and may
// receive. A publish has one target, so the parts are disjoint.
func (ex *expectations) forStream(emp int64, role string) (must, may []uint32) {
	parts := []*expectation{ex.all}
	if e := ex.byEmployee[emp]; e != nil {
		parts = append(parts, e)
	}
	if e := ex.byRole[role]; role != "" && e != nil {
		parts = append(parts, e)
	}
	if len(parts) == 1 {
		return parts[0].must, parts[0].may
	}
	for _, p := range parts {
		must = append(must, p.must...)
		may = append(may, p.may...)
	}
	slices.Sort(must)
	slices.Sort(may)
	return must, may
}

// compare counts, for one stream, the expected publishes it did not receive
// (lost) and the received ones nobody expected (unexpected: a publish that
// failed, or was never sent, reached it). must and may are sorted and
// disjoint. It counts per received range, so a broadcast stream's one long
// range costs two binary searches, not one step per event.
func compare(must, may []uint32, got *seqSet) (lost, unexpected int) {
	inMust, inMay := 0, 0
	for _, r := range got.ranges {
		inMust += countIn(must, r)
		inMay += countIn(may, r)
	}
	return len(must) - inMust, got.Len() - inMust - inMay
}

// countIn counts the elements of sorted xs within the inclusive range r.
func countIn(xs []uint32, r [2]uint32) int {
	lo, _ := slices.BinarySearch(xs, r[0])
	hi, found := slices.BinarySearch(xs, r[1])
	if found {
		hi++
	}
	return hi - lo
}
