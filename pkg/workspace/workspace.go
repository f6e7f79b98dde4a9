// Package workspace owns the private copies of a spec's workspace source
// that the agent makes for each run, and reading files back out of them.
//
// The tree below the agent's workspace root:
//
//	<root>/                      0700, the agent's
//	  <spec>/                    0700, the agent's
//	    .tmp-<run>/              a copy being made (removed if it fails)
//	    <run>/                   the copy of one run, owned by the
//	                             container's user, bind-mounted read-write
//
// <run> is the UTC time the copy began, fixed width, so the newest sorts
// last. Only the newest copy of a spec is kept: a new run's copy replaces
// the one before it once it is complete. The copy is made from the source
// as it stands, without following any symlink out of it, and the source
// is only ever read.
package workspace

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrNotFound says a spec has no workspace copy.
var ErrNotFound = errors.New("no workspace copy")

// runFormat names a run's directory: sortable as text.
const runFormat = "20060102T150405.000000000Z"

// tmpPrefix marks a copy being made.
const tmpPrefix = ".tmp-"

// SpecDir is the directory of a spec's copies.
func SpecDir(root, spec string) string { return filepath.Join(root, spec) }

// Latest returns the directory of the newest complete copy of spec, or an
// error wrapping ErrNotFound.
func Latest(root, spec string) (string, error) {
	if root == "" || !validName(spec) {
		return "", fmt.Errorf("spec %q: %w", spec, ErrNotFound)
	}
	entries, err := os.ReadDir(SpecDir(root, spec))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("spec %q: %w", spec, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("workspace of %q: %w", spec, err)
	}
	var runs []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			runs = append(runs, e.Name())
		}
	}
	if len(runs) == 0 {
		return "", fmt.Errorf("spec %q: %w", spec, ErrNotFound)
	}
	slices.Sort(runs)
	return filepath.Join(SpecDir(root, spec), runs[len(runs)-1]), nil
}

// validName refuses a spec name that would climb out of the root; spec
// names are DNS labels, so this only guards against misuse.
func validName(spec string) bool {
	return spec != "" && spec != "." && spec != ".." && !strings.ContainsAny(spec, "/\x00")
}

// Prepare makes a new run's copy of src for spec below root, owned by
// owner, and returns its directory. The copies of earlier runs (and any
// copy left half made) are removed once the new one is complete. root and
// the spec's directory are created 0700.
func Prepare(root, spec, src string, owner Owner, lim Limits, deadline time.Time, now time.Time) (string, Stats, error) {
	if root == "" {
		return "", Stats{}, errors.New("workspaces need the agent's --workspace-root, which is not set")
	}
	if !validName(spec) {
		return "", Stats{}, fmt.Errorf("spec name %q cannot name a workspace", spec)
	}
	specDir := SpecDir(root, spec)
	if err := os.MkdirAll(specDir, 0o700); err != nil {
		return "", Stats{}, fmt.Errorf("workspace root: %w", err)
	}
	for _, p := range []string{root, specDir} {
		if err := os.Chmod(p, 0o700); err != nil {
			return "", Stats{}, fmt.Errorf("workspace root: %w", err)
		}
	}
	run := now.UTC().Format(runFormat)
	tmp := filepath.Join(specDir, tmpPrefix+run)
	dst := filepath.Join(specDir, run)
	_ = os.RemoveAll(tmp)
	st, err := Copy(src, tmp, owner, lim, deadline)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", Stats{}, err
	}
	_ = os.RemoveAll(dst) // a run begun at the same instant: the newest wins
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.RemoveAll(tmp)
		return "", Stats{}, fmt.Errorf("workspace: %w", err)
	}
	if old, err := os.ReadDir(specDir); err == nil {
		for _, e := range old {
			if e.Name() != run {
				_ = os.RemoveAll(filepath.Join(specDir, e.Name()))
			}
		}
	}
	return dst, st, nil
}

// Remove removes every copy of spec.
func Remove(root, spec string) error {
	if root == "" || !validName(spec) {
		return nil
	}
	return os.RemoveAll(SpecDir(root, spec))
}
