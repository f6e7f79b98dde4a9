package spec

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciler/reconciler/pkg/spec/spectest"
)

// Every door a spec author may try is refused by what the agent, the API
// and `reconciler validate` all run (Load), naming the file, the line, the
// field and the rule; the same spec without the door passes.
func TestHostileSpecs(t *testing.T) {
	dir := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := &Policy{AllowedSecretPaths: []string{dir}}
	doc := func(name string, lines []string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: %s}\nspec:\n  image: reconciler/box:latest\n", name)
		for _, l := range lines {
			b.WriteString("  " + l + "\n")
		}
		return b.String()
	}
	if _, err := Load("benign.yaml", []byte(doc("benign", nil)), policy); err != nil {
		t.Fatalf("the spec without a door is refused: %v", err)
	}
	for _, d := range spectest.HostileDoors(dir, "shared-data") {
		t.Run(d.Name, func(t *testing.T) {
			_, err := Load("hostile.yaml", []byte(doc("hostile", d.Spec)), policy)
			list, ok := err.(ErrorList)
			if !ok || len(list) != 1 {
				t.Fatalf("Load = %v, want one error", err)
			}
			e := list[0]
			if e.File != "hostile.yaml" || e.Line != 6 || e.Path != d.Field || e.Rule != d.Rule {
				t.Errorf("got %s (rule %q), want hostile.yaml:6: %s with rule %q", e, e.Rule, d.Field, d.Rule)
			}
			if d.Rule != "" && !strings.Contains(e.Msg, d.Rule) {
				t.Errorf("%q does not name %s", e.Msg, d.Rule)
			}
		})
	}
}
