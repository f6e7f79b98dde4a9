package docker

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
)

var (
	started  = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	finished = started.Add(90*time.Second + 250*time.Millisecond)
)

func exited(code int, oom bool) container.State {
	return container.State{
		Status: "exited", ExitCode: code, OOMKilled: oom,
		StartedAt: started.Format(time.RFC3339Nano), FinishedAt: finished.Format(time.RFC3339Nano),
	}
}

func TestWait(t *testing.T) {
	labels := map[string]string{ownership.LabelSpec: "web", ownership.LabelSpecHash: "abc123"}
	running := container.State{Status: "running", Running: true, Pid: 42,
		StartedAt: started.Format(time.RFC3339Nano), FinishedAt: "0001-01-01T00:00:00Z"}
	gone := func(context.Context, string) (container.InspectResponse, error) {
		return container.InspectResponse{}, cerrdefs.ErrNotFound.WithMessage("No such container: c1")
	}
	fromWait := func(code int, signal string) model.ContainerExit {
		return model.ContainerExit{ContainerID: "c1", ExitCode: code, Signal: signal}
	}
	fromInspect := func(code int, signal string) model.ContainerExit {
		return model.ContainerExit{ContainerID: "c1", ExitCode: code, Signal: signal, StartedAt: started, FinishedAt: finished}
	}
	tests := []struct {
		name    string
		api     fakeAPI
		want    model.ContainerExit
		wantErr error
	}{{
		name: "the wait's code, with no inspect",
		api:  fakeAPI{wait: waitReturns(3)},
		want: fromWait(3, ""),
	}, {
		name: "killed by a signal",
		api:  fakeAPI{wait: waitReturns(143)},
		want: fromWait(143, "SIGTERM"),
	}, {
		// Whether a SIGKILL was an OOM kill is the controller's call
		// (decide.oomKilled), from the inspect and the event stream.
		name: "SIGKILL: no oom search here",
		api:  fakeAPI{wait: waitReturns(137)},
		want: fromWait(137, "SIGKILL"),
	}, {
		name: "a broken wait stream falls back to inspect",
		api:  fakeAPI{wait: waitFails(io.ErrUnexpectedEOF), inspect: inspectState(exited(3, false), labels)},
		want: fromInspect(3, ""),
	}, {
		name:    "a broken wait on a running container is an error",
		api:     fakeAPI{wait: waitFails(io.ErrUnexpectedEOF), inspect: inspectState(running, labels)},
		wantErr: io.ErrUnexpectedEOF,
	}, {
		name:    "wait and inspect both fail: not found",
		api:     fakeAPI{wait: waitFails(cerrdefs.ErrNotFound), inspect: gone},
		wantErr: ErrNotFound,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(&tt.api, Options{})
			got, err := c.Wait(context.Background(), "c1")
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eq(t, "exit", got, tt.want)
		})
	}
}

// A cancelled wait still reports an exit that already happened: the
// fallback inspect must not inherit the cancelled context.
func TestWaitCancelledReportsExitThatHappened(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	api := &fakeAPI{
		wait: func(ctx context.Context, _ string) (<-chan container.WaitResponse, <-chan error) {
			return waitFails(ctx.Err())(ctx, "")
		},
		inspect: func(ictx context.Context, id string) (container.InspectResponse, error) {
			if ictx.Err() != nil {
				return container.InspectResponse{}, ictx.Err()
			}
			return inspectState(exited(3, false), nil)(ictx, id)
		},
	}
	got, err := newClient(api, Options{}).Wait(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	eq(t, "exit code", got.ExitCode, 3)
}

func TestWaitObservesDaemonCalls(t *testing.T) {
	var ops []string
	api := &fakeAPI{wait: waitReturns(0), inspect: inspectState(exited(0, false), nil)}
	c := newClient(api, Options{Observe: func(op string, _ time.Duration, err error) {
		ops = append(ops, op)
	}})
	if _, err := c.Wait(context.Background(), "c1"); err != nil {
		t.Fatal(err)
	}
	eq(t, "observed", strings.Join(ops, ","), "wait")
}

func TestFromInspectZeroTimes(t *testing.T) {
	ct := fromInspect(container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{
		ID: "c1", Name: "/web", Created: started.Format(time.RFC3339Nano),
		State: &container.State{Status: "created", StartedAt: "0001-01-01T00:00:00Z", FinishedAt: "0001-01-01T00:00:00Z",
			Health: &container.Health{Status: container.Unhealthy}},
	}})
	if !ct.StartedAt.IsZero() || !ct.FinishedAt.IsZero() {
		t.Errorf("started %v, finished %v: want zero times", ct.StartedAt, ct.FinishedAt)
	}
	eq(t, "name", ct.Name, "web")
	eq(t, "created", ct.Created, started)
	eq(t, "health", ct.Health, "unhealthy")
	eq(t, "inspected", ct.Inspected, true)
}
