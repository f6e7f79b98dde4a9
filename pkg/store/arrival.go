package store

import bolt "go.etcd.io/bbolt"

// arrival is the arrival number of a spec being put into b: the one it
// has when it is stored already (an update is no new arrival), else the
// next number of b's sequence, which bbolt keeps in the file and never
// hands out twice.
func arrival(b *bolt.Bucket, found bool, old Record) (uint64, error) {
	if found && old.Arrival != 0 {
		return old.Arrival, nil
	}
	return b.NextSequence()
}
