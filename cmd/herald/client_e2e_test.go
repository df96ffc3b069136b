package main_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/corp/herald/openapi/client"
)

// apiClient is the generated client of the API document, authenticated
// with a bearer token, as an internal service builds it.
func apiClient(t *testing.T, baseURL, token string) *client.ClientWithResponses {
	t.Helper()
	c, err := client.NewClientWithResponses(baseURL, client.WithRequestEditorFn(func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// TestClientEndToEnd drives the real binary through the client generated
// from openapi/openapi.yaml: a service fills the directory and publishes
// (safely retried with an Idempotency-Key); the employee reads the inbox
// and marks it read. Every answer is decoded into the document's types.
func TestClientEndToEnd(t *testing.T) {
	p := startHerald(t, []string{"serve"}, "JWT_SECRET="+e2eSecret)
	ctx := t.Context()
	svc := apiClient(t, p.URL, mint(t, "hr-sync", "service", "Directory.Write"))

	put, err := svc.PutEmployeeWithResponse(ctx, 21, client.EmployeeInput{
		Email: ptr("Dora@Corp.Example"), Username: ptr("dora"), Name: ptr("Dora"), Roles: &[]client.Role{"staff"},
	})
	if err != nil || put.JSON201 == nil {
		t.Fatalf("put employee: %v %d %s", err, put.StatusCode(), put.Body)
	}
	if e := put.JSON201; e.ID != 21 || e.Email == nil || *e.Email != "dora@corp.example" || e.CreatedAt.IsZero() {
		t.Fatalf("put employee answered %+v", e)
	}

	publish := client.PublishRequest{
		To:    client.Targets{Employees: &[]int64{21, 404}},
		Type:  "request.approved",
		Title: "Your request was approved",
		Body:  ptr("Vacation 2026-12-01 … 2026-12-05"),
		Data:  &client.Data{"request_id": 481},
	}
	params := &client.PublishNotificationParams{IdempotencyKey: ptr("req-481")}
	first, err := svc.PublishNotificationWithResponse(ctx, params, publish)
	if err != nil || first.JSON201 == nil {
		t.Fatalf("publish: %v %d %s", err, first.StatusCode(), first.Body)
	}
	if first.JSON201.Recipients != 1 || len(first.JSON201.Unknown) != 1 {
		t.Fatalf("publish answered %s, want 1 recipient and 1 unknown", first.Body)
	}
	if unknown, err := first.JSON201.Unknown[0].AsUnknownEmployee(); err != nil || unknown != 404 {
		t.Fatalf("unknown[0] = %v (%v), want employee 404", unknown, err)
	}
	retry, err := svc.PublishNotificationWithResponse(ctx, params, publish)
	if err != nil || retry.JSON201 == nil || retry.JSON201.ID != first.JSON201.ID ||
		retry.Headers201 == nil || retry.Headers201.IdempotentReplayed == nil || *retry.Headers201.IdempotentReplayed != "true" {
		t.Fatalf("retried publish: %v %d %s, want the first answer, replayed", err, retry.StatusCode(), retry.Body)
	}

	dora := apiClient(t, p.URL, mint(t, "dora"))
	inbox, err := dora.ListInboxWithResponse(ctx, &client.ListInboxParams{Unread: ptr(true), Limit: ptr(10)})
	if err != nil || inbox.JSON200 == nil {
		t.Fatalf("inbox: %v %d %s", err, inbox.StatusCode(), inbox.Body)
	}
	page := inbox.JSON200
	if page.UnreadCount != 1 || len(page.Notifications) != 1 || page.NextBefore != nil {
		t.Fatalf("inbox = %s, want one unread notification", inbox.Body)
	}
	n := page.Notifications[0]
	if n.ID != "1" || n.Title != publish.Title || n.Type != publish.Type || n.Read || n.ReadAt != nil || n.Data["request_id"] != float64(481) {
		t.Fatalf("inbox item = %+v", n)
	}

	var id client.ReadID
	if err := id.FromNotificationID(n.ID); err != nil {
		t.Fatal(err)
	}
	read, err := dora.MarkReadWithResponse(ctx, client.ReadRequest{Ids: &[]client.ReadID{id}})
	if err != nil || read.JSON200 == nil || read.JSON200.Marked != 1 || read.JSON200.UnreadCount != 0 {
		t.Fatalf("mark read: %v %d %s", err, read.StatusCode(), read.Body)
	}
	after, err := dora.ListInboxWithResponse(ctx, nil)
	if err != nil || after.JSON200 == nil || len(after.JSON200.Notifications) != 1 || !after.JSON200.Notifications[0].Read || after.JSON200.Notifications[0].ReadAt == nil {
		t.Fatalf("inbox after marking: %v %s", err, after.Body)
	}

	// Errors decode into the document's problem types too.
	refused, err := svc.ListInboxWithResponse(ctx, nil)
	if err != nil || refused.ApplicationProblemJSON403 == nil || refused.ApplicationProblemJSON403.Code != client.ForbiddenProblemCodeForbidden {
		t.Fatalf("a service reads an inbox: %v %d %s, want 403 forbidden", err, refused.StatusCode(), refused.Body)
	}
	bad, err := svc.PublishNotificationWithResponse(ctx, nil, client.PublishRequest{To: client.Targets{All: ptr(true)}, Type: "Bad Type", Title: "x"})
	if err != nil || bad.ApplicationProblemJSON400 == nil || bad.ApplicationProblemJSON400.Errors == nil || (*bad.ApplicationProblemJSON400.Errors)[0].Field != "type" {
		t.Fatalf("an invalid publish: %v %d %s, want 400 naming type", err, bad.StatusCode(), bad.Body)
	}
}
