package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"unicode/utf8"
)

// MaxBodyBytes bounds request bodies.
const MaxBodyBytes = 64 << 10

// readJSON reads a JSON request body (415 unless Content-Type is JSON, 413
// over MaxBodyBytes, 422 unless it is valid UTF-8) and decodes it strictly
// into dst: unknown fields and trailing data are errors. It returns the raw
// body.
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
	if !utf8.Valid(raw) {
		return nil, invalidUTF8(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, badRequest("unexpected data after the JSON object")
	}
	if t := reflect.TypeOf(dst); !exactAtSight(raw, t) {
		if err := exactMembers(raw, t, ""); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// exactAtSight reports whether every member name of the valid JSON raw, at
// every depth exactMembers checks, is exactly a field of t, reading the
// text in place instead of decoding it into maps. false means it cannot
// tell (a name unknown or written with an escape): exactMembers then
// decides and says what is wrong. Every value of a repeated name is
// checked, so true implies exactMembers finds nothing.
func exactAtSight(raw []byte, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	raw = bytes.TrimSpace(raw)
	if string(raw) == "null" {
		return true
	}
	switch t.Kind() {
	case reflect.Struct:
		fields := jsonFields(t)
		return eachJSON(raw, '{', '}', func(key, value []byte) bool {
			ft, ok := fields[string(key)]
			return ok && exactAtSight(value, ft)
		})
	case reflect.Slice:
		if e := t.Elem(); e.Kind() == reflect.Struct || e.Kind() == reflect.Pointer {
			return eachJSON(raw, '[', ']', func(_, value []byte) bool { return exactAtSight(value, e) })
		}
	}
	return true
}

// eachJSON calls fn with each member (opening '{': name and value) or element
// (opening '[': value only) of the valid JSON object or array raw, and reports
// whether raw is one and fn returned true for all. Names holding an escape
// make it return false.
func eachJSON(raw []byte, opening, closing byte, fn func(key, value []byte) bool) bool {
	if len(raw) < 2 || raw[0] != opening {
		return false
	}
	i := skipJSONSpace(raw, 1)
	if i < len(raw) && raw[i] == closing {
		return true
	}
	for i < len(raw) {
		var key []byte
		if opening == '{' {
			if raw[i] != '"' {
				return false
			}
			end := i + 1
			for end < len(raw) && raw[end] != '"' {
				if raw[end] == '\\' {
					return false
				}
				end++
			}
			if end >= len(raw) {
				return false
			}
			key = raw[i+1 : end]
			i = skipJSONSpace(raw, end+1)
			if i >= len(raw) || raw[i] != ':' {
				return false
			}
			i = skipJSONSpace(raw, i+1)
		}
		end := skipJSONValue(raw, i)
		if end <= i || !fn(key, raw[i:end]) {
			return false
		}
		i = skipJSONSpace(raw, end)
		if i >= len(raw) {
			return false
		}
		switch raw[i] {
		case ',':
			i = skipJSONSpace(raw, i+1)
		case closing:
			return true
		default:
			return false
		}
	}
	return false
}

func skipJSONSpace(raw []byte, i int) int {
	for i < len(raw) && (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n' || raw[i] == '\r') {
		i++
	}
	return i
}

// skipJSONValue returns where the valid JSON value starting at i ends.
func skipJSONValue(raw []byte, i int) int {
	depth := 0
	for ; i < len(raw); i++ {
		switch c := raw[i]; c {
		case '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return i + 1
			}
			if depth < 0 {
				return i
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
	}
	return i
}

// exactMembers refuses object members whose names match a field of t only
// when case is ignored: encoding/json takes "Title" or "emAil" for the
// field, the API document (and any other JSON reader) does not.
func exactMembers(raw json.RawMessage, t reflect.Type, path string) *httpError {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		var members map[string]json.RawMessage
		if json.Unmarshal(raw, &members) != nil {
			return nil // null: nothing to check
		}
		fields := jsonFields(t)
		for _, k := range slices.Sorted(maps.Keys(members)) {
			name := strings.TrimPrefix(path+"."+k, ".")
			ft, ok := fields[k]
			if !ok {
				return badRequest("unknown field "+name, FieldError{Field: name, Message: "unknown field"})
			}
			if err := exactMembers(members[k], ft, name); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if e := t.Elem(); e.Kind() == reflect.Struct || e.Kind() == reflect.Pointer {
			var items []json.RawMessage
			_ = json.Unmarshal(raw, &items)
			for i, it := range items {
				if err := exactMembers(it, e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// jsonFieldsOf caches jsonFields by type.
var jsonFieldsOf sync.Map // reflect.Type → map[string]reflect.Type

// jsonFields returns the member names encoding/json uses for t's fields,
// with their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := jsonFieldsOf.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type)
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = f.Type
	}
	jsonFieldsOf.Store(t, m)
	return m
}

// invalidUTF8 refuses a body that is not valid UTF-8, naming the fields
// that hold the bad bytes. encoding/json would quietly replace them in
// strings, changing the text, and keep them in raw values (data), which
// then poison every JSON and WebSocket text frame that carries them:
// browsers close a WebSocket on a frame that is not UTF-8.
func invalidUTF8(raw []byte) *httpError {
	fields := badUTF8Fields(raw, "")
	if len(fields) == 0 {
		fields = []FieldError{{Field: "body", Message: "must be valid UTF-8"}} // in a key, or outside the values
	}
	return &httpError{status: http.StatusUnprocessableEntity, code: CodeInvalidRequest,
		detail: "the body is not valid UTF-8, as JSON text must be", fields: fields}
}

// badUTF8Fields returns the paths (to.emails[0], data) of the values of raw
// that are not valid UTF-8, down to the objects' members and the arrays'
// elements, sorted by path.
func badUTF8Fields(raw json.RawMessage, path string) []FieldError {
	if utf8.Valid(raw) {
		return nil
	}
	var (
		obj map[string]json.RawMessage
		arr []json.RawMessage
		out []FieldError
	)
	switch {
	case path != "data" && json.Unmarshal(raw, &obj) == nil:
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			out = append(out, badUTF8Fields(obj[k], strings.TrimPrefix(path+"."+k, "."))...)
		}
	case path != "data" && json.Unmarshal(raw, &arr) == nil:
		for i, v := range arr {
			out = append(out, badUTF8Fields(v, fmt.Sprintf("%s[%d]", path, i))...)
		}
	}
	if len(out) == 0 && path != "" {
		out = []FieldError{{Field: path, Message: "must be valid UTF-8"}}
	}
	return out
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
