package workspace

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// Rel maps p, a path inside the container, to a path relative to the copy
// mounted at target ("" for target itself). p must be absolute and lie
// under target; ".." is refused outright, so no spelling of p reaches
// outside.
func Rel(target, p string) (string, error) {
	t := path.Clean(target)
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%q is not an absolute path: give the path inside the container, under the workspace target %s", p, t)
	}
	if slices.Contains(strings.Split(p, "/"), "..") {
		return "", fmt.Errorf("%q holds \"..\": give a path under the workspace target %s without it", p, t)
	}
	c := path.Clean(p)
	switch {
	case c == t:
		return "", nil
	case strings.HasPrefix(c, t+"/"):
		return strings.TrimPrefix(c, t+"/"), nil
	}
	return "", fmt.Errorf("%s is outside the workspace: only paths under its target %s can be copied", c, t)
}

// Source is one file or directory of a copy, open for reading as a tar.
type Source struct {
	root *os.Root
	rel  string
	base string
	info fs.FileInfo
}

// Open finds rel in the copy dir. Every path is resolved inside dir: a
// symlink the job left that points out of it is not followed (a symlink
// named by rel itself is sent as a symlink). base names the top entry of
// the tar.
func Open(dir, rel, base string) (*Source, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("workspace copy is gone: %w", ErrNotFound)
		}
		return nil, err
	}
	if rel == "" {
		rel = "."
	}
	fi, err := root.Lstat(rel)
	if err != nil {
		root.Close()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", rel, fs.ErrNotExist)
		}
		return nil, fmt.Errorf("%s: %w", rel, unwrapPath(err))
	}
	return &Source{root: root, rel: rel, base: base, info: fi}, nil
}

// Close releases the copy.
func (s *Source) Close() error { return s.root.Close() }

// IsDir says whether the source is a directory.
func (s *Source) IsDir() bool { return s.info.IsDir() }

// WriteTar writes the source to w as a tar whose names start with base.
// Directories are walked without following symlinks; FIFOs, sockets and
// devices are left out.
func (s *Source) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	if err := s.add(tw, s.rel, s.base, s.info); err != nil {
		return err
	}
	return tw.Close()
}

func (s *Source) add(tw *tar.Writer, rel, name string, fi fs.FileInfo) error {
	switch m := fi.Mode(); {
	case m.IsDir():
		if err := header(tw, fi, name+"/", "", tar.TypeDir); err != nil {
			return err
		}
		f, err := s.root.Open(rel)
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			entries, err := f.ReadDir(1024)
			for _, e := range entries {
				r := path.Join(rel, e.Name())
				efi, lerr := s.root.Lstat(r)
				if lerr != nil {
					if errors.Is(lerr, fs.ErrNotExist) {
						continue // removed meanwhile
					}
					return lerr
				}
				if aerr := s.add(tw, r, name+"/"+e.Name(), efi); aerr != nil {
					return aerr
				}
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	case m.IsRegular():
		f, err := s.root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		ofi, err := f.Stat()
		if err != nil {
			return err
		}
		if !ofi.Mode().IsRegular() {
			return nil // changed into something else meanwhile
		}
		if err := header(tw, ofi, name, "", tar.TypeReg); err != nil {
			return err
		}
		// A file that grows meanwhile is cut at the size in its header; one
		// that shrinks fails the tar, which is then cut short.
		_, err = io.CopyN(tw, f, ofi.Size())
		return err
	case m&fs.ModeSymlink != 0:
		target, err := s.root.Readlink(rel)
		if err != nil {
			return err
		}
		return header(tw, fi, name, target, tar.TypeSymlink)
	}
	return nil
}

func header(tw *tar.Writer, fi fs.FileInfo, name, link string, typ byte) error {
	h := &tar.Header{Typeflag: typ, Name: name, Linkname: link, Mode: int64(fi.Mode().Perm()),
		ModTime: fi.ModTime(), Format: tar.FormatPAX}
	if typ == tar.TypeReg {
		h.Size = fi.Size()
	}
	return tw.WriteHeader(h)
}

// Extract writes a tar made by WriteTar to dest, as docker cp does: when
// dest is an existing directory the copy goes into it under its own name,
// otherwise dest is created as the copy (its parent must exist). Names are
// checked and every write goes through an os.Root, so no entry, symlinks
// included, lands outside.
func Extract(r io.Reader, dest string) error {
	tr := tar.NewReader(r)
	var root *os.Root
	var top, rename string
	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirs []dirMode
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the copy: %w", err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if name == "" || path.IsAbs(name) || path.Clean(name) != name || slices.Contains(strings.Split(name, "/"), "..") {
			return fmt.Errorf("the copy holds a bad name %q", h.Name)
		}
		first, rest, _ := strings.Cut(name, "/")
		if root == nil {
			top = first
			dir := dest
			if fi, err := os.Stat(dest); err != nil || !fi.IsDir() {
				// dest is the copy itself.
				dir, rename = filepath.Dir(dest), filepath.Base(dest)
				if err == nil && h.Typeflag == tar.TypeDir {
					return fmt.Errorf("%s exists and is not a directory", dest)
				}
			}
			if root, err = os.OpenRoot(dir); err != nil {
				return err
			}
			defer root.Close()
		}
		if first != top {
			return fmt.Errorf("the copy holds %q outside %q", h.Name, top)
		}
		if rename != "" {
			name = rename
			if rest != "" {
				name += "/" + rest
			}
		}
		mode := fs.FileMode(h.Mode).Perm()
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			dirs = append(dirs, dirMode{name, mode})
		case tar.TypeReg:
			f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|syscall.O_NOFOLLOW, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := root.Chmod(name, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := root.Symlink(h.Linkname, name); err != nil {
				return err
			}
		default:
			return fmt.Errorf("the copy holds %q of an unexpected type", h.Name)
		}
	}
	if root == nil {
		return errors.New("the copy is empty")
	}
	// Modes last, so a read-only directory was writable while filled.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := root.Chmod(dirs[i].name, dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}
