package store

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// writeHealth remembers whether the file took the last write. bbolt is
// transactional: a commit the file refuses (no space left, an I/O error)
// is rolled back whole and every commit before it stays, so the state is
// never torn; what is lost is only the write that failed, which its caller
// learns from the error and must not treat as done.
type writeHealth struct {
	mu       sync.Mutex
	err      error // of the last commit, nil once one succeeds
	failures atomic.Uint64
}

// WriteError is a commit the state file refused. Its text is the reason
// an operator acts on ("state file /var/lib/reconciler/state.db: no space
// left on device").
type WriteError struct {
	Path  string
	Cause error
}

func (e *WriteError) Error() string {
	var errno syscall.Errno
	if errors.As(e.Cause, &errno) {
		return fmt.Sprintf("state file %s: %v", e.Path, errno)
	}
	return fmt.Sprintf("state file %s: %v", e.Path, e.Cause)
}

func (e *WriteError) Unwrap() error { return e.Cause }

// update runs fn in one write transaction, like bolt.DB.Update, and
// records whether the file took the commit. An error of fn is the
// caller's (not found, conflict) and says nothing about the file.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	tx, err := s.db.Begin(true)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // after a commit: a no-op; on a panic in fn: the rollback
	if err := fn(tx); err != nil {
		return err
	}
	err = tx.Commit()
	s.specs.written() // committed or not: no cached spec is fresh
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if err != nil {
		err = &WriteError{Path: s.path, Cause: err}
		s.health.failures.Add(1)
	}
	s.health.err = err
	return err
}

// WriteErr is the error of the last commit when the file refused it, nil
// once a commit succeeds again. While it is set the agent is not ready
// and changes no container (pkg/controller).
func (s *Store) WriteErr() error {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	return s.health.err
}

// WriteFailures counts the commits the file refused since Open.
func (s *Store) WriteFailures() uint64 { return s.health.failures.Load() }

// probeBytes is the room a probe asks for: about what a commit of one
// exit (with its log tail) and its events takes. A probe of a few bytes
// would fit in pages bbolt frees and reuses inside the file, and call a
// full disk writable.
const probeBytes = 64 << 10

// ProbeWrite learns whether the file takes writes again: it commits
// probeBytes under meta/probe, which needs that much new room on the disk,
// then deletes it. The freed pages stay in the file for the commits that
// follow. The agent calls it with back-off while WriteErr is set, so it
// turns ready again once space returns even when nothing else has to be
// written.
func (s *Store) ProbeWrite() error {
	if err := s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyProbe, make([]byte, probeBytes))
	}); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Delete(keyProbe)
	})
}
