package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func TestOpenCreatesPrivateDirAndFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	for p, want := range map[string]os.FileMode{filepath.Dir(path): 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", p, got, want)
		}
	}
}

func TestInstanceIDAndSecretKeyStableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := s.InstanceID()
	if len(id) != 16 {
		t.Errorf("InstanceID() = %q, want 16 hex characters", id)
	}
	key := s.SecretKey()
	if len(key) != 32 {
		t.Errorf("SecretKey() has %d bytes, want 32", len(key))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.InstanceID() != id {
		t.Errorf("InstanceID() after reopen = %q, want %q", s.InstanceID(), id)
	}
	if !bytes.Equal(s.SecretKey(), key) {
		t.Error("SecretKey() changed across a reopen: every container with secrets would be replaced")
	}

	other, _ := openTest(t, Options{})
	if bytes.Equal(other.SecretKey(), key) {
		t.Error("two state files share a secret key")
	}
	if other.InstanceID() == id {
		t.Errorf("two state files share instance id %q", id)
	}
}

func TestOpenLockedFailsWithinTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	first, _ := openTest(t, Options{})
	start := time.Now()
	// bbolt's flock belongs to the open file description, so a second Open
	// in this process contends like a second agent would.
	second, err := Open(first.Path(), Options{LockTimeout: timeout})
	elapsed := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("error %v does not wrap ErrLocked", err)
	}
	want := "state file " + first.Path() + " is locked by another process (is another agent running?)"
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	if elapsed > timeout+time.Second {
		t.Errorf("gave up after %s, want about %s", elapsed, timeout)
	}
}

func TestOpenCorruptFile(t *testing.T) {
	valid, used := filledFile(t, 200)
	validBytes, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 64<<10)
	for i := range garbage {
		garbage[i] = byte(i*7 + i/13)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"short text", []byte("this is not a database\n")},
		{"64 KiB of garbage", garbage},
		{"truncated inside the first page", validBytes[:3000]},
		{"truncated after the meta pages", validBytes[:3*4096]},
		{"truncated to half", validBytes[:len(validBytes)/2]},
		{"last used page cut off", validBytes[:used-4096]},
		{"meta pages zeroed", append(make([]byte, 2*4096), validBytes[2*4096:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			if err := os.WriteFile(path, tt.data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, Options{})
			if err == nil {
				s.Close()
				t.Fatal("Open of a corrupt file succeeded")
			}
			t.Log(err)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			for _, want := range []string{path, "move it aside", "re-adopts its containers by label"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestOpenUnusablePathIsNotCorrupt(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(dir, Options{})
	if err == nil || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(directory) = %v, want an error naming %s that is not ErrCorrupt", err, dir)
	}
}

// filledFile writes a closed state file holding n specs with exits, so
// that its pages reach well past the meta pages. used is the size of its
// pages in use; the file may be longer.
func filledFile(t testing.TB, n int) (path string, used int) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.db.NoSync = true
	for i := range n {
		name := fmt.Sprintf("spec-%03d", i)
		if err := s.PutSpec(record(name, apiSource())); err != nil {
			t.Fatal(err)
		}
		e := exit(name, fmt.Sprintf("c-%03d", i))
		e.LogTail = strings.Repeat("log line\n", 100)
		mustCommit(t, s, Change{Exit: e})
	}
	if err := s.db.View(func(tx *bolt.Tx) error { used = int(tx.Size()); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path, used
}

// TestOpenEveryTruncation cuts a valid file at every page boundary below
// its used size: each cut must be refused as corrupt, none may crash.
func TestOpenEveryTruncation(t *testing.T) {
	valid, used := filledFile(t, 60)
	data, err := os.ReadFile(valid)
	if err != nil {
		t.Fatal(err)
	}
	page := os.Getpagesize()
	dir := t.TempDir()
	for cut := page; cut < used; cut += page {
		path := filepath.Join(dir, fmt.Sprintf("cut-%d.db", cut))
		if err := os.WriteFile(path, data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path, Options{})
		if err == nil {
			s.Close()
			t.Errorf("file cut to %d of %d bytes opened", cut, used)
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("file cut to %d of %d bytes: %v does not wrap ErrCorrupt", cut, used, err)
		}
	}
}
