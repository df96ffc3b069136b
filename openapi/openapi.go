// Package openapi holds Herald's API document, openapi.yaml (OpenAPI 3.1),
// embedded so that the binary serves the document it was built and tested
// with, and the renderer of its reference page.
package openapi

import _ "embed"

// YAML is the OpenAPI 3.1 document as written, served at /openapi.yaml
// (and, converted once with ToJSON, at /openapi.json).
//
//go:embed openapi.yaml
var YAML []byte

// RedocJS is Redoc's standalone bundle (MIT licence, see docs/LICENSE), the
// renderer of the /docs page. It is copied from the npm package pinned in
// package.json by `make generate`, and served from the binary so the page
// needs no internet access.
//
//go:embed docs/redoc.standalone.js
var RedocJS []byte
