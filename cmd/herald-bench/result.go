package main

import (
	"maps"
	"slices"
	"time"
)

// ConnectReport is how a group's streams connected.
type ConnectReport struct {
	Attempted int            `json:"attempted"`
	Opened    int            `json:"opened"`
	Failed    int            `json:"failed"`
	Errors    map[string]int `json:"errors,omitempty"`
	// FailedStreams are the streams that could not connect: nothing is
	// expected of them.
	FailedStreams []int `json:"failed_streams,omitempty"`
	// StartNs and EndNs bound the ramp: the first dial and the last
	// connect's end (Unix nanoseconds, comparable across processes).
	StartNs int64 `json:"start_ns"`
	EndNs   int64 `json:"end_ns"`
	// Latency is each successful connect: dial → 200 and the preamble read.
	Latency *Hist `json:"latency"`
}

// StreamReport is what one stream received, for the final comparison.
type StreamReport struct {
	Index     int         `json:"i"`
	Employee  int64       `json:"e"`
	Role      string      `json:"r,omitempty"`
	Connected bool        `json:"c"`
	Got       [][2]uint32 `json:"got,omitempty"` // the publish numbers received, as ranges
	Dups      int         `json:"dups,omitempty"`
	Cross     int         `json:"cross,omitempty"`
	Disorder  int         `json:"disorder,omitempty"`
	Drops     int         `json:"drops,omitempty"`
	Err       string      `json:"err,omitempty"`
}

// GroupResult is what one group of streams measured.
type GroupResult struct {
	Streams []StreamReport `json:"streams"`
	// Latency is publish → receive of every counted event.
	Latency *Hist `json:"latency"`
	// LastDelivery lists, per publish number, the slowest delivery in ns
	// (role and broadcast modes): the time to the last stream.
	LastDelivery [][2]int64       `json:"last_delivery,omitempty"`
	Events       int64            `json:"events"`
	Other        map[string]int64 `json:"other,omitempty"`
	FirstEventNs int64            `json:"first_event_ns"`
	LastEventNs  int64            `json:"last_event_ns"`
	CPUSeconds   float64          `json:"cpu_seconds"`
}

// mergeConnect adds up connect reports; the ramp spans all of them.
func mergeConnect(reps []ConnectReport) ConnectReport {
	out := ConnectReport{Errors: map[string]int{}, Latency: NewHist()}
	for _, r := range reps {
		out.Attempted += r.Attempted
		out.Opened += r.Opened
		out.Failed += r.Failed
		out.FailedStreams = append(out.FailedStreams, r.FailedStreams...)
		for k, v := range r.Errors {
			out.Errors[k] += v
		}
		if r.StartNs > 0 && (out.StartNs == 0 || r.StartNs < out.StartNs) {
			out.StartNs = r.StartNs
		}
		out.EndNs = max(out.EndNs, r.EndNs)
		out.Latency.Merge(r.Latency)
	}
	return out
}

// mergeResults adds up group results: streams are concatenated (sorted by
// index), histograms merged bucket by bucket, slowest deliveries maxed.
func mergeResults(rs []GroupResult) GroupResult {
	out := GroupResult{Latency: NewHist(), Other: map[string]int64{}}
	last := map[int64]int64{}
	for _, r := range rs {
		out.Streams = append(out.Streams, r.Streams...)
		out.Latency.Merge(r.Latency)
		out.Events += r.Events
		out.CPUSeconds += r.CPUSeconds
		for k, v := range r.Other {
			out.Other[k] += v
		}
		for _, nv := range r.LastDelivery {
			last[nv[0]] = max(last[nv[0]], nv[1])
		}
		if r.FirstEventNs > 0 && (out.FirstEventNs == 0 || r.FirstEventNs < out.FirstEventNs) {
			out.FirstEventNs = r.FirstEventNs
		}
		out.LastEventNs = max(out.LastEventNs, r.LastEventNs)
	}
	slices.SortFunc(out.Streams, func(a, b StreamReport) int { return a.Index - b.Index })
	for _, n := range slices.Sorted(maps.Keys(last)) {
		out.LastDelivery = append(out.LastDelivery, [2]int64{n, last[n]})
	}
	return out
}

// DeliveryReport is the verdict on what the streams received.
type DeliveryReport struct {
	Streams        int   `json:"streams"` // connected streams checked
	Expected       int64 `json:"expected"`
	Received       int64 `json:"received"` // distinct, correctly addressed
	Lost           int64 `json:"lost"`
	Duplicated     int64 `json:"duplicated"`
	CrossDelivered int64 `json:"cross_delivered"`
	// Unexpected events were received although their publish failed or was
	// never answered as accepted.
	Unexpected int64 `json:"unexpected"`
	// Disorder counts persisted events whose id did not increase.
	Disorder int64 `json:"disorder"`
	// Drops counts streams the server ended during the run (the bench
	// reconnected them, resuming after the last id).
	Drops     int64            `json:"drops"`
	Other     map[string]int64 `json:"other_events,omitempty"`
	Latency   Summary          `json:"latency"`
	PerSecond float64          `json:"events_per_second"`
	// LastDelivery summarizes, over publishes, the time to the last stream.
	LastDelivery *Summary `json:"time_to_last_delivery,omitempty"`
	// LossyStreams lists up to ten streams that lost events.
	LossyStreams []int `json:"lossy_streams,omitempty"`
}

// analyze compares what every connected stream received with what the
// publish log says it should have.
func analyze(res GroupResult, log *publishLog, pub *PublishReport) DeliveryReport {
	rep := DeliveryReport{Other: res.Other, Latency: res.Latency.Summarize()}
	ex := log.index()
	for _, s := range res.Streams {
		if !s.Connected {
			continue
		}
		rep.Streams++
		got := seqSet{ranges: s.Got}
		must, may := ex.forStream(s.Employee, s.Role)
		lost, unexpected := compare(must, may, &got)
		rep.Expected += int64(len(must))
		rep.Received += int64(got.Len())
		rep.Lost += int64(lost)
		rep.Unexpected += int64(unexpected)
		rep.Duplicated += int64(s.Dups)
		rep.CrossDelivered += int64(s.Cross)
		rep.Disorder += int64(s.Disorder)
		rep.Drops += int64(s.Drops)
		if lost > 0 && len(rep.LossyStreams) < 10 {
			rep.LossyStreams = append(rep.LossyStreams, s.Index)
		}
	}
	if pub != nil && res.LastEventNs > pub.StartNs {
		rep.PerSecond = float64(res.Events) / (float64(res.LastEventNs-pub.StartNs) / 1e9)
	}
	if len(res.LastDelivery) > 0 {
		h := NewHist()
		for _, nv := range res.LastDelivery {
			if int(nv[0]) < len(log.outcomes) && log.outcomes[nv[0]] == outcomeOK {
				h.Record(time.Duration(nv[1]))
			}
		}
		s := h.Summarize()
		rep.LastDelivery = &s
	}
	return rep
}
