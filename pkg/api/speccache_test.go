package api_test

import (
	"net/http"
	"testing"
)

// The store keeps decoded specs: every read through the API after a write
// through it must see that write, and a deleted spec must be gone.
func TestReadsAfterWritesSeeTheWrite(t *testing.T) {
	f := newFixture(t)
	image := func(want string) {
		t.Helper()
		got, err := f.c.Get(t.Context(), "web")
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Spec.Image != want {
			t.Fatalf("GET web: image %q, want %q", got.Spec.Spec.Image, want)
		}
		list, err := f.c.List(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Spec.Spec.Image != want {
			t.Fatalf("list: %+v, want only web with image %q", list, want)
		}
	}
	f.apply(specYAML("web", "box:1"))
	image("box:1")
	image("box:1") // from the cache
	f.apply(specYAML("web", "box:2"))
	image("box:2")
	// A field that leaves the hash alone is a new spec all the same.
	f.apply(specYAML("web", "box:2", "backoff: {initial: 3s}"))
	got, err := f.c.Get(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Spec.Backoff.Initial.Duration == 0 {
		t.Fatalf("GET web after a backoff change: %+v", got.Spec.Spec.Backoff)
	}
	if err := f.c.Delete(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	_, err = f.c.Get(t.Context(), "web")
	apiError(t, err, http.StatusNotFound)
	if list, err := f.c.List(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("list after delete: %+v, %v", list, err)
	}
	f.apply(specYAML("web", "box:3"))
	image("box:3")
}
