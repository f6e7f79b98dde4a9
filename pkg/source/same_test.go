package source

import (
	"testing"
)

// TestAFieldOutsideTheHashIsStored: a file that changes only a field the
// hash leaves out (priority, backoff) still updates the stored spec; an
// unchanged file still stores nothing.
func TestAFieldOutsideTheHashIsStored(t *testing.T) {
	f := newFixture(t)
	f.write("job.yaml", doc("job", "exit")+"  priority: 1\n")
	f.sync()
	f.takeChanged()
	f.sync()
	if got := f.takeChanged(); len(got) != 0 {
		t.Fatalf("a no-op sync reported %v", got)
	}
	f.write("job.yaml", doc("job", "exit")+"  priority: 9\n")
	f.sync()
	if got := f.takeChanged(); len(got) != 1 {
		t.Fatalf("changed = %v, want job", got)
	}
	r, err := f.st.GetSpec("job")
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.Spec.Priority != 9 {
		t.Fatalf("stored priority %d, want 9", r.Spec.Spec.Priority)
	}
}
