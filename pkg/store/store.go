package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/containerd/errdefs"
	bolt "go.etcd.io/bbolt"
)

// Sentinel errors; the store wraps them with %w and context. ErrNotFound
// and ErrConflict are containerd's errdefs kinds, the same values pkg/docker
// wraps, so that errdefs.IsNotFound and errdefs.IsConflict (or errors.Is
// with either package's name) hold across both layers.
var (
	ErrNotFound = errdefs.ErrNotFound
	ErrConflict = errdefs.ErrConflict
	ErrLocked   = errors.New("state file is locked by another process")
	ErrCorrupt  = errors.New("state file is corrupt")
)

// Options tune a Store. Zero values take the defaults.
type Options struct {
	// LockTimeout bounds the wait for the file lock: a second agent on the
	// same file fails with ErrLocked after it. Default 2s.
	LockTimeout time.Duration
	// ExitsPerSpec bounds each spec's exit ledger. Default 50.
	ExitsPerSpec int
	// MaxEvents bounds the events kept in the whole store. Default 2000.
	MaxEvents int
	// LogTailBytes bounds ContainerExit.LogTail; the end is kept. Default 8 KiB.
	LogTailBytes int
	// GoneLedgers bounds how many deleted specs keep their exit ledgers
	// (jobs with unique names come and go). Default 1000.
	GoneLedgers int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.LockTimeout <= 0 {
		o.LockTimeout = 2 * time.Second
	}
	if o.ExitsPerSpec <= 0 {
		o.ExitsPerSpec = 50
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 2000
	}
	if o.LogTailBytes <= 0 {
		o.LogTailBytes = 8 << 10
	}
	if o.GoneLedgers <= 0 {
		o.GoneLedgers = 1000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Store is the agent's state file. It is safe for concurrent use.
type Store struct {
	db         *bolt.DB
	path       string
	opts       Options
	instanceID string
	secretKey  []byte
	health     writeHealth
	specs      specCache // decoded specs, checked against the stored bytes
}

// Close releases the file and its lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state file %s: %w", s.path, err)
	}
	return nil
}

// Path is the state file's path.
func (s *Store) Path() string { return s.path }

// InstanceID is the agent id kept in the file: stable across restarts, so a
// restarted agent recognises the containers it labelled.
func (s *Store) InstanceID() string { return s.instanceID }

// SecretKey is a random key kept in the file (mode 0600) for as long as the
// file lives: the controller keys the HMAC of secret content with it, so
// the labels it yields stay the same across restarts and say nothing of the
// content to whoever cannot read the state file.
func (s *Store) SecretKey() []byte { return s.secretKey }

// Stats counts what the store holds, for metrics and diagnostics.
func (s *Store) Stats() (specs, exits, events int, fileBytes int64, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		specs = tx.Bucket(bucketSpecs).Stats().KeyN
		events = tx.Bucket(bucketEvents).Stats().KeyN
		return tx.Bucket(bucketExits).ForEachBucket(func(name []byte) error {
			exits += tx.Bucket(bucketExits).Bucket(name).Bucket(bucketExitLedger).Stats().KeyN
			return nil
		})
	})
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("stats: %w", err)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, 0, 0, 0, fmt.Errorf("stats: %w", err)
	}
	return specs, exits, events, fi.Size(), nil
}

func put(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, raw)
}

func get(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode %q: %w", key, err)
	}
	return true, nil
}
