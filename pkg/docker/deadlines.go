package docker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Operation names: the keys of Timeouts, the labels of the agent's Docker
// metrics and the words of readiness messages.
const (
	OpPing         = "ping"
	OpList         = "list"
	OpInspect      = "inspect"
	OpCreate       = "create"
	OpStart        = "start"
	OpStop         = "stop"
	OpRemove       = "remove"
	OpWait         = "wait"
	OpLogs         = "logs"
	OpExecCreate   = "exec_create"
	OpExecAttach   = "exec_attach"
	OpExecInspect  = "exec_inspect"
	OpImageInspect = "image_inspect"
	OpPull         = "pull"
	OpEvents       = "events"
)

// Timeouts bound daemon calls, by operation. Most bound the whole call;
// some bound a part of it, as their doc in DefaultTimeouts says. A missing
// or zero entry takes its default. Wait has no entry: a container may run
// for days, so a wait is only ever cancelled.
type Timeouts map[string]time.Duration

// timeoutOps are the operations that have a deadline, in the order help
// text lists them.
var timeoutOps = []string{OpPing, OpList, OpInspect, OpCreate, OpStart, OpStop, OpRemove, OpLogs,
	OpEvents, OpExecCreate, OpExecAttach, OpExecInspect, OpImageInspect, OpPull, OpDistributionInspect, OpImageTag}

// DefaultTimeouts are generous for a loaded host (a start queues behind
// every other start in flight) and short next to a watchdog's patience.
func DefaultTimeouts() Timeouts {
	return Timeouts{
		OpPing:         5 * time.Second,
		OpList:         10 * time.Second,
		OpInspect:      10 * time.Second,
		OpCreate:       30 * time.Second,
		OpStart:        30 * time.Second,
		OpStop:         10 * time.Second, // on top of the container's grace period
		OpRemove:       30 * time.Second,
		OpLogs:         10 * time.Second, // until the stream opens; a non-following read as a whole
		OpEvents:       10 * time.Second, // until the subscription is answered
		OpExecCreate:   10 * time.Second,
		OpExecAttach:   10 * time.Second, // until the command's streams are attached
		OpExecInspect:  10 * time.Second,
		OpImageInspect: 10 * time.Second,
		OpPull:         time.Minute, // without a progress message from the daemon

		OpDistributionInspect: 30 * time.Second,
		OpImageTag:            10 * time.Second,
	}
}

// TimeoutsHelp describes the flag that sets Timeouts.
const TimeoutsHelp = "deadlines of Docker calls, as op=duration,...: " +
	"ping, list, inspect, create, start, remove, exec_create, exec_inspect, image_inspect bound the call; " +
	"stop is added to the container's grace period; logs, events and exec_attach bound the wait for the stream to open " +
	"(logs without follow: the whole read; a saved run's output: each wait for data); pull aborts a pull after that long without progress. " +
	"Container waits have none"

var defaultTimeouts = DefaultTimeouts()

// with returns the deadline of op, from t or the defaults.
func (t Timeouts) with(op string) time.Duration {
	if d := t[op]; d > 0 {
		return d
	}
	return defaultTimeouts[op]
}

// String writes every deadline, defaults included, in the flag's syntax.
func (t Timeouts) String() string {
	parts := make([]string, 0, len(timeoutOps))
	for _, op := range timeoutOps {
		parts = append(parts, op+"="+t.with(op).String())
	}
	return strings.Join(parts, ",")
}

// Set reads "op=duration,..." over what t holds (a flag may be given more
// than once). An unknown operation or a duration that is not positive is
// an error naming it.
func (t *Timeouts) Set(s string) error {
	if *t == nil {
		*t = Timeouts{}
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		op, val, ok := strings.Cut(part, "=")
		if !ok {
			return fmt.Errorf("%q: want op=duration, e.g. list=10s", part)
		}
		op = strings.TrimSpace(op)
		if !slices.Contains(timeoutOps, op) {
			return fmt.Errorf("%q: unknown Docker operation %q; known: %s", part, op, strings.Join(timeoutOps, ", "))
		}
		d, err := time.ParseDuration(strings.TrimSpace(val))
		if err != nil || d <= 0 {
			return fmt.Errorf("%q: %q is not a positive duration", part, val)
		}
		(*t)[op] = d
	}
	return nil
}

// Type names the flag's value in help text.
func (t *Timeouts) Type() string { return "op=duration,..." }

// hangAfter is how long a call may go unanswered before readiness reports
// it: a daemon that takes this long for a list is not serving the agent.
// Calls with a long deadline (create, start and remove queue behind each
// other on a busy daemon) get half their deadline; a stop its grace period
// on top.
const hangAfter = 5 * time.Second

// rememberTimeout is how long a time-out keeps the agent not ready when no
// later call of its operation answers: a rare call (a create) that timed
// out once on a busy daemon must not hold readiness for ever, while a list
// that keeps timing out is seen again at every resync.
const rememberTimeout = time.Minute

// patience is how long a call with deadline d may run before it counts as
// hanging.
func patience(d time.Duration) time.Duration { return max(hangAfter, d/2) }

// deadlineError is a call cut off by its deadline: the daemon did not
// answer. It counts as the daemon being unavailable.
type deadlineError struct {
	op    string
	after time.Duration
}

func (e *deadlineError) Error() string {
	return fmt.Sprintf("docker call %s did not answer within %s", e.op, e.after)
}

func (e *deadlineError) Unwrap() []error { return []error{ErrUnavailable, context.DeadlineExceeded} }

// ErrStalled is a pull that made no progress for its stall timeout.
var ErrStalled = errors.New("pull made no progress")

// calls tracks the daemon calls in flight and the last time-out of each
// operation, so that readiness can name the call that hangs.
type calls struct {
	now func() time.Time

	mu       sync.Mutex
	next     uint64
	inflight map[uint64]call
	timedOut map[string]timedOut // op -> its last time-out, until that op answers again
}

type call struct {
	op       string
	start    time.Time
	patience time.Duration
}

type timedOut struct {
	at    time.Time
	after time.Duration
}

func newCalls(now func() time.Time) *calls {
	return &calls{now: now, inflight: map[uint64]call{}, timedOut: map[string]timedOut{}}
}

// begin records a call of op; patience is how long it may take before it
// counts as hanging.
func (c *calls) begin(op string, patience time.Duration) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	c.inflight[c.next] = call{op: op, start: c.now(), patience: patience}
	return c.next
}

// end records the end of call id: a time-out (after its deadline) is kept
// until a later call of the same operation gets any answer, or for
// rememberTimeout.
func (c *calls) end(id uint64, deadline time.Duration, expired bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, ok := c.inflight[id]
	if !ok {
		return
	}
	delete(c.inflight, id)
	if expired {
		c.timedOut[cl.op] = timedOut{at: c.now(), after: deadline}
		return
	}
	delete(c.timedOut, cl.op)
}

// hanging names the oldest call in flight past its patience or, failing
// that, the operation that last timed out; nil when the daemon answers.
func (c *calls) hanging() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var worst *call
	for _, cl := range c.inflight {
		if now.Sub(cl.start) <= cl.patience {
			continue
		}
		if worst == nil || cl.start.Before(worst.start) {
			worst = &cl
		}
	}
	if worst != nil {
		return fmt.Errorf("docker call %s has not answered for %s", worst.op, now.Sub(worst.start).Round(time.Second))
	}
	var op string
	var last timedOut
	for o, t := range c.timedOut {
		if now.Sub(t.at) > rememberTimeout {
			continue
		}
		if op == "" || t.at.After(last.at) || (t.at.Equal(last.at) && o < op) {
			op, last = o, t
		}
	}
	if op != "" {
		return fmt.Errorf("docker call %s did not answer within %s (%s ago)", op, last.after,
			now.Sub(last.at).Round(time.Second))
	}
	return nil
}

// call runs one daemon call under op's deadline (d, or op's own when d is
// zero), tracks it in flight, reports it to Observe and maps its error
// onto the package's sentinels. A call cut off by its deadline wraps
// ErrUnavailable. patience is how long it may take before readiness calls
// it hanging.
func (c *Client) call(ctx context.Context, op string, d, patience time.Duration, fn func(context.Context) error) error {
	if d <= 0 {
		d = c.timeouts.with(op)
	}
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	id := c.calls.begin(op, min(patience, d))
	start := time.Now()
	err := fn(cctx)
	expired := err != nil && ctx.Err() == nil && errors.Is(cctx.Err(), context.DeadlineExceeded)
	c.calls.end(id, d, expired)
	if expired {
		err = &deadlineError{op: op, after: d}
	}
	c.report(op, start, err)
	if expired {
		return err
	}
	return classify(err)
}

// do runs a call with op's deadline and the usual patience.
func (c *Client) do(ctx context.Context, op string, fn func(context.Context) error) error {
	return c.call(ctx, op, 0, patience(c.timeouts.with(op)), fn)
}

// open runs a call that opens a stream: op's deadline bounds the call
// itself, not the stream it returns. The stream lives on the returned
// context; release must be called when it ends. The caller reports the
// call to Observe, since what a stream's latency means differs.
func (c *Client) open(ctx context.Context, op string, fn func(context.Context) error) (context.Context, context.CancelFunc, error) {
	d := c.timeouts.with(op)
	sctx, release := context.WithCancelCause(ctx)
	expiredErr := &deadlineError{op: op, after: d}
	t := time.AfterFunc(d, func() { release(expiredErr) })
	id := c.calls.begin(op, min(patience(d), d))
	err := fn(sctx)
	expired := !t.Stop() && ctx.Err() == nil
	c.calls.end(id, d, expired)
	if expired && err == nil {
		// Answered as the deadline passed: the stream is cut already.
		err = context.Cause(sctx)
	}
	if expired {
		err = expiredErr
	}
	if err != nil {
		release(nil)
		if expired {
			return nil, nil, err
		}
		return nil, nil, classify(err)
	}
	return sctx, func() { release(nil) }, nil
}

// Hanging reports the daemon call that has not answered for too long, or
// the operation whose last call timed out, so that readiness can say
// which: "docker call list has not answered for 12s". It is nil while the
// daemon answers.
func (c *Client) Hanging() error { return c.calls.hanging() }
