// Package openapitest checks REST traffic against GAIA's published OpenAPI
// document (proto/openapi.json) in tests: Transport wraps an HTTP client's
// round-tripper and validates every request and every response with
// kin-openapi's openapi3filter, the stream lines of application/x-ndjson
// answers one by one. A field that comes back null, a type the document does
// not allow, or a status the operation does not list fails the test. It owns
// nothing but that check; only tests import it.
package openapitest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	gaiaproto "github.com/gaia-platform/gaia/proto"
)

// NDJSON is the media type of stream answers.
const NDJSON = "application/x-ndjson"

var (
	loadOnce sync.Once
	router   routers.Router
	loadErr  error
)

func load() (routers.Router, error) {
	loadOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(gaiaproto.OpenAPI)
		if err != nil {
			loadErr = fmt.Errorf("load openapi.json: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			loadErr = fmt.Errorf("openapi.json: %w", err)
			return
		}
		// Match every host: tests run gateways on ephemeral ports.
		doc.Servers = nil
		router, loadErr = gorillamux.NewRouter(doc)
		// A stream's lines are validated one at a time, each as JSON.
		openapi3filter.RegisterBodyDecoder(NDJSON, openapi3filter.JSONBodyDecoder)
	})
	return router, loadErr
}

// Client is an *http.Client whose traffic is checked against the document.
func Client(t testing.TB) *http.Client {
	return &http.Client{Transport: Transport(t, http.DefaultTransport)}
}

// ClientForBadRequests checks only the answers: for tests that send what the
// document forbids on purpose, to see the API refuse it as documented.
func ClientForBadRequests(t testing.TB) *http.Client {
	tr := Transport(t, http.DefaultTransport).(*transport)
	tr.skipRequests = true
	return &http.Client{Transport: tr}
}

// Transport wraps next so that every exchange is checked against the
// document; failures are reported on t (until t ends).
func Transport(t testing.TB, next http.RoundTripper) http.RoundTripper {
	r, err := load()
	if err != nil {
		t.Fatal(err)
	}
	rep := &reporter{t: t}
	t.Cleanup(rep.close)
	return &transport{next: next, router: r, rep: rep}
}

// reporter forwards failures to t while the test runs; a stream read after
// the test ended cannot fail it any more.
type reporter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (r *reporter) errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.done {
		r.t.Helper()
		r.t.Errorf("openapi: "+format, args...)
	}
}

func (r *reporter) close() {
	r.mu.Lock()
	r.done = true
	r.mu.Unlock()
}

type transport struct {
	next         http.RoundTripper
	router       routers.Router
	rep          *reporter
	skipRequests bool
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	what := req.Method + " " + req.URL.Path
	route, params, err := tr.router.FindRoute(req)
	if err != nil {
		// Not an API route (/healthz, /openapi.json, /docs): nothing to check.
		if strings.HasPrefix(req.URL.Path, "/v1/") {
			tr.rep.errorf("%s matches no operation of the document: %v", what, err)
		}
		return tr.next.RoundTrip(req)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		IncludeResponseStatus: true,
		MultiError:            true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	streamingRequest := strings.HasPrefix(req.Header.Get("Content-Type"), NDJSON)
	if req.Body != nil && !streamingRequest {
		body, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		check := req.Clone(req.Context())
		check.Body = io.NopCloser(bytes.NewReader(body))
		in.Request = check
	}
	if streamingRequest {
		opts.ExcludeRequestBody = true
	}
	if err := openapi3filter.ValidateRequest(req.Context(), in); err != nil && !tr.skipRequests {
		tr.rep.errorf("request %s does not match the document: %v", what, err)
	}

	resp, err := tr.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	check := func(status int, header http.Header, body []byte) {
		if len(body) == 0 && status == http.StatusOK && header.Get("Content-Type") == "" {
			return // a stream that ended before its first line
		}
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: header,
			Body: io.NopCloser(bytes.NewReader(body)), Options: opts,
		}
		if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
			tr.rep.errorf("answer to %s (%d %s) does not match the document: %v", what, status, body, err)
		}
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), NDJSON) {
		resp.Body = &lineChecker{ReadCloser: resp.Body, status: resp.StatusCode, header: resp.Header, check: check}
		return resp, nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	check(resp.StatusCode, resp.Header, body)
	return resp, nil
}

// lineChecker passes a stream through unchanged and checks each complete line
// as it goes by.
type lineChecker struct {
	io.ReadCloser
	status  int
	header  http.Header
	check   func(int, http.Header, []byte)
	partial []byte
}

func (l *lineChecker) Read(p []byte) (int, error) {
	n, err := l.ReadCloser.Read(p)
	l.partial = append(l.partial, p[:n]...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		if line := bytes.TrimSpace(l.partial[:i]); len(line) > 0 {
			l.check(l.status, l.header, line)
		}
		l.partial = l.partial[i+1:]
	}
	return n, err
}

// Lines reads an NDJSON body into its lines; a helper for tests that read a
// whole stream.
func Lines(r io.Reader) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}
