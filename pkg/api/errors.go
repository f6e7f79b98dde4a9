package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/containerd/errdefs"

	"github.com/reconciler/reconciler/pkg/spec"
)

// Error is the JSON body of every error answer. Field is a spec's field
// path ("spec.resources.memory") or a query parameter; File and Line locate
// a problem in a spec document, or File names the spec file that owns a
// read-only spec.
type Error struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	// Rule is the policy field that would allow what was refused.
	Rule string `json:"rule,omitempty"`
	// Errors lists every problem when there are several; the fields above
	// repeat the first.
	Errors []spec.FieldError `json:"errors,omitempty"`
}

// Kinds of problems the API finds itself; statusOf maps them, with
// containerd's errdefs kinds (which the store and the Docker layer wrap),
// to status codes.
var (
	errBadRequest   = errors.New("bad request")
	errNoRoute      = errors.New("no such endpoint")
	errMethod       = errors.New("method not allowed")
	errMediaType    = errors.New("unsupported media type")
	errForbidden    = errors.New("forbidden")
	errUnauthorized = errors.New("unauthorized")
	errTooMany      = errors.New("too many requests")
	errTooLong      = errors.New("ran past its time limit")
)

// statusOf is the one place where errors become status codes.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	var invalid *spec.FieldError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.As(err, &invalid), errors.Is(err, errBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errdefs.IsNotFound(err), errors.Is(err, errNoRoute):
		return http.StatusNotFound
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errdefs.IsConflict(err):
		return http.StatusConflict
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errTooMany):
		return http.StatusTooManyRequests
	case errors.Is(err, errTooLong):
		return http.StatusGatewayTimeout
	case errdefs.IsUnavailable(err):
		return http.StatusServiceUnavailable
	case errdefs.IsNotImplemented(err):
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// problem is an error found by the API itself; kind decides its status.
type problem struct {
	kind  error
	field string
	file  string
	msg   string
}

func (p *problem) Error() string { return p.msg }
func (p *problem) Unwrap() error { return p.kind }

// fail makes a problem of kind about field (a query parameter or body
// field; empty when none applies).
func fail(kind error, field, format string, args ...any) error {
	return &problem{kind: kind, field: field, msg: fmt.Sprintf(format, args...)}
}

// errorBody turns err into the JSON an answer carries.
func errorBody(err error) Error {
	var list spec.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		first := list[0]
		body := Error{Message: first.Msg, Field: first.Path, File: first.File, Line: first.Line, Rule: first.Rule}
		if len(list) > 1 {
			for _, e := range list {
				body.Errors = append(body.Errors, *e)
			}
		}
		return body
	}
	var fe *spec.FieldError
	if errors.As(err, &fe) {
		return Error{Message: fe.Msg, Field: fe.Path, File: fe.File, Line: fe.Line, Rule: fe.Rule}
	}
	var p *problem
	if errors.As(err, &p) {
		return Error{Message: p.msg, Field: p.field, File: p.file}
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return Error{Message: fmt.Sprintf("request body is over the %d-byte limit", tooLarge.Limit)}
	}
	return Error{Message: err.Error()}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // a client gone away is not the server's error
}
