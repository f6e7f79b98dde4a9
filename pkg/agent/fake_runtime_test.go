package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
)

// fakeRuntime is an in-memory daemon. Containers started while exitCode is
// set exit at once with it; down makes every call fail as an unreachable
// daemon does and ends the event stream.
type fakeRuntime struct {
	mu       sync.Mutex
	nextID   int
	cs       map[string]*docker.Container
	exited   map[string]chan struct{} // closed when the container stops running
	creates  []docker.CreateRequest
	exitCode *int
	logs     string // what every container printed
	down     bool
	stream   chan error // ends the current event subscription
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{cs: map[string]*docker.Container{}, exited: map[string]chan struct{}{}}
}

var _ docker.Runtime = (*fakeRuntime)(nil)

var errDown = fmt.Errorf("cannot reach the Docker daemon: %w", docker.ErrUnavailable)

// setDown takes the daemon away (ending the event stream) or brings it back.
func (f *fakeRuntime) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down && f.stream != nil {
		f.stream <- errDown
		f.stream = nil
	}
}

func (f *fakeRuntime) check() error {
	if f.down {
		return errDown
	}
	return nil
}

func (f *fakeRuntime) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.check()
}

func (f *fakeRuntime) List(_ context.Context, sel map[string]string) ([]docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return nil, err
	}
	var out []docker.Container
	for _, c := range f.cs {
		if matches(c.Labels, sel) {
			ct := *c
			ct.Inspected, ct.ExitCode, ct.StartedAt, ct.FinishedAt = false, 0, time.Time{}, time.Time{}
			out = append(out, ct)
		}
	}
	return out, nil
}

func matches(labels, sel map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func (f *fakeRuntime) Inspect(_ context.Context, id string) (docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return docker.Container{}, err
	}
	c, ok := f.byIDOrName(id)
	if !ok {
		return docker.Container{}, fmt.Errorf("container %s: %w", id, docker.ErrNotFound)
	}
	ct := *c
	ct.Inspected = true
	return ct, nil
}

func (f *fakeRuntime) byIDOrName(id string) (*docker.Container, bool) {
	if c, ok := f.cs[id]; ok {
		return c, true
	}
	for _, c := range f.cs {
		if c.Name == id {
			return c, true
		}
	}
	return nil, false
}

func (f *fakeRuntime) Create(_ context.Context, req docker.CreateRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return "", err
	}
	if _, taken := f.byIDOrName(req.Name); taken {
		return "", fmt.Errorf("name %s: %w", req.Name, docker.ErrConflict)
	}
	f.nextID++
	id := fmt.Sprintf("%064x", f.nextID)
	labels := maps.Clone(req.Spec.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, req.Labels)
	f.cs[id] = &docker.Container{ID: id, Name: req.Name, Image: req.Spec.Spec.Image, Labels: labels,
		State: "created", Created: time.Now()}
	f.creates = append(f.creates, req)
	return id, nil
}

func (f *fakeRuntime) Start(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	c, ok := f.cs[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, docker.ErrNotFound)
	}
	c.State, c.StartedAt, c.FinishedAt, c.ExitCode = "running", time.Now(), time.Time{}, 0
	f.exited[id] = make(chan struct{})
	if f.exitCode != nil {
		f.stopLocked(c, *f.exitCode)
	}
	return nil
}

func (f *fakeRuntime) stopLocked(c *docker.Container, code int) {
	if c.State != "running" {
		return
	}
	c.State, c.ExitCode, c.FinishedAt = "exited", code, time.Now()
	close(f.exited[c.ID])
}

func (f *fakeRuntime) Stop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	c, ok := f.cs[id]
	if !ok {
		return fmt.Errorf("container %s: %w", id, docker.ErrNotFound)
	}
	f.stopLocked(c, 143)
	return nil
}

func (f *fakeRuntime) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return err
	}
	if c, ok := f.cs[id]; ok {
		f.stopLocked(c, 137)
	}
	delete(f.cs, id)
	return nil
}

func (f *fakeRuntime) Wait(ctx context.Context, id string) (model.ContainerExit, error) {
	f.mu.Lock()
	ch, ok := f.exited[id]
	f.mu.Unlock()
	if !ok {
		return model.ContainerExit{}, fmt.Errorf("container %s: %w", id, docker.ErrNotFound)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return model.ContainerExit{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.cs[id]
	if !ok {
		return model.ContainerExit{ContainerID: id}, nil
	}
	return model.ContainerExit{ContainerID: id, ExitCode: c.ExitCode, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt}, nil
}

// Logs returns the container's output framed as Docker frames it.
func (f *fakeRuntime) Logs(context.Context, string, docker.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b bytes.Buffer
	if _, err := stdcopy.NewStdWriter(&b, stdcopy.Stdout).Write([]byte(f.logs)); err != nil {
		return nil, err
	}
	return io.NopCloser(&b), nil
}

func (f *fakeRuntime) Exec(context.Context, string, []string) (docker.ExecResult, error) {
	return docker.ExecResult{}, nil
}

func (f *fakeRuntime) ImagePresent(context.Context, string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check(); err != nil {
		return false, err
	}
	return true, nil
}

func (f *fakeRuntime) Pull(context.Context, string) error { return nil }

// Events holds the subscription open until ctx ends or the daemon goes down.
func (f *fakeRuntime) Events(ctx context.Context, _ time.Time, _ map[string]string) (<-chan docker.Event, <-chan error) {
	errs := make(chan error, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		errs <- errDown
		return nil, errs
	}
	f.stream = errs
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.stream == errs {
			f.stream = nil
			errs <- ctx.Err()
		}
	}()
	return nil, errs
}
