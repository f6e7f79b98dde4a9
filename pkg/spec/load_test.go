package spec

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// endless never ends: ReadLimited must stop at the limit on its own.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '#'
	}
	return len(p), nil
}

func TestReadLimited(t *testing.T) {
	data, err := ReadLimited("ok.yaml", strings.NewReader(strings.Repeat("#", MaxFileSize)))
	if err != nil || len(data) != MaxFileSize {
		t.Fatalf("a file of exactly the limit: %d bytes, %v", len(data), err)
	}
	_, err = ReadLimited("huge.yaml", io.Reader(endless{}))
	if err == nil || !strings.Contains(err.Error(), "huge.yaml") || !strings.Contains(err.Error(), "1048576-byte limit") {
		t.Fatalf("an endless file: %v, want an error naming it and the limit", err)
	}
}

// TestOpenFileChecksTheDescriptor opens what may be swapped in for a spec
// file after the Lstat hint: each is refused at once, naming the file, and
// nothing blocks (a FIFO with no writer would block a plain open forever).
func TestOpenFileChecksTheDescriptor(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("kind: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(dir, "huge.yaml")
	if err := os.WriteFile(huge, make([]byte, MaxFileSize+1), 0o644); err != nil {
		t.Fatal(err)
	}

	// Positive control: the regular file opens, with the descriptor's size.
	f, fi, err := openChecked(good)
	if err != nil || fi.Size() != 8 {
		t.Fatalf("a regular file: %v, %v", fi, err)
	}
	f.Close()
	// A file of exactly the limit opens; huge, one byte more, does not.
	full := filepath.Join(dir, "full.yaml")
	if err := os.WriteFile(full, make([]byte, MaxFileSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if f, _, err := openChecked(full); err != nil {
		t.Fatalf("a file of exactly %d bytes: %v", MaxFileSize, err)
	} else {
		f.Close()
	}

	for _, tc := range []struct{ name, path, want string }{
		{"FIFO", fifo, "is a FIFO"},
		{"device", "/dev/null", "is a device"},
		{"directory", dir, "is a directory"},
		{"symlink", link, "is a symlink"},
		{"over the limit", huge, "1048576-byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				f, _, err := openChecked(tc.path)
				if f != nil {
					f.Close()
				}
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want one naming %s and saying %q", err, tc.path, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("open blocked")
			}
		})
	}
	// The hint answers first for what is plainly no file.
	if _, _, err := OpenFile(fifo); err == nil || !strings.Contains(err.Error(), "is a FIFO") {
		t.Fatalf("OpenFile(fifo) = %v", err)
	}
}

// TestReadFileFollowsWhatTheUserNamed: a policy or spec file named on the
// command line may be a symlink (an operator's /etc link to a managed
// copy); it is resolved, and the target read under the same checks.
func TestReadFileFollowsWhatTheUserNamed(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte("kind: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.yaml")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	if data, err := ReadFile(link); err != nil || string(data) != "kind: x\n" {
		t.Fatalf("ReadFile(link) = %q, %v", data, err)
	}
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	toFifo := filepath.Join(dir, "to-fifo.yaml")
	if err := os.Symlink(fifo, toFifo); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(toFifo); err == nil || !strings.Contains(err.Error(), toFifo) || !strings.Contains(err.Error(), "is a FIFO") {
		t.Fatalf("ReadFile(link to a FIFO) = %v", err)
	}
	if _, err := LoadPolicy(toFifo); err == nil || !strings.Contains(err.Error(), "is a FIFO") {
		t.Fatalf("LoadPolicy(link to a FIFO) = %v", err)
	}
}
