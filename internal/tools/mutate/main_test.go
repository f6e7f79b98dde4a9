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

func TestMutateTurnsTheTokenAtThePositionAsGremlinsDoes(t *testing.T) {
	src := []byte("package p\n\nconst d = 2 * second\n\nfunc f(x int) int {\n\tswitch {\n\tcase x >= -3 && x != 9:\n\t\treturn 1\n\t}\n\treturn 0\n}\n")
	for _, tc := range []struct {
		line, col int
		kind      string
		want      string
	}{
		{3, 13, "ARITHMETIC_BASE", "const d = 2 / second"},
		{7, 9, "CONDITIONALS_BOUNDARY", "case x > -3 && x != 9:"},
		{7, 9, "CONDITIONALS_NEGATION", "case x < -3 && x != 9:"},
		{7, 12, "INVERT_NEGATIVES", "case x >= +3 && x != 9:"},
		{7, 15, "INVERT_LOGICAL", "case x >= -3 || x != 9:"},
		{7, 20, "CONDITIONALS_NEGATION", "case x >= -3 && x == 9:"},
	} {
		got, err := mutate(src, tc.line, tc.col, tc.kind)
		if err != nil {
			t.Fatalf("%d:%d %s: %v", tc.line, tc.col, tc.kind, err)
		}
		if line := strings.Split(string(got), "\n")[tc.line-1]; strings.TrimSpace(line) != tc.want {
			t.Errorf("%d:%d %s: line %q, want %q", tc.line, tc.col, tc.kind, line, tc.want)
		}
	}
	for _, tc := range []struct {
		line, col  int
		kind, want string
	}{
		{3, 13, "CONDITIONALS_BOUNDARY", `CONDITIONALS_BOUNDARY does not apply to "*" at 3:13`},
		{3, 14, "ARITHMETIC_BASE", "no token at 3:14"},
		{3, 13, "INVERT_LOOPCTRL", "mutator INVERT_LOOPCTRL is not one this tool applies"},
	} {
		if _, err := mutate(src, tc.line, tc.col, tc.kind); err == nil || err.Error() != tc.want {
			t.Errorf("%d:%d %s: %v, want %q", tc.line, tc.col, tc.kind, err, tc.want)
		}
	}
}

// TestCaseAndConstMutantsAreRunAndCounted runs two NOT COVERED mutants of
// a small module's case condition: its test kills one and not the other,
// and the figures count both, as gremlins would had it run them.
func TestCaseAndConstMutantsAreRunAndCounted(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.com/m\n\ngo 1.26\n")
	write("m.go", "package m\n\nfunc Sign(x int) int {\n\tswitch {\n\tcase x > 0:\n\t\treturn 1\n\t}\n\treturn 0\n}\n")
	write("m_test.go", "package m\n\nimport \"testing\"\n\nfunc TestSign(t *testing.T) {\n\tif Sign(5) != 1 || Sign(-5) != 0 {\n\t\tt.Fatal(\"wrong sign\")\n\t}\n}\n")
	t.Chdir(dir)
	r := result{Pkg: ".", Killed: 1, Lived: 0, NotCovered: 2, Files: []file{{Name: "m.go", Mutations: []mutation{
		{Type: "CONDITIONALS_NEGATION", Status: "NOT COVERED", Line: 5, Column: 9},
		{Type: "CONDITIONALS_BOUNDARY", Status: "NOT COVERED", Line: 5, Column: 9},
		{Type: "ARITHMETIC_BASE", Status: "KILLED", Line: 8, Column: 1},
	}}}}
	if got := r.unmappable(); got != 2 {
		t.Fatalf("unmappable = %d, want 2", got)
	}
	if err := runUnmapped(&r, 2, 10, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	ms := r.Files[0].Mutations
	if ms[0].Status != "KILLED" || ms[1].Status != "LIVED" {
		t.Fatalf("statuses %s, %s; want KILLED (x <= 0 fails the test), LIVED (x >= 0 passes it)", ms[0].Status, ms[1].Status)
	}
	if r.Ran != 2 || r.Killed != 2 || r.Lived != 1 || r.NotCovered != 0 || r.Coverage != 100 || int(r.Efficacy) != 66 {
		t.Fatalf("ran %d, killed %d, lived %d, not covered %d, coverage %.1f, efficacy %.1f; want 2, 2, 1, 0, 100, 66.7",
			r.Ran, r.Killed, r.Lived, r.NotCovered, r.Coverage, r.Efficacy)
	}
}
