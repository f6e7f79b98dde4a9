package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// migration brings the layout from version-1 to version. Migrations run in
// order inside one transaction, so a failed one leaves the file untouched.
type migration struct {
	version int
	name    string
	apply   func(tx *bolt.Tx) error
}

var migrations = []migration{
	{1, "create buckets", createBuckets},
	{2, "bound the ledgers of deleted specs", createGone},
}

// schemaVersion is the layout this code reads and writes.
func schemaVersion() int { return migrations[len(migrations)-1].version }

func createBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketSpecs, bucketStatus, bucketHistory,
		bucketExits, bucketEvents, bucketEventLatest} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	return nil
}

// createGone adds the list of deleted specs whose ledgers are kept, and
// enters the ledgers that have no spec any more, oldest name first.
func createGone(tx *bolt.Tx) error {
	gone, err := tx.CreateBucketIfNotExists(bucketGone)
	if err != nil {
		return err
	}
	specs := tx.Bucket(bucketSpecs)
	return tx.Bucket(bucketExits).ForEachBucket(func(name []byte) error {
		if specs.Get(name) != nil {
			return nil
		}
		seq, err := gone.NextSequence()
		if err != nil {
			return err
		}
		return gone.Put(seqKey(seq), name)
	})
}

// storedVersion is 0 for a file no migration has touched.
func storedVersion(tx *bolt.Tx) (int, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return 0, nil
	}
	var v int
	_, err := get(meta, keySchema, &v)
	return v, err
}

func migrate(tx *bolt.Tx, path string) error {
	from, err := storedVersion(tx)
	if err != nil {
		return fmt.Errorf("state file %s: schema version: %w", path, err)
	}
	if want := schemaVersion(); from > want {
		return fmt.Errorf("state file %s has schema version %d, newer than this agent's %d: "+
			"it was written by a newer reconciler; run that version, or move the file aside to start afresh",
			path, from, want)
	}
	for _, m := range migrations {
		if m.version <= from {
			continue
		}
		if err := m.apply(tx); err != nil {
			return fmt.Errorf("state file %s: migration %d (%s): %w", path, m.version, m.name, err)
		}
		if err := put(tx.Bucket(bucketMeta), keySchema, m.version); err != nil {
			return fmt.Errorf("state file %s: migration %d (%s): %w", path, m.version, m.name, err)
		}
	}
	return nil
}
