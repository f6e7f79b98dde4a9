package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

func TestMigrationsAreOrdered(t *testing.T) {
	for i, m := range migrations {
		if m.version != i+1 || m.name == "" || m.apply == nil {
			t.Errorf("migrations[%d] = {%d, %q}: want version %d, a name and a func", i, m.version, m.name, i+1)
		}
	}
}

func TestMigrationV1CreatesBuckets(t *testing.T) {
	db := rawDB(t, filepath.Join(t.TempDir(), "state.db"))
	defer db.Close()
	err := db.Update(func(tx *bolt.Tx) error {
		if err := createBuckets(tx); err != nil {
			return err
		}
		for _, name := range [][]byte{bucketMeta, bucketSpecs, bucketStatus, bucketHistory,
			bucketExits, bucketEvents, bucketEventLatest} {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s missing after v1", name)
			}
		}
		// A migration interrupted before its version was written runs again.
		return createBuckets(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenMigratesOlderFile(t *testing.T) {
	// Version 0: a bbolt file no migration has touched.
	path := filepath.Join(t.TempDir(), "state.db")
	db := rawDB(t, path)
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket([]byte("unrelated"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open of a version 0 file: %v", err)
	}
	defer s.Close()
	if got := storedSchema(t, s.db); got != schemaVersion() {
		t.Errorf("schema after Open = %d, want %d", got, schemaVersion())
	}
	if err := s.PutSpec(record("web", apiSource())); err != nil {
		t.Errorf("PutSpec after migration: %v", err)
	}
}

func TestOpenKeepsCurrentFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutSpec(record("web", apiSource())); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetSpec("web"); err != nil {
		t.Errorf("spec lost on reopen: %v", err)
	}
	if got := storedSchema(t, s.db); got != schemaVersion() {
		t.Errorf("schema = %d, want %d", got, schemaVersion())
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	newer := schemaVersion() + 1
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return put(tx.Bucket(bucketMeta), keySchema, newer)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	_, err = Open(path, Options{})
	if err == nil {
		t.Fatal("Open of a newer schema succeeded")
	}
	for _, want := range []string{path, fmt.Sprintf("schema version %d, newer than this agent's %d", newer, schemaVersion())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if errors.Is(err, ErrCorrupt) {
		t.Errorf("a newer schema is not corruption: %v", err)
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Error("refused Open changed the file")
	}
}

func rawDB(t *testing.T, path string) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func storedSchema(t *testing.T, db *bolt.DB) int {
	t.Helper()
	var v int
	if err := db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = storedVersion(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}
