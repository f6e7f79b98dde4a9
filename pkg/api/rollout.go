package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Restarted answers POST /v1/specs/{name}/restart.
type Restarted struct {
	Name        string    `json:"name"`
	RestartedAt time.Time `json:"restartedAt"`
}

// restart records a restart request (kubectl rollout restart): the
// controller replaces the spec's container by its update strategy. Only
// the request is written, so a spec from a file may be restarted too.
func (s *server) restart(w http.ResponseWriter, r *http.Request, name string) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	rec, err := s.Store.RequestRestart(name, time.Now())
	if err != nil {
		return err
	}
	strategy := spec.StopFirst
	if rec.Spec.Spec.IsStartFirst() {
		strategy = spec.StartFirst
	}
	s.changed(name, model.EventNormal, "RestartRequested", "Restart requested through the API; the container is replaced (%s)", strategy)
	writeJSON(w, http.StatusOK, Restarted{Name: name, RestartedAt: rec.RestartedAt})
	return nil
}

// refuseCycle refuses specs whose dependsOn would close a cycle with the
// specs stored (the body's own cycles are refused by its validation).
// writeMu is held, so no other apply changes what is stored meanwhile.
func (s *server) refuseCycle(specs []*spec.Spec) error {
	recs, err := s.Store.ListSpecs()
	if err != nil {
		return err
	}
	all := slices.Clone(specs)
	for _, rec := range recs {
		if !slices.ContainsFunc(specs, func(sp *spec.Spec) bool { return sp.Metadata.Name == rec.Spec.Metadata.Name }) {
			all = append(all, rec.Spec)
		}
	}
	cycle := spec.FindCycle(all)
	if cycle == nil {
		return nil
	}
	msg := "dependsOn cycle: " + strings.Join(cycle, " -> ")
	for _, sp := range specs {
		at := slices.Index(cycle[:len(cycle)-1], sp.Metadata.Name)
		if at < 0 {
			continue
		}
		i := slices.IndexFunc(sp.Spec.DependsOn, func(d spec.Dependency) bool { return d.Name == cycle[at+1] })
		return sp.Locate(spec.ErrorList{{Path: fmt.Sprintf("spec.dependsOn[%d].name", i),
			Msg: fmt.Sprintf("%s (with the specs stored; spec %q closes it)", msg, sp.Metadata.Name)}})
	}
	return fail(errBadRequest, "spec.dependsOn", "%s", msg)
}

// Restart asks the agent to replace the spec's container by its update
// strategy.
func (c *Client) Restart(ctx context.Context, name string) (Restarted, error) {
	var out Restarted
	return out, c.call(ctx, http.MethodPost, specPath(name, "restart"), nil, nil, "", &out)
}
