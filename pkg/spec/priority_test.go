package spec

import (
	"strings"
	"testing"
)

func TestPriorityDecodeAndValidate(t *testing.T) {
	doc := func(p string) []byte {
		return []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: job}\nspec:\n  image: reconciler/box:latest\n  priority: " + p + "\n")
	}
	specs, err := Decode("job.yaml", doc("10"))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := specs[0].Spec.Priority; got != 10 {
		t.Fatalf("priority = %d, want 10", got)
	}
	if _, err := Decode("job.yaml", doc("-5")); err != nil {
		t.Fatalf("negative priority: %v", err)
	}
	for _, bad := range []struct{ val, want string }{
		{"2000000000", "job.yaml:6: spec.priority: 2000000000 is out of range"},
		{"high", "job.yaml:6"},
	} {
		_, err := Decode("job.yaml", doc(bad.val))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("priority %s: err = %v, want it to contain %q", bad.val, err, bad.want)
		}
	}
}

// Changing only the priority must not replace a running container: it
// orders admission, nothing in the container depends on it.
func TestPriorityNotInHash(t *testing.T) {
	a := &Spec{APIVersion: APIVersion, Kind: KindContainer, Metadata: Metadata{Name: "job"},
		Spec: ContainerSpec{Image: "reconciler/box:latest"}}
	b := *a
	b.Spec.Priority = 7
	if a.Hash() != b.Hash() {
		t.Fatalf("hash changed with priority: %s vs %s", a.Hash(), b.Hash())
	}
	c := b
	c.Spec.Image = "reconciler/box:v2"
	if c.Hash() == b.Hash() {
		t.Fatal("positive control: a changed image must change the hash")
	}
}
