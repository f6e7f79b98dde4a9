// Package secrets reads the small private files the agent hands to
// containers (secret files) and to itself (API tokens). The agent runs as
// root, and whoever writes a spec chooses the path, so a read must never
// follow a symlink, block on a FIFO, read a device or take a file other
// users of the host could read anyway.
package secrets

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// MaxSize bounds a secret file: a secret is a key, not a payload.
const MaxSize = 64 << 10

// openFlags never follow a symlink in the last component, never wait for
// a FIFO's writer, and never make a terminal the agent's.
const openFlags = syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC | syscall.O_NOCTTY

// ReadPrivateFile reads a token or secret file named by the operator (a
// flag). The path's directories are the operator's; its last component
// must not be a symlink. what names the file's role in errors ("secret
// file", "--api-token-file").
func ReadPrivateFile(what, path string) ([]byte, error) {
	return readNamed(what, path, false)
}

// ReadOwnerOnlyFile is ReadPrivateFile for a file that grants more than
// it holds (a tokens file names every role): its mode, checked on the open
// descriptor, must also keep its group out (0600 or stricter).
func ReadOwnerOnlyFile(what, path string) ([]byte, error) {
	return readNamed(what, path, true)
}

func readNamed(what, path string, ownerOnly bool) ([]byte, error) {
	if err := Precheck(what, path); err != nil {
		return nil, err
	}
	fd, err := syscall.Open(path, openFlags, 0)
	if err != nil {
		return nil, openError(what, path, err)
	}
	return readFD(what, path, fd, ownerOnly)
}

// ReadBelow reads a secret file that must lie below root, a directory the
// operator allowed. root itself is taken as the operator wrote it; below
// it no component may be a symlink and none may be "..", so what is read
// is what the path says. The file must be a regular file owned by root or
// the agent's user, not readable by other users, and at most MaxSize.
func ReadBelow(what, root, path string) ([]byte, error) {
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(path))
	if err != nil || !filepath.IsAbs(path) || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return nil, fmt.Errorf("%s %s is not below %s", what, path, root)
	}
	// Looked at first, so that a device or FIFO is not even opened (some
	// drivers act on open); the walk and fstat of readBelow decide, should
	// the file change in between.
	if err := Precheck(what, path); err != nil {
		return nil, err
	}
	return readBelow(what, root, rel, path)
}

// readBelow opens root/rel one component at a time, none a symlink, and
// reads it through readFD; path names it in errors.
func readBelow(what, root, rel, path string) ([]byte, error) {
	dir, err := syscall.Open(root, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, openError(what, path, err)
	}
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		next, err := syscall.Openat(dir, p, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
		syscall.Close(dir)
		if err != nil {
			return nil, openError(what, path, err)
		}
		dir = next
	}
	fd, err := syscall.Openat(dir, parts[len(parts)-1], openFlags, 0)
	syscall.Close(dir)
	if err != nil {
		return nil, openError(what, path, err)
	}
	return readFD(what, path, fd, false)
}

// readFD checks the open file itself (not the path, which may have changed
// since) and reads at most MaxSize bytes of it, whatever size it claims.
func readFD(what, path string, fd int, ownerOnly bool) ([]byte, error) {
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%s %s is not a regular file (%s)", what, path, kind(st.Mode))
	}
	if perm := st.Mode & 0o777; ownerOnly && perm&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %#o: it must be 0600 or stricter (chmod 600 %s)", what, path, perm, path)
	}
	if st.Mode&0o004 != 0 {
		return nil, fmt.Errorf("%s %s is readable by every user (mode %v); chmod o-r it", what, path, os.FileMode(st.Mode&0o777))
	}
	if uid := uint32(os.Geteuid()); st.Uid != 0 && st.Uid != uid {
		return nil, fmt.Errorf("%s %s is owned by uid %d, not by root or the agent's user (uid %d)", what, path, st.Uid, uid)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%s %s is over %d bytes", what, path, MaxSize)
	}
	return b, nil
}

// Precheck reports, without opening it, a path that can never be read as a
// secret: a symlink or anything but a regular file. A path that cannot be
// looked at (missing, or in a directory this user may not enter) passes:
// the read at create decides. It lets offline checks refuse a FIFO or a
// device before any agent opens it.
func Precheck(what, path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Mode&syscall.S_IFMT == syscall.S_IFREG {
		return nil
	}
	if st.Mode&syscall.S_IFMT == syscall.S_IFLNK {
		return fmt.Errorf("%s %s is a symlink; secret files are opened without following symlinks", what, path)
	}
	return fmt.Errorf("%s %s is not a regular file (%s)", what, path, kind(st.Mode))
}

func openError(what, path string, err error) error {
	if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s %s: a symlink (or a non-directory) is on its path; secret files are opened without following symlinks", what, path)
	}
	return fmt.Errorf("%s %s: %w", what, path, &os.PathError{Op: "open", Path: path, Err: err})
}

func kind(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		return "a FIFO"
	case syscall.S_IFCHR:
		return "a character device"
	case syscall.S_IFBLK:
		return "a block device"
	case syscall.S_IFSOCK:
		return "a socket"
	case syscall.S_IFDIR:
		return "a directory"
	case syscall.S_IFLNK:
		return "a symlink"
	}
	return "not a plain file"
}
