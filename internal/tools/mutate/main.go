// Command mutate runs mutation testing (for `make mutate`): gremlins, one
// package at a time, then a summary per package (test efficacy, mutant
// coverage) and every mutant that lived, marked when the accepted list
// names it as equivalent. It fails only when gremlins cannot run: the
// goals are printed, not enforced.
//
//	go run ./internal/tools/mutate [-workers 2] [-accepted FILE] PKG...
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// gremlins is pinned: a new release may add mutators and move the figures.
const gremlins = "github.com/go-gremlins/gremlins/cmd/gremlins@v0.6.0"

func main() {
	workers := flag.Int("workers", 2, "gremlins workers (each runs the package's tests)")
	accepted := flag.String("accepted", "test/mutants-accepted.txt", "file of mutants accepted as equivalent")
	// gremlins gives each mutant's tests its coefficient times the time
	// the unmutated tests took (3 by default): on a shared, loaded machine
	// hundreds of mutants then time out and drop out of the figures.
	coefficient := flag.Int("timeout-coefficient", 10, "gremlins --timeout-coefficient")
	// A mutant that turns a loop's step around can make a test allocate
	// without bound: one in pkg/controller grew to 24 GiB and swapped the
	// machine for minutes before its timeout. Under the cap it dies of
	// "out of memory" at once, and counts as killed, as it should.
	memGiB := flag.Int("mem-limit-gib", 8, "address-space limit (ulimit -v) of gremlins and every build and test it runs, per process")
	flag.BoolVar(&runCaseAndConst, "case-and-const", true, "run the NOT COVERED mutants on case conditions and constants, which gremlins never runs (go-gremlins/gremlins#298)")
	flag.Parse()
	memLimitKiB = *memGiB << 20
	if err := run(flag.Args(), *workers, *coefficient, *accepted, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "mutate: %v\n", err)
		os.Exit(1)
	}
}

func run(pkgs []string, workers, coefficient int, acceptedFile string, out io.Writer) error {
	if len(pkgs) == 0 {
		return errors.New("name the packages to mutate (./pkg/spec ...)")
	}
	acc, err := readAccepted(acceptedFile)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mutate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var results []result
	for i, pkg := range pkgs {
		file := filepath.Join(tmp, fmt.Sprintf("%d.json", i))
		log := filepath.Join(tmp, fmt.Sprintf("%d.log", i))
		fmt.Fprintf(out, "mutate: %s (gremlins %s, %d workers)...\n", pkg, strings.TrimPrefix(gremlins, "github.com/go-gremlins/gremlins/cmd/gremlins@"), workers)
		if err := unleash(pkg, workers, coefficient, file, log); err != nil {
			return err
		}
		r, err := readResult(pkg, file)
		if err != nil {
			return err
		}
		if runCaseAndConst {
			fmt.Fprintf(out, "mutate: %s: running the %d NOT COVERED mutants on case conditions and constants gremlins cannot run (go-gremlins/gremlins#298)...\n", pkg, r.unmappable())
			if err := runUnmapped(&r, workers, coefficient, tmp); err != nil {
				return err
			}
		}
		results = append(results, r)
		report(out, r, acc)
	}
	if len(results) > 1 {
		fmt.Fprintln(out, "\nmutate: summary")
		for _, r := range results {
			fmt.Fprintln(out, "  "+r.summary(acc))
		}
	}
	for _, a := range acc {
		if !a.used && inAny(a.key, pkgs) {
			fmt.Fprintf(out, "mutate: %s:%d: %s matched no live mutant in this run (fixed, or its line moved): update the list\n", acceptedFile, a.line, a.key)
		}
	}
	return nil
}

// memLimitKiB is the ulimit -v that unleash runs gremlins under.
var memLimitKiB = 8 << 20

// capped is the command name args run under the memory cap, memLimitKiB.
func capped(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "sh", append([]string{"-c", `ulimit -v "$1" && shift && exec "$@"`, "sh", fmt.Sprint(memLimitKiB), name}, args...)...)
}

// runCaseAndConst says whether run runs the mutants gremlins leaves NOT
// COVERED on case conditions and constants (runUnmapped).
var runCaseAndConst = true

func unleash(pkg string, workers, coefficient int, file, log string) error {
	f, err := os.Create(log)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := capped(context.Background(), "go", "run", gremlins, "unleash", "--workers", fmt.Sprint(workers),
		"--timeout-coefficient", fmt.Sprint(coefficient), "-o", file, pkg)
	// gremlins times its coverage run and gives each mutant's tests
	// coefficient times that. A cached coverage run takes half a second,
	// and then the mutants' runs, which build and test, time out by the
	// hundred (94 of pkg/store's 200 here) and drop out of the figures.
	// -count=1 keeps every run out of the test cache.
	cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -count=1"))
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Run(); err != nil {
		tail, _ := os.ReadFile(log)
		return fmt.Errorf("gremlins on %s: %v; its output:\n%s", pkg, err, lastLines(string(tail), 30))
	}
	return nil
}

// result is the part of gremlins' JSON output this report uses.
type result struct {
	Pkg         string
	Efficacy    float64 `json:"test_efficacy"`
	Coverage    float64 `json:"mutations_coverage"`
	Total       int     `json:"mutants_total"`
	Killed      int     `json:"mutants_killed"`
	Lived       int     `json:"mutants_lived"`
	NotViable   int     `json:"mutants_not_viable"`
	NotCovered  int     `json:"mutants_not_covered"`
	ElapsedTime float64 `json:"elapsed_time"`
	Files       []file  `json:"files"`
	// Ran counts the mutants this tool ran itself (runUnmapped).
	Ran int `json:"-"`
}

type file struct {
	Name      string     `json:"file_name"`
	Mutations []mutation `json:"mutations"`
}

type mutation struct {
	Type   string `json:"type"`
	Status string `json:"status"`
	Line   int    `json:"line"`
	Column int    `json:"column"`
}

func readResult(pkg, path string) (result, error) {
	r := result{Pkg: pkg}
	data, err := os.ReadFile(path)
	if err != nil {
		return r, fmt.Errorf("gremlins on %s wrote no report: %w", pkg, err)
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("gremlins report of %s: %w", pkg, err)
	}
	r.Pkg = pkg
	return r, nil
}

// key names a mutant the way the accepted list does: its file below the
// module root, line, column and mutator.
func (r result) key(f file, m mutation) string {
	name := f.Name
	if !strings.Contains(name, "/") {
		name = filepath.ToSlash(filepath.Join(strings.TrimPrefix(r.Pkg, "./"), name))
	}
	return fmt.Sprintf("%s:%d:%d %s", name, m.Line, m.Column, m.Type)
}

// lived lists the mutants no test killed, by file and position.
func (r result) lived() []string {
	type pos struct {
		file         string
		line, column int
		key          string
	}
	var ps []pos
	for _, f := range r.Files {
		for _, m := range f.Mutations {
			if m.Status == "LIVED" {
				ps = append(ps, pos{f.Name, m.Line, m.Column, r.key(f, m)})
			}
		}
	}
	sort.Slice(ps, func(i, j int) bool {
		a, b := ps[i], ps[j]
		if a.file != b.file {
			return a.file < b.file
		}
		if a.line != b.line {
			return a.line < b.line
		}
		if a.column != b.column {
			return a.column < b.column
		}
		return a.key < b.key
	})
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.key
	}
	return out
}

func (r result) summary(acc map[string]*acceptance) string {
	accepted := 0
	for _, k := range r.lived() {
		if acc[k] != nil {
			accepted++
		}
	}
	// Accepted mutants are equivalent: no test can kill them, so they
	// count as killed in the efficacy the goals are set against.
	eff := 0.0
	if r.Killed+r.Lived > 0 {
		eff = 100 * float64(r.Killed+accepted) / float64(r.Killed+r.Lived)
	}
	timedOut := 0
	for _, f := range r.Files {
		for _, m := range f.Mutations {
			if m.Status == "TIMED OUT" {
				timedOut++
			}
		}
	}
	unmapped := ""
	if n := r.unmappable(); n > 0 {
		unmapped = fmt.Sprintf(", %d of them on a case condition or a constant, which gremlins cannot map to coverage (go-gremlins/gremlins#298)", n)
	}
	if r.Ran > 0 {
		unmapped += fmt.Sprintf("; %d mutants on case conditions and constants run by this tool, counted in these figures", r.Ran)
	}
	return fmt.Sprintf("%-16s test efficacy %5.1f%% (%d killed, %d lived, %d of them accepted as equivalent: %.1f%% counting those), mutant coverage %5.1f%% (%d not covered%s), %d timed out, %d not viable, %.0fs",
		r.Pkg, r.Efficacy, r.Killed, r.Lived, accepted, eff, r.Coverage, r.NotCovered, unmapped, timedOut, r.NotViable, r.ElapsedTime)
}

// unmappable counts the NOT COVERED mutants that sit in a switch's case
// expression or a constant declaration. Go's coverage profile has no
// block there (a case's block starts after its colon), so gremlins v0.6.0
// reports them NOT COVERED and never runs them, however well tested the
// case is (go-gremlins/gremlins#298). The count says how much of the
// coverage gap is that; the mutants are not counted as covered.
func (r result) unmappable() int {
	n := 0
	for _, f := range r.Files {
		var spans []span
		for _, m := range f.Mutations {
			if m.Status != "NOT COVERED" {
				continue
			}
			if spans == nil {
				spans = caseAndConstSpans(r.path(f))
			}
			for _, sp := range spans {
				if sp.holds(m.Line, m.Column) {
					n++
					break
				}
			}
		}
	}
	return n
}

// path is where f is read from: gremlins names a file below the package
// it was given, or below the module root.
func (r result) path(f file) string {
	if strings.Contains(f.Name, "/") {
		return f.Name
	}
	return filepath.Join(r.Pkg, f.Name)
}

// span is a source range, from its first to its last line and column.
type span struct{ l0, c0, l1, c1 int }

func (s span) holds(line, col int) bool {
	after := line > s.l0 || line == s.l0 && col >= s.c0
	before := line < s.l1 || line == s.l1 && col <= s.c1
	return after && before
}

// caseAndConstSpans returns the spans of every case expression and every
// constant's value in a Go file (none when it cannot be parsed).
func caseAndConstSpans(path string) []span {
	fset := token.NewFileSet()
	af, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		return []span{}
	}
	out := []span{}
	add := func(e ast.Expr) {
		a, b := fset.Position(e.Pos()), fset.Position(e.End())
		out = append(out, span{a.Line, a.Column, b.Line, b.Column})
	}
	ast.Inspect(af, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CaseClause:
			for _, e := range n.List {
				add(e)
			}
		case *ast.GenDecl:
			if n.Tok == token.CONST {
				for _, sp := range n.Specs {
					for _, v := range sp.(*ast.ValueSpec).Values {
						add(v)
					}
				}
			}
		}
		return true
	})
	return out
}

func report(out io.Writer, r result, acc map[string]*acceptance) {
	fmt.Fprintln(out, r.summary(acc))
	for _, k := range r.lived() {
		if a := acc[k]; a != nil {
			a.used = true
			fmt.Fprintf(out, "  LIVED %s  [accepted: %s]\n", k, a.reason)
		} else {
			fmt.Fprintf(out, "  LIVED %s\n", k)
		}
	}
}

type acceptance struct {
	key, reason string
	line        int
	used        bool
}

// readAccepted reads lines "FILE:LINE:COL MUTATOR  reason" (# comments,
// blank lines). Every entry must say why the mutant is equivalent.
func readAccepted(path string) (map[string]*acceptance, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]*acceptance{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseAccepted(path, f)
}

func parseAccepted(path string, r io.Reader) (map[string]*acceptance, error) {
	out := map[string]*acceptance{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("%s:%d: want FILE:LINE:COL MUTATOR reason, got %q", path, n, line)
		}
		var l, c int
		pos := fields[0]
		if i := strings.Index(pos, ":"); i < 0 || !strings.HasSuffix(pos[:i], ".go") {
			return nil, fmt.Errorf("%s:%d: %q is not FILE.go:LINE:COL", path, n, pos)
		} else if _, err := fmt.Sscanf(pos[i+1:], "%d:%d", &l, &c); err != nil {
			return nil, fmt.Errorf("%s:%d: %q is not FILE.go:LINE:COL", path, n, pos)
		}
		key := fields[0] + " " + fields[1]
		if prev := out[key]; prev != nil {
			return nil, fmt.Errorf("%s:%d: %s is already on line %d", path, n, key, prev.line)
		}
		out[key] = &acceptance{key: key, reason: strings.Join(fields[2:], " "), line: n}
	}
	return out, sc.Err()
}

// inAny reports whether the mutant key names a file of one of pkgs.
func inAny(key string, pkgs []string) bool {
	for _, p := range pkgs {
		if strings.HasPrefix(key, strings.TrimSuffix(strings.TrimPrefix(p, "./"), "/")+"/") {
			return true
		}
	}
	return false
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
