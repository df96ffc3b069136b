package main

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits buckets, so a recorded value is known to within 1/128 (0.8%).
// That is finer than anything a loopback latency run can tell apart, and it
// keeps a histogram small enough (a few KiB sparse) to send between
// processes and merge exactly.
const (
	subBits    = 7
	subBuckets = 1 << subBits
	// numBuckets covers every uint64: values below subBuckets map to
	// themselves, each further power of two adds subBuckets buckets.
	numBuckets = subBuckets + (64-subBits)*subBuckets
)

// Hist is a log-linear histogram of durations in nanoseconds. Record is
// lock-free, so thousands of stream goroutines can share one. Histograms
// merge by adding bucket counts, so percentiles over several worker
// processes are exact to the bucket, not an average of percentiles.
type Hist struct {
	counts [numBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	min    atomic.Uint64 // math.MaxUint64 while empty
	max    atomic.Uint64
}

// NewHist returns an empty histogram.
func NewHist() *Hist {
	h := &Hist{}
	h.min.Store(math.MaxUint64)
	return h
}

// bucketOf returns the bucket index of v.
func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [subBuckets, 2*subBuckets)
	return subBuckets + shift*subBuckets + int(v>>uint(shift)) - subBuckets
}

// bucketUpper returns the largest value that falls in bucket i.
func bucketUpper(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	shift := (i - subBuckets) / subBuckets
	mant := uint64(i-subBuckets-shift*subBuckets) + subBuckets
	return (mant+1)<<uint(shift) - 1
}

// Record adds one duration; negative durations (clock steps) count as 0.
func (h *Hist) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)].Add(1)
	h.n.Add(1)
	h.sum.Add(v)
	for {
		m := h.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Count returns how many values were recorded.
func (h *Hist) Count() uint64 { return h.n.Load() }

// Max returns the largest value recorded (0 when empty).
func (h *Hist) Max() time.Duration { return time.Duration(h.max.Load()) }

// Min returns the smallest value recorded (0 when empty).
func (h *Hist) Min() time.Duration {
	if h.n.Load() == 0 {
		return 0
	}
	return time.Duration(h.min.Load())
}

// Mean returns the average value (0 when empty).
func (h *Hist) Mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// Quantile returns the value below which a fraction q of the values lie: the
// upper bound of the bucket holding the ceil(q·n)-th value, clipped to the
// maximum, so a reported p99 is never below the true one by more than the
// bucket width.
func (h *Hist) Quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(min(bucketUpper(i), h.max.Load()))
		}
	}
	return h.Max()
}

// Merge adds o's values to h.
func (h *Hist) Merge(o *Hist) {
	if o == nil || o.n.Load() == 0 {
		return
	}
	for i := range o.counts {
		if c := o.counts[i].Load(); c > 0 {
			h.counts[i].Add(c)
		}
	}
	h.n.Add(o.n.Load())
	h.sum.Add(o.sum.Load())
	for {
		m, v := h.min.Load(), o.min.Load()
		if v >= m || h.min.CompareAndSwap(m, v) {
			break
		}
	}
	for {
		m, v := h.max.Load(), o.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// histJSON is a histogram on the wire between processes: only non-empty
// buckets, as [index, count] pairs.
type histJSON struct {
	Buckets [][2]uint64 `json:"buckets"`
	N       uint64      `json:"n"`
	Sum     uint64      `json:"sum"`
	Min     uint64      `json:"min"`
	Max     uint64      `json:"max"`
}

// MarshalJSON encodes the histogram sparsely.
func (h *Hist) MarshalJSON() ([]byte, error) {
	out := histJSON{N: h.n.Load(), Sum: h.sum.Load(), Min: h.min.Load(), Max: h.max.Load(), Buckets: [][2]uint64{}}
	if out.N == 0 {
		out.Min = 0
	}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			out.Buckets = append(out.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return json.Marshal(out)
}

// UnmarshalJSON decodes what MarshalJSON wrote into an empty histogram.
func (h *Hist) UnmarshalJSON(b []byte) error {
	var in histJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	var total uint64
	for _, bc := range in.Buckets {
		if bc[0] >= numBuckets {
			return fmt.Errorf("decode histogram: bucket %d out of range", bc[0])
		}
		h.counts[bc[0]].Store(bc[1])
		total += bc[1]
	}
	if total != in.N {
		return fmt.Errorf("decode histogram: buckets hold %d values, header says %d", total, in.N)
	}
	h.n.Store(in.N)
	h.sum.Store(in.Sum)
	h.max.Store(in.Max)
	h.min.Store(math.MaxUint64)
	if in.N > 0 {
		h.min.Store(in.Min)
	}
	return nil
}

// Summary is a histogram's figures in milliseconds, for reports.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summarize returns h's figures in milliseconds.
func (h *Hist) Summarize() Summary {
	return Summary{
		Count: h.Count(), Mean: ms(h.Mean()),
		P50: ms(h.Quantile(0.50)), P90: ms(h.Quantile(0.90)), P99: ms(h.Quantile(0.99)),
		P999: ms(h.Quantile(0.999)), Max: ms(h.Max()),
	}
}

// ms converts to milliseconds, rounded to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
