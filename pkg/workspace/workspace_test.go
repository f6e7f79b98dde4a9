package workspace

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// tree writes files (name -> content; a name ending in "/" is a
// directory, content "->X" a symlink to X) below dir.
func tree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		must(t, os.MkdirAll(filepath.Dir(p), 0o755))
		switch c := files[n]; {
		case strings.HasSuffix(n, "/"):
			must(t, os.MkdirAll(p, 0o755))
		case strings.HasPrefix(c, "->"):
			must(t, os.Symlink(strings.TrimPrefix(c, "->"), p))
		default:
			must(t, os.WriteFile(p, []byte(c), 0o644))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// digest hashes a tree: names, modes, owners, contents and link targets.
func digest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %v %d:%d %d\n", rel, fi.Mode(), st.Uid, st.Gid, fi.ModTime().UnixNano())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			fmt.Fprintf(h, "-> %s\n", l)
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			h.Write(b)
		}
		return nil
	})
	must(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func owner(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Lstat(p)
	must(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func asRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (run it as root, as make test in CI does): giving files to another user needs root")
	}
}

func TestCopyKeepsGitModesAndLinksAndGivesEverythingToTheOwner(t *testing.T) {
	asRoot(t)
	outside := t.TempDir()
	tree(t, outside, map[string]string{"secret": "host secret"})
	src := filepath.Join(t.TempDir(), "repo")
	tree(t, src, map[string]string{
		"README.md":        "hello",
		"src/main.go":      "package main",
		".git/HEAD":        "ref: refs/heads/main\n",
		".git/objects/ab/": "",
		"empty/":           "",
		"link-in":          "->src/main.go",
		"link-out":         "->" + filepath.Join(outside, "secret"),
		"link-up":          "->../../etc",
	})
	must(t, os.Chmod(filepath.Join(src, "README.md"), 0o4755)) // setuid is dropped
	must(t, os.Chmod(filepath.Join(src, "empty"), 0o500))      // read-only dir still filled
	before := digest(t, src)
	dst := filepath.Join(t.TempDir(), "copy")
	st, err := Copy(src, dst, Owner{UID: 4242, GID: 4343}, DefaultLimits, time.Now().Add(time.Minute))
	must(t, err)
	// README.md, src, src/main.go, .git, .git/HEAD, .git/objects, .git/objects/ab, empty, 3 links
	if st.Entries != 11 || st.Bytes != int64(len("hello")+len("package main")+len("ref: refs/heads/main\n")) {
		t.Errorf("stats %+v", st)
	}

	if got := digest(t, src); got != before {
		t.Fatal("the source changed")
	}
	for _, n := range []string{".", "README.md", "src", "src/main.go", ".git", ".git/HEAD", ".git/objects/ab", "empty", "link-in", "link-out"} {
		if u, g := owner(t, filepath.Join(dst, n)); u != 4242 || g != 4343 {
			t.Errorf("%s is owned by %d:%d, want 4242:4343", n, u, g)
		}
	}
	b, err := os.ReadFile(filepath.Join(dst, ".git/HEAD"))
	must(t, err)
	if string(b) != "ref: refs/heads/main\n" {
		t.Errorf(".git/HEAD = %q", b)
	}
	fi, err := os.Stat(filepath.Join(dst, "README.md"))
	must(t, err)
	if fi.Mode() != 0o755 {
		t.Errorf("README.md mode %v, want -rwxr-xr-x (setuid dropped)", fi.Mode())
	}
	fi, err = os.Stat(filepath.Join(dst, "empty"))
	must(t, err)
	if fi.Mode().Perm() != 0o500 {
		t.Errorf("empty mode %v, want dr-x------", fi.Mode())
	}
	for link, want := range map[string]string{"link-in": "src/main.go", "link-out": filepath.Join(outside, "secret"), "link-up": "../../etc"} {
		fi, err := os.Lstat(filepath.Join(dst, link))
		must(t, err)
		if fi.Mode()&fs.ModeSymlink == 0 {
			t.Errorf("%s is %v, want a symlink", link, fi.Mode())
		}
		if got, _ := os.Readlink(filepath.Join(dst, link)); got != want {
			t.Errorf("%s -> %q, want %q", link, got, want)
		}
	}
	srcFi, _ := os.Stat(filepath.Join(src, "src/main.go"))
	dstFi, _ := os.Stat(filepath.Join(dst, "src/main.go"))
	if !srcFi.ModTime().Equal(dstFi.ModTime()) {
		t.Errorf("mtime %v, want %v", dstFi.ModTime(), srcFi.ModTime())
	}
}

func TestCopyRefusesFIFOsAndBounds(t *testing.T) {
	src := t.TempDir()
	tree(t, src, map[string]string{"a": "12345", "b": "67890"})
	must(t, syscall.Mkfifo(filepath.Join(src, "pipe"), 0o644))
	_, err := Copy(src, filepath.Join(t.TempDir(), "c"), Owner{UID: os.Getuid(), GID: os.Getgid()}, DefaultLimits, time.Time{})
	if err == nil || !strings.Contains(err.Error(), "pipe is a FIFO") {
		t.Fatalf("FIFO: err = %v", err)
	}
	must(t, os.Remove(filepath.Join(src, "pipe")))
	me := Owner{UID: os.Getuid(), GID: os.Getgid()}
	for _, tc := range []struct {
		lim  Limits
		want error
	}{{Limits{MaxBytes: 7}, ErrTooLarge}, {Limits{MaxFiles: 1}, ErrTooLarge}} {
		_, err := Copy(src, filepath.Join(t.TempDir(), "c"), me, tc.lim, time.Time{})
		if !errors.Is(err, tc.want) {
			t.Errorf("%+v: err = %v, want %v", tc.lim, err, tc.want)
		}
	}
	_, err = Copy(src, filepath.Join(t.TempDir(), "c"), me, DefaultLimits, time.Now().Add(-time.Second))
	if !errors.Is(err, ErrDeadline) {
		t.Errorf("deadline: err = %v", err)
	}
	// The positive control: within the limits it copies.
	_, err = Copy(src, filepath.Join(t.TempDir(), "c"), me, Limits{MaxBytes: 10, MaxFiles: 2}, time.Now().Add(time.Minute))
	must(t, err)
}

func TestParseUser(t *testing.T) {
	for in, want := range map[string]Owner{"": {}, "0": {}, "1000": {UID: 1000}, "1000:1001": {UID: 1000, GID: 1001}} {
		got, err := ParseUser(in)
		if err != nil || got != want {
			t.Errorf("ParseUser(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"node", "1000:staff", "-1", "1000:", ":1"} {
		if _, err := ParseUser(in); err == nil || !strings.Contains(err.Error(), "numeric") {
			t.Errorf("ParseUser(%q): err = %v, want a refusal", in, err)
		}
	}
}

func TestPrepareKeepsOnlyTheNewestCopyAndRunsApart(t *testing.T) {
	root := filepath.Join(t.TempDir(), "workspaces")
	src := t.TempDir()
	tree(t, src, map[string]string{"f": "v1"})
	me := Owner{UID: os.Getuid(), GID: os.Getgid()}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	first, _, err := Prepare(root, "job", src, me, DefaultLimits, time.Time{}, t0)
	must(t, err)
	must(t, os.WriteFile(filepath.Join(first, "f"), []byte("changed by run 1"), 0o644))
	if got, _ := Latest(root, "job"); got != first {
		t.Fatalf("Latest = %q, want %q", got, first)
	}
	fi, err := os.Stat(root)
	must(t, err)
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("root mode %v, want 0700", fi.Mode())
	}
	must(t, os.MkdirAll(filepath.Join(SpecDir(root, "job"), ".tmp-left-over"), 0o700))
	second, _, err := Prepare(root, "job", src, me, DefaultLimits, time.Time{}, t0.Add(time.Second))
	must(t, err)
	if b, _ := os.ReadFile(filepath.Join(second, "f")); string(b) != "v1" {
		t.Errorf("run 2 sees %q, want the source's v1", b)
	}
	if b, _ := os.ReadFile(filepath.Join(src, "f")); string(b) != "v1" {
		t.Errorf("source holds %q", b)
	}
	entries, err := os.ReadDir(SpecDir(root, "job"))
	must(t, err)
	if len(entries) != 1 || filepath.Join(SpecDir(root, "job"), entries[0].Name()) != second {
		t.Errorf("spec dir holds %v, want only %s", entries, second)
	}
	must(t, Remove(root, "job"))
	if _, err := Latest(root, "job"); !errors.Is(err, ErrNotFound) {
		t.Errorf("after Remove: %v", err)
	}
	if _, _, err := Prepare(root, "../x", src, me, DefaultLimits, time.Time{}, t0); err == nil {
		t.Error("a spec name with a slash was accepted")
	}
}

func TestRel(t *testing.T) {
	ok := map[string]string{"/workspace": "", "/workspace/": "", "/workspace/a/b": "a/b", "/workspace//a/./b": "a/b"}
	for in, want := range ok {
		got, err := Rel("/workspace", in)
		if err != nil || got != want {
			t.Errorf("Rel(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"/workspace/../etc/passwd": `holds ".."`,
		"/workspace/a/../../etc":   `holds ".."`,
		"/etc/passwd":              "outside the workspace",
		"/workspacex/a":            "outside the workspace",
		"a.txt":                    "not an absolute path",
	} {
		if _, err := Rel("/workspace", in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Rel(%q): err = %v, want %q", in, err, want)
		}
	}
}

func TestTarRoundTripNeverFollowsLinksOut(t *testing.T) {
	outside := t.TempDir()
	tree(t, outside, map[string]string{"secret": "host secret"})
	dir := t.TempDir()
	tree(t, dir, map[string]string{
		"out/a.txt":     "A",
		"out/sub/b.txt": "B",
		"out/esc":       "->" + filepath.Join(outside, "secret"),
		"out/escdir":    "->" + outside,
		"top.txt":       "T",
	})
	tarOf := func(rel, base string) *bytes.Buffer {
		t.Helper()
		s, err := Open(dir, rel, base)
		must(t, err)
		defer s.Close()
		var buf bytes.Buffer
		must(t, s.WriteTar(&buf))
		return &buf
	}
	// A directory into a new name, then into an existing directory.
	dest := t.TempDir()
	must(t, Extract(tarOf("out", "out"), filepath.Join(dest, "copy")))
	must(t, Extract(tarOf("out", "out"), dest))
	for _, p := range []string{"copy/a.txt", "copy/sub/b.txt", "out/a.txt", "out/sub/b.txt"} {
		if _, err := os.Stat(filepath.Join(dest, p)); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dest, "copy/esc")); err != nil || l != filepath.Join(outside, "secret") {
		t.Errorf("esc: %q, %v; want the link itself", l, err)
	}
	// A file.
	must(t, Extract(tarOf("top.txt", "top.txt"), filepath.Join(dest, "t.txt")))
	if b, _ := os.ReadFile(filepath.Join(dest, "t.txt")); string(b) != "T" {
		t.Errorf("t.txt = %q", b)
	}
	// Through a link that leads out: refused, nothing read.
	if _, err := Open(dir, "out/escdir/secret", "secret"); err == nil {
		t.Error("a path through a symlink out of the copy was opened")
	}
	// The link itself is sent as a link, not as what it points at.
	var buf = tarOf("out/esc", "esc")
	if bytes.Contains(buf.Bytes(), []byte("host secret")) {
		t.Error("the tar holds the content behind a symlink")
	}
}

func TestExtractRefusesBadNames(t *testing.T) {
	for _, name := range []string{"../x", "/etc/x", "a/../../x"} {
		var buf bytes.Buffer
		writeTar(t, &buf, name)
		if err := Extract(&buf, filepath.Join(t.TempDir(), "d")); err == nil || !strings.Contains(err.Error(), "bad name") {
			t.Errorf("%q: err = %v", name, err)
		}
	}
}

func writeTar(t *testing.T, w *bytes.Buffer, name string) {
	t.Helper()
	tw := tar.NewWriter(w)
	must(t, tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Size: 1, Mode: 0o644}))
	_, err := tw.Write([]byte("x"))
	must(t, err)
	must(t, tw.Close())
}
