package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/corp/herald/store"
)

// TestBatchBytesBound: a batch stops taking requests once it holds
// maxBatchBytes, counting each request's title, body and data and 256
// bytes besides. The batcher here has no workers: the test queues the
// requests through publish, takes the first and collects its batch as a
// worker would, then answers every request.
func TestBatchBytesBound(t *testing.T) {
	n := maxBatchBytes - 256 - len("t") // content at the bound, with a title "t"
	cases := []struct {
		name  string
		first store.Message
		want  int
	}{
		{"body at the bound", store.Message{Title: "t", Body: strings.Repeat("x", n)}, 1},
		{"data at the bound", store.Message{Title: "t", Data: json.RawMessage(`"` + strings.Repeat("x", n-2) + `"`)}, 1},
		{"a byte below the bound", store.Message{Title: "t", Body: strings.Repeat("x", n-1)}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := &batcher{db: &DB{opts: options{callTimeout: time.Minute}}, reqs: make(chan *publishRequest, maxPublishBatch), quit: make(chan struct{})}
			msgs := []store.Message{c.first, {Title: "second"}, {Title: "third"}}
			answers := make(chan error, len(msgs))
			for i, m := range msgs {
				go func() {
					_, err := b.publish(context.Background(), m, nil)
					answers <- err
				}()
				deadline := time.Now().Add(time.Minute)
				for len(b.reqs) < i+1 { // queued in this order
					if time.Now().After(deadline) {
						t.Fatalf("request %d not queued", i)
					}
					time.Sleep(time.Millisecond)
				}
			}
			first := <-b.reqs
			batch := b.collect(first)
			if len(batch) != c.want {
				t.Errorf("a batch starting with a request of %d bytes took %d requests; want %d", first.size, len(batch), c.want)
			}
			for len(batch) < len(msgs) {
				batch = append(batch, <-b.reqs)
			}
			for _, r := range batch {
				close(r.done)
			}
			for range msgs {
				if err := <-answers; err != nil {
					t.Fatalf("publish answered %v", err)
				}
			}
		})
	}
}

// TestBatchCountBound: a batch takes at most maxPublishBatch requests, the
// first and those waiting behind it.
func TestBatchCountBound(t *testing.T) {
	b := &batcher{db: &DB{opts: options{callTimeout: time.Minute}}, reqs: make(chan *publishRequest, maxPublishBatch), quit: make(chan struct{})}
	answers := make(chan error, maxPublishBatch+1)
	queue := func(i, queued int) {
		go func() {
			_, err := b.publish(context.Background(), store.Message{Title: fmt.Sprint(i)}, nil)
			answers <- err
		}()
		deadline := time.Now().Add(time.Minute)
		for len(b.reqs) < queued {
			if time.Now().After(deadline) {
				t.Fatalf("request %d not queued", i)
			}
			time.Sleep(time.Millisecond)
		}
	}
	for i := range maxPublishBatch {
		queue(i, i+1)
	}
	first := <-b.reqs
	queue(maxPublishBatch, maxPublishBatch) // the queue is full again
	batch := b.collect(first)
	if len(batch) != maxPublishBatch || len(b.reqs) != 1 {
		t.Errorf("collected %d requests, %d left waiting; want %d and 1", len(batch), len(b.reqs), maxPublishBatch)
	}
	for len(batch) < maxPublishBatch+1 {
		batch = append(batch, <-b.reqs)
	}
	for _, r := range batch {
		close(r.done)
	}
	for range maxPublishBatch + 1 {
		if err := <-answers; err != nil {
			t.Fatalf("publish answered %v", err)
		}
	}
}
