package harness

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/events"
)

// Event is a container event of this run, with the daemon's own time.
type Event struct {
	Action string
	ID     string
	Name   string
	Time   time.Time
}

// Watch follows the daemon's container events for this run's containers.
type Watch struct {
	C      <-chan Event
	errc   <-chan error
	cancel context.CancelFunc
}

// Watch subscribes from since: the daemon replays what it has buffered from
// then, so an action taken right after subscribing is never missed while
// the subscription request is still on its way.
func (h *Harness) Watch(ctx context.Context, since time.Time) *Watch {
	ctx, cancel := context.WithCancel(ctx)
	f := h.RunFilter()
	f.Add("type", string(events.ContainerEventType))
	msgs, errs := h.Cli.Events(ctx, events.ListOptions{
		Since:   strconv.FormatInt(since.Unix(), 10) + "." + fmt.Sprintf("%09d", since.Nanosecond()),
		Filters: f,
	})
	out := make(chan Event, 1024)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				ev := Event{Action: string(m.Action), ID: m.Actor.ID, Name: m.Actor.Attributes["name"],
					Time: time.Unix(0, m.TimeNano)}
				select {
				case out <- ev:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return &Watch{C: out, errc: errs, cancel: cancel}
}

// Close ends the subscription.
func (w *Watch) Close() { w.cancel() }

// Until hands events to fn until it returns true, the timeout passes or the
// stream fails.
func (w *Watch) Until(ctx context.Context, timeout time.Duration, fn func(Event) bool) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("no matching event within %s", timeout)
		case err := <-w.errc:
			return fmt.Errorf("docker event stream: %w", err)
		case ev, ok := <-w.C:
			if !ok {
				return fmt.Errorf("docker event stream closed")
			}
			if fn(ev) {
				return nil
			}
		}
	}
}

// Starts waits for n distinct containers matching keep to start and returns
// the time of the last start.
func (w *Watch) Starts(ctx context.Context, n int, timeout time.Duration, keep func(Event) bool) (time.Time, error) {
	seen := map[string]bool{}
	var last time.Time
	err := w.Until(ctx, timeout, func(ev Event) bool {
		if ev.Action != "start" || seen[ev.ID] || (keep != nil && !keep(ev)) {
			return false
		}
		seen[ev.ID] = true
		if ev.Time.After(last) {
			last = ev.Time
		}
		return len(seen) >= n
	})
	if err != nil {
		return time.Time{}, fmt.Errorf("%d of %d containers started: %w", len(seen), n, err)
	}
	return last, nil
}

// Collect gathers the events that arrive within d (and those already
// buffered).
func (w *Watch) Collect(ctx context.Context, d time.Duration) ([]Event, error) {
	var out []Event
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-t.C:
			return out, nil
		case err := <-w.errc:
			return out, fmt.Errorf("docker event stream: %w", err)
		case ev, ok := <-w.C:
			if !ok {
				return out, fmt.Errorf("docker event stream closed")
			}
			out = append(out, ev)
		}
	}
}
