package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// maxCheckBytes bounds the files checked page by page on open. Measured
// here: 1.5 ms for 10 MB of 8 KiB exits (BenchmarkCheck10MB), 7 ms for
// 20 MB of 40,000 small events, against about 15 ms for the rest of Open.
// A state file at its bounds stays well under this (TestLedgerBound: 64 MiB
// for 101 full ledgers), so the check runs on every real open.
const maxCheckBytes = 256 << 20

// Open opens or creates the state file at path, creating its directory
// (0700) and the file (0600), and brings its schema up to date.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state file %s: create directory: %w", path, err)
	}
	db, err := openBolt(path, opts.LockTimeout)
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path, opts: opts}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init() error {
	if err := verify(s.db, s.path); err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		if err := migrate(tx, s.path); err != nil {
			return err
		}
		id, err := ensureInstanceID(tx)
		if err != nil {
			return fmt.Errorf("state file %s: instance id: %w", s.path, err)
		}
		s.instanceID = id
		if s.secretKey, err = ensureSecretKey(tx); err != nil {
			return fmt.Errorf("state file %s: secret key: %w", s.path, err)
		}
		return nil
	})
}

// openBolt turns bbolt's failures into errors an operator can act on. bbolt
// reads a damaged file through mmap and may panic or fault on it, so faults
// become panics here and panics become ErrCorrupt. A panicking bolt.Open
// leaks its file handle; the agent stops on ErrCorrupt anyway.
func openBolt(path string, timeout time.Duration) (db *bolt.DB, err error) {
	// bbolt reports a file too short for its two meta pages with an untyped
	// error; the store always uses the OS page size.
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() &&
		fi.Size() > 0 && fi.Size() < 2*int64(os.Getpagesize()) {
		return nil, corrupt(path, fmt.Errorf("only %d bytes", fi.Size()))
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, corrupt(path, fmt.Errorf("%v", p))
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case err == nil:
		return db, nil
	case errors.Is(err, berrors.ErrTimeout):
		return nil, &openError{
			msg:   fmt.Sprintf("state file %s is locked by another process (is another agent running?): no lock after %s", path, timeout),
			kind:  ErrLocked,
			cause: err,
		}
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum),
		errors.Is(err, berrors.ErrVersionMismatch):
		return nil, corrupt(path, err)
	default:
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
}

// verify catches a truncated file before any read faults on the missing
// pages, then checks every page when that is cheap.
func verify(db *bolt.DB, path string) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = corrupt(path, fmt.Errorf("%v", p))
		}
	}()
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	return db.View(func(tx *bolt.Tx) error {
		if tx.Size() > fi.Size() {
			return corrupt(path, fmt.Errorf("truncated: %d bytes, the database needs %d", fi.Size(), tx.Size()))
		}
		if fi.Size() > maxCheckBytes {
			return nil
		}
		// Check reads in its own goroutine, outside the recover above; the
		// size test keeps its reads inside the file.
		var errs []error
		for e := range tx.Check() {
			errs = append(errs, e)
		}
		if len(errs) > 0 {
			return corrupt(path, errors.Join(errs...))
		}
		return nil
	})
}

func corrupt(path string, cause error) error {
	return &openError{
		msg: fmt.Sprintf("state file %s is corrupt (%v): move it aside (mv %s %s.corrupt) and restart; "+
			"the agent starts with an empty state, re-reads its spec files and re-adopts its containers by label "+
			"(specs applied through the API must be applied again)", path, cause, path, path),
		kind:  ErrCorrupt,
		cause: cause,
	}
}

// openError carries a message written for the operator while still
// matching both its sentinel and bbolt's cause with errors.Is.
type openError struct {
	msg   string
	kind  error
	cause error
}

func (e *openError) Error() string   { return e.msg }
func (e *openError) Unwrap() []error { return []error{e.kind, e.cause} }

func ensureSecretKey(tx *bolt.Tx) ([]byte, error) {
	meta := tx.Bucket(bucketMeta)
	var key []byte
	if ok, err := get(meta, keySecretKey, &key); err != nil || (ok && len(key) == 32) {
		return key, err
	}
	key = make([]byte, 32)
	_, _ = rand.Read(key)
	return key, put(meta, keySecretKey, key)
}

func ensureInstanceID(tx *bolt.Tx) (string, error) {
	meta := tx.Bucket(bucketMeta)
	var id string
	if ok, err := get(meta, keyInstance, &id); err != nil || ok {
		return id, err
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b) // never fails: crypto/rand crashes the program instead
	id = hex.EncodeToString(b)
	return id, put(meta, keyInstance, id)
}
