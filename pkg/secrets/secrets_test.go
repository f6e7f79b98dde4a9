package secrets

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadBelow(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	write := func(dir, name string, data []byte, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	ok := write(root, "db/password", []byte("s3cret\n"), 0o600)
	if b, err := ReadBelow("secret file", root, ok); err != nil || string(b) != "s3cret\n" {
		t.Fatalf("private file: %q, %v", b, err)
	}
	if b, err := ReadBelow("secret file", root, write(root, "group", []byte("g"), 0o640)); err != nil || string(b) != "g" {
		t.Fatalf("group-readable file: %q, %v", b, err)
	}
	if b, err := ReadBelow("secret file", root, write(root, "max", make([]byte, MaxSize), 0o600)); err != nil || len(b) != MaxSize {
		t.Fatalf("file of exactly MaxSize: %d bytes, %v", len(b), err)
	}
	shadow := write(outside, "shadow", []byte("root:x"), 0o600)
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(root, "null")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o600, int(unixMkdev(1, 3))); err != nil {
		t.Fatalf("mknod (the test runs as root, as the agent does): %v", err)
	}
	mustLink := func(target, name string) string {
		p := filepath.Join(root, name)
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	link := mustLink(shadow, "link")
	dirLink := mustLink(outside, "dir-link")
	foreign := write(root, "foreign", []byte("x"), 0o600)
	if err := os.Chown(foreign, 12345, 12345); err != nil {
		t.Fatalf("chown (the test runs as root, as the agent does): %v", err)
	}

	for _, tc := range []struct {
		name, path, want string
	}{
		{"outside the root", shadow, "is not below " + root},
		{"escaping with ..", root + "/../" + filepath.Base(outside) + "/shadow", "is not below"},
		{"the root itself", root, "is not below"},
		{"a symlink", link, "without following symlinks"},
		{"a symlinked directory", filepath.Join(dirLink, "shadow"), "without following symlinks"},
		{"a FIFO", fifo, "is not a regular file (a FIFO)"},
		{"a device", dev, "is not a regular file (a character device)"},
		{"a directory", filepath.Join(root, "db"), "is not a regular file (a directory)"},
		{"world-readable", write(root, "open", []byte("x"), 0o644), "is readable by every user (mode -rw-r--r--); chmod o-r it"},
		{"too big", write(root, "big", make([]byte, MaxSize+1), 0o600), "is over 65536 bytes"},
		{"owned by another user", foreign, "is owned by uid 12345, not by root or the agent's user"},
		{"missing", filepath.Join(root, "none"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { _, err := ReadBelow("secret file", root, tc.path); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "secret file") {
					t.Errorf("%v, want an error saying %q", err, tc.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the read blocked")
			}
		})
	}
}

// A FIFO or device that takes a file's place after the precheck is still
// refused by the open itself, without blocking.
func TestReadBelowOpensWithoutBlocking(t *testing.T) {
	root := t.TempDir()
	fifo := filepath.Join(root, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := filepath.Join(root, "null")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o600, int(unixMkdev(1, 3))); err != nil {
		t.Fatalf("mknod (the test runs as root, as the agent does): %v", err)
	}
	for name, want := range map[string]string{"fifo": "(a FIFO)", "null": "(a character device)"} {
		done := make(chan error, 1)
		go func() { _, err := readBelow("secret file", root, name, filepath.Join(root, name)); done <- err }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %v, want a refusal saying %s", name, err, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the open blocked", name)
		}
	}
}

func TestReadPrivateFile(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("t0ken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadPrivateFile("--api-token-file", token); err != nil || string(b) != "t0ken\n" {
		t.Fatalf("token file: %q, %v", b, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(token, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{link, fifo} {
		if _, err := ReadPrivateFile("--api-token-file", p); err == nil || !strings.HasPrefix(err.Error(), "--api-token-file "+p) {
			t.Errorf("%s: %v, want a refusal naming the flag and the path", p, err)
		}
	}
}

// unixMkdev is makedev(3) for Linux.
func unixMkdev(major, minor uint64) uint64 {
	return (major&0xfffff000)<<32 | (major&0xfff)<<8 | (minor&0xffffff00)<<12 | minor&0xff
}
