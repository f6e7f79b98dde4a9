package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/events"
)

// eventAttributes are the attributes Docker adds to a container event next
// to the container's labels; whatever else is in Actor.Attributes is a
// label. (A label named like one of these cannot be told apart.)
var eventAttributes = map[string]bool{
	"name": true, "image": true, "exitCode": true, "signal": true,
	"execID": true, "execDuration": true,
}

// Events streams container events carrying every label in sel, from since
// (zero: now). The event channel is closed when the stream ends, after its
// error (ctx.Err() when ctx is cancelled) is put on the error channel. The
// caller must read events promptly: the daemon's stream waits for it.
func (c *Client) Events(ctx context.Context, since time.Time, sel map[string]string) (<-chan Event, <-chan error) {
	f := labelFilters(sel)
	f.Add("type", string(events.ContainerEventType))
	opts := events.ListOptions{Filters: f}
	if !since.IsZero() {
		opts.Since = unixText(since)
	}
	start := time.Now()
	out := make(chan Event)
	errc := make(chan error, 1)
	var msgs <-chan events.Message
	var errs <-chan error
	// The client answers once the daemon accepted the subscription (or
	// failed to); the deadline bounds that, not the stream.
	sctx, release, err := c.open(ctx, OpEvents, func(ctx context.Context) error {
		msgs, errs = c.api.Events(ctx, opts)
		select {
		case err := <-errs:
			return err
		default:
			return nil
		}
	})
	if err != nil {
		c.report(OpEvents, start, err)
		close(out)
		errc <- fmt.Errorf("docker event stream: %w", err)
		close(errc)
		return out, errc
	}
	ctx = sctx
	go func() {
		defer release()
		defer close(out)
		defer close(errc)
		err := forwardEvents(ctx, msgs, errs, out)
		if errors.Is(err, context.Canceled) {
			// The caller ended the stream: not a daemon failure.
			c.report("events", start, nil)
			errc <- err
			return
		}
		c.report("events", start, err)
		errc <- fmt.Errorf("docker event stream: %w", classify(err))
	}()
	return out, errc
}

// forwardEvents converts until the stream or ctx ends and returns why.
func forwardEvents(ctx context.Context, msgs <-chan events.Message, errs <-chan error, out chan<- Event) error {
	for {
		select {
		case m := <-msgs:
			select {
			case out <- eventOf(m):
			case <-ctx.Done():
				return ctx.Err()
			}
		case err := <-errs:
			if err == nil {
				// Docker closes its error channel only after sending.
				return errors.New("stream closed")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func eventOf(m events.Message) Event {
	labels := make(map[string]string, len(m.Actor.Attributes))
	for k, v := range m.Actor.Attributes {
		if !eventAttributes[k] {
			labels[k] = v
		}
	}
	at := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		at = time.Unix(m.Time, 0)
	}
	return Event{
		Action:      string(m.Action),
		ContainerID: m.Actor.ID,
		Labels:      labels,
		Time:        at,
		ExitCode:    m.Actor.Attributes["exitCode"],
		Image:       m.Actor.Attributes["image"],
	}
}
