package dockertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/spec"
)

func request(name string) docker.CreateRequest {
	return docker.CreateRequest{Name: ownership.ContainerName(name),
		Spec:   &spec.Spec{Metadata: spec.Metadata{Name: name, Labels: map[string]string{"team": "a"}}, Spec: spec.ContainerSpec{Image: "box"}},
		Labels: ownership.Labels("a1", name, "h1")}
}

// A container's life as the daemon gives it, as the consumers' tests rely
// on: create, start, list, inspect, stop, wait, remove.
func TestLifecycle(t *testing.T) {
	ctx := t.Context()
	f := New()
	f.Output = "hello\n"
	id, err := f.Create(ctx, request("web"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Create(ctx, request("web")); !errors.Is(err, docker.ErrConflict) {
		t.Fatalf("second create of one name: %v, want a conflict", err)
	}
	if err := f.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	list, err := f.List(ctx, ownership.SpecSelector("a1", "web"))
	if err != nil || len(list) != 1 || list[0].State != "running" || !list[0].StartedAt.IsZero() || list[0].Labels["team"] != "a" {
		t.Fatalf("list %+v %v: want the running container, without inspect-only fields", list, err)
	}
	if other, _ := f.List(ctx, ownership.SpecSelector("a2", "web")); len(other) != 0 {
		t.Fatalf("another agent's selector lists %+v", other)
	}
	in, err := f.Inspect(ctx, ownership.ContainerName("web"))
	if err != nil || !in.Inspected || in.StartedAt.IsZero() || in.Pid == 0 {
		t.Fatalf("inspect by name %+v %v", in, err)
	}
	waited := make(chan error, 1)
	go func() {
		exit, err := f.Wait(ctx, id)
		if err == nil && (exit.ExitCode != 143 || exit.SpecName != "web" || exit.SpecHash != "h1") {
			err = errors.New("wrong exit record")
		}
		waited <- err
	}()
	select {
	case err := <-waited:
		t.Fatalf("wait returned before the container stopped: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	if err := f.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	rc, err := f.Logs(ctx, id, docker.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if _, err := stdcopy.StdCopy(&out, io.Discard, rc); err != nil || out.String() != "hello\n" {
		t.Fatalf("logs %q %v", out.String(), err)
	}
	if err := f.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := f.Remove(ctx, id); err != nil {
		t.Fatalf("removing a missing container: %v, want no error", err)
	}
	if _, err := f.Inspect(ctx, id); !errors.Is(err, docker.ErrNotFound) {
		t.Fatalf("inspect after remove: %v", err)
	}
	if f.Calls("create") != 2 || f.Calls("start") != 1 || len(f.Creates()) != 1 {
		t.Fatalf("calls create=%d start=%d, creates %d", f.Calls("create"), f.Calls("start"), len(f.Creates()))
	}
}

func TestExitOnStart(t *testing.T) {
	ctx := t.Context()
	f := New()
	code := 3
	f.ExitOnStart = &code
	id, _ := f.Create(ctx, request("job"))
	if err := f.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	exit, err := f.Wait(ctx, id)
	if err != nil || exit.ExitCode != 3 {
		t.Fatalf("exit %+v %v, want code 3", exit, err)
	}
}

// A daemon that goes away fails every call and ends the event stream.
func TestDown(t *testing.T) {
	f := New()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	_, errs := f.Events(ctx, time.Time{}, nil)
	if err := f.Ping(ctx); err != nil {
		t.Fatalf("ping while up: %v", err)
	}
	f.SetDown(true)
	if err := <-errs; !errors.Is(err, docker.ErrUnavailable) {
		t.Fatalf("event stream ended with %v", err)
	}
	if err := f.Ping(ctx); !errors.Is(err, docker.ErrUnavailable) {
		t.Fatalf("ping while down: %v", err)
	}
	f.SetDown(false)
	if err := f.Ping(ctx); err != nil {
		t.Fatalf("ping once back: %v", err)
	}
}

// The answers a test can choose, and what the fake keeps of the calls: the
// controller's tests assert on short ids, the order of calls, refused
// starts and every log read.
func TestChosenAnswers(t *testing.T) {
	ctx := t.Context()
	f := New()
	f.NewID = func(n int) string { return fmt.Sprintf("c%d", n) }
	refuse := errors.New(`exec: "nope": executable file not found in $PATH`)
	f.StartFunc = func(string) error { return refuse }
	var started []docker.Container
	f.OnStart = func(c docker.Container) { started = append(started, c) }
	f.LogsFunc = func(id string, opts docker.LogOptions) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader(id + " until " + opts.Until.String())), nil
	}
	req := request("web")
	req.Image = "sha256:1111"
	id, err := f.Create(ctx, req)
	if err != nil || id != "c1" {
		t.Fatalf("create = %q, %v; want id c1", id, err)
	}
	if err := f.Start(ctx, id); !errors.Is(err, refuse) || len(started) != 0 {
		t.Fatalf("refused start: %v, OnStart called %d times", err, len(started))
	}
	if c, _ := f.Container(id); c.State != "created" {
		t.Fatalf("a refused start left the container %s, want created", c.State)
	}
	f.StartFunc = nil
	if err := f.Start(ctx, id); err != nil || len(started) != 1 || started[0].State != "running" || started[0].StartedAt.IsZero() {
		t.Fatalf("start: %v, OnStart saw %+v", err, started)
	}
	list, _ := f.List(ctx, nil)
	if len(list) != 1 || list[0].ImageID != "sha256:1111" {
		t.Fatalf("list %+v, want the image ID the create asked for", list)
	}
	until := time.Unix(100, 0)
	rc, err := f.Logs(ctx, id, docker.LogOptions{Until: until})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "c1 until "+until.String() {
		t.Fatalf("logs %q, want LogsFunc's answer", b)
	}
	if !f.Edit("reconciler-web", func(c *docker.Container) { c.Health = "unhealthy" }) || f.Edit("nobody", func(*docker.Container) {}) {
		t.Fatal("Edit found the wrong containers")
	}
	if c, _ := f.Container(id); c.Health != "unhealthy" {
		t.Fatalf("health %q after Edit", c.Health)
	}
	if !f.RemoveByHand(id) || f.RemoveByHand(id) {
		t.Fatal("RemoveByHand: want the container removed once")
	}
	if _, ok := f.Container(id); ok {
		t.Fatal("the container is still there after RemoveByHand")
	}
	want := []string{"create", "start", "start", "list", "logs"}
	if ops := f.Ops(); !slices.Equal(ops, want) {
		t.Fatalf("ops %v, want %v", ops, want)
	}
	if got := f.CallCounts(); got["start"] != 2 || len(got) != 4 {
		t.Fatalf("call counts %v", got)
	}
	if f.LastCreate().Image != "sha256:1111" || len(f.LogOptions()) != 1 || !f.LastLogOptions().Until.Equal(until) {
		t.Fatalf("last create %+v, log reads %+v", f.LastCreate(), f.LogOptions())
	}
}
