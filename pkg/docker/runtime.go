// Package docker is the agent's only door to the Docker daemon: a narrow
// Runtime interface, its implementation over the Docker Go client, and the
// translation of a spec into a container's create options.
package docker

import (
	"context"
	"io"
	"time"

	"github.com/containerd/errdefs"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/spec"
)

// The ownership labels, kept here only so that pkg/controller compiles
// until it takes them from pkg/ownership.
//
// Deprecated: use the constants of pkg/ownership.
const (
	LabelManaged  = ownership.LabelManaged
	LabelSpec     = ownership.LabelSpec
	LabelSpecHash = ownership.LabelSpecHash
	LabelInstance = ownership.LabelInstance
)

// Sentinel errors; implementations wrap them with %w. They are containerd's
// errdefs kinds, the same values pkg/store wraps, so errdefs.IsNotFound
// (or errors.Is with either package's name) holds across both layers.
var (
	ErrNotFound    = errdefs.ErrNotFound
	ErrConflict    = errdefs.ErrConflict
	ErrUnavailable = errdefs.ErrUnavailable.WithMessage("docker daemon unavailable")
)

// Container is what the agent observes of one container.
type Container struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"` // without the leading slash
	Image   string            `json:"image"`
	ImageID string            `json:"imageID,omitempty"` // the image's ID (sha256:...)
	Labels  map[string]string `json:"labels,omitempty"`
	State   string            `json:"state"` // created, running, paused, restarting, removing, exited, dead
	Created time.Time         `json:"created"`
	// The fields below are filled by Inspect only; List leaves them zero.
	Inspected  bool      `json:"-"`
	ExitCode   int       `json:"exitCode"`
	OOMKilled  bool      `json:"oomKilled"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`
	Health     string    `json:"health,omitempty"` // starting, healthy, unhealthy or empty
	Pid        int       `json:"pid,omitempty"`
}

// Running reports a container whose process is alive.
func (c Container) Running() bool {
	return c.State == "running" || c.State == "paused" || c.State == "restarting"
}

// CreateRequest is everything needed to create one container.
type CreateRequest struct {
	Name   string
	Spec   *spec.Spec
	Labels map[string]string // ownership labels, merged over the spec's labels
	// Env holds resolved values (secrets read from files) by variable name.
	Env map[string]string
	// BindSources holds the host path of each bind mount, by its index in
	// Spec.Mounts, as the policy resolved it right before this create
	// (spec.Policy.Admit). A bind mount without one is refused: Docker
	// would follow whatever links the written source holds by then.
	BindSources map[int]string
	// Files are host files the agent prepared (the spec's secrets), each
	// bind-mounted read-only at its target: the container sees the content,
	// docker inspect only the host path.
	Files []FileMount
	// SecurityOpt, when set, replaces the spec's: the same options with
	// seccomp profile files read into the inline JSON the daemon expects.
	SecurityOpt []string
	// Workspace is the host directory of this run's copy of the spec's
	// workspace source, bind-mounted read-write at its target.
	Workspace string
	// Image, when set, replaces the spec's image: an image ID an update or
	// a rollback picked, created from without asking a registry.
	Image string
}

// FileMount is one file bind-mounted read-only into a container.
type FileMount struct {
	Source, Target string
}

// LogOptions choose what Logs returns.
type LogOptions struct {
	Follow bool
	Tail   string // "all" or a number of lines
	Since  time.Time
	// Until, when set, ends the output there: the tail of a run that ended
	// at Until, even after the container was started again.
	Until      time.Time
	Timestamps bool
	// Whole, without Follow, reads all the output there is, however long
	// that takes: the logs deadline bounds the opening of the stream and
	// then each wait for more data, not the whole read.
	Whole bool
}

// ExecResult is the outcome of a command run in a container.
type ExecResult struct {
	ExitCode int
	Stdout   []byte
	Stderr   []byte
}

// Event is a container event from the daemon.
type Event struct {
	Action      string // create, start, die, stop, kill, destroy, oom, health_status: ...
	ContainerID string
	Labels      map[string]string
	Time        time.Time
	ExitCode    string // for die
	Image       string // the image as the container was created with it
}

// Runtime is the narrow interface the controller needs from Docker. Unit
// tests fake it; the agent uses Client.
type Runtime interface {
	// Ping checks that the daemon answers.
	Ping(ctx context.Context) error
	// List returns all containers (running or not) carrying every label in sel.
	List(ctx context.Context, sel map[string]string) ([]Container, error)
	// Inspect returns one container; ErrNotFound when it is gone.
	Inspect(ctx context.Context, id string) (Container, error)
	// Create creates a container (not started) and returns its id. A name
	// already taken returns an error wrapping ErrConflict.
	Create(ctx context.Context, req CreateRequest) (string, error)
	Start(ctx context.Context, id string) error
	// Stop sends the container's stop signal (set at create time) and
	// SIGKILL after grace.
	Stop(ctx context.Context, id string, grace time.Duration) error
	// Remove removes a container (forced); a missing one is not an error.
	Remove(ctx context.Context, id string) error
	// Wait blocks until the container is not running and returns its exit
	// code (not the exit's record, which the controller builds from an
	// inspect); it falls back to Inspect when the wait itself fails.
	Wait(ctx context.Context, id string) (model.ContainerExit, error)
	// Logs streams the container's output, multiplexed as Docker sends it
	// for non-TTY containers (use stdcopy to split it).
	Logs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error)
	// Exec runs cmd in a running container and collects its output.
	Exec(ctx context.Context, id string, cmd []string) (ExecResult, error)
	// ImagePresent reports whether an image is in the local store.
	ImagePresent(ctx context.Context, ref string) (bool, error)
	// Pull pulls an image.
	Pull(ctx context.Context, ref string) error
	// Events streams container events carrying every label in sel, from
	// since (zero: now). The error channel yields one error when the
	// stream ends.
	Events(ctx context.Context, since time.Time, sel map[string]string) (<-chan Event, <-chan error)
}
