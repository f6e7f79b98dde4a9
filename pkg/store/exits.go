package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/reconciler/reconciler/pkg/model"
)

// Exits returns up to limit of the spec's recorded exits, newest first
// (limit <= 0: all kept). A spec with no ledger has no exits.
func (s *Store) Exits(name string, limit int) ([]model.ContainerExit, error) {
	var out []model.ContainerExit
	err := s.db.View(func(tx *bolt.Tx) error {
		ledger := exitLedger(tx, name)
		if ledger == nil {
			return nil
		}
		c := ledger.Cursor()
		for k, raw := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, raw = c.Prev() {
			var e model.ContainerExit
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode exit %x: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("exits of %q: %w", name, err)
	}
	return out, nil
}

func exitLedger(tx *bolt.Tx, name string) *bolt.Bucket {
	b := tx.Bucket(bucketExits).Bucket([]byte(name))
	if b == nil {
		return nil
	}
	return b.Bucket(bucketExitLedger)
}

// exitKey names one run: the agent restarts a container in place, so a
// container id has one exit per start.
func exitKey(e model.ContainerExit) []byte {
	return []byte(fmt.Sprintf("%s/%d", e.ContainerID, e.StartedAt.UnixNano()))
}

// appendExit records e unless that run's exit is already in the ledger:
// the same exit is seen through events, wait and re-list.
func (s *Store) appendExit(tx *bolt.Tx, e model.ContainerExit) (bool, error) {
	if e.SpecName == "" || e.ContainerID == "" {
		return false, errors.New("exit needs a spec name and a container id")
	}
	b, err := tx.Bucket(bucketExits).CreateBucketIfNotExists([]byte(e.SpecName))
	if err != nil {
		return false, err
	}
	ledger, err := b.CreateBucketIfNotExists(bucketExitLedger)
	if err != nil {
		return false, err
	}
	ids, err := b.CreateBucketIfNotExists(bucketExitIDs)
	if err != nil {
		return false, err
	}
	if ids.Get(exitKey(e)) != nil {
		return false, nil
	}
	e.LogTail = truncateTail(e.LogTail, s.opts.LogTailBytes)
	seq, err := ledger.NextSequence()
	if err != nil {
		return false, err
	}
	if err := put(ledger, seqKey(seq), e); err != nil {
		return false, err
	}
	if err := ids.Put(exitKey(e), seqKey(seq)); err != nil {
		return false, err
	}
	return true, trimLedger(ledger, ids, s.opts.ExitsPerSpec)
}

// trimLedger keeps the newest keep exits with their id index entries.
func trimLedger(ledger, ids *bolt.Bucket, keep int) error {
	return dropOldest(ledger, keep, func(k, raw []byte) error {
		var e model.ContainerExit
		if err := json.Unmarshal(raw, &e); err != nil {
			return fmt.Errorf("decode exit %x: %w", k, err)
		}
		return ids.Delete(exitKey(e))
	})
}

// dropOldest deletes the entries of b beyond its newest keep, found by a
// walk back from the newest key; gone sees each one before it goes.
// (Bucket.Stats cannot count: it misses this transaction's writes.)
func dropOldest(b *bolt.Bucket, keep int, gone func(k, v []byte) error) error {
	var old [][]byte
	c := b.Cursor()
	n := 0
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		if n++; n <= keep {
			continue
		}
		if err := gone(k, v); err != nil {
			return err
		}
		old = append(old, bytes.Clone(k))
	}
	// Deleting behind a moving cursor skips keys, so delete afterwards.
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// truncateTail keeps the last n bytes of s, starting on a whole rune.
func truncateTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	// A cut rune leaves at most UTFMax-1 continuation bytes; more than that
	// is not UTF-8 (binary output), kept as it is.
	cut := 0
	for cut < len(s) && cut < utf8.UTFMax-1 && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return s[cut:]
}
