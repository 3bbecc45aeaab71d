package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/steward-mdm/steward/internal/apperr"
	"github.com/steward-mdm/steward/internal/apple/payloads"
	"github.com/steward-mdm/steward/internal/store"
)

// MaxBodyBytes is the documented limit on a request body. Admin requests are
// small; anything bigger is a mistake or an attack.
const MaxBodyBytes = 64 << 10

// MaxProfileBodyBytes is the body limit of the routes that create and
// replace profiles: room for a custom profile of the largest accepted size,
// base64 in JSON, or a definition of the largest accepted size (icons and
// PKCS#12 files are base64 inside it), with the rest of the request.
const MaxProfileBodyBytes = (payloads.MaxCustomProfileSize+2)/3*4 + MaxBodyBytes

// MaxBulkCommandBodyBytes is the body limit of a bulk command: room for
// MaxBulkDevices device IDs (36 characters, quoted, a comma), with the rest
// of the request.
const MaxBulkCommandBodyBytes = MaxBulkDevices*(36+3) + MaxBodyBytes

// ErrorBody is the one error shape every route answers with.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the content of an error response.
type ErrorDetail struct {
	Code    string         `json:"code"`
	Message string         `json:"message"`
	Details map[string]any `json:"details,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if v == nil {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	_ = enc.Encode(v)
}

// writeError answers with the error body. Internal errors are logged with the
// request ID and never shown: their text may hold database details.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = apperr.New(apperr.KindNotFound, "not found")
	case errors.Is(err, store.ErrConflict):
		err = apperr.New(apperr.KindConflict, "the change conflicts with the current state; reload and try again")
	}
	e := apperr.As(err)
	if e.Kind == apperr.KindInternal {
		log.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "error", err.Error())
	}
	if ra, ok := e.Details["retry_after_seconds"].(int); ok && ra > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(ra))
	}
	writeJSON(w, e.Status(), ErrorBody{Error: ErrorDetail{Code: string(e.Kind), Message: e.Message, Details: e.Details}})
}

// decodeJSON reads exactly one JSON object into v: the content type must be
// JSON, unknown fields and trailing data are refused, the size is at most
// limit bytes.
func decodeJSON(r *http.Request, v any, limit int64) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return apperr.New(apperr.KindUnsupportedType, "send the body as application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return apperr.New(apperr.KindTooLarge, "the body is larger than %d bytes", limit)
		}
		return apperr.Invalid("the body could not be read")
	}
	return decodeBytes(body, v)
}

// decodeBytes is the strict JSON decoding behind decodeJSON, split out so it
// can be fuzzed without HTTP.
func decodeBytes(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return describeDecodeError(err)
	}
	if dec.More() {
		return apperr.Invalid("the body must hold exactly one JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.Invalid("the body must hold exactly one JSON object")
	}
	return nil
}

func describeDecodeError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return apperr.Invalid("the body is empty; send a JSON object")
	case errors.As(err, &syn):
		return apperr.Invalid("the body is not valid JSON").With("offset", syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return apperr.Invalid("the body must be a JSON object")
		}
		return apperr.Invalid("field %q must be of type %s", field, jsonKind(typ.Type.Kind().String())).With("field", field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Invalid("unknown field %q", field).With("field", field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Invalid("the body is not valid JSON: it ends too early")
	default:
		return apperr.Invalid("the body is not valid JSON")
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map", "ptr":
		return "object"
	default:
		return "number"
	}
}
