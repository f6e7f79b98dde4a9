package docker

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"

	"github.com/reconciler/reconciler/pkg/ownership"
)

func TestEventOf(t *testing.T) {
	at := time.Date(2025, 3, 1, 10, 0, 0, 123, time.UTC)
	got := eventOf(events.Message{
		Type: events.ContainerEventType, Action: "die",
		Actor: events.Actor{ID: "c1", Attributes: map[string]string{
			"name": "web", "image": "reconciler/box:latest", "exitCode": "137",
			ownership.LabelSpec: "web", "team": "a",
		}},
		Time: at.Unix(), TimeNano: at.UnixNano(),
	})
	if !got.Time.Equal(at) {
		t.Errorf("time %v, want %v", got.Time, at)
	}
	got.Time = time.Time{}
	eq(t, "event", got, Event{
		Action: "die", ContainerID: "c1", ExitCode: "137", Image: "reconciler/box:latest",
		Labels: map[string]string{ownership.LabelSpec: "web", "team": "a"},
	})
	eq(t, "health action", eventOf(events.Message{Action: "health_status: unhealthy"}).Action, "health_status: unhealthy")
}

// A caller that stops reading and cancels must not leave the forwarding
// goroutine blocked, and must learn why the stream ended.
func TestEventsEndOnCancelWithoutReader(t *testing.T) {
	msgs := make(chan events.Message, 1)
	msgs <- events.Message{Action: "start", Actor: events.Actor{ID: "c1"}}
	api := &fakeAPI{events: func(context.Context) (<-chan events.Message, <-chan error) {
		return msgs, make(chan error)
	}}
	ctx, cancel := context.WithCancel(context.Background())
	out, errc := newClient(api, Options{}).Events(ctx, time.Time{}, nil)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream error %v, want context.Canceled", err)
	}
	for range out { // closed, possibly after the one event forwarded before the cancel
	}
}

func TestEventsReportStreamError(t *testing.T) {
	errs := make(chan error, 1)
	errs <- io.ErrUnexpectedEOF
	api := &fakeAPI{events: func(context.Context) (<-chan events.Message, <-chan error) {
		return make(chan events.Message), errs
	}}
	out, errc := newClient(api, Options{}).Events(context.Background(), time.Time{}, nil)
	if err := <-errc; !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("stream error %v, want %v", err, io.ErrUnexpectedEOF)
	}
	if _, open := <-out; open {
		t.Fatal("event channel still open after the stream ended")
	}
}
