package service

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// requestMetrics counts the gateway's HTTP requests by route (the REST
// rule's path template, such as /v1/tasks/{task_id=*}, never the raw path, so
// the label set stays bounded), method and status code, and times them.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gaia_gateway_requests_total",
			Help: "HTTP requests answered, by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gaia_gateway_request_duration_seconds",
			Help:    "Time to answer an HTTP request (a stream: its whole life), by route template and method.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

type routeKey struct{}

// routeHolder is filled in by whichever mux matched the request.
type routeHolder struct{ route string }

// annotate is a grpc-gateway middleware: it runs after the REST rule
// matched and records its template.
func (m *requestMetrics) annotate(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if h, ok := r.Context().Value(routeKey{}).(*routeHolder); ok {
			if pattern, ok := runtime.HTTPPattern(r.Context()); ok {
				h.route = pattern.String()
			}
		}
		next(w, r, params)
	}
}

// wrap measures every request handled by next.
func (m *requestMetrics) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		holder := &routeHolder{}
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, holder))
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := holder.route
		switch {
		case route != "":
		case isGRPC(r):
			route = "grpc"
		case r.Pattern != "" && r.Pattern != "/":
			route = r.Pattern // the gateway's own endpoints, such as GET /healthz
		default:
			route = "unmatched"
		}
		m.requests.WithLabelValues(route, r.Method, strconv.Itoa(rec.code)).Inc()
		m.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
	})
}

// statusRecorder keeps the status code; Unwrap lets http.ResponseController
// reach the real writer, so streams still flush.
type statusRecorder struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wroteHeader {
		s.code, s.wroteHeader = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.wroteHeader = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
