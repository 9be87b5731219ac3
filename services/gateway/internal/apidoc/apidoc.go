// Package apidoc serves the gateway's API description: the OpenAPI document at
// /openapi.json, stamped with the running build's version and with the
// gateway itself as its server, and the API reference page at /docs (Swagger
// UI, embedded: no network needed at run time). The Swagger UI files in assets/ are copied from the npm package pinned
// in package.json by `make docs-assets`.
package apidoc

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
)

//go:embed assets
var assets embed.FS

// Register mounts GET /openapi.json, /docs and /docs/… on mux. doc is the
// committed document; version replaces its info.version placeholder.
func Register(mux *http.ServeMux, doc []byte, version string) error {
	stamped, err := Stamp(doc, version)
	if err != nil {
		return err
	}
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(stamped)
	})
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return err
	}
	files := http.StripPrefix("/docs/", http.FileServerFS(sub))
	mux.Handle("GET /docs/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /docs", http.RedirectHandler("/docs/", http.StatusMovedPermanently))
	return nil
}

// servedServers is the servers list of the served document: the relative URL
// "/" means "the host this document came from" (OpenAPI 3.0, Server Object),
// which is right behind any address, proxy or TLS front, where the committed
// document's http://127.0.0.1:8080 is only right for `make run`.
var servedServers = json.RawMessage(`[{"url":"/","description":"the gateway that served this document"}]`)

// Stamp returns doc with info.version set to version and servers pointing at
// the gateway that serves it.
func Stamp(doc []byte, version string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	var info map[string]json.RawMessage
	if err := json.Unmarshal(top["info"], &info); err != nil {
		return nil, fmt.Errorf("openapi document info: %w", err)
	}
	v, err := json.Marshal(version)
	if err != nil {
		return nil, err
	}
	info["version"] = v
	if top["info"], err = json.Marshal(info); err != nil {
		return nil, err
	}
	top["servers"] = servedServers
	return json.Marshal(top)
}
