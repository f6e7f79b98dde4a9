package spec

import (
	"encoding/json"
	"fmt"
	"path"
	"time"

	"go.yaml.in/yaml/v3"
)

// APIVersion and KindContainer are the only apiVersion and kind accepted.
const (
	APIVersion    = "reconciler/v1"
	KindContainer = "Container"
)

// Spec is one desired container, as written by an operator.
type Spec struct {
	APIVersion string        `yaml:"apiVersion" json:"apiVersion"`
	Kind       string        `yaml:"kind" json:"kind"`
	Metadata   Metadata      `yaml:"metadata" json:"metadata"`
	Spec       ContainerSpec `yaml:"spec" json:"spec"`
}

// Metadata names a spec. Labels are copied onto the container.
type Metadata struct {
	Name   string            `yaml:"name" json:"name"`
	Labels map[string]string `yaml:"labels,omitempty" json:"labels,omitempty"`
}

// PullPolicy says when an image is pulled.
type PullPolicy string

const (
	PullAlways       PullPolicy = "Always"
	PullIfNotPresent PullPolicy = "IfNotPresent"
	PullNever        PullPolicy = "Never"
)

// RestartPolicy has kubelet's meaning.
type RestartPolicy string

const (
	RestartAlways    RestartPolicy = "Always"
	RestartOnFailure RestartPolicy = "OnFailure"
	RestartNever     RestartPolicy = "Never"
)

// ContainerSpec is the desired shape of one container.
type ContainerSpec struct {
	Image           string     `yaml:"image" json:"image"`
	ImagePullPolicy PullPolicy `yaml:"imagePullPolicy,omitempty" json:"imagePullPolicy,omitempty"`
	Command         []string   `yaml:"command,omitempty" json:"command,omitempty"`
	Args            []string   `yaml:"args,omitempty" json:"args,omitempty"`
	Env             []EnvVar   `yaml:"env,omitempty" json:"env,omitempty"`
	// Secrets are files the agent reads when it creates the container and
	// shows inside it read-only; their content is in neither the spec, the
	// container's environment nor docker inspect.
	Secrets       []SecretFile  `yaml:"secrets,omitempty" json:"secrets,omitempty"`
	WorkingDir    string        `yaml:"workingDir,omitempty" json:"workingDir,omitempty"`
	User          string        `yaml:"user,omitempty" json:"user,omitempty"`
	Mounts        []Mount       `yaml:"mounts,omitempty" json:"mounts,omitempty"`
	Ports         []Port        `yaml:"ports,omitempty" json:"ports,omitempty"`
	Resources     Resources     `yaml:"resources,omitempty" json:"resources,omitempty"`
	RestartPolicy RestartPolicy `yaml:"restartPolicy,omitempty" json:"restartPolicy,omitempty"`
	Backoff       Backoff       `yaml:"backoff,omitempty" json:"backoff,omitempty"`
	// MaxRestarts, when set, turns the spec Failed after that many restarts.
	MaxRestarts            *int         `yaml:"maxRestarts,omitempty" json:"maxRestarts,omitempty"`
	StopSignal             string       `yaml:"stopSignal,omitempty" json:"stopSignal,omitempty"`
	TerminationGracePeriod Duration     `yaml:"terminationGracePeriod,omitempty" json:"terminationGracePeriod,omitempty"`
	Network                string       `yaml:"network,omitempty" json:"network,omitempty"`
	HostPID                bool         `yaml:"hostPID,omitempty" json:"hostPID,omitempty"`
	HostIPC                bool         `yaml:"hostIPC,omitempty" json:"hostIPC,omitempty"`
	HostUTS                bool         `yaml:"hostUTS,omitempty" json:"hostUTS,omitempty"`
	Privileged             bool         `yaml:"privileged,omitempty" json:"privileged,omitempty"`
	CapAdd                 []string     `yaml:"capAdd,omitempty" json:"capAdd,omitempty"`
	CapDrop                []string     `yaml:"capDrop,omitempty" json:"capDrop,omitempty"`
	Devices                []string     `yaml:"devices,omitempty" json:"devices,omitempty"`
	SecurityOpt            []string     `yaml:"securityOpt,omitempty" json:"securityOpt,omitempty"`
	ReadOnlyRootFilesystem bool         `yaml:"readOnlyRootFilesystem,omitempty" json:"readOnlyRootFilesystem,omitempty"`
	Healthcheck            *Healthcheck `yaml:"healthcheck,omitempty" json:"healthcheck,omitempty"`
	// ActiveDeadline bounds one run (zero: none); reason DeadlineExceeded.
	ActiveDeadline Duration `yaml:"activeDeadline,omitempty" json:"activeDeadline,omitempty"`
	// RemoveOnExit removes a finished run's container (its ledger record stays).
	RemoveOnExit bool `yaml:"removeOnExit,omitempty" json:"removeOnExit,omitempty"`
	// TTLAfterFinished deletes a finished job's spec that long after it
	// ended (zero: kept). Its ledger records stay.
	TTLAfterFinished Duration `yaml:"ttlAfterFinished,omitempty" json:"ttlAfterFinished,omitempty"`

	// Workspace is a private copy of a host directory for each run.
	Workspace *Workspace `yaml:"workspace,omitempty" json:"workspace,omitempty"`
	// AutoUpdate follows the image's reference on its registry (autoupdate.go).
	AutoUpdate *AutoUpdate `yaml:"autoUpdate,omitempty" json:"autoUpdate,omitempty"`
	// Egress, when set, allows connections to the listed destinations
	// only, through the agent's proxy (see egress.go).
	Egress *Egress `yaml:"egress,omitempty" json:"egress,omitempty"`
	// Priority orders the admission queue: higher is admitted first, then
	// earlier arrival (see priority.go).
	Priority int `yaml:"priority,omitempty" json:"priority,omitempty"`
	// UpdateStrategy and DependsOn: see rollout.go.
	UpdateStrategy *UpdateStrategy `yaml:"updateStrategy,omitempty" json:"updateStrategy,omitempty"`
	DependsOn      []Dependency    `yaml:"dependsOn,omitempty" json:"dependsOn,omitempty"`
	// Logging is the container's log driver and options (see logging.go).
	Logging *Logging `yaml:"logging,omitempty" json:"logging,omitempty"`
	// Init runs Docker's init (tini) as PID 1: it forwards signals and
	// reaps orphaned processes.
	Init bool `yaml:"init,omitempty" json:"init,omitempty"`
}

// EnvVar is one environment variable. Exactly one of Value and ValueFrom.
type EnvVar struct {
	Name      string     `yaml:"name" json:"name"`
	Value     string     `yaml:"value,omitempty" json:"value,omitempty"`
	ValueFrom *EnvSource `yaml:"valueFrom,omitempty" json:"valueFrom,omitempty"`
}

// EnvSource reads a value from a file readable by the agent (a secret).
type EnvSource struct {
	File string `yaml:"file" json:"file"`
}

// SecretFile is one secret: File on the host (below the policy's
// allowedSecretPaths), Target inside the container.
type SecretFile struct {
	File   string `yaml:"file" json:"file"`
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
}

// TargetPath is Target, or /run/secrets/<base name of File> when unset.
func (f SecretFile) TargetPath() string {
	if f.Target != "" {
		return f.Target
	}
	return path.Join(DefaultSecretsDir, path.Base(f.File))
}

// Mount is a bind, volume or tmpfs mount.
type Mount struct {
	Type     string `yaml:"type" json:"type"`
	Source   string `yaml:"source,omitempty" json:"source,omitempty"`
	Target   string `yaml:"target" json:"target"`
	ReadOnly bool   `yaml:"readOnly,omitempty" json:"readOnly,omitempty"`
}

// Port publishes a container port.
type Port struct {
	ContainerPort int    `yaml:"containerPort" json:"containerPort"`
	HostPort      int    `yaml:"hostPort,omitempty" json:"hostPort,omitempty"`
	HostIP        string `yaml:"hostIP,omitempty" json:"hostIP,omitempty"`
	Protocol      string `yaml:"protocol,omitempty" json:"protocol,omitempty"`
}

// Resources are the container's limits, as written ("256Mi", "0.5").
type Resources struct {
	Memory string `yaml:"memory,omitempty" json:"memory,omitempty"`
	CPUs   string `yaml:"cpus,omitempty" json:"cpus,omitempty"`
	Pids   int64  `yaml:"pids,omitempty" json:"pids,omitempty"`
}

// Backoff bounds the delay between restarts.
type Backoff struct {
	Initial    Duration `yaml:"initial,omitempty" json:"initial,omitempty"`
	Max        Duration `yaml:"max,omitempty" json:"max,omitempty"`
	ResetAfter Duration `yaml:"resetAfter,omitempty" json:"resetAfter,omitempty"`
}

// Healthcheck is Docker's healthcheck; an unhealthy container is restarted
// when its restart policy allows.
type Healthcheck struct {
	Test        []string `yaml:"test" json:"test"`
	Interval    Duration `yaml:"interval,omitempty" json:"interval,omitempty"`
	Timeout     Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	StartPeriod Duration `yaml:"startPeriod,omitempty" json:"startPeriod,omitempty"`
	Retries     int      `yaml:"retries,omitempty" json:"retries,omitempty"`
}

// Duration is a time.Duration written as Go duration text ("10s", "5m").
type Duration struct{ time.Duration }

// IsZero lets omitempty drop unset durations.
func (d Duration) IsZero() bool { return d.Duration == 0 }

func (d Duration) String() string { return d.Duration.String() }

func (d Duration) MarshalYAML() (any, error) { return d.Duration.String(), nil }

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration must be text like \"10s\"", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 500ms, 10s, 5m, 2h)", n.Line, n.Value)
	}
	d.Duration = v
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.Duration.String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string like \"10s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration (use e.g. 500ms, 10s, 5m, 2h)", s)
	}
	d.Duration = v
	return nil
}
