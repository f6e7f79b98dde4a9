package workspace

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Owner is the numeric user and group a copy is given.
type Owner struct{ UID, GID int }

// ParseUser reads a spec's user as the owner of its workspace: "" is root
// (0:0), "UID" is UID with group 0 (what Docker gives a numeric user the
// image's /etc/passwd does not name), "UID:GID" both. A user name is
// refused: the agent would have to read the image's /etc/passwd, and the
// process could still end up someone else.
func ParseUser(user string) (Owner, error) {
	if user == "" {
		return Owner{}, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, err := strconv.ParseUint(u, 10, 31)
	if err != nil {
		return Owner{}, fmt.Errorf("user %q is not numeric: a workspace is given to a numeric user (UID or UID:GID)", user)
	}
	o := Owner{UID: int(uid)}
	if hasGroup {
		gid, err := strconv.ParseUint(g, 10, 31)
		if err != nil {
			return Owner{}, fmt.Errorf("group of user %q is not numeric: a workspace is given to a numeric user (UID or UID:GID)", user)
		}
		o.GID = int(gid)
	}
	return o, nil
}

// Limits bound one copy.
type Limits struct {
	MaxBytes int64 // bytes of file content
	MaxFiles int   // entries: files, directories and symlinks
}

// DefaultLimits suit a source repository with its .git.
var DefaultLimits = Limits{MaxBytes: 4 << 30, MaxFiles: 200_000}

// ErrTooLarge says a source is beyond the copy's limits.
var ErrTooLarge = errors.New("workspace source too large")

// ErrDeadline says a copy took longer than it was given.
var ErrDeadline = errors.New("workspace copy took too long")

// Copy copies the directory src to dst, which must not exist, giving every
// entry to owner. Regular files, directories and symlinks are copied
// (symlinks as symlinks, never followed); their permission bits are kept,
// except set-user-ID and set-group-ID, and so are modification times. A
// device, FIFO or socket is refused, as is a source beyond lim or a copy
// still going at deadline (zero: none). src is only read: everything below
// it is reached through an os.Root, so no path, however it changes during
// the copy, leads out of it.
func Copy(src, dst string, owner Owner, lim Limits, deadline time.Time) (Stats, error) {
	sr, err := os.OpenRoot(src)
	if err != nil {
		return Stats{}, fmt.Errorf("workspace source: %w", err)
	}
	defer sr.Close()
	fi, err := sr.Lstat(".")
	if err != nil {
		return Stats{}, fmt.Errorf("workspace source: %w", err)
	}
	if !fi.IsDir() {
		return Stats{}, fmt.Errorf("workspace source %s is not a directory", src)
	}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return Stats{}, fmt.Errorf("workspace copy: %w", err)
	}
	dr, err := os.OpenRoot(dst)
	if err != nil {
		return Stats{}, fmt.Errorf("workspace copy: %w", err)
	}
	defer dr.Close()
	c := &copier{src: sr, dst: dr, srcName: src, owner: owner, lim: lim, deadline: deadline}
	if err := c.dir("."); err != nil {
		return Stats{}, err
	}
	if err := c.finish(".", fi); err != nil {
		return Stats{}, err
	}
	return Stats{Entries: c.files, Bytes: c.bytes}, nil
}

// Stats say how much a copy held.
type Stats struct {
	Entries int   // files, directories and symlinks below the top
	Bytes   int64 // file content
}

type copier struct {
	src, dst *os.Root
	srcName  string
	owner    Owner
	lim      Limits
	deadline time.Time
	files    int
	bytes    int64
}

func (c *copier) check() error {
	if !c.deadline.IsZero() && time.Now().After(c.deadline) {
		return fmt.Errorf("copying %s: %w (after %d entries, %d bytes)", c.srcName, ErrDeadline, c.files, c.bytes)
	}
	return nil
}

// dir copies the entries of the directory rel (which exists in dst).
func (c *copier) dir(rel string) error {
	f, err := c.src.Open(rel)
	if err != nil {
		return c.fail(rel, err)
	}
	defer f.Close()
	for {
		entries, err := f.ReadDir(1024)
		for _, e := range entries {
			if err := c.entry(filepath.Join(rel, e.Name())); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return c.fail(rel, err)
		}
	}
}

func (c *copier) entry(rel string) error {
	if err := c.check(); err != nil {
		return err
	}
	c.files++
	if c.lim.MaxFiles > 0 && c.files > c.lim.MaxFiles {
		return fmt.Errorf("%w: %s holds more than %d files, directories and symlinks", ErrTooLarge, c.srcName, c.lim.MaxFiles)
	}
	fi, err := c.src.Lstat(rel)
	if err != nil {
		return c.fail(rel, err)
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		if err := c.dst.Mkdir(rel, 0o700); err != nil {
			return c.fail(rel, err)
		}
		if err := c.dir(rel); err != nil {
			return err
		}
		return c.finish(rel, fi)
	case m.IsRegular():
		return c.file(rel)
	case m&fs.ModeSymlink != 0:
		target, err := c.src.Readlink(rel)
		if err != nil {
			return c.fail(rel, err)
		}
		if err := c.dst.Symlink(target, rel); err != nil {
			return c.fail(rel, err)
		}
		return c.own(rel)
	default:
		return fmt.Errorf("workspace source %s: %s is a %s; a workspace holds only files, directories and symlinks",
			c.srcName, rel, kind(m))
	}
}

// file copies one regular file; it is opened without following a symlink
// and checked again once open, as it may have changed since the Lstat.
func (c *copier) file(rel string) error {
	in, err := c.src.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return c.fail(rel, err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		return c.fail(rel, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("workspace source %s: %s changed into a %s during the copy", c.srcName, rel, kind(fi.Mode()))
	}
	out, err := c.dst.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return c.fail(rel, err)
	}
	_, err = io.Copy(out, &budgetReader{r: in, c: c})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrDeadline) {
			return err
		}
		return c.fail(rel, err)
	}
	return c.finish(rel, fi)
}

// finish gives rel its owner, mode and time, once its content is in.
func (c *copier) finish(rel string, fi fs.FileInfo) error {
	if err := c.own(rel); err != nil {
		return err
	}
	mode := fi.Mode().Perm() | fi.Mode()&fs.ModeSticky
	if err := c.dst.Chmod(rel, mode); err != nil {
		return c.fail(rel, err)
	}
	if err := c.dst.Chtimes(rel, fi.ModTime(), fi.ModTime()); err != nil {
		return c.fail(rel, err)
	}
	return nil
}

func (c *copier) own(rel string) error {
	if err := c.dst.Lchown(rel, c.owner.UID, c.owner.GID); err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return fmt.Errorf("workspace copy: cannot give %s to %d:%d (the agent must run as root to give a workspace to another user): %w",
				rel, c.owner.UID, c.owner.GID, err)
		}
		return c.fail(rel, err)
	}
	return nil
}

func (c *copier) fail(rel string, err error) error {
	return fmt.Errorf("workspace copy of %s: %s: %w", c.srcName, rel, unwrapPath(err))
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// budgetReader counts the bytes read against the copy's limits.
type budgetReader struct {
	r io.Reader
	c *copier
}

func (b *budgetReader) Read(p []byte) (int, error) {
	if err := b.c.check(); err != nil {
		return 0, err
	}
	n, err := b.r.Read(p)
	b.c.bytes += int64(n)
	if b.c.lim.MaxBytes > 0 && b.c.bytes > b.c.lim.MaxBytes {
		return n, fmt.Errorf("%w: %s holds more than %d bytes", ErrTooLarge, b.c.srcName, b.c.lim.MaxBytes)
	}
	return n, err
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}
