package source

import (
	"strings"
	"testing"
)

func TestDependsOnCycleAcrossFilesIsRefused(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", doc("a", "tick")+"  dependsOn: [{name: b}]\n")
	f.write("b.yaml", doc("b", "tick"))
	f.sync()
	if got := f.specs(); got["a"] != "tick" || got["b"] != "tick" || len(f.src.Errors()) != 0 {
		t.Fatalf("no cycle yet: specs %v, errors %v", got, f.src.Errors())
	}
	f.takeChanged()

	// b now depends on a: the cycle a -> b -> a. b.yaml is what changed,
	// so it is refused and its last good spec stays.
	f.write("b.yaml", doc("b", "sleep")+"  dependsOn: [{name: a}]\n")
	f.sync()
	if got := f.specs(); got["b"] != "tick" {
		t.Fatalf("the file closing the cycle was taken: %v", got)
	}
	if got := f.takeChanged(); len(got) != 0 {
		t.Fatalf("changes %v, want none", got)
	}
	errs := f.src.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Path, "b.yaml") ||
		!strings.Contains(errs[0].Error, "b.yaml:7: spec.dependsOn[0].name: dependsOn cycle: a -> b -> a") ||
		!strings.Contains(errs[0].Error, "a.yaml") {
		t.Fatalf("errors %+v, want b.yaml refused, naming the cycle and both files", errs)
	}

	// New files forming a cycle together are both refused, and nothing of
	// them is stored.
	f.write("c.yaml", doc("c", "tick")+"  dependsOn: [{name: d}]\n")
	f.write("d.yaml", doc("d", "tick")+"  dependsOn: [{name: c}]\n")
	f.sync()
	if got := f.specs(); got["c"] != "" || got["d"] != "" {
		t.Fatalf("a new cycle was stored: %v", got)
	}
	if n := len(f.src.Errors()); n != 3 {
		t.Fatalf("errors %+v, want b.yaml, c.yaml and d.yaml", f.src.Errors())
	}

	// Breaking the cycle takes the files again.
	f.write("b.yaml", doc("b", "sleep"))
	f.write("d.yaml", doc("d", "tick"))
	f.sync()
	if got := f.specs(); got["b"] != "sleep" || got["c"] != "tick" || got["d"] != "tick" || len(f.src.Errors()) != 0 {
		t.Fatalf("after the fix: specs %v, errors %v", got, f.src.Errors())
	}
}
