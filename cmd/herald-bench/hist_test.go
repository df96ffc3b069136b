package main

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		v := rng.Uint64() >> rng.IntN(64)
		i := bucketOf(v)
		up := bucketUpper(i)
		if up < v {
			t.Fatalf("bucketUpper(bucketOf(%d)) = %d, below the value", v, up)
		}
		if i > 0 && bucketUpper(i-1) >= v {
			t.Fatalf("value %d also fits bucket %d (upper %d)", v, i-1, bucketUpper(i-1))
		}
		if v >= subBuckets && float64(up-v)/float64(v) > 1.0/subBuckets {
			t.Fatalf("value %d: bucket upper %d is %.4f%% off, want ≤ %.4f%%", v, up, 100*float64(up-v)/float64(v), 100.0/subBuckets)
		}
	}
	if got := bucketOf(^uint64(0)); got != numBuckets-1 {
		t.Fatalf("bucketOf(max) = %d, want the last bucket %d", got, numBuckets-1)
	}
}

func TestQuantiles(t *testing.T) {
	h := NewHist()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Millisecond},
		{0.9, 900 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{0.999, 999 * time.Millisecond},
		{1, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		// The answer is the bucket's upper bound: never below the true
		// value, at most 1/128 above it.
		if got < tt.want || float64(got-tt.want) > float64(tt.want)/subBuckets {
			t.Errorf("Quantile(%v) = %v, want %v (+0.8%%)", tt.q, got, tt.want)
		}
	}
	if h.Max() != time.Second || h.Min() != time.Millisecond || h.Count() != 1000 {
		t.Errorf("max %v min %v count %d, want 1s 1ms 1000", h.Max(), h.Min(), h.Count())
	}
	if m := h.Mean(); m != 500500*time.Microsecond {
		t.Errorf("mean %v, want 500.5ms", m)
	}
	if (NewHist()).Quantile(0.99) != 0 {
		t.Error("an empty histogram's p99 must be 0")
	}
}

// Merging histograms of disjoint samples must give the histogram of all
// samples: percentiles over worker processes are then exact, not averaged.
func TestMergeEqualsWhole(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	whole, a, b := NewHist(), NewHist(), NewHist()
	for i := range 50_000 {
		d := time.Duration(rng.ExpFloat64() * float64(3*time.Millisecond))
		if i%3 == 0 {
			d *= 40 // one worker sees a slow tail
			a.Record(d)
		} else {
			b.Record(d)
		}
		whole.Record(d)
	}
	merged := NewHist()
	merged.Merge(a)
	merged.Merge(b)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
		if m, w := merged.Quantile(q), whole.Quantile(q); m != w {
			t.Errorf("q%v: merged %v, whole %v", q, m, w)
		}
	}
	if merged.Count() != whole.Count() || merged.Min() != whole.Min() || merged.Max() != whole.Max() || merged.Mean() != whole.Mean() {
		t.Errorf("merged %+v, whole %+v", merged.Summarize(), whole.Summarize())
	}
}

func TestHistJSONRoundTrip(t *testing.T) {
	h := NewHist()
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Millisecond, 7 * time.Second} {
		h.Record(d)
	}
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	var back *Hist
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Summarize() != h.Summarize() || back.Min() != 0 {
		t.Fatalf("round trip: got %+v, want %+v", back.Summarize(), h.Summarize())
	}
	var empty *Hist
	b, _ = json.Marshal(NewHist())
	if err := json.Unmarshal(b, &empty); err != nil || empty.Count() != 0 || empty.Min() != 0 {
		t.Fatalf("empty round trip: %v %+v", err, empty.Summarize())
	}
	if err := json.Unmarshal([]byte(`{"buckets":[[1,2]],"n":3}`), new(Hist)); err == nil {
		t.Fatal("a histogram whose buckets do not add up to n must be refused")
	}
}
