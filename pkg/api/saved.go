package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/containerd/errdefs"

	"github.com/reconciler/reconciler/pkg/output"
)

// Notice is the stream of a line the agent wrote into a saved run (that
// the run's output was truncated), not the program.
const Notice = output.Notice

// SavedOutput is what the API needs of the runs' saved output;
// *output.Store is one.
type SavedOutput interface {
	Latest(spec string) (output.Saved, bool, error)
	Previous(spec string, current *output.Run) (output.Saved, bool, error)
	Open(output.Saved) (*output.Reader, error)
}

var _ SavedOutput = (*output.Store)(nil)

// savedRunHeader names the saved run an answer comes from.
const savedRunHeader = "X-Reconciler-Saved-Run"

// logQuery is what a logs request asks for.
type logQuery struct {
	follow, timestamps bool
	tail               string
	since              time.Time
}

// latestLogs answers a logs request for a spec with no container from
// its latest saved run; served is false when there is none.
func (s *server) latestLogs(w http.ResponseWriter, name string, q logQuery) (served bool, err error) {
	if s.Output == nil {
		return false, nil
	}
	sv, ok, err := s.Output.Latest(name)
	if err != nil || !ok {
		return false, err
	}
	return true, s.serveSaved(w, sv, q)
}

// previousLogs answers logs --previous: the run before the current one,
// kubectl logs --previous. The current run is the container's, when the
// spec has one, else the latest saved.
func (s *server) previousLogs(w http.ResponseWriter, r *http.Request, name string, q logQuery) error {
	if s.Output == nil {
		return fail(errdefs.ErrNotFound, "previous", "this agent keeps no saved output")
	}
	var current *output.Run
	rt, c, err := s.container(r.Context(), name)
	switch {
	case err == nil:
		got, err := rt.Inspect(r.Context(), c.ID)
		if err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if err == nil && !got.StartedAt.IsZero() {
			current = &output.Run{Spec: name, ContainerID: got.ID, StartedAt: got.StartedAt}
		}
	case !errdefs.IsNotFound(err):
		return err
	}
	var sv output.Saved
	var ok bool
	if current == nil && err == nil {
		// A container that has not run yet: its previous run is the
		// latest saved.
		sv, ok, err = s.Output.Latest(name)
	} else {
		sv, ok, err = s.Output.Previous(name, current)
	}
	if err != nil {
		return err
	}
	if !ok {
		return fail(errdefs.ErrNotFound, "previous", "spec %q has no saved run before the current one", name)
	}
	return s.serveSaved(w, sv, q)
}

// serveSaved streams a saved run as the live logs stream, with tail and
// since applied; follow has nothing to wait for.
func (s *server) serveSaved(w http.ResponseWriter, sv output.Saved, q logQuery) error {
	rd, err := s.Output.Open(sv)
	if err != nil {
		return err
	}
	defer rd.Close()
	tail := -1
	if q.tail != "all" {
		tail, _ = strconv.Atoi(q.tail) // checked by tailParam
	}
	w.Header().Set(savedRunHeader, sv.Key())
	rc := startStream(w)
	enc := json.NewEncoder(w)
	send := func(l output.Line) error {
		ll := LogLine{Stream: l.Stream, Line: l.Text}
		if q.timestamps {
			t := l.Time
			ll.Time = &t
		}
		return enc.Encode(ll)
	}
	var ring []output.Line // the last tail lines, when tail is set
	next := 0
	n := 0
	for {
		l, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.Log.Warn("read saved output", "run", sv.Key(), "err", err)
			return nil // the answer has begun: it ends short
		}
		if !q.since.IsZero() && l.Time.Before(q.since) {
			continue
		}
		if tail < 0 {
			if err := send(l); err != nil {
				return nil
			}
			if n++; n%256 == 0 {
				_ = rc.Flush()
			}
			continue
		}
		if tail == 0 {
			continue
		}
		if len(ring) < tail {
			ring = append(ring, l)
			continue
		}
		ring[next] = l
		next = (next + 1) % tail
	}
	for i := range ring {
		if err := send(ring[(next+i)%len(ring)]); err != nil {
			return nil
		}
	}
	_ = rc.Flush()
	return nil
}
