package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/spec"
)

// fullSpec sets every field reachable in a spec (by reflection, so that a
// field added later is covered too): pointers point, slices and maps hold
// one element, strings and numbers are non-zero.
func fullSpec(t testing.TB) *spec.Spec {
	t.Helper()
	v := reflect.New(reflect.TypeFor[spec.Spec]())
	fill(t, v.Elem(), 0)
	return v.Interface().(*spec.Spec)
}

func fill(t testing.TB, v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(0.5)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), depth+1)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), depth+1)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k, depth+1)
		fill(t, e, depth+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), depth+1)
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), depth+1)
		}
	}
}

// change alters every value reachable from v in place, through pointers,
// slices and maps: what a caller changing its record could do.
func change(v reflect.Value, depth int) {
	if depth > 8 {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "-changed")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1)
	case reflect.Pointer:
		if !v.IsNil() {
			change(v.Elem(), depth+1)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			change(v.Index(i), depth+1)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(it.Value())
			change(e, depth+1)
			v.SetMapIndex(it.Key(), e)
		}
		v.SetMapIndex(reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				change(v.Field(i), depth+1)
			}
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A record read from the cache is the caller's own: changing anything in
// it, however deep, changes neither the cache nor what the next read gets.
func TestSpecCacheHandsOutCopies(t *testing.T) {
	s, _ := openTest(t, Options{})
	r := record("web", apiSource())
	r.Spec = fullSpec(t)
	r.Spec.Metadata.Name = "web"
	if err := s.PutSpec(r); err != nil {
		t.Fatal(err)
	}
	first, err := s.GetSpec("web") // decodes and fills the cache
	if err != nil {
		t.Fatal(err)
	}
	want := mustJSON(t, first)
	for i, read := range []func() (Record, error){
		func() (Record, error) { return s.GetSpec("web") },
		func() (Record, error) {
			l, err := s.ListSpecs()
			if err != nil || len(l) != 1 {
				return Record{}, fmt.Errorf("ListSpecs = %d records, %v", len(l), err)
			}
			return l[0], nil
		},
	} {
		got, err := read()
		if err != nil {
			t.Fatal(err)
		}
		if j := mustJSON(t, got); j != want {
			t.Fatalf("read %d from the cache = %s, want %s", i, j, want)
		}
		change(reflect.ValueOf(got.Spec), 0)
		change(reflect.ValueOf(first.Spec), 0)
		if mustJSON(t, got) == want {
			t.Fatal("change() changed nothing: the test proves nothing")
		}
		again, err := s.GetSpec("web")
		if err != nil {
			t.Fatal(err)
		}
		if j := mustJSON(t, again); j != want {
			t.Fatalf("after a caller changed its record (read %d), the next read = %s, want %s", i, j, want)
		}
	}
}

// ViewSpec shares the cached record instead of copying it, and a write
// replaces the cached record rather than changing it: a record viewed
// before a write still reads as it was, and the next view has the write.
func TestViewSpecSharesTheRecordAWriteReplaces(t *testing.T) {
	s, clk := openTest(t, Options{})
	r := record("web", apiSource())
	r.Spec.Spec.Image = "a:1"
	if err := s.PutSpec(r); err != nil {
		t.Fatal(err)
	}
	old, err := s.ViewSpec("web") // decodes and fills the cache
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.ViewSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if again.Spec != old.Spec {
		t.Fatal("two views of a cached spec gave two copies: ViewSpec copies")
	}
	if got, _ := s.GetSpec("web"); got.Spec == old.Spec {
		t.Fatal("GetSpec handed out the cached spec itself")
	}
	want := mustJSON(t, old)
	r.Spec.Spec.Image = "a:2"
	clk.Advance(time.Second)
	if err := s.PutSpec(r); err != nil {
		t.Fatal(err)
	}
	if j := mustJSON(t, old); j != want {
		t.Fatalf("a viewed record changed under its reader after a write: %s, want %s", j, want)
	}
	now, err := s.ViewSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if now.Spec.Spec.Image != "a:2" {
		t.Fatalf("view after the write = %q, want a:2", now.Spec.Spec.Image)
	}
	if err := s.DeleteSpec("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ViewSpec("web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ViewSpec after delete = %v, want ErrNotFound", err)
	}
}

// Every write of a spec is seen by the next read, whichever way it went
// in, and a deleted spec is gone, from the cache too.
func TestSpecCacheFollowsWrites(t *testing.T) {
	s, clk := openTest(t, Options{})
	read := func(name string) (Record, error) {
		t.Helper()
		got, err := s.GetSpec(name)
		viewed, verr := s.ViewSpec(name)
		if (err == nil) != (verr == nil) || err == nil && mustJSON(t, viewed) != mustJSON(t, got) {
			t.Fatalf("GetSpec(%q) = %v and ViewSpec = %v disagree:\n%s\n%s", name, err, verr, mustJSON(t, got), mustJSON(t, viewed))
		}
		l, lerr := s.ListSpecs()
		if lerr != nil {
			t.Fatal(lerr)
		}
		var listed *Record
		for i := range l {
			if l[i].Spec.Metadata.Name == name {
				listed = &l[i]
			}
		}
		names, nerr := s.SpecNames()
		if nerr != nil {
			t.Fatal(nerr)
		}
		if len(names) != len(l) {
			t.Fatalf("SpecNames = %v, but ListSpecs has %d records", names, len(l))
		}
		for i := range l {
			if names[i] != l[i].Spec.Metadata.Name {
				t.Fatalf("SpecNames = %v, out of step with ListSpecs at %d", names, i)
			}
		}
		switch {
		case err != nil && listed != nil:
			t.Fatalf("GetSpec(%q) = %v, but ListSpecs has it", name, err)
		case err == nil && listed == nil:
			t.Fatalf("GetSpec(%q) found it, but ListSpecs has not", name)
		case err == nil && mustJSON(t, *listed) != mustJSON(t, got):
			t.Fatalf("GetSpec(%q) and ListSpecs disagree:\n%s\n%s", name, mustJSON(t, got), mustJSON(t, *listed))
		}
		return got, err
	}
	image := func(name string) string {
		t.Helper()
		r, err := read(name)
		if err != nil {
			t.Fatal(err)
		}
		return r.Spec.Spec.Image
	}
	put := func(name, img string, src Source) error {
		r := record(name, src)
		r.Spec.Spec.Image = img
		clk.Advance(time.Second)
		return s.PutSpec(r)
	}

	if err := put("web", "a:1", apiSource()); err != nil {
		t.Fatal(err)
	}
	if got := image("web"); got != "a:1" {
		t.Fatalf("image = %q, want a:1", got)
	}
	// An API write replaces an API spec.
	if err := put("web", "a:2", apiSource()); err != nil {
		t.Fatal(err)
	}
	if got := image("web"); got != "a:2" {
		t.Fatalf("after an API write, image = %q, want a:2", got)
	}
	// Same spec, only UpdatedAt differs: still the new record.
	before, _ := read("web")
	if err := put("web", "a:2", apiSource()); err != nil {
		t.Fatal(err)
	}
	if after, _ := read("web"); !after.UpdatedAt.After(before.UpdatedAt) {
		t.Fatalf("after a rewrite, UpdatedAt = %v, want after %v", after.UpdatedAt, before.UpdatedAt)
	}
	// A file takes the spec over.
	if err := put("web", "f:1", fileSource("/specs/web.yaml")); err != nil {
		t.Fatal(err)
	}
	if r, _ := read("web"); r.Spec.Spec.Image != "f:1" || r.Source.Kind != SourceFile {
		t.Fatalf("after the file took over: %s", mustJSON(t, r))
	}
	// A refused API write leaves the file's spec.
	if err := put("web", "a:3", apiSource()); !errors.Is(err, ErrConflict) {
		t.Fatalf("API write over a file spec = %v, want ErrConflict", err)
	}
	if got := image("web"); got != "f:1" {
		t.Fatalf("after a refused write, image = %q, want f:1", got)
	}
	if err := put("web", "f:2", fileSource("/specs/web.yaml")); err != nil {
		t.Fatal(err)
	}
	if got := image("web"); got != "f:2" {
		t.Fatalf("after a file write, image = %q, want f:2", got)
	}
	// Deleted: not found, and not kept in the cache.
	if err := s.DeleteSpec("web"); err != nil {
		t.Fatal(err)
	}
	if _, err := read("web"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GetSpec after delete = %v, want ErrNotFound", err)
	}
	if n := s.specs.len(); n != 0 {
		t.Fatalf("cache holds %d entries after the only spec was deleted", n)
	}
	// Recreated under the same name.
	if err := put("web", "a:4", apiSource()); err != nil {
		t.Fatal(err)
	}
	if got := image("web"); got != "a:4" {
		t.Fatalf("after recreation, image = %q, want a:4", got)
	}
}

// The cache checks the bytes the file holds, not only its own
// invalidation: a spec written behind the store's back (here, straight
// into the bucket, as a migration would) is read as written.
func TestSpecCacheChecksStoredBytes(t *testing.T) {
	s, _ := openTest(t, Options{})
	if err := s.PutSpec(record("web", apiSource())); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSpec("web"); err != nil { // cached
		t.Fatal(err)
	}
	r := record("web", apiSource())
	r.Spec.Spec.Image = "behind:1"
	if err := s.update(func(tx *bolt.Tx) error { return put(tx.Bucket(bucketSpecs), []byte("web"), r) }); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if got.Spec.Spec.Image != "behind:1" {
		t.Fatalf("image = %q after a write the cache was not told of, want behind:1", got.Spec.Spec.Image)
	}
}

// BenchmarkGetSpec is one read of a cached spec, against decoding it.
func BenchmarkGetSpec(b *testing.B) {
	s, _ := openTest(b, Options{})
	r := record("web", apiSource())
	r.Spec.Spec.Args = []string{"sleep"}
	r.Spec.Default()
	if err := s.PutSpec(r); err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.GetSpec("web"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("copy", func(b *testing.B) {
		got, _ := s.GetSpec("web")
		for b.Loop() {
			copyRecord(got)
		}
	})
	b.Run("decode", func(b *testing.B) {
		raw, _ := json.Marshal(r)
		for b.Loop() {
			var r Record
			if err := json.Unmarshal(raw, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Readers racing a writer may cache what they read before a write, but
// never serve it after: the writer reads its own write back every time.
func TestSpecCacheRacingReaders(t *testing.T) {
	s, _ := openTest(t, Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = s.GetSpec("web")
				_, _ = s.ListSpecs()
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for i := range 200 {
		want := fmt.Sprintf("img:%d", i)
		r := record("web", apiSource())
		r.Spec.Spec.Image = want
		if err := s.PutSpec(r); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetSpec("web")
		if err != nil {
			t.Fatal(err)
		}
		l, err := s.ListSpecs()
		if err != nil {
			t.Fatal(err)
		}
		if got.Spec.Spec.Image != want || len(l) != 1 || l[0].Spec.Spec.Image != want {
			t.Fatalf("after writing %s: GetSpec has %s, ListSpecs %d records", want, got.Spec.Spec.Image, len(l))
		}
		if i%10 == 9 {
			if err := s.DeleteSpec("web"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetSpec("web"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("GetSpec after delete = %v", err)
			}
			if l, err := s.ListSpecs(); err != nil || len(l) != 0 {
				t.Fatalf("ListSpecs after delete = %d, %v", len(l), err)
			}
		}
	}
}
