package api

import (
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Version answers GET /v1/version.
type Version struct {
	Version  string `json:"version"`
	Instance string `json:"instance"`
	// API is the path prefix of this API's version ("v1").
	API string `json:"api"`
}

// Action says what applying a spec does (or would do, in a dry run).
type Action string

const (
	ActionCreated    Action = "created"
	ActionConfigured Action = "configured"
	ActionUnchanged  Action = "unchanged"
)

// Applied is the outcome for one spec of an apply.
type Applied struct {
	Name   string `json:"name"`
	Action Action `json:"action"`
	Hash   string `json:"hash"`
}

// ApplyResult answers POST /v1/specs.
type ApplyResult struct {
	DryRun bool      `json:"dryRun"`
	Specs  []Applied `json:"specs"`
}

// SpecView is a stored spec with its observed status (nil before the
// controller first looked at it).
type SpecView struct {
	Name      string        `json:"name"`
	Spec      *spec.Spec    `json:"spec"`
	Hash      string        `json:"hash"`
	Source    Source        `json:"source"`
	UpdatedAt time.Time     `json:"updatedAt"`
	Status    *model.Status `json:"status,omitempty"`
	// Workspace is the host directory of the spec's latest workspace copy.
	Workspace string `json:"workspace,omitempty"`
}

// SourceKind says where a spec came from.
type SourceKind string

const (
	// SourceFile is a spec from the agent's spec directory: read-only
	// through the API.
	SourceFile SourceKind = "file"
	SourceAPI  SourceKind = "api"
)

// Source is where a spec came from; Path is the file of a file spec.
type Source struct {
	Kind SourceKind `json:"kind"`
	Path string     `json:"path,omitempty"`
}

// FileError is a spec file the agent refused (GET /v1/errors): its last
// good specs, if any, stay in force.
type FileError struct {
	Path  string    `json:"path"`
	Error string    `json:"error"`
	Since time.Time `json:"since"`
}

// Container is a spec's container as Docker sees it (GET
// /v1/specs/{name}/inspect).
type Container struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"` // without the leading slash
	Image      string            `json:"image"`
	ImageID    string            `json:"imageID,omitempty"` // the image's ID (sha256:...)
	Labels     map[string]string `json:"labels,omitempty"`
	State      string            `json:"state"` // created, running, paused, restarting, removing, exited, dead
	Created    time.Time         `json:"created"`
	ExitCode   int               `json:"exitCode"`
	OOMKilled  bool              `json:"oomKilled"`
	Error      string            `json:"error,omitempty"`
	StartedAt  time.Time         `json:"startedAt,omitempty"`
	FinishedAt time.Time         `json:"finishedAt,omitempty"`
	Health     string            `json:"health,omitempty"` // starting, healthy, unhealthy or empty
	Pid        int               `json:"pid,omitempty"`
}

// Deleted answers DELETE /v1/specs/{name}.
type Deleted struct {
	Name string `json:"name"`
}

// ExecRequest is the body of POST /v1/specs/{name}/exec.
type ExecRequest struct {
	Command []string `json:"command"`
}

// ExecResult answers an exec. Stdout and Stderr are base64 in JSON, so
// binary output comes back intact; each is cut after its first MiB.
type ExecResult struct {
	ExitCode int    `json:"exitCode"`
	Stdout   []byte `json:"stdout"`
	Stderr   []byte `json:"stderr"`
}

// Stream names of a LogLine.
const (
	Stdout = "stdout"
	Stderr = "stderr"
)

// LogLine is one line of a container's output, without its newline.
type LogLine struct {
	Stream string     `json:"stream"`
	Time   *time.Time `json:"time,omitempty"`
	Line   string     `json:"line"`
}
