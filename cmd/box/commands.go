package main

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

type sleepCmd struct{ duration time.Duration }

func (c *sleepCmd) longRunning() bool { return true }

func (c *sleepCmd) run(stdout, _ io.Writer) int {
	if c.duration == 0 {
		fmt.Fprintln(stdout, "sleeping forever")
	} else {
		fmt.Fprintf(stdout, "sleeping for %s\n", c.duration)
	}
	sleep(c.duration)
	return 0
}

// sleep waits for d, or forever when d is 0. A timer, unlike an empty
// select, keeps the runtime from reporting a deadlock.
func sleep(d time.Duration) {
	if d == 0 {
		d = math.MaxInt64
	}
	time.Sleep(d)
}

type tickCmd struct {
	interval time.Duration
	count    int
	exitCode int
}

func (c *tickCmd) longRunning() bool { return true }

func (c *tickCmd) run(stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "ticking every %s, count %d\n", c.interval, c.count)
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for n := 1; c.count == 0 || n <= c.count; n++ {
		now := <-t.C
		fmt.Fprintf(stdout, "tick %d %s\n", n, now.Format(time.RFC3339Nano))
	}
	return c.exitCode
}

type countdownCmd struct {
	from     int
	interval time.Duration
}

func (c *countdownCmd) longRunning() bool { return true }

func (c *countdownCmd) run(stdout, _ io.Writer) int {
	fmt.Fprintf(stdout, "counting down from %d\n", c.from)
	for n := c.from; n >= 1; n-- {
		fmt.Fprintln(stdout, n)
		time.Sleep(c.interval)
	}
	fmt.Fprintln(stdout, "liftoff")
	return 0
}

type exitCmd struct {
	code   int
	after  time.Duration
	stderr string
}

func (c *exitCmd) longRunning() bool { return true }

func (c *exitCmd) run(stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "exiting with %d after %s\n", c.code, c.after)
	time.Sleep(c.after)
	if c.stderr != "" {
		fmt.Fprintln(stderr, c.stderr)
	}
	return c.code
}

type oomCmd struct {
	step  int
	after time.Duration
}

func (c *oomCmd) longRunning() bool { return true }

func (c *oomCmd) run(stdout, _ io.Writer) int {
	// A container killed in its first milliseconds may die before the
	// runtime watches its cgroup for OOM kills: the daemon then never
	// reports the kill. --after gives the runtime that moment.
	time.Sleep(c.after)
	fmt.Fprintf(stdout, "allocating %d bytes per step until killed\n", c.step)
	var held [][]byte
	for total := c.step; ; total += c.step {
		b := make([]byte, c.step)
		// Untouched pages cost nothing; writing one byte per page makes the
		// kernel back them, which is what the memory limit counts.
		for i := 0; i < len(b); i += os.Getpagesize() {
			b[i] = 1
		}
		held = append(held, b)
		fmt.Fprintf(stdout, "allocated %d MiB\n", total>>20)
	}
}

type envCmd struct{ stay bool }

func (c *envCmd) longRunning() bool { return true }

func (c *envCmd) run(stdout, _ io.Writer) int {
	fmt.Fprintln(stdout, "environment:")
	env := os.Environ()
	slices.Sort(env)
	for _, kv := range env {
		fmt.Fprintln(stdout, kv)
	}
	if c.stay {
		sleep(0)
	}
	return 0
}

type serveCmd struct{ addr string }

func (c *serveCmd) longRunning() bool { return true }

func (c *serveCmd) run(stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "serving on %s\n", c.addr)
	srv := &http.Server{
		Addr: c.addr,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			fmt.Fprint(w, "ok")
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	err := srv.ListenAndServe()
	fmt.Fprintf(stderr, "box: serve: %v\n", err)
	return 1
}

type signalCmd struct{ sig syscall.Signal }

func (c *signalCmd) longRunning() bool { return false }

func (c *signalCmd) run(stdout, stderr io.Writer) int {
	name := signalName(c.sig)
	if os.Getpid() == 1 {
		// The kernel drops a signal that PID 1 of a namespace sends itself
		// under the default action (Go's runtime re-raises it so, then exits
		// 2). So PID 1, as box is in a container, exits with the code Docker
		// reports for a death by that signal.
		fmt.Fprintf(stdout, "exiting with %d as if killed by %s (pid 1 cannot signal itself)\n", 128+int(c.sig), name)
		return 128 + int(c.sig)
	}
	fmt.Fprintf(stdout, "sending %s to myself\n", name)
	signal.Reset(c.sig)
	if err := syscall.Kill(os.Getpid(), c.sig); err != nil {
		fmt.Fprintf(stderr, "box: signal: %v\n", err)
		return 1
	}
	time.Sleep(time.Second)
	fmt.Fprintf(stderr, "box: signal: still alive after %s\n", name)
	return 1
}

type healthCmd struct{ file string }

func (c *healthCmd) longRunning() bool { return false }

func (c *healthCmd) run(stdout, _ io.Writer) int {
	if _, err := os.Stat(c.file); err != nil {
		fmt.Fprintf(stdout, "unhealthy: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "healthy: %s exists\n", c.file)
	return 0
}

type touchCmd struct{ file string }

func (c *touchCmd) longRunning() bool { return false }

func (c *touchCmd) run(stdout, stderr io.Writer) int {
	if err := touch(c.file); err != nil {
		fmt.Fprintf(stderr, "box: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "created %s\n", c.file)
	return 0
}
