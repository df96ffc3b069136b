// Package store holds Herald's domain types and the persistence interface
// that the SQLite and PostgreSQL implementations satisfy.
//
// The central rule lives here: every recipient of a persisted notification
// gets its own inbox row with a per-employee sequence number (seq). Seqs of
// one employee are assigned under that employee's write lock, so they are
// gapless and strictly increasing in commit order: if seq N+1 is committed,
// so is seq N. Streams rely on that to resume ("everything after N") and to
// notice a notification that reached them out of order.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors. Implementations wrap them with context; callers test with
// errors.Is.
var (
	// ErrNotFound means the addressed row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a unique field (email, username) belongs to another
	// row; PutEmployee returns it as a *ConflictError.
	ErrConflict = errors.New("conflict")
	// ErrIdempotencyMismatch means an Idempotency-Key was reused for a
	// different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrUnavailable means the database could not be reached or failed; the
	// operation changed nothing and may be retried, unless the error also
	// carries ErrOutcomeUnknown.
	ErrUnavailable = errors.New("store unavailable")
	// ErrOutcomeUnknown means the database stopped answering while a write
	// was in flight (a statement or its commit sent, no answer back): it may
	// or may not have been committed. Errors that carry it also carry
	// ErrUnavailable. A publish retried with the same Idempotency-Key is
	// safe either way: if the first one committed, its answer comes back.
	ErrOutcomeUnknown = errors.New("the write may or may not have been committed")
)

// ConflictError is PutEmployee's refusal: one of the employee's logins
// already names another employee (as its username or its email).
type ConflictError struct {
	// Field is the field of the employee being saved: "username" or "email".
	Field string
	// Login is the login in canonical form.
	Login string
	// Employee is the ID of the employee the login already names.
	Employee int64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s %q already names employee %d", e.Field, e.Login, e.Employee)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// IdempotencyTTL is how long a publish answer is kept for retries that carry
// the same Idempotency-Key.
const IdempotencyTTL = 24 * time.Hour

// Employee is a person in the directory. IDs come from the organisation's HR
// system. Email and Username are logins: stored in canonical form
// (NormalizeLogin: ASCII letters lower-cased) and matched in that form; at
// least one of them is set, and a login names at most one employee across
// both columns (one employee's username cannot be another's email).
type Employee struct {
	ID        int64
	Email     string
	Username  string
	Name      string
	Roles     []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Notification is the content of a notification, shared by its recipients.
type Notification struct {
	ID        int64
	Type      string
	Title     string
	Body      string
	Data      json.RawMessage // a JSON object, or nil
	CreatedAt time.Time
	// URL is where a click leads ("" when not set).
	URL string
	// ExpiresAt is when the notification is gone for its recipients (nil:
	// never).
	ExpiresAt *time.Time
}

// InboxItem is one recipient's copy of a notification.
type InboxItem struct {
	Seq          int64 // per employee; the id clients see
	Notification Notification
	ReadAt       *time.Time
	SeenAt       *time.Time
	ArchivedAt   *time.Time
}

// Targets says who receives a publish. Roles and All are expanded from the
// directory at publish time.
type Targets struct {
	Employees []int64
	Emails    []string
	Roles     []string
	All       bool
}

// Message is what a publisher sends.
type Message struct {
	To    Targets
	Type  string
	Title string
	Body  string
	Data  json.RawMessage
	// Event names the stream event of an ephemeral message ("notification"
	// when empty). Persisted notifications are always "notification".
	Event string
	// Publisher identifies who published, for the record (a username or an
	// application ID); never shown to recipients.
	Publisher string
	// Owner is the publisher identity that may withdraw the notification
	// (Center.Withdraw); never shown to recipients.
	Owner string
	// URL is where a click leads ("" when not set).
	URL string
	// ExpiresAt, when set, is when the notification is gone for its
	// recipients.
	ExpiresAt *time.Time
	// DeliverAt, when set and in the future, schedules the copies: targets
	// are resolved now, the copies become visible (and get their seqs) at
	// that time.
	DeliverAt *time.Time
	// Required delivers the notification even to employees who muted its
	// type.
	Required bool
}

// Idempotency identifies a publish for retries: Owner scopes Key to one
// publisher, Hash fingerprints the request so a reused key with another body
// is refused.
type Idempotency struct {
	Owner string
	Key   string
	Hash  string
}

// Unknown lists targets that matched nobody, as the publisher gave them.
type Unknown struct {
	Employees []int64
	Emails    []string
}

// PublishResult is the answer to a publish.
type PublishResult struct {
	NotificationID int64 // 0 for ephemeral messages
	Recipients     int
	Unknown        Unknown
	// Replayed is true when the answer comes from an earlier publish with the
	// same Idempotency-Key and nothing new was created.
	Replayed bool
	// DeliverAt is set when the notification was scheduled: when its
	// copies become visible. A replay keeps it after that time has passed.
	DeliverAt *time.Time
}

// InboxQuery selects a page of an employee's inbox, newest first.
type InboxQuery struct {
	Employee   int64
	Before     int64 // only items with seq < Before; 0 for the newest
	Limit      int
	UnreadOnly bool
	UnseenOnly bool
	// Archived selects only archived items; by default they are left out.
	Archived bool
	// Type selects one type, or a prefix when it ends in "*" ("build.*").
	Type string
}

// Bound returns the exclusive upper seq of the page: Before, or no bound.
func (q InboxQuery) Bound() int64 {
	if q.Before <= 0 {
		return 1<<63 - 1
	}
	return q.Before
}

// Page cuts items, read newest first with one more than q.Limit (to learn
// whether older ones exist), to q's page.
func (q InboxQuery) Page(items []InboxItem, c Counts) InboxPage {
	p := InboxPage{Items: items, UnreadCount: c.Unread, UnseenCount: c.Unseen}
	if len(items) > q.Limit {
		p.Items, p.More = items[:q.Limit], true
	}
	return p
}

// InboxPage is one page of an inbox.
type InboxPage struct {
	Items       []InboxItem
	UnreadCount int
	UnseenCount int
	More        bool // older items exist beyond this page
}

// Recipient is one employee's copy of a committed notification.
type Recipient struct {
	Employee int64
	Seq      int64
}

// Delivery is a committed notification with the recipients it went to.
type Delivery struct {
	Notification Notification
	Recipients   []Recipient
}

// Ephemeral is a message that is not stored: it goes only to open streams.
// Employees are already resolved; Roles and All are matched against the
// streams' roles by whoever delivers it.
type Ephemeral struct {
	Event     string
	Type      string
	Title     string
	Body      string
	Data      json.RawMessage
	CreatedAt time.Time
	Employees []int64
	Roles     []string
	All       bool
}

// Sink receives what the store commits, on every instance that listens.
// Calls come from one goroutine at a time, persisted deliveries in commit
// order. Implementations must not block: they hand off and return.
type Sink interface {
	// Deliver hands over a committed notification. A store shared by
	// several instances may leave out recipients that Connected did not
	// report (they have no stream here).
	Deliver(d Delivery)
	// Connected returns those of ids that have an open stream on this
	// instance, so a store shared by several instances reads only what
	// local streams need.
	Connected(ids []int64) []int64
	// DeliverEphemeral hands over a message for open streams only.
	DeliverEphemeral(e Ephemeral)
	// EmployeeChanged reports a directory change; deleted is true when the
	// employee is gone.
	EmployeeChanged(id int64, deleted bool)
	// Resync reports that deliveries may have been missed (a dropped
	// listener connection): streams must catch up from the store.
	Resync()
	// State hands over a committed change of an employee's inbox state
	// (or a withdrawal), for that employee's open streams.
	State(c StateChange)
}

// Directory is the employee directory.
type Directory interface {
	// PutEmployee creates or replaces an employee; created is true for a new
	// one. A *ConflictError (errors.Is ErrConflict) when its email or
	// username already names someone else, in either column.
	PutEmployee(ctx context.Context, e Employee) (saved Employee, created bool, err error)
	// DeleteEmployee removes an employee and their inbox. ErrNotFound if absent.
	DeleteEmployee(ctx context.Context, id int64) error
	// Employee returns one employee. ErrNotFound if absent.
	Employee(ctx context.Context, id int64) (Employee, error)
	// EmployeeByLogin finds the one employee whose username or email is
	// login, compared in canonical form (NormalizeLogin). ErrNotFound if
	// nobody matches.
	EmployeeByLogin(ctx context.Context, login string) (Employee, error)
	// Employees lists the directory ordered by ID, after the given ID.
	Employees(ctx context.Context, after int64, limit int) ([]Employee, error)
}

// Publisher stores and fans out messages.
type Publisher interface {
	// Publish stores one copy of m per recipient, commits, then hands the
	// delivery to the listening sinks. All or nothing. With idem set, a retry
	// returns the first answer (Replayed) and creates nothing.
	Publish(ctx context.Context, m Message, idem *Idempotency) (PublishResult, error)
	// PublishEphemeral resolves m's targets and hands it to the listening
	// sinks without storing it.
	PublishEphemeral(ctx context.Context, m Message, idem *Idempotency) (PublishResult, error)
	// Replay returns the saved answer of idem's key (Replayed) and creates
	// nothing: ErrIdempotencyMismatch when the key was used for another
	// request, ErrNotFound when it holds no answer younger than
	// IdempotencyTTL. It serves retries whose times no longer pass the
	// checks made at their first publish.
	Replay(ctx context.Context, idem Idempotency) (PublishResult, error)
}

// Inbox reads and updates employees' inboxes.
type Inbox interface {
	// Inbox returns a page, newest first, with the counts. Expired items
	// and scheduled copies not yet delivered are never listed.
	Inbox(ctx context.Context, q InboxQuery) (InboxPage, error)
	// Since returns up to limit items with seq > after, oldest first: what
	// streams replay, so expired items and muted copies (stored without a
	// live delivery) are left out.
	Since(ctx context.Context, employee, after int64, limit int) ([]InboxItem, error)
	// Head returns the employee's latest seq (0 when none).
	Head(ctx context.Context, employee int64) (int64, error)
	// MarkRead is SetState with OpRead, returning the unread count.
	MarkRead(ctx context.Context, employee int64, seqs []int64, all bool) (marked, unread int, err error)
}

// Store is everything Herald persists. Both implementations pass the
// contract suite in store/storetest.
type Store interface {
	Directory
	Publisher
	Inbox
	Push
	Center
	// Listen hands committed deliveries to sink until ctx ends. Only one
	// Listen runs per Store.
	Listen(ctx context.Context, sink Sink) error
	// Ping reports whether the store (and, where there is one, its listener)
	// is usable.
	Ping(ctx context.Context) error
	io.Closer
}
