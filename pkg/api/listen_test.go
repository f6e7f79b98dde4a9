package api_test

import (
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/reconciler/reconciler/pkg/api"
)

// withUmask runs the test body under umask mask (process-wide, so these
// tests do not run in parallel).
func withUmask(t *testing.T, mask int) {
	old := syscall.Umask(mask)
	t.Cleanup(func() { syscall.Umask(old) })
}

func TestListenUnixMode(t *testing.T) {
	for _, mask := range []int{0, 0o022, 0o077, 0o117} {
		t.Run(os.FileMode(mask).String(), func(t *testing.T) {
			withUmask(t, mask)
			dir := filepath.Join(t.TempDir(), "run", "reconciler")
			path := filepath.Join(dir, "api.sock")

			// Watch the final path the whole time: nothing may ever show
			// there with another mode.
			var stop atomic.Bool
			seen := make(chan os.FileMode, 1)
			go func() {
				defer close(seen)
				for !stop.Load() {
					if fi, err := os.Lstat(path); err == nil && fi.Mode().Perm() != 0o660 {
						seen <- fi.Mode()
						return
					}
				}
			}()
			l, err := api.ListenUnix(path)
			stop.Store(true)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if m, bad := <-seen; bad {
				t.Fatalf("socket was visible with mode %v", m)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
				t.Fatalf("socket mode %v, want 0660 socket", fi.Mode())
			}
			di, err := os.Stat(dir)
			if err != nil || di.Mode().Perm() != 0o750&^os.FileMode(mask) {
				t.Fatalf("parent dir mode %v (%v), want 0750 less the umask", di.Mode(), err)
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Fatalf("directory holds %v, want only the socket", ents)
			}
			if l.Addr().String() != path {
				t.Fatalf("Addr %s, want %s", l.Addr(), path)
			}
			serveVersion(t, l, path)
		})
	}
}

// serveVersion serves the API on l and asks it for its version through
// path, as the CLI does.
func serveVersion(t *testing.T, l net.Listener, path string) {
	t.Helper()
	f := newFixture(t)
	srv := &http.Server{Handler: f.handler, ConnContext: api.SocketPeer(os.Getuid(), api.RoleView)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	if _, err := api.NewClient(path).Version(t.Context()); err != nil {
		t.Fatalf("version over %s: %v", path, err)
	}
}

func TestListenUnixReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	// A crashed agent leaves its socket file behind.
	old, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	old.SetUnlinkOnClose(false)
	old.Close()
	var unreachable *api.UnreachableError
	_, err = api.NewClient(path).Version(t.Context())
	if !errors.As(err, &unreachable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("stale socket: %v", err)
	}

	l, err := api.ListenUnix(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	serveVersion(t, l, path)
	l.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

func TestListenUnixRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	first, err := api.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if _, err := api.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "listens on it") {
		t.Fatalf("second listener: %v, want refused", err)
	}
	serveVersion(t, first, path) // the first is untouched
}

func TestListenUnixRefusesOtherFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	if err := os.WriteFile(path, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := api.ListenUnix(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("regular file in the way: %v", err)
	}
	if data, _ := os.ReadFile(path); string(data) != "precious" {
		t.Fatal("the file in the way was touched")
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 100), "api.sock")
	if _, err := api.ListenUnix(long); err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("long path: %v", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.sock")
	_, err := api.NewClient(path).List(t.Context())
	var unreachable *api.UnreachableError
	if !errors.As(err, &unreachable) || unreachable.Where != path {
		t.Fatalf("error %v (%T), want *UnreachableError", err, err)
	}
	if want := "cannot reach the agent at " + path + " (connect: no such file or directory)"; err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
}
