//go:build linux

package api_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/reconciler/reconciler/pkg/api"
)

// nobody is the uid a root test connects as.
const nobody = 65534

// dialAs connects to the unix socket at path as uid: as this process when
// uid is ours, else (as root) from a thread whose effective uid is
// uid. The kernel records the connecting thread's credentials for
// SO_PEERCRED. The thread is never given back to the scheduler: a goroutine
// that ends locked ends its thread.
func dialAs(t *testing.T, path string, uid int) net.Conn {
	t.Helper()
	if uid == os.Getuid() {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if _, _, errno := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); errno != 0 {
			done <- result{err: fmt.Errorf("setresuid on one thread: %w", errno)}
			return
		}
		c, err := net.Dial("unix", path)
		done <- result{c, err}
	}()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.c
}

// applyOver sends an apply on c and returns the status and error message.
func applyOver(t *testing.T, c net.Conn, name string) (int, string) {
	t.Helper()
	body := specYAML(name, "box")
	fmt.Fprintf(c, "POST /v1/specs HTTP/1.1\r\nHost: reconciler\r\nContent-Type: application/yaml\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e api.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Message
}

// TestSocketPeerRoles serves the API on a real unix socket and connects
// as the agent's user and as another user: the kernel's credentials pick
// the role.
func TestSocketPeerRoles(t *testing.T) {
	dir := t.TempDir()
	// Another user must reach the socket: open the directories to it and
	// the socket too (the agent's socket is 0660; here the test alone
	// uses it).
	for d, tmp := dir, filepath.Clean(os.TempDir()); strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "api.sock")
	l, err := api.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}

	me, other, self := os.Getuid(), nobody, os.Getuid()
	if me != 0 {
		// Without root, this process plays the other user: the agent's
		// own uid is then one it is not.
		other, self = me, me+1
	}
	f := newFixture(t)
	srv := &http.Server{Handler: f.handler, ConnContext: api.SocketPeer(self, api.RoleView)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })

	if me == 0 || me == self {
		c := dialAs(t, path, me)
		defer c.Close()
		if status, msg := applyOver(t, c, "mine"); status != http.StatusOK {
			t.Fatalf("the agent's user (uid %d): %d %s", me, status, msg)
		}
	}
	c := dialAs(t, path, other)
	defer c.Close()
	status, msg := applyOver(t, c, "theirs")
	want := fmt.Sprintf("role edit required to apply; you (uid %d", other)
	if status != http.StatusForbidden || !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "have role view") {
		t.Fatalf("another user (uid %d): %d %q, want 403 %q... have role view", other, status, msg, want)
	}
	// The same connection may still read.
	fmt.Fprintf(c, "GET /v1/specs HTTP/1.1\r\nHost: reconciler\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("another user reads: %d", resp.StatusCode)
	}
}

// An agent run by a user other than root: that user is admin on its
// socket too, as root is; another user is refused by uid and user name.
func TestSocketPeerAgentUserIsAdmin(t *testing.T) {
	if os.Getuid() != 0 {
		t.Fatal("this test needs root (run it as root, as make test in CI does): it connects as the agent's user while that is not this process's")
	}
	dir := t.TempDir()
	for d, tmp := dir, filepath.Clean(os.TempDir()); strings.HasPrefix(d, tmp+"/"); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "api.sock")
	l, err := api.ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	srv := &http.Server{Handler: f.handler, ConnContext: api.SocketPeer(nobody, api.RoleView)}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	c := dialAs(t, path, nobody)
	defer c.Close()
	if status, msg := applyOver(t, c, "mine"); status != http.StatusOK {
		t.Fatalf("the agent's own user (uid %d): %d %s, want the apply an admin may make", nobody, status, msg)
	}
	// Another user is refused, named by uid and user name.
	u, err := user.LookupId("1")
	if err != nil {
		t.Fatalf("this test needs a user name for uid 1 (daemon on Debian) in /etc/passwd: %v", err)
	}
	c1 := dialAs(t, path, 1)
	defer c1.Close()
	status, msg := applyOver(t, c1, "theirs")
	if want := fmt.Sprintf("you (uid 1 (%s)) have role view", u.Username); status != http.StatusForbidden || !strings.HasSuffix(msg, want) {
		t.Fatalf("uid 1: %d %q, want 403 ending %q", status, msg, want)
	}
}
