package spec

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
)

// ReadLimited reads a spec file's content from r without reading past
// MaxFileSize: a larger file is refused, naming it, before any of it is
// decoded or held whole in memory.
func ReadLimited(name string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, tooLarge(name)
	}
	return data, nil
}

func tooLarge(name string) error {
	return ErrorList{{File: name, Msg: fmt.Sprintf("file is more than the %d-byte limit", MaxFileSize)}}
}

// openFlags never block and never follow: a FIFO opens at once (and is then
// refused by fstat), and a symlink swapped in for the file is refused by
// the kernel instead of being followed.
const openFlags = os.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_NONBLOCK | syscall.O_CLOEXEC

// OpenFile opens a spec or policy file for reading and checks what it
// opened, not what the name pointed to a moment before: the descriptor
// must be a regular file of at most MaxFileSize. A symlink at path is
// refused; callers that accept symlinks resolve them first. The FileInfo
// is the descriptor's. Every spec and policy file the agent and the CLI
// read comes through here, then through ReadLimited, since a file may
// still grow after the fstat.
func OpenFile(path string) (*os.File, os.FileInfo, error) {
	// Lstat is only a hint that spares opening what is plainly no file
	// (opening a device can have effects); the fstat below decides.
	if li, err := os.Lstat(path); err == nil && !li.Mode().IsRegular() {
		return nil, nil, notRegular(path, li.Mode())
	}
	return openChecked(path)
}

// openChecked is OpenFile without the Lstat hint: what runs when the file
// is swapped for something else after the hint.
func openChecked(path string) (*os.File, os.FileInfo, error) {
	f, err := os.OpenFile(path, openFlags, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, nil, fmt.Errorf("%s: is a symlink; refused", path)
	}
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
		err = fmt.Errorf("%s: %w", path, err)
	case !fi.Mode().IsRegular():
		err = notRegular(path, fi.Mode())
	case fi.Size() > MaxFileSize:
		err = tooLarge(path)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func notRegular(path string, m os.FileMode) error {
	what := "not a regular file"
	switch {
	case m&os.ModeSymlink != 0:
		what = "is a symlink"
	case m&os.ModeNamedPipe != 0:
		what = "is a FIFO, not a regular file"
	case m&os.ModeDevice != 0:
		what = "is a device, not a regular file"
	case m&os.ModeSocket != 0:
		what = "is a socket, not a regular file"
	case m.IsDir():
		what = "is a directory, not a regular file"
	}
	return fmt.Errorf("%s: %s; refused", path, what)
}

// ReadFile reads a spec or policy file that a user named on the command
// line or in a flag. Symlinks in its path are resolved first, as a user
// who links /etc/reconciler/policy.yaml to a managed copy expects; the
// target is then opened without following anything more (OpenFile).
func ReadFile(path string) ([]byte, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	f, _, err := OpenFile(real)
	if err != nil {
		if real != path {
			err = fmt.Errorf("%s (linked to %s): %w", path, real, err)
		}
		return nil, err
	}
	defer f.Close()
	return ReadLimited(path, f)
}

// Load decodes a spec file and checks every spec against the agent's
// policy: what `reconciler validate` reports offline and the API refuses.
// (The agent's spec directory stores a spec the policy refuses, and the
// controller shows it Refused.) All problems come back together.
func Load(file string, data []byte, p *Policy) ([]*Spec, error) {
	specs, err := Decode(file, data)
	if err != nil {
		return nil, err
	}
	return specs, p.CheckAll(specs).Err()
}

// CheckAll checks every spec against the policy.
func (p *Policy) CheckAll(specs []*Spec) ErrorList {
	var errs ErrorList
	for _, s := range specs {
		errs = append(errs, p.Check(s)...)
	}
	return errs
}
