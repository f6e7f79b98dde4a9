package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/model"
)

// MaxLogLine bounds one LogLine; a longer line comes in pieces.
const MaxLogLine = 64 << 10

// startStream sends the headers of a JSON-lines answer at once, so the
// client knows the stream is open before the first line.
func startStream(w http.ResponseWriter) *http.ResponseController {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	return rc
}

// events lists events oldest first; with follow=true it goes on streaming
// new ones as JSON lines until the client leaves.
func (s *server) events(w http.ResponseWriter, r *http.Request) error {
	name := r.URL.Query().Get("spec")
	if name != "" {
		if err := validName("spec", name); err != nil {
			return err
		}
	}
	after, err := uintParam(r, "after")
	if err != nil {
		return err
	}
	limit, err := intParam(r, "limit")
	if err != nil {
		return err
	}
	follow, err := boolParam(r, "follow")
	if err != nil {
		return err
	}
	if follow {
		return s.followEvents(w, r, name, after, limit)
	}
	evs, err := s.recentEvents(name, after, limit)
	if err != nil {
		return err
	}
	if len(evs) == 0 && name != "" {
		if err := s.known(name); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, evs)
	return nil
}

// recentEvents returns the newest limit events after the Seq after (all
// with limit 0), oldest first.
func (s *server) recentEvents(name string, after uint64, limit int) ([]model.Event, error) {
	evs, err := s.Store.Events(name, after, 0)
	if err != nil {
		return nil, err
	}
	if limit > 0 && len(evs) > limit {
		evs = evs[len(evs)-limit:]
	}
	return append([]model.Event{}, evs...), nil
}

// followEvents sends the backlog, then what is committed after it. A
// published event only wakes the loop: the events themselves are read from
// the store after the last Seq sent, so they come in Seq order even when
// publishers race, and a follower dropped for falling behind loses nothing.
func (s *server) followEvents(w http.ResponseWriter, r *http.Request, name string, after uint64, limit int) error {
	wake, cancel := s.Recorder.Subscribe(name, 0)
	defer func() { cancel() }() // cancel changes when a dropped follower subscribes again
	backlog, err := s.recentEvents(name, after, limit)
	if err != nil {
		return err
	}
	rc := startStream(w)
	enc := json.NewEncoder(w)
	last := after
	send := func(evs []model.Event) bool {
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				return false
			}
			last = ev.Seq
		}
		return rc.Flush() == nil
	}
	if !send(backlog) {
		return nil
	}
	for {
		select {
		case <-r.Context().Done():
			return nil
		case _, ok := <-wake:
			if !ok {
				wake, cancel = s.Recorder.Subscribe(name, 0)
			}
		}
		evs, err := s.Store.Events(name, last, 0)
		if err != nil {
			s.Log.Error("follow events", "err", err)
			return nil
		}
		if !send(evs) {
			return nil
		}
	}
}

// logs streams a container's output as JSON lines, stdout and stderr kept
// apart; with previous=true, or when the spec has no container, a saved
// run's (saved.go).
func (s *server) logs(w http.ResponseWriter, r *http.Request, name string) error {
	follow, err := boolParam(r, "follow")
	if err != nil {
		return err
	}
	timestamps, err := boolParam(r, "timestamps")
	if err != nil {
		return err
	}
	tail, err := tailParam(r)
	if err != nil {
		return err
	}
	since, err := sinceParam(r, time.Now())
	if err != nil {
		return err
	}
	previous, err := boolParam(r, "previous")
	if err != nil {
		return err
	}
	q := logQuery{follow: follow, timestamps: timestamps, tail: tail, since: since}
	if previous {
		return s.previousLogs(w, r, name, q)
	}
	rt, c, err := s.container(r.Context(), name)
	if errdefs.IsNotFound(err) {
		// The container is gone (removeOnExit, a TTL): its last run was saved.
		if served, serr := s.latestLogs(w, name, q); served || serr != nil {
			return serr
		}
	}
	if err != nil {
		return err
	}
	out, err := rt.Logs(r.Context(), c.ID, docker.LogOptions{Follow: follow, Tail: tail, Since: since, Timestamps: timestamps})
	if docker.LogsUnreadable(err) {
		return fail(errdefs.ErrNotImplemented, "", "%s: no output to show: %s", name, docker.LogsUnreadableMessage)
	}
	if err != nil {
		return err
	}
	defer out.Close()
	rc := startStream(w)
	enc := json.NewEncoder(w)
	emit := func(l LogLine) error {
		if err := enc.Encode(l); err != nil {
			return err
		}
		return rc.Flush()
	}
	stdout := &lineWriter{stream: Stdout, timestamps: timestamps, emit: emit}
	stderr := &lineWriter{stream: Stderr, timestamps: timestamps, emit: emit}
	_, err = stdcopy.StdCopy(stdout, stderr, out)
	if err == nil {
		err = stdout.flush()
	}
	if err == nil {
		err = stderr.flush()
	}
	if err != nil && r.Context().Err() == nil {
		s.Log.Debug("log stream ended", "spec", name, "err", err)
	}
	return nil
}

// lineWriter cuts one stream of output into LogLines.
type lineWriter struct {
	stream     string
	timestamps bool
	emit       func(LogLine) error
	buf        []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	rest := l.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 && len(rest) < MaxLogLine {
			break
		}
		if i >= 0 && i <= MaxLogLine {
			if err := l.line(rest[:i]); err != nil {
				return 0, err
			}
			rest = rest[i+1:]
			continue
		}
		cut := MaxLogLine // on a rune boundary, when the text is UTF-8
		for cut > MaxLogLine-utf8.UTFMax && !utf8.RuneStart(rest[cut]) {
			cut--
		}
		if err := l.line(rest[:cut]); err != nil {
			return 0, err
		}
		rest = rest[cut:]
	}
	l.buf = append(l.buf[:0], rest...)
	return len(p), nil
}

// flush sends a last line that had no newline.
func (l *lineWriter) flush() error {
	if len(l.buf) == 0 {
		return nil
	}
	err := l.line(l.buf)
	l.buf = l.buf[:0]
	return err
}

func (l *lineWriter) line(b []byte) error {
	ll := LogLine{Stream: l.stream, Line: string(b)}
	if l.timestamps {
		// The daemon starts each line with its RFC 3339 time and a space.
		if ts, text, ok := bytes.Cut(b, []byte{' '}); ok {
			if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
				ll.Time, ll.Line = &t, string(text)
			}
		}
	}
	return l.emit(ll)
}
