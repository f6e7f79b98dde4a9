package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/store"
)

// The store keeps decoded specs: after each Sync, reads of a file spec see
// the file as it is now, and a removed file's spec is gone.
func TestReadsAfterFileChangesSeeTheChange(t *testing.T) {
	f := newFixture(t)
	args := func(want string) {
		t.Helper()
		r, err := f.st.GetSpec("web")
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(r.Spec.Spec.Args, " "); got != want {
			t.Fatalf("GetSpec(web): args %q, want %q", got, want)
		}
		if got := f.specs()["web"]; got != want {
			t.Fatalf("ListSpecs: web has args %q, want %q", got, want)
		}
	}
	f.write("web.yaml", doc("web", "sleep"))
	f.sync()
	args("sleep")
	args("sleep") // from the cache
	f.write("web.yaml", doc("web", "tick"))
	f.sync()
	args("tick")
	// Moved to another file: same spec, another source path.
	if err := os.Rename(filepath.Join(f.dir, "web.yaml"), filepath.Join(f.dir, "moved.yaml")); err != nil {
		t.Fatal(err)
	}
	f.sync()
	r, err := f.st.GetSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(f.dir, "moved.yaml"); r.Source.Path != want {
		t.Fatalf("source path after a move = %q, want %q", r.Source.Path, want)
	}
	if err := os.Remove(filepath.Join(f.dir, "moved.yaml")); err != nil {
		t.Fatal(err)
	}
	f.sync()
	if _, err := f.st.GetSpec("web"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetSpec(web) after its file was removed = %v, want ErrNotFound", err)
	}
	if got := f.specs(); len(got) != 0 {
		t.Fatalf("ListSpecs after the file was removed = %v", got)
	}
	f.write("web.yaml", doc("web", "countdown"))
	f.sync()
	args("countdown")
}
