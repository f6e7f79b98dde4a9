package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// The commands below give the e2e suites what a coding-agent job does:
// fetch a URL (through HTTPS_PROXY/HTTP_PROXY when set), open a direct
// connection, write and read files in a workspace, and print a lot of
// output.

type fetchCmd struct {
	url      string
	timeout  time.Duration
	insecure bool
}

func (c *fetchCmd) longRunning() bool { return false }

// run prints the status line and the body; the exit code is 0 for a 2xx
// answer and 1 for anything else, a refused proxy or connection included.
func (c *fetchCmd) run(stdout, stderr io.Writer) int {
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment}
	if c.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // test servers only
	}
	cl := &http.Client{Transport: tr, Timeout: c.timeout}
	resp, err := cl.Get(c.url)
	if err != nil {
		fmt.Fprintf(stderr, "box: fetch %s: %v\n", c.url, err)
		return 1
	}
	defer resp.Body.Close()
	fmt.Fprintf(stdout, "status %d\n", resp.StatusCode)
	_, _ = io.Copy(stdout, io.LimitReader(resp.Body, 64<<10))
	fmt.Fprintln(stdout)
	if resp.StatusCode/100 != 2 {
		return 1
	}
	return 0
}

type dialCmd struct {
	addr    string
	timeout time.Duration
}

func (c *dialCmd) longRunning() bool { return false }

// run opens a direct TCP connection, ignoring any proxy: exit 0 when it
// connects, 1 when it does not.
func (c *dialCmd) run(stdout, stderr io.Writer) int {
	conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil {
		fmt.Fprintf(stderr, "box: dial %s: %v\n", c.addr, err)
		return 1
	}
	_ = conn.Close()
	fmt.Fprintf(stdout, "connected to %s\n", c.addr)
	return 0
}

type writeCmd struct{ file, text string }

func (c *writeCmd) longRunning() bool { return false }

func (c *writeCmd) run(stdout, stderr io.Writer) int {
	if err := os.MkdirAll(filepath.Dir(c.file), 0o755); err != nil {
		fmt.Fprintf(stderr, "box: %v\n", err)
		return 1
	}
	if err := os.WriteFile(c.file, []byte(c.text), 0o644); err != nil {
		fmt.Fprintf(stderr, "box: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s\n", c.file)
	return 0
}

type catCmd struct{ file string }

func (c *catCmd) longRunning() bool { return false }

func (c *catCmd) run(stdout, stderr io.Writer) int {
	b, err := os.ReadFile(c.file)
	if err != nil {
		fmt.Fprintf(stderr, "box: %v\n", err)
		return 1
	}
	_, _ = stdout.Write(b)
	return 0
}

type lsCmd struct{ dir string }

func (c *lsCmd) longRunning() bool { return false }

// run prints every path below dir, relative to it, one per line, sorted.
func (c *lsCmd) run(stdout, stderr io.Writer) int {
	var names []string
	err := filepath.Walk(c.dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if rel, _ := filepath.Rel(c.dir, p); rel != "." {
			names = append(names, rel)
		}
		return nil
	})
	if err != nil {
		fmt.Fprintf(stderr, "box: %v\n", err)
		return 1
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintln(stdout, n)
	}
	return 0
}

type linesCmd struct {
	count       int
	stderrEvery int
}

func (c *linesCmd) longRunning() bool { return false }

// run prints lines "line 1" to "line N"; with --stderr-every K, every K-th
// line goes to stderr instead of stdout.
func (c *linesCmd) run(stdout, stderr io.Writer) int {
	for i := 1; i <= c.count; i++ {
		w := stdout
		if c.stderrEvery > 0 && i%c.stderrEvery == 0 {
			w = stderr
		}
		fmt.Fprintf(w, "line %d\n", i)
	}
	return 0
}
