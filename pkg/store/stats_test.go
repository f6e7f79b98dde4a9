package store

import (
	"errors"
	"os"
	"testing"

	"github.com/reconciler/reconciler/pkg/model"
	bolt "go.etcd.io/bbolt"
)

func TestStats(t *testing.T) {
	s, _ := openTest(t, Options{})
	for _, n := range []string{"a", "b"} {
		if err := s.PutSpec(record(n, apiSource())); err != nil {
			t.Fatal(err)
		}
	}
	mustCommit(t, s, Change{Exit: exit("a", "1"), Events: []model.Event{{Reason: "x"}, {Reason: "y"}, {Reason: "z"}}})
	mustCommit(t, s, Change{Exit: exit("gone", "2")})
	specs, exits, events, size, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(s.Path())
	if specs != 2 || exits != 2 || events != 3 || size != fi.Size() {
		t.Errorf("Stats = %d specs, %d exits, %d events, %d bytes; want 2, 2, 3, %d", specs, exits, events, size, fi.Size())
	}
}

// TestVerifyCatchesTruncation cuts the file under an open database, as a
// cut that spares the freelist page would look to Open.
func TestVerifyCatchesTruncation(t *testing.T) {
	path, used := filledFile(t, 60)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := verify(db, path); err != nil {
		t.Fatalf("verify of a sound file: %v", err)
	}
	if err := os.Truncate(path, int64(used-os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
	if err := verify(db, path); !errors.Is(err, ErrCorrupt) {
		t.Errorf("verify of a truncated file = %v, want ErrCorrupt", err)
	}
}
