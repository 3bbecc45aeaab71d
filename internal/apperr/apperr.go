// Package apperr defines the typed errors that cross layers. Each kind carries
// the HTTP status it maps to, so the mapping lives in exactly one place and
// handlers never guess.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Kind classifies an error for clients. The string is the stable machine code
// in the API's error body.
type Kind string

const (
	KindInvalid         Kind = "invalid_request"   // 400: the input is wrong; details say where
	KindUnauthenticated Kind = "unauthenticated"   // 401: admin API only; device-facing code never uses it
	KindMFARequired     Kind = "mfa_required"      // 401: password accepted, second factor missing
	KindForbidden       Kind = "forbidden"         // 403: authenticated but not allowed
	KindNotFound        Kind = "not_found"         // 404: missing or outside the caller's tenants
	KindConflict        Kind = "conflict"          // 409: violates a uniqueness or state rule
	KindGone            Kind = "gone"              // 410: existed, expired (a published link)
	KindTooLarge        Kind = "payload_too_large" // 413
	KindUnsupportedType Kind = "unsupported_media" // 415
	KindRateLimited     Kind = "rate_limited"      // 429
	KindLocked          Kind = "account_locked"    // 423: too many failed logins
	KindUnavailable     Kind = "unavailable"       // 503
	KindInternal        Kind = "internal"          // 500: never carries the cause to the client
)

var statusByKind = map[Kind]int{
	KindInvalid:         http.StatusBadRequest,
	KindUnauthenticated: http.StatusUnauthorized,
	KindMFARequired:     http.StatusUnauthorized,
	KindForbidden:       http.StatusForbidden,
	KindNotFound:        http.StatusNotFound,
	KindConflict:        http.StatusConflict,
	KindTooLarge:        http.StatusRequestEntityTooLarge,
	KindUnsupportedType: http.StatusUnsupportedMediaType,
	KindRateLimited:     http.StatusTooManyRequests,
	KindLocked:          http.StatusLocked,
	KindGone:            http.StatusGone,
	KindUnavailable:     http.StatusServiceUnavailable,
	KindInternal:        http.StatusInternalServerError,
}

// Error is an error a client may see. Message is written for a person: what
// was wrong and what to do. Details name fields or limits, never secrets.
type Error struct {
	Kind    Kind
	Message string
	Details map[string]any
	cause   error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Message, e.cause)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.cause }

// Status is the HTTP status for the error's kind.
func (e *Error) Status() int {
	if s, ok := statusByKind[e.Kind]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// With returns a copy of e with one more detail.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = value
	return &c
}

func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap keeps cause for logs and errors.Is while showing only msg to clients.
func Wrap(kind Kind, cause error, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...), cause: cause}
}

func Invalid(format string, args ...any) *Error  { return New(KindInvalid, format, args...) }
func NotFound(what string) *Error                { return New(KindNotFound, "%s not found", what) }
func Conflict(format string, args ...any) *Error { return New(KindConflict, format, args...) }
func Forbidden(format string, args ...any) *Error {
	return New(KindForbidden, format, args...)
}

// As extracts an *Error; any other error becomes an internal error whose
// cause is kept for the log but hidden from the client.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInternal, Message: "internal error; the request ID in the response identifies it in the server log", cause: err}
}

// IsKind reports whether err is an *Error of the given kind.
func IsKind(err error, kind Kind) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}
