package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// Results from two worker processes, sent as JSON like the real ones, must
// merge into the report a single process would have made.
func TestMergeResultsAcrossWorkers(t *testing.T) {
	mk := func(streams []StreamReport, lat []time.Duration, last [][2]int64, first, lastNs int64) GroupResult {
		h := NewHist()
		for _, d := range lat {
			h.Record(d)
		}
		r := GroupResult{Streams: streams, Latency: h, LastDelivery: last, Events: int64(len(lat)),
			Other: map[string]int64{"replay_truncated": 1}, FirstEventNs: first, LastEventNs: lastNs, CPUSeconds: 1.5}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back GroupResult
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		return back
	}
	a := mk([]StreamReport{{Index: 2, Employee: 3, Connected: true, Got: [][2]uint32{{0, 1}}}},
		[]time.Duration{time.Millisecond, 2 * time.Millisecond}, [][2]int64{{0, 5}, {1, 9}}, 100, 200)
	b := mk([]StreamReport{{Index: 0, Employee: 1, Connected: true, Got: [][2]uint32{{0, 0}}, Dups: 1}},
		[]time.Duration{40 * time.Millisecond}, [][2]int64{{0, 7}}, 50, 150)
	m := mergeResults([]GroupResult{a, b})
	if idx := []int{m.Streams[0].Index, m.Streams[1].Index}; !slices.Equal(idx, []int{0, 2}) {
		t.Errorf("streams in order %v, want [0 2]", idx)
	}
	if m.Events != 3 || m.Latency.Count() != 3 || m.Latency.Max() != 40*time.Millisecond {
		t.Errorf("events %d latency n %d max %v, want 3 3 40ms", m.Events, m.Latency.Count(), m.Latency.Max())
	}
	if !slices.Equal(m.LastDelivery, [][2]int64{{0, 7}, {1, 9}}) {
		t.Errorf("last delivery %v, want the slowest per publish [[0 7] [1 9]]", m.LastDelivery)
	}
	if m.FirstEventNs != 50 || m.LastEventNs != 200 || m.Other["replay_truncated"] != 2 || m.CPUSeconds != 3 {
		t.Errorf("first %d last %d other %v cpu %v", m.FirstEventNs, m.LastEventNs, m.Other, m.CPUSeconds)
	}
}

func TestMergeConnect(t *testing.T) {
	h1, h2 := NewHist(), NewHist()
	h1.Record(time.Millisecond)
	h2.Record(3 * time.Millisecond)
	m := mergeConnect([]ConnectReport{
		{Attempted: 10, Opened: 9, Failed: 1, Errors: map[string]int{"http 429": 1}, FailedStreams: []int{4}, StartNs: 20, EndNs: 90, Latency: h1},
		{Attempted: 5, Opened: 5, StartNs: 10, EndNs: 80, Latency: h2},
	})
	if m.Attempted != 15 || m.Opened != 14 || m.Failed != 1 || m.Errors["http 429"] != 1 || !slices.Equal(m.FailedStreams, []int{4}) {
		t.Errorf("counts %+v", m)
	}
	if m.StartNs != 10 || m.EndNs != 90 || m.Latency.Count() != 2 {
		t.Errorf("ramp %d…%d latency n %d, want 10…90 and 2", m.StartNs, m.EndNs, m.Latency.Count())
	}
	s := summarizeConnect(m)
	if s.RampSeconds != 80e-9 || s.PerSecond != 14/80e-9 {
		t.Errorf("ramp %v s at %v/s", s.RampSeconds, s.PerSecond)
	}
}

// analyze is the whole verdict: per stream, expected from the log against
// received, plus what each stream noticed itself.
func TestAnalyze(t *testing.T) {
	log := newPublishLog(4)
	for n, emp := range []int64{1, 1, 2, 3} {
		log.targets[n], log.outcomes[n] = target{Employee: emp}, outcomeOK
	}
	res := GroupResult{Latency: NewHist(), Streams: []StreamReport{
		{Index: 0, Employee: 1, Connected: true, Got: [][2]uint32{{0, 1}}},              // complete
		{Index: 1, Employee: 1, Connected: true, Got: [][2]uint32{{0, 0}}, Dups: 2},     // lost 1
		{Index: 2, Employee: 2, Connected: true, Got: [][2]uint32{{2, 2}}, Cross: 1},    // complete
		{Index: 3, Employee: 3, Connected: false},                                       // never connected: nothing expected
		{Index: 4, Employee: 4, Connected: true, Got: [][2]uint32{{3, 3}}, Drops: 1},    // unexpected
		{Index: 5, Employee: 3, Connected: true, Got: [][2]uint32{{3, 3}}, Disorder: 1}, // complete
	}}
	d := analyze(res, log, nil)
	want := DeliveryReport{Streams: 5, Expected: 6, Received: 6, Lost: 1, Duplicated: 2, CrossDelivered: 1,
		Unexpected: 1, Disorder: 1, Drops: 1, LossyStreams: []int{1}}
	if d.Streams != want.Streams || d.Expected != want.Expected || d.Received != want.Received || d.Lost != want.Lost ||
		d.Duplicated != want.Duplicated || d.CrossDelivered != want.CrossDelivered || d.Unexpected != want.Unexpected ||
		d.Disorder != want.Disorder || d.Drops != want.Drops || !slices.Equal(d.LossyStreams, want.LossyStreams) {
		t.Fatalf("got %+v\nwant %+v", d, want)
	}
	r := Report{Delivery: d}
	r.judge()
	if r.OK || len(r.Problems) != 5 {
		t.Fatalf("judge: ok %v problems %q, want 5 problems", r.OK, r.Problems)
	}
}
