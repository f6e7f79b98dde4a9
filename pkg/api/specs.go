package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// apply stores the specs of the body with a spec file's strict decoding
// and validation, checked against the policy in force: unlike a file's, a
// body the policy refuses is refused at once. Every spec is checked before
// any is written, so a refused body changes nothing.
func (s *server) apply(w http.ResponseWriter, r *http.Request) error {
	dryRun, err := boolParam(r, "dryRun")
	if err != nil {
		return err
	}
	decode, data, err := readBody(r)
	if err != nil {
		return err
	}
	// The body is read before the turn is taken, so that a slow sender
	// does not hold one; it is at most MaxBody bytes.
	select {
	case s.applies <- struct{}{}:
		defer func() { <-s.applies }()
	case <-r.Context().Done():
		return fmt.Errorf("waiting for other applies to finish: %w", context.Cause(r.Context()))
	}
	testHookApplyTurn()
	specs, err := decode(data)
	if err != nil {
		return err
	}
	auditSpecs(r.Context(), specNames(specs)...)
	if len(specs) == 0 {
		return fail(errBadRequest, "", "the body holds no spec")
	}
	if err := s.Policy.Get().CheckAll(specs).Err(); err != nil {
		return err
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.refuseCycle(specs); err != nil {
		return err
	}
	res := ApplyResult{DryRun: dryRun, Specs: make([]Applied, len(specs))}
	for i, sp := range specs {
		action, err := s.plan(sp)
		if err != nil {
			return err
		}
		res.Specs[i] = Applied{Name: sp.Metadata.Name, Action: action, Hash: sp.Hash()}
	}
	if !dryRun {
		for i, sp := range specs {
			a := res.Specs[i]
			if a.Action == ActionUnchanged {
				continue
			}
			rec := store.Record{Spec: sp, Hash: a.Hash, Source: store.Source{Kind: store.SourceAPI}}
			if err := s.Store.PutSpec(rec); err != nil {
				return err
			}
			s.changed(a.Name, model.EventNormal, "Applied", "Spec %s through the API (hash %s)", a.Action, a.Hash)
		}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func specNames(specs []*spec.Spec) []string {
	names := make([]string, len(specs))
	for i, sp := range specs {
		names[i] = sp.Metadata.Name
	}
	return names
}

// testHookApplyTurn runs when an apply has its turn; tests hold applies
// there.
var testHookApplyTurn = func() {}

// plan says what storing sp would do. A spec from a file is refused: the
// file would put it back.
func (s *server) plan(sp *spec.Spec) (Action, error) {
	name := sp.Metadata.Name
	old, err := s.Store.GetSpec(name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return ActionCreated, nil
	case err != nil:
		return "", err
	case old.Source.Kind == store.SourceFile:
		return "", readOnly(name, old.Source.Path)
	case sameSpec(old.Spec, sp):
		return ActionUnchanged, nil
	}
	return ActionConfigured, nil
}

func readOnly(name, file string) error {
	return &problem{kind: store.ErrConflict, field: "metadata.name", file: file,
		msg: fmt.Sprintf("spec %q comes from file %s and is read-only through the API; edit or remove that file", name, file)}
}

// sameSpec compares whole specs, not hashes: a hash leaves out fields such
// as backoff that do not recreate the container but must still be stored.
func sameSpec(a, b *spec.Spec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// readBody reads the body and picks its decoder, YAML or JSON by
// Content-Type (YAML when none is given).
func readBody(r *http.Request) (func([]byte) ([]*spec.Spec, error), []byte, error) {
	ct := r.Header.Get("Content-Type")
	mt := ""
	if ct != "" {
		var err error
		if mt, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, nil, fail(errMediaType, "", "Content-Type %q: %v", ct, err)
		}
	}
	var decode func([]byte) ([]*spec.Spec, error)
	switch mt {
	case "application/json":
		decode = spec.DecodeJSON
	case "", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml":
		decode = func(b []byte) ([]*spec.Spec, error) { return spec.Decode("", b) }
	default:
		return nil, nil, fail(errMediaType, "", "Content-Type %q is not supported: send application/yaml or application/json", ct)
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read body: %w", err)
	}
	return decode, data, nil
}

// changed tells the controller and records why.
func (s *server) changed(name string, typ model.EventType, reason, format string, args ...any) {
	if s.Changed != nil {
		s.Changed(name)
	}
	if s.Recorder != nil {
		s.Recorder.Event(name, typ, reason, format, args...)
	}
}

func (s *server) list(w http.ResponseWriter, r *http.Request) error {
	recs, err := s.Store.ListSpecs()
	if err != nil {
		return err
	}
	statuses, err := s.Store.ListStatus()
	if err != nil {
		return err
	}
	byName := make(map[string]*model.Status, len(statuses))
	for i := range statuses {
		byName[statuses[i].Name] = &statuses[i]
	}
	out := make([]SpecView, 0, len(recs))
	for _, rec := range recs {
		out = append(out, view(rec, byName[rec.Spec.Metadata.Name]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func view(rec store.Record, st *model.Status) SpecView {
	return SpecView{Name: rec.Spec.Metadata.Name, Spec: rec.Spec, Hash: rec.Hash,
		Source: sourceView(rec.Source), UpdatedAt: rec.UpdatedAt, Status: st}
}

// sourceView is the wire form of a spec's source.
func sourceView(s store.Source) Source { return Source{Kind: SourceKind(s.Kind), Path: s.Path} }

func (s *server) get(w http.ResponseWriter, r *http.Request, name string) error {
	rec, err := s.Store.GetSpec(name)
	if err != nil {
		return err
	}
	var st *model.Status
	switch got, err := s.Store.GetStatus(name); {
	case err == nil:
		st = &got
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	v := view(rec, st)
	v.Workspace = s.workspaceDir(rec)
	writeJSON(w, http.StatusOK, v)
	return nil
}

// delete removes an API spec; the controller then stops its container with
// the spec's grace period.
func (s *server) delete(w http.ResponseWriter, r *http.Request, name string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	rec, err := s.Store.GetSpec(name)
	if err != nil {
		return err
	}
	if rec.Source.Kind == store.SourceFile {
		return readOnly(name, rec.Source.Path)
	}
	if err := s.Store.DeleteSpec(name); err != nil {
		return err
	}
	s.changed(name, model.EventNormal, "Deleted", "Spec deleted through the API")
	writeJSON(w, http.StatusOK, Deleted{Name: name})
	return nil
}

// exits reads the ledger, which outlives the spec: only a name with neither
// is unknown.
func (s *server) exits(w http.ResponseWriter, r *http.Request, name string) error {
	limit, err := intParam(r, "limit")
	if err != nil {
		return err
	}
	exits, err := s.Store.Exits(name, limit)
	if err != nil {
		return err
	}
	if len(exits) == 0 {
		if err := s.known(name); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, append([]model.ContainerExit{}, exits...))
	return nil
}

// known answers ErrNotFound for a name that has no spec.
func (s *server) known(name string) error {
	_, err := s.Store.GetSpec(name)
	return err
}
