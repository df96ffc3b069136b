package handlers

import (
	"context"

	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
)

// Source is the sse.Source streams replay from: the store's inbox, each
// item encoded as its stream event.
type Source struct{ Store store.Inbox }

var _ sse.Source = Source{}

// Head returns the employee's newest seq.
func (s Source) Head(ctx context.Context, employee int64) (int64, error) {
	return s.Store.Head(ctx, employee)
}

// Since returns up to limit events after seq after, oldest first.
func (s Source) Since(ctx context.Context, employee, after int64, limit int) ([]*sse.Event, error) {
	items, err := s.Store.Since(ctx, employee, after, limit)
	if err != nil {
		return nil, err
	}
	evs := make([]*sse.Event, len(items))
	for i, it := range items {
		evs[i] = itemEvent(it)
	}
	return evs, nil
}
