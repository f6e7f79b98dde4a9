//go:build docker

package docker

// These tests run against the local Docker daemon and the project's box
// image (cmd/box, built by images.EnsureBox). Every container they create is
// labelled reconciler.test=docker and removed by the test that created it.
// They build only with -tags docker (make unit sets it), so that
// go test ./pkg/... stays hermetic; with the tag and no daemon they fail
// saying so.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/spec"
)

const (
	testLabel = "reconciler.test"
	testOwner = "docker"
	// runLabel is unique per container, so a label selector finds exactly
	// the containers of one test.
	runLabel = "reconciler.test-run"
	// daemonAPIVersion is what the daemon of this project's test machines
	// speaks (Docker 20.10).
	daemonAPIVersion = "1.41"
)

var box struct {
	sync.Once
	err error
}

// daemon connects to the local daemon and makes sure the box image exists.
// Both are needed: without them the tests fail, saying what is missing.
func daemon(t *testing.T, opts Options) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("these tests need a Docker daemon: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	box.Do(func() {
		bctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		var out strings.Builder
		if err := images.EnsureBox(bctx, c.api, images.BoxImage, &out); err != nil {
			box.err = fmt.Errorf("%w\nbuild output:\n%s", err, out.String())
		}
	})
	if box.err != nil {
		t.Fatalf("the test image %s (cmd/box) could not be built with images.EnsureBox: %v", images.BoxImage, box.err)
	}
	return c
}

func boxSpec(args ...string) *spec.Spec {
	s := &spec.Spec{
		APIVersion: spec.APIVersion, Kind: spec.KindContainer,
		Metadata: spec.Metadata{Name: "box"},
		Spec:     spec.ContainerSpec{Image: images.BoxImage, Args: args},
	}
	s.Default()
	return s
}

// testContainer is one container a test created.
type testContainer struct {
	id, name, run string
}

// create creates a container from s, labelled for this test and removed
// when the test ends.
func create(t *testing.T, c *Client, s *spec.Spec, extra map[string]string) testContainer {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	name := "reconciler-test-docker-" + run
	labels := map[string]string{testLabel: testOwner, runLabel: run, ownership.LabelSpec: s.Metadata.Name, ownership.LabelSpecHash: "h-" + run}
	for k, v := range extra {
		labels[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id, err := c.Create(ctx, CreateRequest{Name: name, Spec: s, Labels: labels})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.Remove(ctx, id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return testContainer{id: id, name: name, run: run}
}

// start creates and starts a container from s.
func start(t *testing.T, c *Client, s *spec.Spec) testContainer {
	t.Helper()
	tc := create(t, c, s, nil)
	if err := c.Start(context.Background(), tc.id); err != nil {
		t.Fatalf("start: %v", err)
	}
	return tc
}

// waitForLog follows the container's output until a line contains want:
// box prints its first line only once its signal handler is in place.
func waitForLog(t *testing.T, c *Client, id, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx, id, LogOptions{Follow: true})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	pr, pw := io.Pipe()
	go func() { _, err := stdcopy.StdCopy(pw, pw, rc); pw.CloseWithError(err) }()
	defer pr.Close()
	for sc := bufio.NewScanner(pr); sc.Scan(); {
		if strings.Contains(sc.Text(), want) {
			return
		}
	}
	t.Fatalf("container %s never printed %q (%v)", id, want, ctx.Err())
}

func logLines(t *testing.T, c *Client, id string, opts LogOptions) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rc, err := c.Logs(ctx, id, opts)
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	var out strings.Builder
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil {
		t.Fatalf("read logs: %v", err)
	}
	return strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
}

func TestIntegrationPing(t *testing.T) {
	c := daemon(t, Options{})
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := c.APIVersion(); got != daemonAPIVersion {
		t.Errorf("negotiated API version %q, want %q (the daemon of this machine)", got, daemonAPIVersion)
	}
}

func TestIntegrationCreateInspectList(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	ctx := context.Background()
	s := boxSpec("sleep")
	s.Metadata.Labels = map[string]string{"team": "a"}
	s.Spec.Resources = spec.Resources{Memory: "64Mi", CPUs: "0.5", Pids: 64}
	s.Spec.TerminationGracePeriod.Duration = 1500 * time.Millisecond
	before := time.Now().Add(-time.Second)
	tc := start(t, c, s)

	got, err := c.Inspect(ctx, tc.id)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Running() || got.Pid == 0 || got.StartedAt.Before(before) || !got.FinishedAt.IsZero() {
		t.Errorf("inspect: state %q pid %d started %v finished %v; want running since the test began, never finished",
			got.State, got.Pid, got.StartedAt, got.FinishedAt)
	}
	eq(t, "name", got.Name, tc.name)
	eq(t, "image", got.Image, images.BoxImage)
	eq(t, "team label", got.Labels["team"], "a")
	eq(t, "test label", got.Labels[testLabel], testOwner)

	list, err := c.List(ctx, map[string]string{testLabel: testOwner, runLabel: tc.run})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != tc.id || list[0].Name != tc.name || list[0].State != "running" || list[0].Inspected {
		t.Fatalf("list by label = %+v, want just the running %s", list, tc.name)
	}

	raw, err := c.api.ContainerInspect(ctx, tc.id)
	if err != nil {
		t.Fatal(err)
	}
	h := raw.HostConfig
	eq(t, "memory", h.Memory, int64(64<<20))
	eq(t, "memory+swap", h.MemorySwap, int64(64<<20))
	eq(t, "nano cpus", h.NanoCPUs, int64(500_000_000))
	eq(t, "pids limit", *h.PidsLimit, int64(64))
	eq(t, "restart policy", h.RestartPolicy.Name, container.RestartPolicyDisabled)
	eq(t, "log config", h.LogConfig, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}})
	eq(t, "stop signal", raw.Config.StopSignal, "SIGTERM")
	eq(t, "stop timeout", *raw.Config.StopTimeout, 2)

	if _, err := c.Inspect(ctx, tc.name+"-missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("inspect of a missing container: %v, want ErrNotFound", err)
	}
	if err := c.Remove(ctx, tc.name+"-missing"); err != nil {
		t.Errorf("remove of a missing container: %v, want nil", err)
	}
}

func TestIntegrationNameConflict(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	tc := create(t, c, boxSpec("sleep"), nil)
	_, err := c.Create(context.Background(), CreateRequest{Name: tc.name, Spec: boxSpec("sleep"),
		Labels: map[string]string{testLabel: testOwner}})
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("second create with name %s: %v, want ErrConflict", tc.name, err)
	}
}

// stopAndWait stops the container with grace and returns how long the stop
// took and how the container ended.
func stopAndWait(t *testing.T, c *Client, id string, grace time.Duration) (time.Duration, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), grace+10*time.Second)
	defer cancel()
	began := time.Now()
	if err := c.Stop(ctx, id, grace); err != nil {
		t.Fatalf("stop: %v", err)
	}
	took := time.Since(began)
	exit, err := c.Wait(ctx, id)
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	return took, exit.ExitCode, exit.Signal
}

func TestIntegrationStop(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})

	t.Run("a process that exits on SIGTERM ends with its own code at once", func(t *testing.T) {
		t.Parallel()
		tc := start(t, c, boxSpec("sleep", "--term-exit-code", "7"))
		waitForLog(t, c, tc.id, "sleeping")
		took, code, signal := stopAndWait(t, c, tc.id, 10*time.Second)
		if code != 7 || signal != "" || took > 3*time.Second {
			t.Errorf("stop took %v and ended with %d %q; want code 7 well before the 10s grace", took, code, signal)
		}
	})

	t.Run("a process that ignores SIGTERM is killed when the grace ends", func(t *testing.T) {
		t.Parallel()
		const grace = 2 * time.Second
		tc := start(t, c, boxSpec("sleep", "--ignore-sigterm"))
		waitForLog(t, c, tc.id, "sleeping")
		took, code, signal := stopAndWait(t, c, tc.id, grace)
		if code != 137 || signal != "SIGKILL" || took < grace || took > grace+3*time.Second {
			t.Errorf("stop took %v and ended with %d %q; want 137 SIGKILL after %v to %v", took, code, signal, grace, grace+3*time.Second)
		}
		logs := strings.Join(logLines(t, c, tc.id, LogOptions{}), "\n")
		if !strings.Contains(logs, "ignoring SIGTERM") {
			t.Errorf("box never saw SIGTERM; logs:\n%s", logs)
		}
	})

	t.Run("the spec's stop signal is the one sent", func(t *testing.T) {
		t.Parallel()
		s := boxSpec("sleep", "--term-exit-code", "5")
		s.Spec.StopSignal = "SIGINT"
		tc := start(t, c, s)
		waitForLog(t, c, tc.id, "sleeping")
		took, code, _ := stopAndWait(t, c, tc.id, 10*time.Second)
		logs := strings.Join(logLines(t, c, tc.id, LogOptions{}), "\n")
		if code != 5 || took > 3*time.Second || !strings.Contains(logs, "received SIGINT") {
			t.Errorf("stop took %v and ended with %d; want 5 at once after SIGINT; logs:\n%s", took, code, logs)
		}
	})
}

func TestIntegrationWait(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	began := time.Now()
	tc := start(t, c, boxSpec("exit", "--code", "3", "--after", "300ms"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exit, err := c.Wait(ctx, tc.id)
	if err != nil {
		t.Fatal(err)
	}
	if exit.ContainerID != tc.id || exit.ExitCode != 3 || exit.Signal != "" || exit.OOMKilled || exit.Reason != "" {
		t.Errorf("exit = %+v, want container %s, code 3, no signal, no reason", exit, tc.id)
	}
	// The run's record is built from an inspect (by the controller): the
	// wait's answer must be the code of the run the inspect shows.
	ct, err := c.Inspect(ctx, tc.id)
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "spec name", ct.Labels[LabelSpec], "box")
	eq(t, "inspected code", ct.ExitCode, exit.ExitCode)
	if ct.Running() || ct.StartedAt.Before(began) || ct.FinishedAt.Before(ct.StartedAt) {
		t.Errorf("inspect after wait: %+v; want a run that began with the test and has ended", ct)
	}
}

// waitAckAPI tells the test when the daemon has accepted a wait, so that
// something can happen to the container during the wait, not before it.
type waitAckAPI struct {
	client.APIClient
	accepted chan struct{}
}

func (a *waitAckAPI) ContainerWait(ctx context.Context, id string, cond container.WaitCondition) (<-chan container.WaitResponse, <-chan error) {
	resc, errc := a.APIClient.ContainerWait(ctx, id, cond)
	close(a.accepted)
	return resc, errc
}

func TestIntegrationWaitFallback(t *testing.T) {
	t.Parallel()

	t.Run("a cancelled wait still reports an exit that happened", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var waitErr error
		c := daemon(t, Options{Observe: func(op string, _ time.Duration, err error) {
			if op == "wait" {
				mu.Lock()
				waitErr = err
				mu.Unlock()
			}
		}})
		tc := start(t, c, boxSpec("exit", "--code", "3"))
		if _, err := c.Wait(context.Background(), tc.id); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		exit, err := c.Wait(ctx, tc.id)
		mu.Lock()
		defer mu.Unlock()
		if !errors.Is(waitErr, context.Canceled) {
			t.Fatalf("the daemon wait returned %v; the test needs it to fail", waitErr)
		}
		if err != nil || exit.ExitCode != 3 || exit.FinishedAt.IsZero() {
			t.Fatalf("Wait = %+v, %v; want code 3 and the finish time from the fallback inspect", exit, err)
		}
	})

	t.Run("a wait cut short on a running container is an error", func(t *testing.T) {
		t.Parallel()
		c := daemon(t, Options{})
		tc := start(t, c, boxSpec("sleep"))
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		exit, err := c.Wait(ctx, tc.id)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %+v, %v; want an error wrapping context.DeadlineExceeded", exit, err)
		}
	})

	t.Run("a container removed during the wait", func(t *testing.T) {
		t.Parallel()
		c := daemon(t, Options{})
		tc := start(t, c, boxSpec("sleep"))
		ack := &waitAckAPI{APIClient: c.api, accepted: make(chan struct{})}
		waiter := newClient(ack, Options{})
		type result struct {
			code   int
			signal string
			err    error
		}
		done := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			exit, err := waiter.Wait(ctx, tc.id)
			done <- result{exit.ExitCode, exit.Signal, err}
		}()
		<-ack.accepted
		if err := c.Remove(context.Background(), tc.id); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.err != nil || r.code != 137 || r.signal != "SIGKILL" {
			t.Fatalf("Wait = %+v; want 137 SIGKILL (the forced removal kills)", r)
		}
	})

	t.Run("a container removed before the wait is not found", func(t *testing.T) {
		t.Parallel()
		c := daemon(t, Options{})
		tc := start(t, c, boxSpec("sleep"))
		if err := c.Remove(context.Background(), tc.id); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Wait(ctx, tc.id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Wait: %v, want ErrNotFound", err)
		}
	})
}

// TestIntegrationOOM shows the two facts the controller's one OOM
// heuristic (oomKilled in pkg/controller) reads: a SIGKILL exit, and the
// daemon's OOMKilled flag or, when the exit outran it, an oom event.
func TestIntegrationOOM(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	// Small steps keep the process alive until containerd watches the
	// cgroup: an OOM before that is reported by nothing, flag nor event.
	s := boxSpec("oom", "--step", "256Ki")
	s.Spec.Resources.Memory = "16Mi"
	began := time.Now().Add(-time.Second)
	tc := start(t, c, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	exit, err := c.Wait(ctx, tc.id)
	if err != nil {
		t.Fatal(err)
	}
	if exit.ExitCode != 137 || exit.Signal != "SIGKILL" {
		t.Fatalf("exit = %+v; want 137, SIGKILL", exit)
	}
	ct, err := c.Inspect(ctx, tc.id)
	if err != nil {
		t.Fatal(err)
	}
	if ct.OOMKilled {
		return
	}
	evs, errs := c.Events(ctx, began, map[string]string{runLabel: tc.run})
	for {
		select {
		case ev := <-evs:
			if ev.Action == "oom" && ev.ContainerID == tc.id {
				return
			}
		case err := <-errs:
			t.Fatalf("no OOMKilled flag and no oom event before the stream ended: %v", err)
		}
	}
}

func TestIntegrationLogs(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})

	t.Run("tail with timestamps", func(t *testing.T) {
		t.Parallel()
		tc := start(t, c, boxSpec("tick", "--interval", "20ms", "--count", "5"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := c.Wait(ctx, tc.id); err != nil {
			t.Fatal(err)
		}
		lines := logLines(t, c, tc.id, LogOptions{Tail: "2", Timestamps: true})
		stamped := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z tick [45] `)
		if len(lines) != 2 || !stamped.MatchString(lines[0]) || !strings.Contains(lines[1], " tick 5 ") {
			t.Fatalf("tail 2 = %q; want ticks 4 and 5 with timestamps", lines)
		}
	})

	t.Run("follow ends when the container does", func(t *testing.T) {
		t.Parallel()
		tc := start(t, c, boxSpec("tick", "--interval", "100ms", "--count", "5"))
		lines := logLines(t, c, tc.id, LogOptions{Follow: true})
		if len(lines) != 6 || !strings.HasPrefix(lines[5], "tick 5 ") {
			t.Fatalf("followed logs = %q; want the start line and 5 ticks", lines)
		}
	})
}

func TestIntegrationExec(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc := start(t, c, boxSpec("sleep"))
	res, err := c.Exec(ctx, tc.id, []string{"/box", "exit", "--code", "4", "--stderr", "oops"})
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "exit code", res.ExitCode, 4)
	eq(t, "stdout", string(res.Stdout), "exiting with 4 after 0s\n")
	eq(t, "stderr", string(res.Stderr), "oops\n")

	stopped := create(t, c, boxSpec("sleep"), nil)
	if _, err := c.Exec(ctx, stopped.id, []string{"/box", "env"}); !errors.Is(err, ErrConflict) {
		t.Errorf("exec in a container that is not running: %v, want ErrConflict", err)
	}
}

// An exec whose caller left ends at once and closes its hijacked
// connection, even while the command runs on silently.
func TestIntegrationExecEndsWithItsCaller(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	tc := start(t, c, boxSpec("sleep"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, tc.id, []string{"/box", "sleep"})
		done <- err
	}()
	// It runs: the daemon lists it on the container, and it goes on.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ins, err := c.api.ContainerInspect(context.Background(), tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if len(ins.ExecIDs) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the exec never showed on its container")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("an exec of a sleep ended by itself: %v", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Exec after its caller left: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Exec still reads its hijacked connection 5s after its caller left")
	}
}

// A wait whose caller left ends at once, reporting a container that still
// runs as the wait's error.
func TestIntegrationWaitEndsWithItsCaller(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	tc := start(t, c, boxSpec("sleep"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Wait(ctx, tc.id)
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a wait on a sleeping container ended by itself: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait after its caller left: %v, want context.Canceled", err)
		}
	case <-time.After(fallbackTimeout + 5*time.Second):
		t.Fatal("Wait still waits after its caller left")
	}
}

func TestIntegrationImages(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if ok, err := c.ImagePresent(ctx, images.BoxImage); !ok || err != nil {
		t.Errorf("ImagePresent(%s) = %v, %v; want true", images.BoxImage, ok, err)
	}
	if ok, err := c.ImagePresent(ctx, "reconciler/absent:never"); ok || err != nil {
		t.Errorf("ImagePresent of a missing image = %v, %v; want false, nil", ok, err)
	}
	// Port 1 on loopback refuses at once: a pull that fails without a
	// registry or a network.
	if err := c.Pull(ctx, "127.0.0.1:1/reconciler/absent:never"); err == nil {
		t.Error("pull from a registry that is not there succeeded")
	}
}

func TestIntegrationEvents(t *testing.T) {
	t.Parallel()
	c := daemon(t, Options{})
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	watched := map[string]string{testLabel: testOwner, "reconciler.test-events": hex.EncodeToString(b)}
	// since replays from the daemon's buffer: the stream cannot miss events
	// that happen while it connects.
	since := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// The unwatched container has ended before the watched one starts, so
	// any event of it would arrive before the watched one's die.
	other := start(t, c, boxSpec("exit", "--code", "1"))
	if _, err := c.Wait(ctx, other.id); err != nil {
		t.Fatal(err)
	}
	tc := create(t, c, boxSpec("exit", "--code", "2"), watched)
	if err := c.Start(ctx, tc.id); err != nil {
		t.Fatal(err)
	}

	evs, errc := c.Events(ctx, since, watched)
	var actions []string
	for ev := range evs {
		if ev.ContainerID != tc.id {
			t.Errorf("event %+v of a container without the watched labels", ev)
			continue
		}
		actions = append(actions, ev.Action)
		if ev.Labels[runLabel] != tc.run || ev.Labels["name"] != "" || ev.Time.Before(since.Add(-time.Second)) {
			t.Errorf("event %+v: want the container's labels and a time after the test began", ev)
		}
		if ev.Action == "die" {
			eq(t, "exit code", ev.ExitCode, "2")
			cancel()
		}
	}
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("stream ended with %v, want context.Canceled", err)
	}
	eq(t, "actions", strings.Join(actions, ","), "create,start,die")
}
