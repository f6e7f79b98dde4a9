package store

import (
	"testing"

	"github.com/reconciler/reconciler/pkg/spec"
)

func TestArrivalOrderKeptAcrossUpdatesAndReopen(t *testing.T) {
	path := t.TempDir() + "/state.db"
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	put := func(s *Store, name, image string) {
		t.Helper()
		sp := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: name},
			Spec: spec.ContainerSpec{Image: image}}
		if err := s.PutSpec(Record{Spec: sp, Hash: sp.Hash(), Source: Source{Kind: SourceAPI}}); err != nil {
			t.Fatal(err)
		}
	}
	arrival := func(s *Store, name string) uint64 {
		t.Helper()
		r, err := s.GetSpec(name)
		if err != nil {
			t.Fatal(err)
		}
		return r.Arrival
	}
	put(s, "b", "x")
	put(s, "a", "x")
	first, second := arrival(s, "b"), arrival(s, "a")
	if first == 0 || second <= first {
		t.Fatalf("arrivals b=%d a=%d: want b first, both set", first, second)
	}
	put(s, "b", "y") // an update is no new arrival
	if got := arrival(s, "b"); got != first {
		t.Fatalf("update changed b's arrival from %d to %d", first, got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put(s, "c", "x")
	if got := arrival(s, "c"); got <= second {
		t.Fatalf("after reopen c arrived as %d, not after a (%d)", got, second)
	}
	if err := s.DeleteSpec("b"); err != nil {
		t.Fatal(err)
	}
	put(s, "b", "x") // deleted and applied again: a new arrival
	if got := arrival(s, "b"); got <= arrival(s, "c") {
		t.Fatalf("re-applied b arrived as %d, not after c", got)
	}
}
