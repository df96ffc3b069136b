// Package client is a Go client for Herald's HTTP API, generated from
// openapi/openapi.yaml (beside it) by oapi-codegen (client.gen.go). Internal services
// use it to publish and to manage the directory; the end-to-end tests use it
// against the real binary. Regenerate with `make generate` after changing
// the document; CI fails when the committed code is stale.
package client

//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../openapi.yaml
