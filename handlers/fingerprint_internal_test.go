package handlers

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// TestFingerprintCoversEveryField: changing any one field of a publish
// request, at any depth, changes its Idempotency-Key fingerprint, so a
// reused key with another body is refused whatever field differs. It walks
// the request type by reflection: a field added later is covered too, or
// the test says which type it cannot change.
func TestFingerprintCoversEveryField(t *testing.T) {
	base := func() publishRequest {
		ty, ti, persist := "t", "title", true
		return publishRequest{
			To:      &publishTargets{Employees: []int64{2}, Emails: []string{"a@corp.example"}, Roles: []string{"staff"}},
			Type:    &ty,
			Title:   &ti,
			Body:    "body",
			Data:    json.RawMessage(`{"a":1}`),
			Persist: &persist,
			Event:   "notification",
		}
	}
	want := fingerprint(base())
	req := base()
	var walk func(path string, v reflect.Value)
	walk = func(path string, v reflect.Value) {
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			if !f.IsExported() {
				continue
			}
			name := path + f.Name
			if f.Type.Kind() == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct && f.Type.Elem() != reflect.TypeFor[time.Time]() {
				walk(name+".", fv.Elem())
				continue
			}
			old := reflect.New(f.Type).Elem()
			old.Set(fv)
			if !change(fv) {
				t.Errorf("%s (%s): no rule to change it; add one to change()", name, f.Type)
				continue
			}
			t.Run(name, func(t *testing.T) {
				if got := fingerprint(req); got == want {
					t.Errorf("changing %s left the fingerprint as it was", name)
				}
			})
			fv.Set(old)
		}
	}
	walk("", reflect.ValueOf(&req).Elem())
	if fingerprint(req) != want {
		t.Fatal("the walk did not restore the request")
	}
	// Defaults count as given: these do not change it.
	same := base()
	same.Persist, same.Event, same.Data = nil, "", json.RawMessage(`{ "a" : 1 }`)
	if fingerprint(same) != want {
		t.Error("spelling out defaults or spacing changed the fingerprint")
	}
}

// change sets v to a different value of its type, reporting false for a
// type it has no rule for.
func change(v reflect.Value) bool {
	switch {
	case v.Type() == reflect.TypeFor[json.RawMessage]():
		v.Set(reflect.ValueOf(json.RawMessage(`{"a":2}`)))
	case v.Type() == reflect.TypeFor[*time.Time]():
		ts := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
		if !v.IsNil() {
			ts = v.Elem().Interface().(time.Time).Add(time.Second)
		}
		v.Set(reflect.ValueOf(&ts))
	case v.Kind() == reflect.Pointer:
		n := reflect.New(v.Type().Elem())
		if !v.IsNil() {
			n.Elem().Set(v.Elem())
		}
		if !change(n.Elem()) {
			return false
		}
		v.Set(n)
	case v.Kind() == reflect.String:
		v.SetString(v.String() + "x")
	case v.Kind() == reflect.Bool:
		v.SetBool(!v.Bool())
	case v.Kind() == reflect.Int || v.Kind() == reflect.Int64:
		v.SetInt(v.Int() + 1)
	case v.Kind() == reflect.Slice:
		e := reflect.New(v.Type().Elem()).Elem()
		if !change(e) {
			return false
		}
		v.Set(reflect.Append(v, e))
	default:
		return false
	}
	return true
}
