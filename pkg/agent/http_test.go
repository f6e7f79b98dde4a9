package agent

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadTokensModes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	lines := "# token,name,role\ns3cret-1,ci,edit\n"
	for _, mode := range []os.FileMode{0o600, 0o400} {
		tokens, err := loadTokens(Config{APITokens: write("ok", lines, mode), APIToken: "s3cret-2"})
		if err != nil || len(tokens) != 2 || tokens[0].Name != "ci" || tokens[1].Name != "api-token-file" {
			t.Fatalf("mode %v: %v, %v", mode, tokens, err)
		}
		os.Remove(filepath.Join(dir, "ok"))
	}
	for _, tc := range []struct {
		name, path, want string
	}{
		{"group-readable", write("group", lines, 0o640), "has mode 0640: it must be 0600 or stricter"},
		{"other-readable", write("other", lines, 0o604), "has mode 0604: it must be 0600 or stricter"},
		{"group-writable", write("gw", lines, 0o620), "has mode 0620"},
		{"bad line", write("bad", "s3cret-1,ci,root\n", 0o600), "bad:1: role \"root\""},
		{"missing", filepath.Join(dir, "none"), "no such file"},
	} {
		_, err := loadTokens(Config{APITokens: tc.path})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "--api-tokens") {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error shows the token: %v", tc.name, err)
		}
	}
}

func TestTokensFileOfAnotherUserIsRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(path, []byte("s3cret,ci,edit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The agent's own file is read: the positive control.
	if _, err := readStrictlyPrivate("--api-tokens", path); err != nil {
		t.Fatalf("the agent's own file: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Fatalf("this test gives the file away to another user, which needs root (run the unit tests as root, as make test does)")
	}
	if err := os.Chown(path, 65534, -1); err != nil {
		t.Fatal(err)
	}
	_, err := readStrictlyPrivate("--api-tokens", path)
	want := "is owned by uid 65534, not by root or the agent's user"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("%v, want an error saying %q", err, want)
	}
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := limitListener(inner, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	wait := func(d time.Duration) (net.Conn, bool) {
		select {
		case c, open := <-accepted:
			return c, open
		case <-time.After(d):
			return nil, false
		}
	}
	dial()
	dial()
	first, ok1 := wait(5 * time.Second)
	_, ok2 := wait(5 * time.Second)
	if !ok1 || !ok2 {
		t.Fatal("below the cap, connections are not accepted")
	}
	dial()
	if _, ok := wait(200 * time.Millisecond); ok {
		t.Fatal("a third connection was accepted with the cap of 2 in use")
	}
	first.Close()
	first.Close() // a second close frees nothing more
	if _, ok := wait(5 * time.Second); !ok {
		t.Fatal("the third connection waits after one closed")
	}
	if _, ok := first.(interface{ NetConn() net.Conn }); !ok {
		t.Fatal("a limited connection hides the connection beneath")
	}
	l.Close()
	if _, ok := wait(5 * time.Second); ok {
		t.Fatal("accepted after close")
	}
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after close: %v", err)
	}
}

func TestHTTPLimitsCheck(t *testing.T) {
	if err := DefaultHTTPLimits().check(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultHTTPLimits()
	bad.IdleTimeout = 0
	if err := bad.check(); err == nil || !strings.Contains(err.Error(), "--http-idle-timeout") {
		t.Fatalf("idle 0: %v", err)
	}
	bad = DefaultHTTPLimits()
	bad.MaxConns = 0
	if err := bad.check(); err == nil || !strings.Contains(err.Error(), "--http-max-conns") {
		t.Fatalf("max conns 0: %v", err)
	}
}
