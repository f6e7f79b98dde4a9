package spec

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzDecode checks that Decode never panics, that every error is an
// ErrorList naming the file, and that whatever it accepts validates and
// survives a Marshal/Decode round trip with the same hash.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../../specs/*.yaml")
	for _, file := range append(seeds, examples...) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(billionLaughs))
	f.Add([]byte(mergeBomb))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := Decode("fuzz.yaml", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error without file or message: %#v", e)
				}
			}
			if specs != nil {
				t.Fatalf("%d specs returned with an error", len(specs))
			}
			return
		}
		if errs := ValidateSet(specs); len(errs) > 0 {
			t.Fatalf("accepted specs with one name: %v", errs)
		}
		for _, s := range specs {
			if errs := s.Validate(); len(errs) > 0 {
				t.Fatalf("accepted a spec that does not validate: %v", errs)
			}
			out, err := yaml.Marshal(s)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			again, err := Decode("again.yaml", out)
			if err != nil {
				t.Fatalf("the marshalled spec does not decode: %v\n%s", err, out)
			}
			if len(again) != 1 || again[0].Hash() != s.Hash() {
				t.Fatalf("hash changed across Marshal and Decode:\n%s", out)
			}
		}
	})
}

// FuzzDecodeJSON checks that DecodeJSON never panics, that every error is
// a non-empty ErrorList, and that whatever it accepts validates.
func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"reconciler/v1","kind":"Container","metadata":{"name":"a"},"spec":{"image":"x","args":["a","b"]}}`))
	f.Add([]byte(`[{"apiVersion":"reconciler/v1","kind":"Container","metadata":{"name":"a"},"spec":{"image":"x"}},{}]`))
	f.Add([]byte("[\n1,\n[2, [3]],\n{\"a\": null, \"b\": true, \"c\": 1.5e3}\n]"))
	f.Add([]byte(`{"spec": {"args": ["a", "a", "a"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := DecodeJSON(data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %v (%T) is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.Msg == "" {
					t.Fatalf("error without a message: %#v", e)
				}
			}
			return
		}
		for _, s := range specs {
			if errs := s.Validate(); len(errs) > 0 {
				t.Fatalf("accepted a spec that does not validate: %v", errs)
			}
		}
	})
}
