package spec

import (
	"fmt"
	"strings"
)

// FieldError is one problem with a spec, located as precisely as known.
// The JSON form is what the API returns.
type FieldError struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Path string `json:"field,omitempty"`
	Msg  string `json:"message"`
	// Rule is the policy field whose refusal this is ("allowPrivileged",
	// "allowedHostPorts"); empty for an error that is not a refusal.
	Rule string `json:"rule,omitempty"`
}

// Error reads "file:line: path: msg", leaving out the parts that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList holds every problem found in one file or spec.
type ErrorList []*FieldError

// Error puts one problem on each line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns nil for an empty list, so that a nil ErrorList never becomes a
// non-nil error interface.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// Unwrap lets errors.As find a single *FieldError in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}
