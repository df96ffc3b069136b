package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 64 << 10

// readJSON reads a JSON request body (415 unless Content-Type is JSON, 413
// over MaxBodyBytes) and decodes it strictly into dst: unknown fields and
// trailing data are errors. It returns the raw body.
func readJSON(w http.ResponseWriter, r *http.Request, dst any) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil, &httpError{status: http.StatusUnsupportedMediaType, code: CodeUnsupportedMedia,
			detail: "request bodies must be JSON: send Content-Type: application/json"}
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &httpError{status: http.StatusRequestEntityTooLarge, code: CodeInvalidRequest,
				detail: fmt.Sprintf("request body larger than %d KiB", MaxBodyBytes>>10)}
		}
		return nil, badRequest("could not read the request body")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, badRequest("empty request body: a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("unexpected data after the JSON object")
	}
	return raw, nil
}

// jsonError turns a decoding error into a 400 naming the field.
func jsonError(err error) *httpError {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return badRequest(fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, se))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("the body must be a JSON object")
		}
		return badRequest("a field has the wrong type", FieldError{Field: field, Message: "must be " + jsonKind(te.Type.Kind().String())})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: unexpected end of input")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return badRequest("unknown field "+name, FieldError{Field: name, Message: "unknown field"})
	}
	return badRequest("malformed JSON: " + err.Error())
}

func jsonKind(k string) string {
	switch k {
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "an array"
	case "struct", "map":
		return "an object"
	}
	return "of another type"
}
