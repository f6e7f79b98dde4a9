package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
)

// fakeRuntime is the part of Docker the API uses: List (by labels),
// Inspect, Logs and Exec. Everything else fails loudly.
type fakeRuntime struct {
	mu         sync.Mutex
	containers []docker.Container
	logs       map[string]*fakeLog // by container id
	exec       func(ctx context.Context, id string, cmd []string) (docker.ExecResult, error)
	lastSel    map[string]string
	lastOpts   docker.LogOptions
}

// fakeLog is a container's multiplexed output. Without follow, Logs gives
// what was written so far; with follow it goes on until the writer closes
// or the request ends.
type fakeLog struct {
	mu     sync.Mutex
	frames []byte
	pw     *io.PipeWriter // the follower's, when one is attached
	closed chan struct{}  // closed when a follower's reader is closed
}

func newFakeLog() *fakeLog { return &fakeLog{closed: make(chan struct{})} }

// write adds output to a stream (stdcopy.Stdout or stdcopy.Stderr).
func (l *fakeLog) write(stream stdcopy.StdType, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := stdcopy.NewStdWriter(writerFunc(func(p []byte) (int, error) {
		l.frames = append(l.frames, p...)
		if l.pw != nil {
			return l.pw.Write(p)
		}
		return len(p), nil
	}), stream)
	_, _ = w.Write([]byte(text))
}

// end ends a follower's stream, as a stopped container does.
func (l *fakeLog) end() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pw != nil {
		l.pw.Close()
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

type closeNotifier struct {
	io.Reader
	close func() error
}

func (c closeNotifier) Close() error { return c.close() }

func (f *fakeRuntime) add(c docker.Container) *fakeLog {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers = append(f.containers, c)
	if f.logs == nil {
		f.logs = map[string]*fakeLog{}
	}
	l := newFakeLog()
	f.logs[c.ID] = l
	return l
}

func (f *fakeRuntime) List(_ context.Context, sel map[string]string) ([]docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastSel = maps.Clone(sel)
	var out []docker.Container
	for _, c := range f.containers {
		match := true
		for k, v := range sel {
			if c.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, c)
		}
	}
	return out, nil
}

func (f *fakeRuntime) Inspect(_ context.Context, id string) (docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.containers {
		if c.ID == id {
			c.Inspected, c.Pid = true, 42
			return c, nil
		}
	}
	return docker.Container{}, fmt.Errorf("container %s: %w", id, docker.ErrNotFound)
}

func (f *fakeRuntime) Logs(ctx context.Context, id string, opts docker.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	f.lastOpts = opts
	l := f.logs[id]
	f.mu.Unlock()
	if l == nil {
		return nil, fmt.Errorf("logs of %s: %w", id, docker.ErrNotFound)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	backlog := string(l.frames)
	if !opts.Follow {
		return io.NopCloser(strings.NewReader(backlog)), nil
	}
	pr, pw := io.Pipe()
	l.pw = pw
	go func() {
		<-ctx.Done() // the daemon ends a follow when its request ends
		pw.CloseWithError(ctx.Err())
	}()
	var once sync.Once
	return closeNotifier{Reader: io.MultiReader(strings.NewReader(backlog), pr), close: func() error {
		once.Do(func() { close(l.closed) })
		return pr.Close()
	}}, nil
}

func (f *fakeRuntime) Exec(ctx context.Context, id string, cmd []string) (docker.ExecResult, error) {
	if f.exec == nil {
		return docker.ExecResult{}, errors.New("no exec in this test")
	}
	return f.exec(ctx, id, cmd)
}

var errUnused = errors.New("not used by the API")

func (f *fakeRuntime) Ping(context.Context) error { return errUnused }
func (f *fakeRuntime) Create(context.Context, docker.CreateRequest) (string, error) {
	return "", errUnused
}
func (f *fakeRuntime) Start(context.Context, string) error                { return errUnused }
func (f *fakeRuntime) Stop(context.Context, string, time.Duration) error  { return errUnused }
func (f *fakeRuntime) Remove(context.Context, string) error               { return errUnused }
func (f *fakeRuntime) ImagePresent(context.Context, string) (bool, error) { return false, errUnused }
func (f *fakeRuntime) Pull(context.Context, string) error                 { return errUnused }
func (f *fakeRuntime) Wait(context.Context, string) (model.ContainerExit, error) {
	return model.ContainerExit{}, errUnused
}
func (f *fakeRuntime) Events(context.Context, time.Time, map[string]string) (<-chan docker.Event, <-chan error) {
	errc := make(chan error, 1)
	errc <- errUnused
	return nil, errc
}
