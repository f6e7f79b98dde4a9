package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The client subcommands speak to the agent through pkg/api's client and
// wire types only; the agent's internals (its state file, spec directory,
// Docker layer) are for the `agent` subcommand's wiring alone (agent.go
// and its agent_*.go parts).
func TestClientImportsOnlyTheAPI(t *testing.T) {
	const mod = "github.com/reconciler/reconciler/pkg/"
	allowed := map[string]bool{"api": true, "spec": true, "model": true, "export": true}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "agent.go" || strings.HasPrefix(f, "agent_") { // the agent's wiring
			continue
		}
		pf, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range pf.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if pkg, ok := strings.CutPrefix(path, mod); ok && !allowed[pkg] {
				t.Errorf("%s imports %s: give pkg/api a wire type or method for it instead", f, path)
			}
		}
	}
	if checked < 5 {
		t.Fatalf("checked %d files: the test is not looking at the client's sources", checked)
	}
}
