package spec

import (
	"os"
	"path/filepath"
	"testing"
)

// The example specs shipped in specs/ must decode, validate, be unique and
// pass the default policy, since `make run` starts an agent on them.
func TestExampleSpecs(t *testing.T) {
	files, err := filepath.Glob("../../specs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example specs in ../../specs: %v", err)
	}
	var all []*Spec
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		specs, err := Decode(filepath.Base(f), data)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		for _, s := range specs {
			if errs := DefaultPolicy().Check(s); len(errs) > 0 {
				t.Errorf("refused by the default policy:\n%v", errs)
			}
		}
		all = append(all, specs...)
	}
	if errs := ValidateSet(all); len(errs) > 0 {
		t.Errorf("%v", errs)
	}
}
