package handlers

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/corp/herald/sse"
	"github.com/corp/herald/store"
)

// timeFormat is RFC 3339 in UTC with milliseconds, fixed width.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// emptyObject stands in for absent data: clients can always read data.x.
var emptyObject = json.RawMessage(`{}`)

func dataOrEmpty(d json.RawMessage) json.RawMessage {
	if len(d) == 0 {
		return emptyObject
	}
	return d
}

// notificationFields are a notification's fields after "id", in wire order.
type notificationFields struct {
	Type      string          `json:"type"`
	Title     string          `json:"title"`
	Body      string          `json:"body"`
	Data      json.RawMessage `json:"data"`
	CreatedAt string          `json:"created_at"`
	// Set only when the notification has them, so notifications without
	// keep their bytes.
	URL       string  `json:"url,omitempty"`
	ExpiresAt *string `json:"expires_at,omitempty"`
}

// optTime formats t when set.
func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

// notificationTail encodes the part of a notification that all recipients
// share, `"type":…,"created_at":…}`, so each recipient's event only adds its
// own id in front.
func notificationTail(n store.Notification) []byte {
	b, _ := json.Marshal(notificationFields{
		Type: n.Type, Title: n.Title, Body: n.Body, Data: dataOrEmpty(n.Data), CreatedAt: formatTime(n.CreatedAt),
		URL: n.URL, ExpiresAt: optTime(n.ExpiresAt),
	})
	return b[1:]
}

// notificationEvent returns the stream event of one recipient's copy:
// id: <seq>, event: notification, data {"id":"<seq>",…}.
func notificationEvent(seq int64, tail []byte) *sse.Event {
	data := make([]byte, 0, len(tail)+32)
	data = append(data, `{"id":"`...)
	data = strconv.AppendInt(data, seq, 10)
	data = append(data, `",`...)
	data = append(data, tail...)
	return sse.NewEvent(seq, "notification", data)
}

func itemEvent(it store.InboxItem) *sse.Event {
	return notificationEvent(it.Seq, notificationTail(it.Notification))
}

// inboxItem is a notification as GET /notifications shows it.
type inboxItem struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Title      string          `json:"title"`
	Body       string          `json:"body"`
	Data       json.RawMessage `json:"data"`
	CreatedAt  string          `json:"created_at"`
	Read       bool            `json:"read"`
	ReadAt     *string         `json:"read_at"`
	Seen       bool            `json:"seen"`
	SeenAt     *string         `json:"seen_at"`
	Archived   bool            `json:"archived"`
	ArchivedAt *string         `json:"archived_at"`
	URL        string          `json:"url,omitempty"`
	ExpiresAt  *string         `json:"expires_at,omitempty"`
}

func toInboxItem(it store.InboxItem) inboxItem {
	out := inboxItem{
		ID: strconv.FormatInt(it.Seq, 10), Type: it.Notification.Type, Title: it.Notification.Title,
		Body: it.Notification.Body, Data: dataOrEmpty(it.Notification.Data),
		CreatedAt: formatTime(it.Notification.CreatedAt),
		Read:      it.ReadAt != nil, ReadAt: optTime(it.ReadAt),
		Seen: it.SeenAt != nil, SeenAt: optTime(it.SeenAt),
		Archived: it.ArchivedAt != nil, ArchivedAt: optTime(it.ArchivedAt),
		URL: it.Notification.URL, ExpiresAt: optTime(it.Notification.ExpiresAt),
	}
	return out
}
