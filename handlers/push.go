package handlers

import (
	"encoding/json"
	"net/http"

	"github.com/corp/herald/handlers/webpush"
	"github.com/corp/herald/store"
)

// PushConfig turns Web Push on (VAPID_PRIVATE_KEY set).
type PushConfig struct {
	// Key is the VAPID key pair; browsers subscribe with its public half.
	Key *webpush.Key
	// Hosts are the push services subscriptions may name (PUSH_HOSTS).
	Hosts webpush.Hosts
}

// pushOn answers 404 on the push routes while Web Push is off, before
// anything else (authentication included): the routes do not exist then.
func (h *Handler) pushOn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.push == nil {
			h.writeError(w, r, notFound("Web Push is off on this server (VAPID_PRIVATE_KEY is not set)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type pushKeyResponse struct {
	PublicKey string `json:"public_key"`
}

// pushKey serves GET /push/key: the applicationServerKey for
// pushManager.subscribe.
func (h *Handler) pushKey(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, pushKeyResponse{PublicKey: h.push.Key.Public()})
}

// pushSubscriptionRequest is a browser's PushSubscription as toJSON()
// gives it.
type pushSubscriptionRequest struct {
	Endpoint string `json:"endpoint"`
	// ExpirationTime is sent by browsers (usually null) and not used:
	// a push service's 404 or 410 is what ends a subscription.
	ExpirationTime json.RawMessage `json:"expirationTime"`
	Keys           *struct {
		P256DH string `json:"p256dh"`
		Auth   string `json:"auth"`
	} `json:"keys"`
}

type pushSubscriptionResponse struct {
	Endpoint string `json:"endpoint"`
}

// unprocessable is a 422 invalid_request naming the fields.
func unprocessable(detail string, fields ...FieldError) *httpError {
	return &httpError{status: http.StatusUnprocessableEntity, code: CodeInvalidRequest, detail: detail, fields: fields}
}

// subscribePush serves POST /push/subscriptions.
func (h *Handler) subscribePush(w http.ResponseWriter, r *http.Request) error {
	id, err := employeeOnly(r)
	if err != nil {
		return err
	}
	var req pushSubscriptionRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	var errs []FieldError
	if req.Endpoint == "" {
		errs = append(errs, FieldError{Field: "endpoint", Message: "required"})
	} else if err := h.push.Hosts.CheckEndpoint(req.Endpoint); err != nil {
		errs = append(errs, FieldError{Field: "endpoint", Message: err.Error()})
	}
	var pub, secret []byte
	if req.Keys == nil {
		errs = append(errs, FieldError{Field: "keys", Message: "required: {\"p256dh\": …, \"auth\": …}"})
	} else {
		var field string
		if pub, secret, field, err = webpush.CheckKeys(req.Keys.P256DH, req.Keys.Auth); err != nil {
			errs = append(errs, FieldError{Field: field, Message: err.Error()})
		}
	}
	if len(errs) > 0 {
		return unprocessable("not a usable push subscription", errs...)
	}
	_, err = h.store.SavePushSubscription(r.Context(), store.PushSubscription{
		Employee: id.Employee.ID, Endpoint: req.Endpoint, P256DH: pub, Auth: secret,
	}, webpush.MaxSubscriptions)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, pushSubscriptionResponse{Endpoint: req.Endpoint})
	return nil
}

type pushUnsubscribeRequest struct {
	Endpoint string `json:"endpoint"`
}

// unsubscribePush serves DELETE /push/subscriptions: 204 whether or not
// the endpoint was the caller's (another employee's is left alone, and
// nothing says whether it exists).
func (h *Handler) unsubscribePush(w http.ResponseWriter, r *http.Request) error {
	id, err := employeeOnly(r)
	if err != nil {
		return err
	}
	var req pushUnsubscribeRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	if req.Endpoint == "" {
		return unprocessable("endpoint is required", FieldError{Field: "endpoint", Message: "required"})
	}
	if err := h.store.DeletePushSubscription(r.Context(), id.Employee.ID, req.Endpoint); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
