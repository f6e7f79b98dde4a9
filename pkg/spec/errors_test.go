package spec

import (
	"errors"
	"testing"
)

func TestFieldErrorFormat(t *testing.T) {
	tests := []struct {
		err  FieldError
		want string
	}{
		{FieldError{File: "web.yaml", Line: 7, Path: "spec.resourcs", Msg: `unknown field "resourcs"`}, `web.yaml:7: spec.resourcs: unknown field "resourcs"`},
		{FieldError{File: "web.yaml", Path: "spec.image", Msg: "required"}, "web.yaml: spec.image: required"},
		{FieldError{Line: 3, Path: "kind", Msg: "required"}, "line 3: kind: required"},
		{FieldError{Path: "kind", Msg: "required"}, "kind: required"},
		{FieldError{File: "web.yaml", Line: 1, Msg: "invalid YAML"}, "web.yaml:1: invalid YAML"},
		{FieldError{Msg: "too large"}, "too large"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestErrorList(t *testing.T) {
	var empty ErrorList
	if empty.Err() != nil {
		t.Error("an empty list must give a nil error")
	}
	first := &FieldError{Path: "a", Msg: "x"}
	list := ErrorList{first, {Path: "b", Msg: "y"}}
	if got, want := list.Error(), "a: x\nb: y"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	var fe *FieldError
	if !errors.As(list.Err(), &fe) || fe != first {
		t.Error("errors.As must find the first FieldError")
	}
	var back ErrorList
	if !errors.As(error(list), &back) || len(back) != 2 {
		t.Error("errors.As must find the ErrorList")
	}
}
