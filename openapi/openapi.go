// Package openapi embeds Herald's OpenAPI document, served at /openapi.yaml.
package openapi

import _ "embed"

// YAML is the OpenAPI 3.1 document.
//
//go:embed openapi.yaml
var YAML []byte
