package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteCatLs(t *testing.T) {
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := run([]string{"write", "--file", filepath.Join(dir, "a", "b.txt"), "--text", "hello"}, &out, &errOut); code != 0 {
		t.Fatalf("write: exit %d (stderr %q)", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"cat", "--file", filepath.Join(dir, "a", "b.txt")}, &out, &errOut); code != 0 || out.String() != "hello" {
		t.Fatalf("cat: exit %d, stdout %q, want 0 and %q", code, out.String(), "hello")
	}
	out.Reset()
	if code := run([]string{"ls", "--dir", dir}, &out, &errOut); code != 0 || out.String() != "a\na/b.txt\n" {
		t.Fatalf("ls: exit %d, stdout %q", code, out.String())
	}
	if code := run([]string{"cat", "--file", filepath.Join(dir, "missing")}, &out, &errOut); code != 1 {
		t.Errorf("cat of a missing file: exit %d, want 1", code)
	}
}

func TestLinesSplitsStreams(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"lines", "--count", "6", "--stderr-every", "3"}, &out, &errOut); code != 0 {
		t.Fatalf("lines: exit %d", code)
	}
	if out.String() != "line 1\nline 2\nline 4\nline 5\n" || errOut.String() != "line 3\nline 6\n" {
		t.Errorf("stdout %q stderr %q", out.String(), errOut.String())
	}
}

func TestFetchExitCodes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "body")
	}))
	defer srv.Close()
	var out, errOut bytes.Buffer
	if code := run([]string{"fetch", "--url", srv.URL}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "status 200\nbody") {
		t.Fatalf("fetch: exit %d, stdout %q", code, out.String())
	}
	if code := run([]string{"fetch", "--url", srv.URL + "/missing"}, &out, &errOut); code != 1 {
		t.Errorf("fetch of a 404: exit %d, want 1", code)
	}
}

func TestDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var out, errOut bytes.Buffer
	if code := run([]string{"dial", "--addr", addr}, &out, &errOut); code != 0 {
		t.Fatalf("dial of a listener: exit %d (stderr %q)", code, errOut.String())
	}
	ln.Close()
	if code := run([]string{"dial", "--addr", addr, "--timeout", "1s"}, &out, &errOut); code != 1 {
		t.Errorf("dial of a closed port: exit %d, want 1", code)
	}
}
