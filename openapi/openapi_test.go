package openapi_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"

	"github.com/corp/herald/openapi"
)

// TestDocumentValidates loads the embedded document with kin-openapi and
// validates it as OpenAPI 3.1: structure, references, and every example
// against its schema.
func TestDocumentValidates(t *testing.T) {
	asJSON, err := openapi.ToJSON(openapi.YAML)
	if err != nil {
		t.Fatalf("convert to JSON: %v", err)
	}
	for name, doc := range map[string][]byte{"openapi.yaml": openapi.YAML, "openapi.json": asJSON} {
		t.Run(name, func(t *testing.T) {
			loader := openapi3.NewLoader()
			d, err := loader.LoadFromData(doc)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if !d.IsOpenAPI31OrLater() || d.OpenAPI != "3.1.0" {
				t.Fatalf("openapi = %q, want 3.1.0", d.OpenAPI)
			}
			if err := d.Validate(loader.Context, openapi3.EnableMultiError()); err != nil {
				t.Fatalf("validate:\n%v", err)
			}
		})
	}
}

// TestJSONMatchesYAML: /openapi.json says exactly what /openapi.yaml says.
func TestJSONMatchesYAML(t *testing.T) {
	asJSON, err := openapi.ToJSON(openapi.YAML)
	if err != nil {
		t.Fatal(err)
	}
	var fromYAML, fromJSON any
	if err := yaml.Unmarshal(openapi.YAML, &fromYAML); err != nil {
		t.Fatal(err)
	}
	// Round-trip through JSON so numbers and maps have the same Go types.
	b, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fromYAML); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(asJSON, &fromJSON); err != nil {
		t.Fatalf("asJSON is not JSON: %v", err)
	}
	if !reflect.DeepEqual(fromYAML, fromJSON) {
		t.Fatal("asJSON differs from openapi.yaml")
	}
	// Key order is kept: the JSON reads like the YAML.
	if !strings.HasPrefix(string(asJSON), "{\n  \"openapi\": \"3.1.0\",\n  \"info\": {") {
		t.Fatalf("JSON starts %.60q, want the YAML's key order", asJSON)
	}
}

func TestToJSON(t *testing.T) {
	tests := []struct {
		name, yaml, json string
	}{
		{"order kept", "b: 1\na: 2\n", `{"b":1,"a":2}`},
		{"scalars", "s: x\nq: '1'\nn: 1\nf: 1.5\nt: true\nz: null\nno: no\n", `{"s":"x","q":"1","n":1,"f":1.5,"t":true,"z":null,"no":"no"}`},
		{"dates stay text", "d: 2026-12-01\nts: 2026-11-21T23:42:32.019Z\n", `{"d":"2026-12-01","ts":"2026-11-21T23:42:32.019Z"}`},
		{"html not escaped", "h: <a & b>\n", `{"h":"<a & b>"}`},
		{"nested", "a: [1, {b: [x]}]\n", `{"a":[1,{"b":["x"]}]}`},
		{"alias", "a: &x [1]\nb: *x\n", `{"a":[1],"b":[1]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := openapi.ToJSON([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			var compact strings.Builder
			for _, line := range strings.Split(strings.TrimSpace(string(got)), "\n") {
				compact.WriteString(strings.ReplaceAll(strings.TrimSpace(line), `": `, `":`))
			}
			if compact.String() != tt.json {
				t.Fatalf("ToJSON(%q) = %s, want %s", tt.yaml, compact.String(), tt.json)
			}
		})
	}
	for _, bad := range []string{"a: [", "a: .inf\n", "? [a]\n: 1\n", "a: 1\n---\nb: 2\n"} {
		if _, err := openapi.ToJSON([]byte(bad)); err == nil {
			t.Errorf("ToJSON(%q) succeeded, want an error", bad)
		}
	}
}

// TestRedocBundleIsThePinnedOne: the embedded renderer is the version
// package.json pins (make generate copies it from node_modules).
func TestRedocBundleIsThePinnedOne(t *testing.T) {
	pkg, err := os.ReadFile("package.json")
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	if err := json.Unmarshal(pkg, &p); err != nil {
		t.Fatal(err)
	}
	pinned := p.DevDependencies["redoc"]
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(pinned) {
		t.Fatalf("package.json pins redoc at %q, want an exact version", pinned)
	}
	license, err := os.ReadFile("docs/redoc.standalone.js.LICENSE.txt")
	if err != nil {
		t.Fatal(err)
	}
	if want := `Version: "` + pinned + `"`; !strings.Contains(string(license), want) {
		t.Fatalf("docs/redoc.standalone.js.LICENSE.txt lacks %s: run make generate", want)
	}
	if len(openapi.RedocJS) < 100_000 || !strings.Contains(string(openapi.RedocJS[:200]), "redoc.standalone.js.LICENSE.txt") {
		t.Fatalf("openapi.RedocJS does not look like Redoc's standalone bundle (%d bytes)", len(openapi.RedocJS))
	}
}
