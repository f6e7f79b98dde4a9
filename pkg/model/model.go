// Package model holds the records the agent keeps about specs besides the
// specs themselves: status, restart history, container exits and events.
// They are shared by the store, the controller and the API.
package model

import "time"

// Phase is where a spec stands, as kubelet would say it.
type Phase string

const (
	PhasePending   Phase = "Pending"
	PhaseRunning   Phase = "Running"
	PhaseBackoff   Phase = "Backoff"
	PhaseSucceeded Phase = "Succeeded"
	PhaseFailed    Phase = "Failed"
	PhaseError     Phase = "Error"
	// PhaseRefused: the policy in force refuses the spec, so no container
	// is created or started for it; one already running is left running.
	PhaseRefused Phase = "Refused"
	// PhaseImagePullBackOff is a spec whose image failed to pull, waiting
	// for its next try (kubelet's name).
	PhaseImagePullBackOff Phase = "ImagePullBackOff"
	// PhaseQueued is a spec that waits for the agent's allocatable
	// resources or job slots (admission); its message says what it waits
	// for and its position.
	PhaseQueued Phase = "Queued"
	// PhaseWaiting is a spec whose dependsOn does not hold yet: it is not
	// started until it does.
	PhaseWaiting Phase = "Waiting"
)

// Phases lists every phase, for metrics that pre-create their labels.
var Phases = []Phase{PhasePending, PhaseRunning, PhaseBackoff, PhaseSucceeded, PhaseFailed, PhaseError,
	PhaseImagePullBackOff, PhaseRefused, PhaseQueued, PhaseWaiting}

// ExitReason says why a container ended. The set is fixed so it can be a
// metric label.
type ExitReason string

const (
	ReasonCompleted        ExitReason = "Completed"
	ReasonError            ExitReason = "Error"
	ReasonOOMKilled        ExitReason = "OOMKilled"
	ReasonSignaled         ExitReason = "Signaled"
	ReasonStoppedByAgent   ExitReason = "StoppedByAgent"
	ReasonGraceExpired     ExitReason = "GraceExpired"
	ReasonDeadlineExceeded ExitReason = "DeadlineExceeded"
	ReasonExternal         ExitReason = "External"
	ReasonLost             ExitReason = "Lost"
)

// ExitReasons lists every reason, for metrics that pre-create their labels.
var ExitReasons = []ExitReason{ReasonCompleted, ReasonError, ReasonOOMKilled, ReasonSignaled,
	ReasonStoppedByAgent, ReasonGraceExpired, ReasonDeadlineExceeded, ReasonExternal, ReasonLost}

// ContainerExit records how one run of a container ended.
type ContainerExit struct {
	ContainerID  string     `json:"containerID"`
	SpecName     string     `json:"specName"`
	SpecHash     string     `json:"specHash"`
	ExitCode     int        `json:"exitCode"`
	Signal       string     `json:"signal,omitempty"` // e.g. SIGKILL when ExitCode > 128
	OOMKilled    bool       `json:"oomKilled"`
	Error        string     `json:"error,omitempty"`
	StartedAt    time.Time  `json:"startedAt"`
	FinishedAt   time.Time  `json:"finishedAt"`
	Duration     string     `json:"duration"`
	RestartCount int        `json:"restartCount"`
	Reason       ExitReason `json:"reason"`
	// LogTail is the last lines of the run's output, bounded.
	LogTail string `json:"logTail,omitempty"`
}

// Succeeded reports an exit with code 0.
func (e ContainerExit) Succeeded() bool { return e.ExitCode == 0 && !e.OOMKilled }

// Status is the observed state of one spec, kept in the store.
type Status struct {
	Name        string    `json:"name"`
	Phase       Phase     `json:"phase"`
	Message     string    `json:"message,omitempty"`
	SpecHash    string    `json:"specHash,omitempty"`
	ContainerID string    `json:"containerID,omitempty"`
	StartedAt   time.Time `json:"startedAt,omitempty"`
	// Health is the running container's healthcheck status (starting,
	// healthy, unhealthy), empty without a healthcheck.
	Health string `json:"health,omitempty"`
	// Updating says the container is not (yet) of the desired definition
	// (a changed spec, or a restart asked for): it is being replaced.
	Updating bool `json:"updating,omitempty"`
	// NextTryAt is when a spec in Backoff is started again.
	NextTryAt time.Time `json:"nextTryAt,omitempty"`
	Restarts  int       `json:"restarts"`
	// Conflict names a foreign container holding the wanted name.
	Conflict  string         `json:"conflict,omitempty"`
	LastExit  *ContainerExit `json:"lastExit,omitempty"`
	UpdatedAt time.Time      `json:"updatedAt"`
	// FinishedAt is when a job reached Succeeded or Failed.
	FinishedAt time.Time `json:"finishedAt,omitempty"`
}

// History is a spec's restart history, persisted so that an agent restart
// cannot reset a crash loop. It is reset when the spec hash changes.
type History struct {
	SpecHash string `json:"specHash"`
	// Attempts counts consecutive failed runs since the last reset.
	Attempts int `json:"attempts"`
	// Restarts counts restarts of this spec hash in total.
	Restarts  int       `json:"restarts"`
	NextTryAt time.Time `json:"nextTryAt,omitempty"`
	// LastContainerID and LastStartedAt name the run whose exit was last
	// recorded, so an exit seen through events, wait and re-list is
	// recorded once (a restart in place keeps the id, not the start time).
	LastContainerID string    `json:"lastContainerID,omitempty"`
	LastStartedAt   time.Time `json:"lastStartedAt,omitempty"`
	// ExitRecorded says the last run of LastContainerID is in the ledger;
	// it is cleared when that container runs again.
	ExitRecorded bool `json:"exitRecorded,omitempty"`
	// Done is set when a run ended and the policy does not restart it;
	// Succeeded and FinishedAt say how and when.
	Done       bool      `json:"done,omitempty"`
	Succeeded  bool      `json:"succeeded,omitempty"`
	FinishedAt time.Time `json:"finishedAt,omitempty"`
	// Stop records a stop the agent asked for, so the exit that follows is
	// attributed to the agent even across an agent restart.
	Stop *StopIntent `json:"stop,omitempty"`
	// Pull is the back-off of the spec's image pulls while they fail, kept
	// so that an agent restart does not retry at once.
	Pull *PullBackoff `json:"pull,omitempty"`
	// PendingExit is the exit of a run whose container was restarted
	// before its record was complete (restart first, record after): what
	// was known when the restart was decided, written before the start.
	// The ledger record is completed from it (the OOM notice, the log
	// tail up to FinishedAt), by this agent or the next one.
	PendingExit *ContainerExit `json:"pendingExit,omitempty"`
	// Image is the image an autoUpdate spec's container should run, and
	// its update's trial and rollback (imageupdate.go).
	Image *ImageUpdate `json:"image,omitempty"`
	// QueuedAt is when the spec entered the admission queue, while it is
	// in it: a restarted agent puts it back in the queue from this.
	QueuedAt time.Time `json:"queuedAt,omitempty"`
	// Rollout is the last failed start-first replacement, so that the
	// same definition is not tried again in a tight loop.
	Rollout *RolloutFailure `json:"rollout,omitempty"`
}

// RolloutFailure records start-first replacements of one definition
// that failed: the old container kept running.
type RolloutFailure struct {
	// Want is the spec-hash label the failed replacements carried.
	Want string `json:"want"`
	// ContainerID is the last failed replacement: once recorded, it is
	// only stopped and removed.
	ContainerID string    `json:"containerID"`
	Failures    int       `json:"failures"`
	NextTryAt   time.Time `json:"nextTryAt"`
	Message     string    `json:"message"`
}

// PullBackoff records consecutive failed pulls of one image.
type PullBackoff struct {
	Image     string        `json:"image"`
	Failures  int           `json:"failures"`
	Delay     time.Duration `json:"delay"`
	NextTryAt time.Time     `json:"nextTryAt"`
	// Message is the daemon's message for the last failure.
	Message string `json:"message"`
}

// StopCause says why the agent stopped a container.
type StopCause string

const (
	StopDeleted   StopCause = "Deleted"   // spec removed
	StopReplaced  StopCause = "Replaced"  // spec changed
	StopUnhealthy StopCause = "Unhealthy" // healthcheck failed
	StopDeadline  StopCause = "Deadline"  // activeDeadline passed
	StopShutdown  StopCause = "Shutdown"  // agent shutting down with --stop-on-exit
)

// StopIntent is a stop the agent issued.
type StopIntent struct {
	ContainerID string        `json:"containerID"`
	Cause       StopCause     `json:"cause"`
	At          time.Time     `json:"at"`
	Grace       time.Duration `json:"grace"`
}

// EventType is Normal or Warning, as in Kubernetes.
type EventType string

const (
	EventNormal  EventType = "Normal"
	EventWarning EventType = "Warning"
)

// Event is a Kubernetes-style event about one spec (or the agent, with an
// empty Spec).
type Event struct {
	Seq       uint64    `json:"seq"`
	Type      EventType `json:"type"`
	Reason    string    `json:"reason"`
	Message   string    `json:"message"`
	Spec      string    `json:"spec,omitempty"`
	Count     int       `json:"count"`
	FirstTime time.Time `json:"firstTime"`
	LastTime  time.Time `json:"lastTime"`
}
