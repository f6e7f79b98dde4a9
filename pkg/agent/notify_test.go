package agent

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// watchdogUSec makes sdNotify check health every 10ms.
const watchdogUSec = "20000"

// fakeSystemd listens where NOTIFY_SOCKET points, as systemd does for a
// Type=notify unit, and hands out each datagram.
func fakeSystemd(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	msgs := make(chan string, 1024)
	go func() {
		defer close(msgs)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

// next returns the next datagram; the deadline is a thousand watchdog
// checks, so only a notifier that sends nothing hits it.
func next(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no notification from the agent")
		return ""
	}
}

func TestNotifyPetsTheWatchdogOnlyWhileHealthy(t *testing.T) {
	msgs := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", watchdogUSec)

	var (
		stalled      atomic.Bool
		healthyPets  atomic.Int64
		stalledCalls atomic.Int64
		stalledLong  = make(chan struct{})
	)
	healthy := func() error {
		if stalled.Load() {
			if stalledCalls.Add(1) == 3 {
				close(stalledLong)
			}
			return errors.New("reconcile loop made no progress for 2m")
		}
		healthyPets.Add(1)
		return nil
	}
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sdNotify(ctx, healthy, slog.New(slog.NewTextHandler(&logs, nil))) }()

	var got []string
	if m := next(t, msgs); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	for len(got) < 2 {
		if m := next(t, msgs); m != "WATCHDOG=1" {
			t.Fatalf("healthy loop: notification %q, want WATCHDOG=1", m)
		}
		got = append(got, "WATCHDOG=1")
	}
	stalled.Store(true)
	<-stalledLong
	stalled.Store(false)
	for !strings.Contains(strings.Join(got[2:], " "), "WATCHDOG=1") {
		got = append(got, next(t, msgs))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("sdNotify: %v", err)
	}
	for got[len(got)-1] != "STOPPING=1" {
		got = append(got, next(t, msgs))
	}

	// Every WATCHDOG=1 follows a passing check: none went out for the
	// three failing ones.
	pets := 0
	for _, m := range got {
		if m == "WATCHDOG=1" {
			pets++
		}
	}
	if int64(pets) != healthyPets.Load() {
		t.Errorf("%d WATCHDOG=1 for %d passing checks (and %d failing)", pets, healthyPets.Load(), stalledCalls.Load())
	}
	if n := strings.Count(logs.String(), "no longer petting"); n != 1 {
		t.Errorf("the stall was logged %d times, want once:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "healthy again") {
		t.Errorf("the recovery was not logged:\n%s", logs.String())
	}
}

func TestNotifyWithoutWatchdog(t *testing.T) {
	msgs := fakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	healthy := func() error { t.Error("health checked without a watchdog"); return nil }
	go func() { done <- sdNotify(ctx, healthy, slog.New(slog.DiscardHandler)) }()
	if m := next(t, msgs); m != "READY=1" {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	cancel()
	if m := next(t, msgs); m != "STOPPING=1" {
		t.Fatalf("notification after cancel %q, want STOPPING=1", m)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestNotifyOutsideSystemdIsQuiet(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	t.Setenv("WATCHDOG_USEC", watchdogUSec)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sdNotify(ctx, func() error { return nil }, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if logs.String() != "" {
		t.Errorf("logged without systemd:\n%s", logs.String())
	}
}
