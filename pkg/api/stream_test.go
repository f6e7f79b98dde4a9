package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/store"
)

func TestEventsList(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("a", "box"))
	f.apply(specYAML("b", "box"))
	f.rec.Event("a", model.EventWarning, "BackOff", "Back-off restarting")
	all, err := f.c.Events(t.Context(), api.EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[0].Spec != "a" || all[2].Reason != "BackOff" {
		t.Fatalf("all events %+v", all)
	}
	ofA, _ := f.c.Events(t.Context(), api.EventQuery{Spec: "a"})
	if len(ofA) != 2 || ofA[0].Reason != "Applied" || ofA[1].Reason != "BackOff" {
		t.Fatalf("events of a %+v", ofA)
	}
	newest, _ := f.c.Events(t.Context(), api.EventQuery{Limit: 1})
	if len(newest) != 1 || newest[0].Seq != all[2].Seq {
		t.Fatalf("limit 1 gave %+v, want the newest", newest)
	}
	after, _ := f.c.Events(t.Context(), api.EventQuery{After: all[0].Seq})
	if len(after) != 2 || after[0].Seq != all[1].Seq {
		t.Fatalf("after %d gave %+v", all[0].Seq, after)
	}
	_, err = f.c.Events(t.Context(), api.EventQuery{Spec: "never"})
	apiError(t, err, http.StatusNotFound)
	for _, q := range []string{"after=-1", "limit=x", "follow=maybe"} {
		f.wantError("GET", "/v1/events?"+q, "", http.StatusBadRequest)
	}
}

// follow runs FollowEvents until cancel, passing what arrives on a channel.
func follow(t *testing.T, f *fixture, q api.EventQuery) (<-chan model.Event, context.CancelFunc, <-chan error) {
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	evs := make(chan model.Event, 10000)
	done := make(chan error, 1)
	go func() {
		done <- f.c.FollowEvents(ctx, q, func(ev model.Event) error { evs <- ev; return nil })
	}()
	return evs, cancel, done
}

func next(t *testing.T, evs <-chan model.Event) model.Event {
	t.Helper()
	select {
	case ev := <-evs:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
		return model.Event{}
	}
}

func TestEventsFollow(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("a", "box"))
	evs, cancel, done := follow(t, f, api.EventQuery{Spec: "a"})
	if ev := next(t, evs); ev.Reason != "Applied" {
		t.Fatalf("backlog %+v", ev)
	}
	f.rec.Event("b", model.EventNormal, "Other", "not a's")
	f.rec.Event("a", model.EventNormal, "Started", "Started container x")
	if ev := next(t, evs); ev.Reason != "Started" || ev.Spec != "a" {
		t.Fatalf("followed %+v", ev)
	}
	f.apply(specYAML("a", "box:2"))
	if ev := next(t, evs); ev.Reason != "Applied" || !strings.Contains(ev.Message, "configured") {
		t.Fatalf("followed %+v", ev)
	}
	// The stream ends on the server too when the client goes away.
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("FollowEvents after cancel: %v", err)
	}
	waitEnded(t, f, "/v1/events")
}

// waitEnded waits for the handler of path to return.
func waitEnded(t *testing.T, f *fixture, path string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p := <-f.ended:
			if p == path {
				return
			}
		case <-timeout:
			t.Fatalf("the handler of %s still runs 10s after its client left", path)
		}
	}
}

// A follower that falls behind is dropped by the recorder; the stream
// resumes from the store and loses nothing, in Seq order.
func TestEventsFollowResumesAfterDrop(t *testing.T) {
	f := newFixture(t)
	evs, _, _ := follow(t, f, api.EventQuery{After: 0})
	f.rec.Event("", model.EventNormal, "Hello", "start")
	if ev := next(t, evs); ev.Reason != "Hello" {
		t.Fatalf("first %+v", ev)
	}
	// Many events published at once overflow the follower's buffer.
	const n = 500
	batch := make([]model.Event, n)
	for i := range batch {
		batch[i] = model.Event{Spec: fmt.Sprintf("s%d", i), Reason: "Burst", Message: fmt.Sprint(i)}
	}
	stored, _, err := f.st.Commit(store.Change{Events: batch})
	if err != nil {
		t.Fatal(err)
	}
	f.rec.Publish(stored...)
	f.rec.Event("", model.EventNormal, "After", "the burst")
	var got []string
	for range n + 1 {
		got = append(got, next(t, evs).Message)
	}
	for i := range n {
		if got[i] != fmt.Sprint(i) {
			t.Fatalf("event %d is %q: lost or out of order", i, got[i])
		}
	}
	if got[n] != "the burst" {
		t.Fatalf("last %q", got[n])
	}
	if f.rec.Dropped() == 0 {
		t.Fatal("the follower was never dropped: the test did not exercise the resume")
	}
	select {
	case ev := <-evs:
		t.Fatalf("duplicate or extra event %+v", ev)
	default:
	}
}

func TestLogs(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	log := f.rt.Add(managed("c1", "web", "running"))
	log.Write(stdcopy.Stdout, "2025-01-02T03:04:05.000000006Z one\n2025-01-02T03:04:06Z two\n")
	log.Write(stdcopy.Stderr, "2025-01-02T03:04:07Z oops\n")
	log.Write(stdcopy.Stdout, "2025-01-02T03:04:08Z no newline")
	var lines []api.LogLine
	err := f.c.Logs(t.Context(), "web", api.LogQuery{Tail: "10", Since: "2025-01-01T00:00:00Z", Timestamps: true},
		func(l api.LogLine) error { lines = append(lines, l); return nil })
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lines {
		got = append(got, fmt.Sprintf("%s %s %s", l.Stream, l.Time.Format(time.RFC3339Nano), l.Line))
	}
	want := []string{
		"stdout 2025-01-02T03:04:05.000000006Z one",
		"stdout 2025-01-02T03:04:06Z two",
		"stderr 2025-01-02T03:04:07Z oops",
		"stdout 2025-01-02T03:04:08Z no newline",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("lines\n%q\nwant\n%q", got, want)
	}
	opts := f.rt.LastLogOptions()
	if opts.Tail != "10" || !opts.Timestamps || opts.Follow || !opts.Since.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("docker asked with %+v", opts)
	}
	sel := f.rt.LastSelector()
	if len(sel) != 3 || sel[ownership.LabelManaged] != "true" || sel[ownership.LabelInstance] != instance || sel[ownership.LabelSpec] != "web" {
		t.Fatalf("containers looked up by %v, want the ownership labels", sel)
	}
}

func TestLogsSplitsLongLines(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	log := f.rt.Add(managed("c1", "web", "running"))
	log.Write(stdcopy.Stdout, strings.Repeat("é", api.MaxLogLine)+"\nshort\n")
	var lines []string
	err := f.c.Logs(t.Context(), "web", api.LogQuery{}, func(l api.LogLine) error { lines = append(lines, l.Line); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) < 3 || strings.Join(lines[:len(lines)-1], "") != strings.Repeat("é", api.MaxLogLine) || lines[len(lines)-1] != "short" {
		t.Fatalf("%d pieces; the long line was not cut cleanly", len(lines))
	}
	for _, l := range lines {
		if len(l) > api.MaxLogLine {
			t.Fatalf("piece of %d bytes", len(l))
		}
	}
	if f.rt.LastLogOptions().Tail != "all" {
		t.Fatalf("default tail %q, want all", f.rt.LastLogOptions().Tail)
	}
}

// With follow, lines arrive while the container runs, and the stream ends
// on both sides when the client leaves.
func TestLogsFollow(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	log := f.rt.Add(managed("c1", "web", "running"))
	log.Write(stdcopy.Stdout, "before\n")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	lines := make(chan api.LogLine, 10)
	done := make(chan error, 1)
	go func() {
		done <- f.c.Logs(ctx, "web", api.LogQuery{Follow: true}, func(l api.LogLine) error { lines <- l; return nil })
	}()
	nextLine := func() api.LogLine {
		select {
		case l := <-lines:
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no log line within 10s")
			return api.LogLine{}
		}
	}
	if l := nextLine(); l.Line != "before" {
		t.Fatalf("backlog %+v", l)
	}
	log.Write(stdcopy.Stderr, "live\n")
	if l := nextLine(); l.Line != "live" || l.Stream != api.Stderr {
		t.Fatalf("live %+v", l)
	}
	cancel()
	<-done
	select {
	case <-log.Closed():
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon's log stream was not closed after the client left")
	}
	waitEnded(t, f, "/v1/specs/web/logs")
}

func TestLogsEndWhenTheContainerStops(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	log := f.rt.Add(managed("c1", "web", "running"))
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- f.c.Logs(t.Context(), "web", api.LogQuery{Follow: true}, func(l api.LogLine) error { got <- l.Line; return nil })
	}()
	log.Write(stdcopy.Stdout, "last words\n")
	if l := <-got; l != "last words" {
		t.Fatalf("line %q", l)
	}
	log.End()
	if err := <-done; err != nil {
		t.Fatalf("a finished stream is not an error: %v", err)
	}
}

func TestLogsBadInput(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	f.rt.Add(managed("c1", "web", "running"))
	for q, field := range map[string]string{
		"tail=-1": "tail", "tail=ten": "tail", "since=yesterday": "since", "follow=yes!": "follow", "timestamps=2": "timestamps",
	} {
		if e := f.wantError("GET", "/v1/specs/web/logs?"+q, "", 400); e.Field != field {
			t.Errorf("%s: %+v", q, e)
		}
	}
	e := f.wantError("GET", "/v1/specs/nope/logs", "", 404)
	if !strings.Contains(e.Message, `"nope"`) {
		t.Errorf("unknown spec: %+v", e)
	}
	// A container holding the name without this agent's labels is not
	// the spec's.
	f.apply(specYAML("db", "box"))
	f.rt.Add(docker.Container{ID: "foreign", Name: "reconciler-db", State: "running",
		Labels: map[string]string{ownership.LabelManaged: "true", ownership.LabelInstance: "other-agent", ownership.LabelSpec: "db"}})
	st := model.Status{Name: "db", Phase: model.PhaseBackoff, Message: "waiting 10s"}
	if _, _, err := f.st.Commit(store.Change{Status: &st}); err != nil {
		t.Fatal(err)
	}
	e = f.wantError("GET", "/v1/specs/db/logs", "", 404)
	if !strings.Contains(e.Message, "no container") || !strings.Contains(e.Message, "Backoff") {
		t.Errorf("spec without a container: %+v", e)
	}
}

func TestSinceAsDuration(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box"))
	f.rt.Add(managed("c1", "web", "running"))
	before := time.Now()
	if err := f.c.Logs(t.Context(), "web", api.LogQuery{Since: "10m"}, func(api.LogLine) error { return nil }); err != nil {
		t.Fatal(err)
	}
	since := f.rt.LastLogOptions().Since
	if since.Before(before.Add(-10*time.Minute-time.Second)) || since.After(time.Now().Add(-10*time.Minute)) {
		t.Fatalf("since 10m gave %v", since)
	}
	if err := f.c.Logs(t.Context(), "web", api.LogQuery{Since: "1700000000"}, func(api.LogLine) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !f.rt.LastLogOptions().Since.Equal(time.Unix(1700000000, 0)) {
		t.Fatalf("since unix gave %v", f.rt.LastLogOptions().Since)
	}
}
