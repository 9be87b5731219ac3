package apidoc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	gaiaproto "github.com/gaia-platform/gaia/proto"
	"github.com/gaia-platform/gaia/services/gateway/internal/apidoc"
)

// A deployed gateway served a document whose only server was
// http://127.0.0.1:8080, so generated clients and /docs' "Try it out" called
// the wrong host. The served copy names the gateway itself (the relative URL
// "/"); the committed file keeps its make-run address, byte for byte.
func TestServedDocumentNamesTheServingGateway(t *testing.T) {
	committed := bytes.Clone(gaiaproto.OpenAPI)
	mux := http.NewServeMux()
	if err := apidoc.Register(mux, gaiaproto.OpenAPI, "1.2.3"); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "http://gaia.school.example/openapi.json", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.json = %d", rec.Code)
	}
	doc, err := openapi3.NewLoader().LoadFromData(rec.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("the served document does not validate: %v", err)
	}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != "/" {
		got, _ := json.Marshal(doc.Servers)
		t.Errorf("served servers = %s, want only the relative URL /", got)
	}
	if doc.Info.Version != "1.2.3" {
		t.Errorf("served info.version = %q, want the build's", doc.Info.Version)
	}
	if !bytes.Equal(committed, gaiaproto.OpenAPI) {
		t.Errorf("serving the document changed the committed copy")
	}
	var file struct {
		Servers []struct {
			URL string `json:"url"`
		} `json:"servers"`
	}
	if err := json.Unmarshal(gaiaproto.OpenAPI, &file); err != nil || len(file.Servers) == 0 || file.Servers[0].URL != "http://127.0.0.1:8080" {
		t.Errorf("committed servers = %+v (%v), want make run's gateway", file.Servers, err)
	}
}
