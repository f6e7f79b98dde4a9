package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"github.com/reconciler/reconciler/pkg/spec"
)

// specCache keeps each spec decoded. Decoding a spec's JSON was most of the
// cost of a no-op reconcile (every reconcile reads its spec, every resync
// lists them all).
//
// Every write transaction of the store bumps the cache's generation
// (Store.update calls written once it ends, committed or not). An entry is
// fresh while the generation it was read at is the current one: no write
// has ended since, so the spec is served without opening a transaction.
// Otherwise the read compares the bytes the file holds with the entry's:
// the same bytes give the decoded entry again, at the new generation, and
// other bytes are decoded. So an entry is served only when it was read
// after the last write that ended, and it cannot outlive a write.
// PutSpec and DeleteSpec also drop the name's entry, so that a deleted
// spec's entry does not linger.
//
// The cache hands out its own records: GetSpec and ListSpecs copy them
// for their callers, who may change the copy freely; ViewSpec shares them.
// A cached record is never changed once stored (a write replaces it), so a
// shared one stays as it was read. The zero value is ready to use.
type specCache struct {
	gen atomic.Uint64

	mu      sync.RWMutex
	entries map[string]specEntry
	// names are the keys of the whole bucket as listed at generation
	// listGen, sorted: ListSpecs serves them from memory while that is the
	// current generation and each entry is fresh.
	names   []string
	listGen uint64
	listed  bool
}

type specEntry struct {
	raw []byte // as stored; owned by the cache
	rec Record // decoded from raw; never handed out
	gen uint64 // generation at which raw was read
}

// written ends a write transaction: no entry is fresh any more.
func (c *specCache) written() { c.gen.Add(1) }

// generation is the generation to read at; load it before opening the
// reading transaction.
func (c *specCache) generation() uint64 { return c.gen.Load() }

// fresh returns name's record, shared, when it was read at generation g.
func (c *specCache) fresh(name string, g uint64) (Record, bool) {
	c.mu.RLock()
	e, ok := c.entries[name]
	c.mu.RUnlock()
	if !ok || e.gen != g {
		return Record{}, false
	}
	return e.rec, true
}

// freshList returns every record, sorted by name, when the whole bucket
// was listed at generation g and every entry is fresh.
func (c *specCache) freshList(g uint64) ([]Record, bool) {
	c.mu.RLock()
	if !c.listed || c.listGen != g {
		c.mu.RUnlock()
		return nil, false
	}
	recs := make([]Record, 0, len(c.names))
	for _, n := range c.names {
		e, ok := c.entries[n]
		if !ok || e.gen != g {
			c.mu.RUnlock()
			return nil, false
		}
		recs = append(recs, e.rec)
	}
	c.mu.RUnlock()
	for i := range recs {
		recs[i] = copyRecord(recs[i])
	}
	return recs, true
}

// listedAll notes the names of the whole bucket, in key order, as read in
// a transaction opened at generation g.
func (c *specCache) listedAll(names []string, g uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listed && c.listGen > g {
		return
	}
	c.names, c.listGen, c.listed = names, g, true
}

// decode returns the record stored as raw under name, read in a
// transaction opened at generation g, shared with the cache. raw is only
// valid in that transaction; the cache keeps its own copy.
func (c *specCache) decode(name, raw []byte, g uint64) (Record, error) {
	c.mu.RLock()
	e, ok := c.entries[string(name)]
	c.mu.RUnlock()
	if ok && bytes.Equal(e.raw, raw) {
		if e.gen < g {
			c.put(string(name), specEntry{raw: e.raw, rec: e.rec, gen: g})
		}
		return e.rec, nil
	}
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return Record{}, fmt.Errorf("decode %q: %w", name, err)
	}
	c.put(string(name), specEntry{raw: bytes.Clone(raw), rec: r, gen: g})
	return r, nil
}

// put stores e unless a read at a later generation stored name already.
func (c *specCache) put(name string, e specEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.entries[name]; ok && old.gen > e.gen {
		return
	}
	if c.entries == nil {
		c.entries = map[string]specEntry{}
	}
	c.entries[name] = e
}

// drop forgets name's entry; PutSpec and DeleteSpec call it after their
// write.
func (c *specCache) drop(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.entries, name)
}

// len is the number of entries, for tests.
func (c *specCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// copyRecord copies r and everything its spec points to, so that a caller
// changing its record leaves the cache's alone.
func copyRecord(r Record) Record {
	if r.Spec != nil {
		sp := *r.Spec
		unshareSpec(reflect.ValueOf(&sp).Elem())
		r.Spec = &sp
	}
	return r
}

var unshareSpec = unsharerOf(reflect.TypeFor[spec.Spec]())

// An unsharer takes an addressable value that is a plain copy of another
// and gives it its own copy of every pointer, slice, map and interface
// reachable through exported fields, so that fields added to the spec
// later are copied without anyone remembering to. Unexported fields stay
// as copied (the spec has none that point anywhere). It is built once per
// type, by reflection, and works in place: a struct is copied once.
type unsharer func(reflect.Value)

// unsharerOf returns nil for a type whose plain copy shares nothing (no
// pointer, slice, map or interface; strings are immutable).
func unsharerOf(t reflect.Type) unsharer {
	return buildUnsharer(t, map[reflect.Type]*unsharer{}, map[reflect.Type]bool{})
}

// buildUnsharer builds t's unsharer, once per type: a type met again while
// it is still being built (it reaches itself through a pointer, slice or
// map, so it has an unsharer) calls its own through a cell filled once it
// is.
func buildUnsharer(t reflect.Type, cells map[reflect.Type]*unsharer, done map[reflect.Type]bool) unsharer {
	if cell, ok := cells[t]; ok {
		if done[t] {
			return *cell
		}
		return func(v reflect.Value) { (*cell)(v) }
	}
	cell := new(unsharer)
	cells[t] = cell
	*cell = buildKind(t, func(t reflect.Type) unsharer { return buildUnsharer(t, cells, done) })
	done[t] = true
	return *cell
}

func buildKind(t reflect.Type, sub func(reflect.Type) unsharer) unsharer {
	switch t.Kind() {
	case reflect.Pointer:
		elem := sub(t.Elem())
		return func(v reflect.Value) {
			if v.IsNil() {
				return
			}
			n := reflect.New(t.Elem())
			n.Elem().Set(v.Elem())
			if elem != nil {
				elem(n.Elem())
			}
			v.Set(n)
		}
	case reflect.Struct:
		type field struct {
			i int
			u unsharer
		}
		var fields []field
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() {
				if u := sub(f.Type); u != nil {
					fields = append(fields, field{i, u})
				}
			}
		}
		if len(fields) == 0 {
			return nil
		}
		return func(v reflect.Value) {
			for _, f := range fields {
				f.u(v.Field(f.i))
			}
		}
	case reflect.Array:
		elem := sub(t.Elem())
		if elem == nil {
			return nil
		}
		return func(v reflect.Value) {
			for i := range v.Len() {
				elem(v.Index(i))
			}
		}
	case reflect.Slice:
		elem := sub(t.Elem())
		return func(v reflect.Value) {
			if v.IsNil() {
				return
			}
			n := reflect.MakeSlice(t, v.Len(), v.Len())
			reflect.Copy(n, v)
			if elem != nil {
				for i := range n.Len() {
					elem(n.Index(i))
				}
			}
			v.Set(n)
		}
	case reflect.Map:
		key, elem := sub(t.Key()), sub(t.Elem())
		return func(v reflect.Value) {
			if v.IsNil() {
				return
			}
			n := reflect.MakeMapWithSize(t, v.Len())
			for it := v.MapRange(); it.Next(); {
				k, e := it.Key(), it.Value()
				if key != nil {
					c := reflect.New(t.Key()).Elem()
					c.Set(k)
					key(c)
					k = c
				}
				if elem != nil {
					c := reflect.New(t.Elem()).Elem()
					c.Set(e)
					elem(c)
					e = c
				}
				n.SetMapIndex(k, e)
			}
			v.Set(n)
		}
	case reflect.Interface:
		return func(v reflect.Value) {
			if v.IsNil() {
				return
			}
			// Built per call (the spec has no interface fields).
			if u := unsharerOf(v.Elem().Type()); u != nil {
				c := reflect.New(v.Elem().Type()).Elem()
				c.Set(v.Elem())
				u(c)
				v.Set(c)
			}
		}
	}
	return nil
}
