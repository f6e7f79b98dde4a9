package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestAcceptedMutantsAreMarked(t *testing.T) {
	acc, err := parseAccepted("accepted.txt", strings.NewReader(`# FILE:LINE:COL MUTATOR reason
pkg/spec/defaults.go:95:30 CONDITIONALS_BOUNDARY  delay == limit/2 doubles to limit, which min() gives anyway

pkg/spec/gone.go:1:1 ARITHMETIC_BASE  fixed since
`))
	if err != nil {
		t.Fatal(err)
	}
	r := result{Pkg: "./pkg/spec", Killed: 3, Lived: 2, Efficacy: 60, Files: []file{
		{Name: "defaults.go", Mutations: []mutation{
			{Type: "CONDITIONALS_BOUNDARY", Status: "LIVED", Line: 95, Column: 30},
			{Type: "CONDITIONALS_NEGATION", Status: "KILLED", Line: 95, Column: 17},
		}},
		{Name: "pkg/spec/hash.go", Mutations: []mutation{{Type: "INVERT_NEGATIVES", Status: "LIVED", Line: 7, Column: 2}}},
	}}
	var out bytes.Buffer
	report(&out, r, acc)
	got := out.String()
	for _, want := range []string{
		"LIVED pkg/spec/defaults.go:95:30 CONDITIONALS_BOUNDARY  [accepted: delay == limit/2 doubles to limit, which min() gives anyway]\n",
		"LIVED pkg/spec/hash.go:7:2 INVERT_NEGATIVES\n",
		"test efficacy  60.0% (3 killed, 2 lived, 1 of them accepted as equivalent: 80.0% counting those)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "KILLED") {
		t.Errorf("report lists killed mutants:\n%s", got)
	}
	if acc["pkg/spec/gone.go:1:1 ARITHMETIC_BASE"].used {
		t.Error("an entry that matched nothing is marked used")
	}
}

func TestAcceptedListErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"pkg/spec/a.go:1:2 ARITHMETIC_BASE\n", "a.txt:1: want FILE:LINE:COL MUTATOR reason"},
		{"\npkg/spec/a.go ARITHMETIC_BASE why\n", `a.txt:2: "pkg/spec/a.go" is not FILE.go:LINE:COL`},
		{"a.go:1:2 X why\na.go:1:2 X again\n", "a.txt:2: a.go:1:2 X is already on line 1"},
	} {
		_, err := parseAccepted("a.txt", strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}

func TestNotCoveredOnCaseConditionsAndConstantsIsCounted(t *testing.T) {
	dir := t.TempDir()
	src := `package p

const limit = 1 << 10

func f(n int) string {
	switch {
	case n > limit:
		return "big"
	}
	if n < 0 {
		return "negative"
	}
	return ""
}
`
	if err := os.WriteFile(filepath.Join(dir, "p.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	nc := func(line, col int) mutation {
		return mutation{Type: "CONDITIONALS_NEGATION", Status: "NOT COVERED", Line: line, Column: col}
	}
	r := result{Pkg: dir, NotCovered: 3, Files: []file{{Name: "p.go", Mutations: []mutation{
		nc(3, 17), // the constant's <<
		nc(7, 9),  // the case's >
		nc(10, 7), // the if's <: coverage maps it; it is simply not run
		{Type: "CONDITIONALS_BOUNDARY", Status: "LIVED", Line: 7, Column: 9},
	}}}}
	if got := r.unmappable(); got != 2 {
		t.Errorf("unmappable = %d, want 2 (the case condition and the constant, not the if)", got)
	}
	want := "(3 not covered, 2 of them on a case condition or a constant, which gremlins cannot map to coverage (go-gremlins/gremlins#298))"
	if got := r.summary(nil); !strings.Contains(got, want) {
		t.Errorf("summary lacks %q:\n%s", want, got)
	}
}
