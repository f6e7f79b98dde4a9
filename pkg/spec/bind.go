package spec

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ResolveBind returns the host path a bind mount of source is made from,
// checked against the policy as it stands on disk now. The controller calls
// it right before every create and hands Docker the path it returns, so a
// link planted after the spec was applied is caught at the next create.
//
// The source must lie below (or be) one of allowedBindPaths. An allowed
// path may itself be reached through symlinks (/srv -> /data/srv is the
// operator's doing); below it, no component may be a symlink, and every
// component must exist: a missing or dangling source is refused rather
// than left for Docker to create or follow. A source given through the
// allowed path's resolved form is accepted too.
//
// Whoever can swap a directory below an allowed path between this check
// and the daemon's mount can still race it; the window is one create.
func (p *Policy) ResolveBind(source string) (string, error) {
	if p == nil {
		p = DefaultPolicy()
	}
	if !filepath.IsAbs(source) {
		return "", fmt.Errorf("%q is not an absolute path", source)
	}
	src := filepath.Clean(source)
	var firstErr error
	for _, root := range p.AllowedBindPaths {
		if !filepath.IsAbs(root) {
			continue
		}
		root = filepath.Clean(root)
		real, err := filepath.EvalSymlinks(root)
		if err != nil {
			if firstErr == nil && below(src, root) {
				firstErr = fmt.Errorf("allowed path %s cannot be resolved: %w", root, unwrapPathError(err))
			}
			continue
		}
		var rel string
		switch {
		case below(src, root):
			rel = relTo(src, root)
		case below(src, real):
			rel = relTo(src, real)
		default:
			continue
		}
		resolved, err := walkNoSymlinks(real, rel)
		if err == nil {
			return resolved, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr != nil {
		return "", firstErr
	}
	return "", fmt.Errorf("%s is not below any of allowedBindPaths %v", src, p.AllowedBindPaths)
}

// walkNoSymlinks joins rel onto root one component at a time and refuses a
// component that is a symlink or that cannot be stat'ed.
func walkNoSymlinks(root, rel string) (string, error) {
	cur := root
	if _, err := os.Stat(root); err != nil {
		return "", fmt.Errorf("cannot stat %s: %w", root, unwrapPathError(err))
	}
	if rel == "" {
		return cur, nil
	}
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		fi, err := os.Lstat(cur)
		if err != nil {
			return "", fmt.Errorf("cannot stat %s: %w", cur, unwrapPathError(err))
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return "", fmt.Errorf("%s is a symlink below an allowed path", cur)
		}
	}
	return cur, nil
}

// below reports whether the clean path p is dir or lies under it.
func below(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

func relTo(p, dir string) string {
	if p == dir {
		return ""
	}
	return strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
}

// unwrapPathError drops the path an *os.PathError repeats.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}
