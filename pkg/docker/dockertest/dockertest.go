// Package dockertest is an in-memory Docker daemon for unit tests: the one
// fake docker.Runtime that the packages' tests share, in the style of
// swarmkit's fakes. Containers live in a map and go through the states the
// daemon gives them (created, running, exited); function fields choose the
// answers a test wants to set (ExecFunc, PullFunc, StartFunc, LogsFunc).
// Set the fields before the fake is used, or between calls while nothing
// else calls it; its methods are safe for concurrent use.
package dockertest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
)

// ErrDown is what every call answers while the daemon is down (SetDown).
var ErrDown = fmt.Errorf("cannot reach the Docker daemon: %w", docker.ErrUnavailable)

// Runtime is an in-memory daemon; New makes one.
type Runtime struct {
	// Now is the clock of Created, StartedAt and FinishedAt. Default
	// time.Now.
	Now func() time.Time
	// ExitOnStart, when set, ends every container at once with this exit
	// code when it starts, as a program that crashes does.
	ExitOnStart *int
	// StopCode is the exit code of a container that Stop ends. Default 143
	// (the program died of its SIGTERM).
	StopCode int
	// Output is what every container prints on stdout when it starts.
	Output string
	// Images are the images in the local store; nil means every image is.
	Images map[string]bool
	// ExecFunc answers Exec; without it every exec fails.
	ExecFunc func(ctx context.Context, id string, cmd []string) (docker.ExecResult, error)
	// PullFunc answers Pull, and a nil error adds the image to Images;
	// without it every pull fails, as with no registry reachable.
	PullFunc func(ctx context.Context, ref string) error
	// NewID names the n-th container created (n from 1). Default: n in 64
	// hex digits, the length of the daemon's ids.
	NewID func(n int) string
	// CreateFunc, when set, is asked before each create: an error from it
	// refuses the create, as the daemon refuses a container it cannot make
	// (an image with no command, say). It is called with the fake's lock
	// held, so it must not call the Runtime.
	CreateFunc func(req docker.CreateRequest) error
	// StartFunc, when set, is asked before each start: an error from it
	// refuses the start and leaves the container as it was, as the daemon
	// refuses a command it cannot run.
	StartFunc func(id string) error
	// OnStart, when set, is called after each start with the container as
	// started, outside the fake's lock.
	OnStart func(c docker.Container)
	// LogsFunc, when set, answers Logs in place of the containers' own
	// output (Log).
	LogsFunc func(id string, opts docker.LogOptions) (io.ReadCloser, error)

	mu         sync.Mutex
	seq        int
	containers map[string]*docker.Container
	logs       map[string]*Log
	exited     map[string]chan struct{} // closed when the container stops running
	ends       map[string]model.ContainerExit
	creates    []docker.CreateRequest
	calls      map[string]int
	ops        []string // every call, in turn
	lastSel    map[string]string
	logOpts    []docker.LogOptions
	down       bool
	streams    map[chan error]struct{} // open event subscriptions
}

// New returns a daemon with no containers.
func New() *Runtime {
	return &Runtime{
		containers: map[string]*docker.Container{}, logs: map[string]*Log{},
		exited: map[string]chan struct{}{}, ends: map[string]model.ContainerExit{},
		calls: map[string]int{}, streams: map[chan error]struct{}{},
	}
}

var _ docker.Runtime = (*Runtime)(nil)

func (f *Runtime) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// enter counts a call to op and answers ErrDown while the daemon is down.
// f.mu is held.
func (f *Runtime) enter(op string) error {
	f.calls[op]++
	f.ops = append(f.ops, op)
	if f.down {
		return ErrDown
	}
	return nil
}

// Add puts a container into the daemon as it is (a running one can be
// waited for and stopped) and returns its log.
func (f *Runtime) Add(c docker.Container) *Log {
	f.mu.Lock()
	defer f.mu.Unlock()
	ct := c
	f.containers[c.ID] = &ct
	l := newLog()
	f.logs[c.ID] = l
	ch := make(chan struct{})
	if !c.Running() {
		close(ch)
		f.ends[c.ID] = exitOf(&ct)
	}
	f.exited[c.ID] = ch
	return l
}

// Container returns the container with this id or name as the daemon holds it.
func (f *Runtime) Container(idOrName string) (docker.Container, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c == nil {
		return docker.Container{}, false
	}
	return *c, true
}

// Containers returns every container, by id.
func (f *Runtime) Containers() []docker.Container {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]docker.Container, 0, len(f.containers))
	for _, id := range slices.Sorted(maps.Keys(f.containers)) {
		out = append(out, *f.containers[id])
	}
	return out
}

// Log returns the output of the container with this id (nil if none).
func (f *Runtime) Log(id string) *Log {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logs[id]
}

// Creates returns every create request, in order.
func (f *Runtime) Creates() []docker.CreateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.creates)
}

// LastCreate is the last create request (zero before any).
func (f *Runtime) LastCreate() docker.CreateRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.creates) == 0 {
		return docker.CreateRequest{}
	}
	return f.creates[len(f.creates)-1]
}

// Calls counts the calls of one method, by its name in lower case
// ("list", "inspect", "start", ...).
func (f *Runtime) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// CallCounts counts the calls of every method called, by name as in Calls.
func (f *Runtime) CallCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// Ops returns every call so far, in turn, by name as in Calls.
func (f *Runtime) Ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ops)
}

// Edit changes the container with this id or name in place, as the daemon
// would on its own (a health check's verdict, say); false if there is none.
func (f *Runtime) Edit(idOrName string, edit func(*docker.Container)) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c == nil {
		return false
	}
	edit(c)
	return true
}

// LastSelector is the label selector of the last List.
func (f *Runtime) LastSelector() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.lastSel)
}

// LastLogOptions are the options of the last Logs.
func (f *Runtime) LastLogOptions() docker.LogOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.logOpts) == 0 {
		return docker.LogOptions{}
	}
	return f.logOpts[len(f.logOpts)-1]
}

// LogOptions are the options of every Logs, in turn.
func (f *Runtime) LogOptions() []docker.LogOptions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logOpts)
}

// SetDown takes the daemon away, ending every event stream, or brings it
// back.
func (f *Runtime) SetDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down {
		for s := range f.streams {
			s <- ErrDown
			delete(f.streams, s)
		}
	}
}

// RemoveByHand takes a container away as someone's `docker rm -f` does,
// outside the calls the fake counts; false if there is none.
func (f *Runtime) RemoveByHand(idOrName string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.find(idOrName)
	if c == nil {
		return false
	}
	f.stop(c, 137)
	delete(f.containers, c.ID)
	delete(f.logs, c.ID)
	return true
}

// Exit ends a running container's process with code, as a crash does.
func (f *Runtime) Exit(idOrName string, code int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.find(idOrName); c != nil {
		f.stop(c, code)
	}
}

func (f *Runtime) find(idOrName string) *docker.Container {
	if c, ok := f.containers[idOrName]; ok {
		return c
	}
	for _, c := range f.containers {
		if c.Name == idOrName {
			return c
		}
	}
	return nil
}

// stop ends a running container with code. f.mu is held.
func (f *Runtime) stop(c *docker.Container, code int) {
	if !c.Running() {
		return
	}
	c.State, c.ExitCode, c.FinishedAt, c.Pid = "exited", code, f.now(), 0
	f.ends[c.ID] = exitOf(c)
	close(f.exited[c.ID])
	f.logs[c.ID].End()
}

func exitOf(c *docker.Container) model.ContainerExit {
	return model.ContainerExit{ContainerID: c.ID, SpecName: c.Labels[ownership.LabelSpec],
		SpecHash: c.Labels[ownership.LabelSpecHash], ExitCode: c.ExitCode, OOMKilled: c.OOMKilled,
		Error: c.Error, StartedAt: c.StartedAt, FinishedAt: c.FinishedAt}
}

func (f *Runtime) Ping(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.enter("ping")
}

// List leaves the fields only Inspect fills zero, as the daemon does.
func (f *Runtime) List(_ context.Context, sel map[string]string) ([]docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("list"); err != nil {
		return nil, err
	}
	f.lastSel = maps.Clone(sel)
	var out []docker.Container
next:
	for _, id := range slices.Sorted(maps.Keys(f.containers)) {
		c := f.containers[id]
		for k, v := range sel {
			if c.Labels[k] != v {
				continue next
			}
		}
		out = append(out, docker.Container{ID: c.ID, Name: c.Name, Image: c.Image, ImageID: c.ImageID,
			Labels: maps.Clone(c.Labels), State: c.State, Created: c.Created})
	}
	return out, nil
}

func (f *Runtime) Inspect(_ context.Context, id string) (docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("inspect"); err != nil {
		return docker.Container{}, err
	}
	c := f.find(id)
	if c == nil {
		return docker.Container{}, fmt.Errorf("inspect container %s: %w", id, docker.ErrNotFound)
	}
	ct := *c
	ct.Inspected, ct.Labels = true, maps.Clone(c.Labels)
	return ct, nil
}

// Create merges the ownership labels over the spec's, as the Docker layer
// does; a name already taken is a conflict. The container's ImageID is the
// request's Image (an image ID the controller chose), else empty.
func (f *Runtime) Create(_ context.Context, req docker.CreateRequest) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("create"); err != nil {
		return "", err
	}
	if f.find(req.Name) != nil {
		return "", fmt.Errorf("create container %s: name in use: %w", req.Name, docker.ErrConflict)
	}
	if f.CreateFunc != nil {
		if err := f.CreateFunc(req); err != nil {
			return "", err
		}
	}
	f.seq++
	id := fmt.Sprintf("%064x", f.seq)
	if f.NewID != nil {
		id = f.NewID(f.seq)
	}
	labels := maps.Clone(req.Spec.Metadata.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, req.Labels)
	f.containers[id] = &docker.Container{ID: id, Name: req.Name, Image: req.Spec.Spec.Image, ImageID: req.Image,
		Labels: labels, State: "created", Created: f.now()}
	f.logs[id] = newLog()
	f.creates = append(f.creates, req)
	return id, nil
}

func (f *Runtime) Start(_ context.Context, id string) error {
	started, err := f.start(id)
	if err == nil && f.OnStart != nil {
		f.OnStart(started)
	}
	return err
}

func (f *Runtime) start(id string) (docker.Container, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("start"); err != nil {
		return docker.Container{}, err
	}
	c := f.find(id)
	if c == nil {
		return docker.Container{}, fmt.Errorf("start container %s: %w", id, docker.ErrNotFound)
	}
	if f.StartFunc != nil {
		if err := f.StartFunc(c.ID); err != nil {
			return docker.Container{}, err
		}
	}
	if c.Running() {
		return *c, nil
	}
	c.State, c.StartedAt, c.FinishedAt, c.ExitCode, c.Pid = "running", f.now(), time.Time{}, 0, 1000+f.seq
	f.exited[c.ID] = make(chan struct{})
	delete(f.ends, c.ID)
	if f.Output != "" {
		f.logs[c.ID].Write(stdcopy.Stdout, f.Output)
	}
	if f.ExitOnStart != nil {
		f.stop(c, *f.ExitOnStart)
	}
	ct := *c
	ct.Labels = maps.Clone(c.Labels)
	return ct, nil
}

func (f *Runtime) Stop(_ context.Context, id string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("stop"); err != nil {
		return err
	}
	c := f.find(id)
	if c == nil {
		return fmt.Errorf("stop container %s: %w", id, docker.ErrNotFound)
	}
	code := f.StopCode
	if code == 0 {
		code = 143
	}
	f.stop(c, code)
	return nil
}

// Remove kills a running container (exit 137); a missing one is not an
// error.
func (f *Runtime) Remove(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("remove"); err != nil {
		return err
	}
	if c := f.find(id); c != nil {
		f.stop(c, 137)
		delete(f.containers, c.ID)
		delete(f.logs, c.ID)
	}
	return nil
}

// Wait blocks until the container stops running and answers how it ended,
// even when it was removed since.
func (f *Runtime) Wait(ctx context.Context, id string) (model.ContainerExit, error) {
	f.mu.Lock()
	f.calls["wait"]++
	f.ops = append(f.ops, "wait")
	ch, ok := f.exited[id]
	f.mu.Unlock()
	if !ok {
		return model.ContainerExit{}, fmt.Errorf("wait for container %s: %w", id, docker.ErrNotFound)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return model.ContainerExit{}, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ends[id], nil
}

// Logs returns the container's output framed as Docker frames it; with
// Follow it goes on until the container stops, its reader is closed or
// ctx ends.
func (f *Runtime) Logs(ctx context.Context, id string, opts docker.LogOptions) (io.ReadCloser, error) {
	f.mu.Lock()
	err := f.enter("logs")
	f.logOpts = append(f.logOpts, opts)
	c, l, logs := f.find(id), f.logs[id], f.LogsFunc
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if logs != nil {
		return logs(id, opts)
	}
	if c == nil || l == nil {
		return nil, fmt.Errorf("logs of container %s: %w", id, docker.ErrNotFound)
	}
	return l.read(ctx, opts.Follow && c.Running())
}

func (f *Runtime) Exec(ctx context.Context, id string, cmd []string) (docker.ExecResult, error) {
	f.mu.Lock()
	err := f.enter("exec")
	exec := f.ExecFunc
	f.mu.Unlock()
	switch {
	case err != nil:
		return docker.ExecResult{}, err
	case exec == nil:
		return docker.ExecResult{}, errors.New("dockertest: this test set no ExecFunc")
	}
	return exec(ctx, id, cmd)
}

func (f *Runtime) ImagePresent(_ context.Context, ref string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("imagepresent"); err != nil {
		return false, err
	}
	return f.Images == nil || f.Images[ref], nil
}

func (f *Runtime) Pull(ctx context.Context, ref string) error {
	f.mu.Lock()
	err := f.enter("pull")
	pull := f.PullFunc
	f.mu.Unlock()
	switch {
	case err != nil:
		return err
	case pull == nil:
		return fmt.Errorf("pull %s: dockertest: no registry (this test set no PullFunc)", ref)
	}
	if err := pull(ctx, ref); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Images != nil {
		f.Images[ref] = true
	}
	return nil
}

// Events sends no events: it holds the subscription open until ctx ends or
// the daemon goes down, and then yields the error that ended it.
func (f *Runtime) Events(ctx context.Context, _ time.Time, _ map[string]string) (<-chan docker.Event, <-chan error) {
	events, errs := make(chan docker.Event), make(chan error, 1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("events"); err != nil {
		errs <- err
		return events, errs
	}
	f.streams[errs] = struct{}{}
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, open := f.streams[errs]; open {
			delete(f.streams, errs)
			errs <- ctx.Err()
		}
	}()
	return events, errs
}

// Log is a container's output as the daemon keeps it: multiplexed frames.
// Without follow, Logs gives what was written so far; with follow it goes
// on until End, or until the reader is closed or the request ends.
type Log struct {
	mu     sync.Mutex
	frames []byte
	pw     *io.PipeWriter // the follower's, when one is attached
	closed chan struct{}  // closed when a follower's reader is closed
	once   sync.Once
}

func newLog() *Log { return &Log{closed: make(chan struct{})} }

// Write adds output to a stream (stdcopy.Stdout or stdcopy.Stderr).
func (l *Log) Write(stream stdcopy.StdType, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := stdcopy.NewStdWriter(writerFunc(func(p []byte) (int, error) {
		l.frames = append(l.frames, p...)
		if l.pw != nil {
			_, _ = l.pw.Write(p) // a follower gone is not the writer's error
		}
		return len(p), nil
	}), stream)
	_, _ = w.Write([]byte(text))
}

// End ends a follower's stream, as a stopped container does.
func (l *Log) End() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pw != nil {
		l.pw.Close()
		l.pw = nil
	}
}

// Closed is closed once a follower has closed its reader.
func (l *Log) Closed() <-chan struct{} { return l.closed }

func (l *Log) read(ctx context.Context, follow bool) (io.ReadCloser, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	backlog := strings.NewReader(string(l.frames))
	if !follow {
		return io.NopCloser(backlog), nil
	}
	pr, pw := io.Pipe()
	l.pw = pw
	go func() {
		<-ctx.Done() // the daemon ends a follow when its request ends
		pw.CloseWithError(ctx.Err())
	}()
	return readCloser{Reader: io.MultiReader(backlog, pr), close: func() error {
		l.once.Do(func() { close(l.closed) })
		return pr.Close()
	}}, nil
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// Rename renames a container; a name another container holds is
// ErrConflict.
func (f *Runtime) Rename(_ context.Context, id, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.enter("rename"); err != nil {
		return err
	}
	c := f.find(id)
	if c == nil {
		return fmt.Errorf("rename container %s: %w", id, docker.ErrNotFound)
	}
	if o := f.find(name); o != nil && o != c {
		return fmt.Errorf("rename container %s to %s: %w", id, name, docker.ErrConflict)
	}
	c.Name = name
	return nil
}
