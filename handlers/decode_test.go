package handlers

import (
	"encoding/json"
	"reflect"
	"testing"
)

// exactBodies are publish bodies whose member names are exact, miscased,
// unknown, escaped, repeated or nested.
var exactBodies = []struct {
	body  string
	sight bool // exactAtSight can tell at sight that every name is exact
}{
	{`{"to":{"employees":[2]},"type":"t","title":"x"}`, true},
	{` { "to" : { "employees" : [ 2 , 3 ] , "all" : false } , "type" : "t" , "title" : "x" , "data" : {"Any":{"Case":[1,"}]"]}} } `, true},
	{`{"to":{"employees":[2]},"type":"t","title":"a \"quoted\" } title","body":"\\","data":null}`, true},
	{`{"to":null,"type":"t","title":"x"}`, true},
	{`{"to":{"Employees":[2]},"type":"t","title":"x"}`, false},
	{`{"to":{"employees":[2]},"type":"t","Title":"x"}`, false},
	{`{"to":{"employees":[2]},"type":"t","titl\u0065":"x"}`, false},
	{`{"to":{"employees":[2]},"type":"t","title":"x","to":{"EMAILS":[]}}`, false},
	{`{"to":{"employees":[2]},"to":{"emails":["a@b.c"]},"type":"t","title":"x"}`, true},
	{`{}`, true},
}

// Whatever exactAtSight accepts, exactMembers accepts too; where it cannot
// tell, exactMembers decides.
func TestExactAtSight(t *testing.T) {
	typ := reflect.TypeOf(&publishRequest{})
	for _, c := range exactBodies {
		var req publishRequest
		if err := json.Unmarshal([]byte(c.body), &req); err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		got := exactAtSight([]byte(c.body), typ)
		if got != c.sight {
			t.Errorf("exactAtSight(%s) = %v, want %v", c.body, got, c.sight)
		}
		if got && exactMembers([]byte(c.body), typ, "") != nil {
			t.Errorf("exactAtSight accepted %s, which exactMembers refuses", c.body)
		}
	}
}

func FuzzExactAtSight(f *testing.F) {
	for _, c := range exactBodies {
		f.Add([]byte(c.body))
	}
	typ := reflect.TypeOf(&publishRequest{})
	f.Fuzz(func(t *testing.T, body []byte) {
		var req publishRequest
		if json.Unmarshal(body, &req) != nil {
			return // readJSON checks names only in bodies that decode
		}
		if exactAtSight(body, typ) {
			if err := exactMembers(body, typ, ""); err != nil {
				t.Fatalf("exactAtSight accepted %q, which exactMembers refuses: %v", body, err.detail)
			}
		}
	})
}
