package server

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/steward-mdm/steward/internal/api"
)

// recoverDevicePanics answers a device-facing request whose handler
// panicked with a 500 (a 401 can make an Apple device unenrol) and logs the
// route, method, panic and stack at error level. Nothing of the request is
// logged: its body, headers and certificates are the device's. A panic
// after the response began cannot change the status: the connection is
// cut instead, so the device does not take half an answer for a whole one.
func recoverDevicePanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &startTrackingWriter{ResponseWriter: w}
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // a deliberate abort: net/http cuts the connection quietly
				panic(v)
			}
			log.ErrorContext(r.Context(), "panic in a device handler", "route", deviceRoute(r), "method", r.Method,
				"panic", describePanic(v), "stack", string(debug.Stack()))
			if tw.started {
				panic(http.ErrAbortHandler)
			}
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		}()
		next.ServeHTTP(tw, r)
	})
}

// deviceRoute is the pattern the device mux matched, never the path: a path
// holds an enrolment link's secret. Before a match, only the path's first
// segment.
func deviceRoute(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	if first, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/"); ok {
		return "/" + first + "/"
	}
	return "/"
}

// describePanic gives a runtime error's message, which names code (an index
// out of range, a nil dereference), and of any other value only its type:
// a value built by a handler may hold the request's data.
func describePanic(v any) string {
	var re runtime.Error
	if err, ok := v.(error); ok && errors.As(err, &re) {
		return re.Error()
	}
	return api.PanicType(v)
}

// startTrackingWriter notes whether the response has begun.
type startTrackingWriter struct {
	http.ResponseWriter
	started bool
}

func (w *startTrackingWriter) WriteHeader(code int) {
	if code >= 200 { // an informational 1xx leaves the final status to come
		w.started = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *startTrackingWriter) Write(b []byte) (int, error) {
	w.started = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's own writer.
func (w *startTrackingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
