package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/scanner"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"
)

// tokenMutations is gremlins v0.6.0's table (internal/engine/mappings.go)
// of what each mutator turns a token into, for the mutators whose mutants
// land on a case condition or a constant.
var tokenMutations = map[string]map[token.Token]token.Token{
	"ARITHMETIC_BASE":       {token.ADD: token.SUB, token.MUL: token.QUO, token.QUO: token.MUL, token.REM: token.MUL, token.SUB: token.ADD},
	"CONDITIONALS_BOUNDARY": {token.GEQ: token.GTR, token.GTR: token.GEQ, token.LEQ: token.LSS, token.LSS: token.LEQ},
	"CONDITIONALS_NEGATION": {token.EQL: token.NEQ, token.GEQ: token.LSS, token.GTR: token.LEQ, token.LEQ: token.GTR, token.LSS: token.GEQ, token.NEQ: token.EQL},
	"INVERT_BITWISE":        {token.AND: token.OR, token.OR: token.AND, token.XOR: token.AND, token.AND_NOT: token.AND, token.SHL: token.SHR, token.SHR: token.SHL},
	"INVERT_LOGICAL":        {token.LAND: token.LOR, token.LOR: token.LAND},
	"INVERT_NEGATIVES":      {token.SUB: token.ADD},
}

// mutate returns src with the token at line:col turned as the mutator
// kind turns it.
func mutate(src []byte, line, col int, kind string) ([]byte, error) {
	table, ok := tokenMutations[kind]
	if !ok {
		return nil, fmt.Errorf("mutator %s is not one this tool applies", kind)
	}
	fset := token.NewFileSet()
	f := fset.AddFile("", fset.Base(), len(src))
	var s scanner.Scanner
	s.Init(f, src, nil, 0)
	for {
		pos, tok, _ := s.Scan()
		if tok == token.EOF {
			return nil, fmt.Errorf("no token at %d:%d", line, col)
		}
		p := f.Position(pos)
		if p.Line != line || p.Column != col {
			continue
		}
		to, ok := table[tok]
		if !ok {
			return nil, fmt.Errorf("%s does not apply to %q at %d:%d", kind, tok, line, col)
		}
		off := f.Offset(pos)
		out := append([]byte{}, src[:off]...)
		out = append(out, to.String()...)
		return append(out, src[off+len(tok.String()):]...), nil
	}
}

// unmapped is one NOT COVERED mutant on a case condition or a constant.
type unmapped struct {
	path string // the file, as read here
	m    *mutation
}

// runUnmapped runs, the way gremlins runs a mutant, the NOT COVERED
// mutants gremlins never ran because they sit where Go's coverage has no
// block (go-gremlins/gremlins#298): each is applied through go test's
// -overlay, the package's tests run with -failfast under coefficient
// times a clean run's time, and its status is set as gremlins would set
// it (exit 1 KILLED, exit 2 NOT VIABLE, 0 LIVED, the deadline TIMED OUT).
// The figures are then recomputed with gremlins' formulas.
func runUnmapped(r *result, workers, coefficient int, tmp string) error {
	var todo []unmapped
	for fi := range r.Files {
		f := &r.Files[fi]
		var spans []span
		for mi := range f.Mutations {
			m := &f.Mutations[mi]
			if m.Status != "NOT COVERED" {
				continue
			}
			if spans == nil {
				spans = caseAndConstSpans(r.path(*f))
			}
			for _, sp := range spans {
				if sp.holds(m.Line, m.Column) {
					todo = append(todo, unmapped{r.path(*f), m})
					break
				}
			}
		}
	}
	if len(todo) == 0 {
		return nil
	}
	t0 := time.Now()
	if out, err := goTest(context.Background(), r.Pkg, ""); err != nil {
		return fmt.Errorf("the tests of %s fail unmutated: %v\n%s", r.Pkg, err, lastLines(string(out), 30))
	}
	limit := time.Since(t0) * time.Duration(coefficient)

	jobs := make(chan int)
	errs := make([]error, len(todo))
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for i := range jobs {
				errs[i] = runOne(r.Pkg, todo[i], limit, filepath.Join(tmp, fmt.Sprintf("unmapped-%d", i)))
			}
		})
	}
	for i := range todo {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.Ran = len(todo)
	r.recount()
	return nil
}

// runOne applies u through an overlay in dir and runs the tests.
func runOne(pkg string, u unmapped, limit time.Duration, dir string) error {
	src, err := os.ReadFile(u.path)
	if err != nil {
		return err
	}
	mutated, err := mutate(src, u.m.Line, u.m.Column, u.m.Type)
	if err != nil {
		return fmt.Errorf("%s:%d:%d: %w", u.path, u.m.Line, u.m.Column, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(u.path)
	if err != nil {
		return err
	}
	file := filepath.Join(dir, filepath.Base(u.path))
	if err := os.WriteFile(file, mutated, 0o644); err != nil {
		return err
	}
	overlay, err := json.Marshal(map[string]map[string]string{"Replace": {abs: file}})
	if err != nil {
		return err
	}
	ov := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ov, overlay, 0o644); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	_, err = goTest(ctx, pkg, ov, "-failfast", "-timeout", (limit + 2*time.Second).String())
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		u.m.Status = "TIMED OUT"
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		u.m.Status = "KILLED"
	case errors.As(err, &exit) && exit.ExitCode() == 2:
		u.m.Status = "NOT VIABLE"
	case err != nil:
		return fmt.Errorf("go test on %s:%d:%d: %w", u.path, u.m.Line, u.m.Column, err)
	default:
		u.m.Status = "LIVED"
	}
	return nil
}

// goTest runs the package's tests once, uncached, under the memory cap,
// with the overlay when one is named.
func goTest(ctx context.Context, pkg, overlay string, args ...string) ([]byte, error) {
	cmdArgs := []string{"test", "-count=1"}
	if overlay != "" {
		cmdArgs = append(cmdArgs, "-overlay", overlay)
	}
	cmdArgs = append(append(cmdArgs, args...), pkg)
	cmd := capped(ctx, "go", cmdArgs...)
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// recount sets the counts and figures from the mutants' statuses, with
// gremlins' formulas.
func (r *result) recount() {
	r.Killed, r.Lived, r.NotCovered, r.NotViable = 0, 0, 0, 0
	for _, f := range r.Files {
		for _, m := range f.Mutations {
			switch m.Status {
			case "KILLED":
				r.Killed++
			case "LIVED":
				r.Lived++
			case "NOT COVERED":
				r.NotCovered++
			case "NOT VIABLE":
				r.NotViable++
			}
		}
	}
	r.Efficacy, r.Coverage = 0, 0
	if r.Killed > 0 {
		r.Efficacy = 100 * float64(r.Killed) / float64(r.Killed+r.Lived)
	}
	if r.Killed+r.Lived > 0 {
		r.Coverage = 100 * float64(r.Killed+r.Lived) / float64(r.Killed+r.Lived+r.NotCovered)
	}
}
