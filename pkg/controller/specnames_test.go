package controller

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// A store that can list names without decoding is asked for them; any
// other Store gives them through ListSpecs. Both give the same names.
func TestSpecNames(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, name := range []string{"web", "db", "cache"} {
		sp := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
			Spec: spec.ContainerSpec{Image: "reconciler/box:latest"}}
		sp.Default()
		if err := s.PutSpec(store.Record{Spec: sp, Hash: sp.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"cache", "db", "web"}
	if _, ok := Store(s).(specNamer); !ok {
		t.Fatal("*store.Store does not list names without decoding")
	}
	got, err := specNames(s)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("specNames(store) = %v, %v; want %v", got, err, want)
	}
	// Only the Store interface: no SpecNames.
	plain := struct{ Store }{s}
	if _, ok := Store(plain).(specNamer); ok {
		t.Fatal("the wrapper should hide SpecNames")
	}
	got, err = specNames(plain)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("specNames(plain Store) = %v, %v; want %v", got, err, want)
	}
}
