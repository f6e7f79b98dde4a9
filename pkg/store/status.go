package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/model"
)

// GetStatus returns the named spec's status or ErrNotFound.
func (s *Store) GetStatus(name string) (model.Status, error) {
	var st model.Status
	err := s.db.View(func(tx *bolt.Tx) error {
		found, err := get(tx.Bucket(bucketStatus), []byte(name), &st)
		if err == nil && !found {
			return ErrNotFound
		}
		return err
	})
	if err != nil {
		return model.Status{}, fmt.Errorf("status %q: %w", name, err)
	}
	return st, nil
}

// ListStatus returns every status, sorted by name.
func (s *Store) ListStatus() ([]model.Status, error) {
	var out []model.Status
	err := s.db.View(func(tx *bolt.Tx) error {
		return forEach(tx.Bucket(bucketStatus), func(st model.Status) { out = append(out, st) })
	})
	if err != nil {
		return nil, fmt.Errorf("list status: %w", err)
	}
	return out, nil
}

// GetHistory returns the named spec's restart history; a spec that has
// none yet gets the zero History.
func (s *Store) GetHistory(name string) (model.History, error) {
	var h model.History
	err := s.db.View(func(tx *bolt.Tx) error {
		_, err := get(tx.Bucket(bucketHistory), []byte(name), &h)
		return err
	})
	if err != nil {
		return model.History{}, fmt.Errorf("history %q: %w", name, err)
	}
	return h, nil
}
