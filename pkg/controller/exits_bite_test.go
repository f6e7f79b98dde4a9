package controller

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// exitsFrame is text on one stream as the daemon frames it.
func exitsFrame(stream stdcopy.StdType, text string) []byte {
	var b bytes.Buffer
	_, _ = stdcopy.NewStdWriter(&b, stream).Write([]byte(text))
	return b.Bytes()
}

// TestExitRecordCarriesTheRunsLogTail: the record of a job that ended
// carries the end of its output as the daemon answers it: every frame of
// both streams; what was read before a garbled stream broke off; nothing
// when the log cannot be read; and a note saying why when the log driver
// keeps no copy.
func TestExitRecordCarriesTheRunsLogTail(t *testing.T) {
	both := slices.Concat(exitsFrame(stdcopy.Stdout, "starting\n"), exitsFrame(stdcopy.Stderr, "boom\n"),
		exitsFrame(stdcopy.Stdout, "bye\n"))
	// A frame header whose stream byte is 9: stdcopy gives up there.
	bad := []byte{9, 0, 0, 0, 0, 0, 0, 1, 'x'}
	garbled := slices.Concat(exitsFrame(stdcopy.Stdout, "partial\n"), bad)
	reader := func(b []byte) func(string, docker.LogOptions) (io.ReadCloser, error) {
		return func(string, docker.LogOptions) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	failing := func(err error) func(string, docker.LogOptions) (io.ReadCloser, error) {
		return func(string, docker.LogOptions) (io.ReadCloser, error) { return nil, err }
	}
	cases := []struct {
		name string
		logs func(string, docker.LogOptions) (io.ReadCloser, error)
		want string
	}{
		{"stdout and stderr, every frame in turn", reader(both), "starting\nboom\nbye\n"},
		{"a stream garbled after its first frame keeps that frame", reader(garbled), "partial\n"},
		{"a stream garbled from its start gives nothing", reader(bad), ""},
		{"an unreadable log gives nothing", failing(fmt.Errorf("logs: %w", docker.ErrUnavailable)), ""},
		{"a log driver that keeps nothing is said so", failing(fmt.Errorf("logs: %w", cerrdefs.ErrNotImplemented)),
			"(no log tail: " + docker.LogsUnreadableMessage + ")\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.put("job", spec.RestartNever, "exit")
			h.reconcile("job")
			h.rt.LogsFunc = tc.logs
			h.now = h.now.Add(time.Second)
			h.rt.exit("reconciler-job", 1)
			h.reconcile("job")
			exits, _ := h.st.Exits("job", 0)
			if len(exits) != 1 || exits[0].ExitCode != 1 {
				t.Fatalf("exits = %+v; want the run recorded once", exits)
			}
			if exits[0].LogTail != tc.want {
				t.Fatalf("log tail %q, want %q", exits[0].LogTail, tc.want)
			}
		})
	}
}

// TestLogTailOfARestartedRunEndsWhereTheNextRunBegins: a container its
// policy restarts in place keeps one log for all its runs; the record of
// the run that ended reads it up to the restart when that came within the
// daemon's 100ms drain of the exit, else up to 100ms after the exit.
func TestLogTailOfARestartedRunEndsWhereTheNextRunBegins(t *testing.T) {
	for _, tc := range []struct {
		name    string
		restart time.Duration // after the exit
		until   time.Duration // after the exit
	}{
		{"restarted within the drain", 50 * time.Millisecond, 50 * time.Millisecond},
		{"restarted after the drain", 300 * time.Millisecond, 100 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.put("web", spec.RestartAlways, "crash")
			h.reconcile("web")
			h.now = h.now.Add(time.Minute)
			h.rt.exit("reconciler-web", 2)
			finished := h.now
			h.now = h.now.Add(tc.restart)
			h.reconcile("web")
			if ct := h.rt.byName("reconciler-web"); h.rt.count("create") != 1 || ct.State != "running" || !ct.StartedAt.Equal(finished.Add(tc.restart)) {
				t.Fatalf("calls %v, container %+v; want it restarted in place", h.rt.calls(), ct)
			}
			if exits, _ := h.st.Exits("web", 0); len(exits) != 1 {
				t.Fatalf("exits = %+v; want the run recorded", exits)
			}
			reads := h.rt.logOpts()
			if got := reads[len(reads)-1].Until; !got.Equal(finished.Add(tc.until)) {
				t.Fatalf("log tail read until %v after the exit, want %v", got.Sub(finished), tc.until)
			}
		})
	}
}

// TestExitAndRestartMetricsCountEachOnce: every recorded exit counts
// under its reason, and a restart counts once whether it follows the
// record (after a back-off) or comes before it (restart first); a job
// that is not restarted counts none.
func TestExitAndRestartMetricsCountEachOnce(t *testing.T) {
	for _, tc := range []struct {
		name     string
		mod      func(*spec.ContainerSpec)
		code     int
		reason   model.ExitReason
		phase    model.Phase
		restarts float64
		backoff  time.Duration // to wait before the restart
	}{
		{"a job that ends is not restarted", func(c *spec.ContainerSpec) { c.RestartPolicy = spec.RestartNever },
			0, model.ReasonCompleted, model.PhaseSucceeded, 0, 0},
		{"a crash restarted after its back-off", func(c *spec.ContainerSpec) {
			c.Backoff = spec.Backoff{Initial: spec.Duration{Duration: time.Second}}
		}, 2, model.ReasonError, model.PhaseBackoff, 1, time.Second},
		{"a crash restarted before its record", func(*spec.ContainerSpec) {}, 2, model.ReasonError, model.PhaseRunning, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.putSpec("web", tc.mod)
			h.reconcile("web")
			h.now = h.now.Add(time.Minute)
			h.rt.exit("reconciler-web", tc.code)
			h.reconcile("web")
			exits, _ := h.st.Exits("web", 0)
			if st := h.status("web"); len(exits) != 1 || exits[0].Reason != tc.reason || st.Phase != tc.phase {
				t.Fatalf("exits %+v, status %+v; want one %s record and phase %s", exits, st, tc.reason, tc.phase)
			}
			if got := testutil.ToFloat64(h.c.m.Exits.WithLabelValues(string(tc.reason))); got != 1 {
				t.Errorf("exits{reason=%s} = %v, want 1", tc.reason, got)
			}
			if got := testutil.ToFloat64(h.c.m.Restarts); got != tc.restarts {
				t.Errorf("restarts = %v, want %v", got, tc.restarts)
			}
			if tc.backoff > 0 {
				h.now = h.now.Add(tc.backoff)
				h.reconcile("web")
				if got := testutil.ToFloat64(h.c.m.Restarts); h.status("web").Phase != model.PhaseRunning || got != 1 {
					t.Errorf("after the back-off: phase %s, restarts %v; want running, still one restart", h.status("web").Phase, got)
				}
			}
		})
	}
}
