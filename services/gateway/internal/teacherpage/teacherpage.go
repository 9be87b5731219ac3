// Package teacherpage serves the teacher dashboard page: embedded static
// files (no build step, no network needed) that talk to the gateway's own
// REST API from the browser. It owns no state and calls no backend itself.
package teacherpage

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Register mounts the page on mux: "/" (the teacher's classrooms),
// "/classrooms/{classroom_id}" (one classroom, live) and its assets under
// "/ui/".
func Register(mux *http.ServeMux) {
	files, _ := fs.Sub(static, "static") // the directory is embedded, so this cannot fail
	index, _ := fs.ReadFile(files, "index.html")
	page := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'")
		_, _ = w.Write(index)
	})
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /classrooms/{classroom_id}", page)
	mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(files)))
}
