package docker

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// The store and the Docker layer share one set of not-found and conflict
// errors, so that a caller (the API's status codes, the controller) tests
// a kind once, whichever layer the error came from.
func TestSentinelsAcrossLayers(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s := &spec.Spec{APIVersion: "reconciler/v1", Kind: "Container",
		Metadata: spec.Metadata{Name: "web"}, Spec: spec.ContainerSpec{Image: "reconciler/box:latest"}}
	if err := st.PutSpec(store.Record{Spec: s, Hash: "h", Source: store.Source{Kind: store.SourceFile, Path: "/specs/web.yaml"}}); err != nil {
		t.Fatal(err)
	}
	_, storeMissing := st.GetSpec("nope")
	storeConflict := st.PutSpec(store.Record{Spec: s, Hash: "h2", Source: store.Source{Kind: store.SourceAPI}})
	dockerMissing := classify(fmt.Errorf("inspect: %w", cerrdefs.ErrNotFound.WithMessage("No such container: x")))
	dockerConflict := classify(fmt.Errorf("create: %w", cerrdefs.ErrConflict.WithMessage(`name "/reconciler-web" is already in use`)))

	for name, tc := range map[string]struct {
		err      error
		notFound bool // else a conflict
	}{
		"store: missing spec":       {storeMissing, true},
		"store: file spec over API": {storeConflict, false},
		"docker: missing container": {dockerMissing, true},
		"docker: name in use":       {dockerConflict, false},
	} {
		if tc.err == nil {
			t.Fatalf("%s: no error; the test proves nothing", name)
		}
		notFound := map[string]bool{
			"errdefs.IsNotFound": cerrdefs.IsNotFound(tc.err),
			"store.ErrNotFound":  errors.Is(tc.err, store.ErrNotFound),
			"docker.ErrNotFound": errors.Is(tc.err, ErrNotFound),
		}
		conflict := map[string]bool{
			"errdefs.IsConflict": cerrdefs.IsConflict(tc.err),
			"store.ErrConflict":  errors.Is(tc.err, store.ErrConflict),
			"docker.ErrConflict": errors.Is(tc.err, ErrConflict),
		}
		for kind, got := range notFound {
			if got != tc.notFound {
				t.Errorf("%s (%v): %s = %v, want %v", name, tc.err, kind, got, tc.notFound)
			}
		}
		for kind, got := range conflict {
			if got == tc.notFound {
				t.Errorf("%s (%v): %s = %v, want %v", name, tc.err, kind, got, !tc.notFound)
			}
		}
		if errors.Is(tc.err, ErrUnavailable) || cerrdefs.IsUnavailable(tc.err) {
			t.Errorf("%s (%v): reads as unavailable", name, tc.err)
		}
	}
}

// ErrUnavailable keeps its own words and is errdefs' unavailable kind.
func TestErrUnavailable(t *testing.T) {
	err := fmt.Errorf("list containers: %w", ErrUnavailable)
	if !cerrdefs.IsUnavailable(err) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("%v: not errdefs' unavailable kind", err)
	}
	if err.Error() != "list containers: docker daemon unavailable" {
		t.Errorf("message %q", err)
	}
	if cerrdefs.IsNotFound(err) || cerrdefs.IsConflict(err) {
		t.Errorf("%v reads as another kind", err)
	}
}
