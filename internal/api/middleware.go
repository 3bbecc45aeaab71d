package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"regexp"
	"runtime/debug"
	"time"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/proxy"
)

type ctxKey int

const (
	requestIDKey ctxKey = iota
	routeKey
)

// RequestIDHeader carries the request ID in both directions.
const RequestIDHeader = "X-Request-ID"

var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{8,64}$`)

func requestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey).(string)
	return id
}

// withRequestID keeps a well-formed request ID set by a trusted proxy (so
// its ID follows the request into the audit log) or makes a new one; other
// clients cannot choose what the audit log records.
func (s *Server) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(RequestIDHeader)
		if !proxy.Trusted(s.opts.TrustedProxies).FromProxy(r) || !requestIDPattern.MatchString(id) {
			var b [12]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
	})
}

func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				// The stack names code, not data; the panic value might hold
				// data, so only its type is logged.
				s.log.ErrorContext(r.Context(), "panic in handler", "request_id", requestID(r.Context()),
					"panic_type", PanicType(v), "stack", string(debug.Stack()))
				writeError(w, r, s.log, apperr.New(apperr.KindInternal, "internal error"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// PanicType names the kind of a recovered panic value without its
// content, which may hold the request's data.
func PanicType(v any) string {
	switch v.(type) {
	case error:
		return "error"
	case string:
		return "string"
	default:
		return "other"
	}
}

// TransportHeaders sets what every response of the server carries, the
// device and enrolment paths' too: HSTS over TLS, and no content sniffing.
func TransportHeaders(h http.Header, r *http.Request) {
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
	h.Set("X-Content-Type-Options", "nosniff")
}

// securityHeaders apply to every response: the API serves JSON only, so the
// content security policy forbids everything.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		TransportHeaders(h, r)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// accessLog records one line per request. It names the route pattern, never
// the raw URL or query (which can carry emails and filters), and never the
// client address: who did what is the audit log's job, with its controls.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.log.InfoContext(r.Context(), "http request", "request_id", requestID(r.Context()), "route", route,
			"status", rec.status, "bytes", rec.bytes, "duration_ms", float64(time.Since(start).Microseconds())/1000)
		observeRequest(route, rec.status, time.Since(start))
	})
}
