package store

import (
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RequestRestart records a restart request for the named spec, at at: the
// controller mixes RestartedAt into the label its container must carry,
// so the container is replaced by the spec's update strategy. Only the
// request is written; the spec's definition and source are kept. A
// missing spec is ErrNotFound.
func (s *Store) RequestRestart(name string, at time.Time) (Record, error) {
	var r Record
	err := s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSpecs)
		found, err := get(b, []byte(name), &r)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		r.RestartedAt = at.UTC()
		return put(b, []byte(name), r)
	})
	if err != nil {
		return Record{}, fmt.Errorf("restart spec %q: %w", name, err)
	}
	return r, nil
}
