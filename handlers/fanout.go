package handlers

import (
	"encoding/json"
	"log/slog"
	"strconv"

	"github.com/corp/herald/auth"
	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
)

// Fanout is the store.Sink that turns what the store commits into hub
// events. It runs on the store's delivery goroutine and never blocks.
type Fanout struct {
	hub  *sse.Hub
	auth *auth.Authenticator
	log  *slog.Logger
}

var _ store.Sink = (*Fanout)(nil)

// NewFanout returns the sink feeding hub; auth's cache is purged on
// directory changes (auth may be nil in tests).
func NewFanout(hub *sse.Hub, a *auth.Authenticator, log *slog.Logger) *Fanout {
	return &Fanout{hub: hub, auth: a, log: orDiscard(log)}
}

// Deliver queues each recipient's copy on that recipient's streams here.
// The shared part of the event is encoded once, and a recipient's event is
// built only when the recipient has a stream on this instance.
func (f *Fanout) Deliver(d store.Delivery) {
	var tail []byte
	for _, r := range d.Recipients {
		f.hub.DeliverFunc(r.Employee, func() *sse.Event {
			if tail == nil {
				tail = notificationTail(d.Notification)
			}
			return notificationEvent(r.Seq, tail)
		})
	}
}

// Connected returns those of ids with a stream on this instance.
func (f *Fanout) Connected(ids []int64) []int64 { return f.hub.Connected(ids) }

// ephemeralFields are an ephemeral message's data: a notification without id.
type ephemeralFields = notificationFields

// DeliverEphemeral queues an unstored message on the matching streams.
func (f *Fanout) DeliverEphemeral(e store.Ephemeral) {
	data, _ := json.Marshal(ephemeralFields{
		Type: e.Type, Title: e.Title, Body: e.Body, Data: dataOrEmpty(e.Data), CreatedAt: formatTime(e.CreatedAt),
	})
	name := e.Event
	if name == "" {
		name = "notification"
	}
	f.hub.DeliverTo(sse.Targets{Employees: e.Employees, Roles: e.Roles, All: e.All}, sse.NewEvent(0, name, data))
}

// EmployeeChanged forgets cached lookups and ends a removed employee's streams.
func (f *Fanout) EmployeeChanged(id int64, deleted bool) {
	if f.auth != nil {
		f.auth.Forget()
	}
	if deleted {
		f.hub.CloseEmployee(id)
	}
}

// Resync makes every stream catch up from the store.
func (f *Fanout) Resync() {
	f.log.Info("deliveries may have been missed; streams catch up from the store")
	f.hub.Resync()
}

// stateEvent is the data of a `state` event.
type stateEvent struct {
	Op          string   `json:"op"`
	IDs         []string `json:"ids,omitempty"`
	All         bool     `json:"all,omitempty"`
	UnreadCount int      `json:"unread_count"`
	UnseenCount int      `json:"unseen_count"`
}

// stateEventName is the stream event of inbox state changes; ephemeral
// messages may not use it.
const stateEventName = "state"

// newStateEvent encodes c as its stream event: no seq (no id: line, not
// replayed).
func newStateEvent(c store.StateChange) *sse.Event {
	ev := stateEvent{Op: string(c.Op), All: c.All, UnreadCount: c.Counts.Unread, UnseenCount: c.Counts.Unseen}
	if !c.All {
		ev.IDs = make([]string, len(c.Seqs))
		for i, s := range c.Seqs {
			ev.IDs[i] = strconv.FormatInt(s, 10)
		}
	}
	data, _ := json.Marshal(ev)
	return sse.NewEvent(0, stateEventName, data)
}

// State queues a state change on the employee's streams here.
func (f *Fanout) State(c store.StateChange) {
	f.hub.DeliverFunc(c.Employee, func() *sse.Event { return newStateEvent(c) })
}
