package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/spec"
)

// SourceKind says where a spec came from.
type SourceKind string

const (
	SourceFile SourceKind = "file"
	SourceAPI  SourceKind = "api"
)

// Source is where a spec came from; Path is the file of a file spec.
type Source struct {
	Kind SourceKind `json:"kind"`
	Path string     `json:"path,omitempty"`
}

// Record is a desired spec as stored.
type Record struct {
	Spec      *spec.Spec `json:"spec"`
	Hash      string     `json:"hash"`
	Source    Source     `json:"source"`
	UpdatedAt time.Time  `json:"updatedAt"`
	// Arrival numbers specs in the order they first came in (the specs
	// bucket's sequence); an update keeps it. The admission queue orders
	// specs of equal priority by it, across agent restarts.
	Arrival uint64 `json:"arrival,omitempty"`
	// RestartedAt is the last restart request (`reconciler restart`, see
	// RequestRestart); a new definition keeps it, as kubectl apply keeps
	// rollout restart's annotation.
	RestartedAt time.Time `json:"restartedAt,omitzero"`
}

// PutSpec stores r under its spec's name and sets r.UpdatedAt. A spec that
// came from a file cannot be replaced through the API (ErrConflict): the
// file would put it back on its next change. A file may take over any spec.
func (s *Store) PutSpec(r Record) error {
	if r.Spec == nil || r.Spec.Metadata.Name == "" {
		return errors.New("put spec: record has no spec name")
	}
	name := r.Spec.Metadata.Name
	if r.Source.Kind != SourceFile && r.Source.Kind != SourceAPI {
		return fmt.Errorf("put spec %q: unknown source kind %q", name, r.Source.Kind)
	}
	r.UpdatedAt = s.opts.Now().UTC()
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSpecs)
		var old Record
		found, err := get(b, []byte(name), &old)
		if err != nil {
			return err
		}
		if found && old.Source.Kind == SourceFile && r.Source.Kind == SourceAPI {
			return fmt.Errorf("spec %q is managed by file %s; edit or remove that file: %w",
				name, old.Source.Path, ErrConflict)
		}
		if r.Arrival, err = arrival(b, found, old); err != nil {
			return err
		}
		if found && r.RestartedAt.IsZero() {
			r.RestartedAt = old.RestartedAt
		}
		return put(b, []byte(name), r)
	})
	s.specs.drop(name)
	if err != nil {
		return fmt.Errorf("put spec %q: %w", name, err)
	}
	return nil
}

// GetSpec returns the named spec or ErrNotFound. The record is the
// caller's own: it may change it.
func (s *Store) GetSpec(name string) (Record, error) {
	r, err := s.ViewSpec(name)
	if err != nil {
		return Record{}, err
	}
	return copyRecord(r), nil
}

// ViewSpec is GetSpec without the copy: the record's spec is the one the
// store's cache holds, shared with every other reader, so read it and
// never change it. The controller reads its spec on every reconcile, and
// the copy was the largest part of a converged spec's reconcile.
func (s *Store) ViewSpec(name string) (Record, error) {
	g := s.specs.generation()
	if r, ok := s.specs.fresh(name, g); ok {
		return r, nil
	}
	var r Record
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketSpecs).Get([]byte(name))
		if raw == nil {
			return ErrNotFound
		}
		var err error
		r, err = s.specs.decode([]byte(name), raw, g)
		return err
	})
	if err != nil {
		return Record{}, fmt.Errorf("spec %q: %w", name, err)
	}
	return r, nil
}

// ListSpecs returns every spec, sorted by name.
func (s *Store) ListSpecs() ([]Record, error) {
	g := s.specs.generation()
	if out, ok := s.specs.freshList(g); ok {
		return out, nil
	}
	var out []Record
	var names []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSpecs).ForEach(func(k, raw []byte) error {
			r, err := s.specs.decode(k, raw, g)
			if err != nil {
				return err
			}
			out = append(out, copyRecord(r))
			names = append(names, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list specs: %w", err)
	}
	s.specs.listedAll(names, g)
	return out, nil
}

// SpecNames returns the name of every spec, sorted, without decoding them:
// what a resync needs.
func (s *Store) SpecNames() ([]string, error) {
	var out []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSpecs).ForEach(func(k, _ []byte) error {
			out = append(out, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list spec names: %w", err)
	}
	return out, nil
}

// DeleteSpec deletes a spec. Its status and history stay until the
// controller has stopped and removed its container (DeleteState): the
// history is what says that container's last exit is already recorded.
// Its exits stay readable. A missing spec is ErrNotFound.
func (s *Store) DeleteSpec(name string) error {
	var found bool
	err := s.update(func(tx *bolt.Tx) error {
		specs := tx.Bucket(bucketSpecs)
		found = specs.Get([]byte(name)) != nil
		return specs.Delete([]byte(name))
	})
	s.specs.drop(name)
	switch {
	case err != nil:
		return fmt.Errorf("delete spec %q: %w", name, err)
	case !found:
		return fmt.Errorf("spec %q: %w", name, ErrNotFound)
	}
	return nil
}

// DeleteState drops the status and history of a spec whose spec and
// container are gone. Its exits stay readable, for the GoneLedgers most
// recently deleted specs.
func (s *Store) DeleteState(name string) error {
	err := s.update(func(tx *bolt.Tx) error {
		key := []byte(name)
		for _, b := range []*bolt.Bucket{tx.Bucket(bucketStatus), tx.Bucket(bucketHistory)} {
			if err := b.Delete(key); err != nil {
				return err
			}
		}
		if tx.Bucket(bucketExits).Bucket(key) == nil {
			return nil
		}
		gone := tx.Bucket(bucketGone)
		if err := forget(gone, key); err != nil {
			return err
		}
		seq, err := gone.NextSequence()
		if err != nil {
			return err
		}
		if err := gone.Put(seqKey(seq), key); err != nil {
			return err
		}
		return trimGone(tx, s.opts.GoneLedgers)
	})
	if err != nil {
		return fmt.Errorf("delete state of %q: %w", name, err)
	}
	return nil
}

// forget removes name's older entries from gone: only its newest deletion
// counts towards the bound.
func forget(gone *bolt.Bucket, name []byte) error {
	var old [][]byte
	if err := gone.ForEach(func(k, v []byte) error {
		if bytes.Equal(v, name) {
			old = append(old, bytes.Clone(k))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, k := range old {
		if err := gone.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// trimGone drops the ledgers of the oldest deleted specs beyond keep. A
// name that has a spec again (or was listed twice) keeps its ledger.
func trimGone(tx *bolt.Tx, keep int) error {
	specs, exits := tx.Bucket(bucketSpecs), tx.Bucket(bucketExits)
	return dropOldest(tx.Bucket(bucketGone), keep, func(_, name []byte) error {
		if specs.Get(name) != nil || exits.Bucket(name) == nil {
			return nil
		}
		return exits.DeleteBucket(name)
	})
}

// forEach decodes every value of b in key order.
func forEach[T any](b *bolt.Bucket, fn func(T)) error {
	return b.ForEach(func(k, raw []byte) error {
		var v T
		if err := json.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		fn(v)
		return nil
	})
}
