package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// restartCmd is `reconciler restart NAME...`: kubectl rollout restart.
func restartCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restart NAME...",
		Short: "Replace a spec's container by its updateStrategy (as kubectl rollout restart)",
		Long: `Ask the agent to replace the container of each spec NAME by a fresh one, by
the spec's updateStrategy: StopFirst stops the old container with grace, then
starts the new one; StartFirst starts the new one beside the old one and stops
the old one once the new one is ready. The request is recorded, so the
replacement happens even across an agent restart. Follow it with
'reconciler wait NAME --for=running' or 'reconciler events NAME -w'.`,
		Args: cobra.MinimumNArgs(1),
	}
	c := addConnFlags(cmd)
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		return eachName(cmd, args, "restarted", func(name string) error {
			_, err := cl.Restart(ctx, name)
			return err
		})
	})
	return cmd
}

// waitConditions are what `wait --for` accepts, as kubectl wait --for.
var waitConditions = map[string]func(v api.SpecView) bool{
	"running": func(v api.SpecView) bool { return current(v) && v.Status.Phase == model.PhaseRunning },
	"healthy": func(v api.SpecView) bool {
		return current(v) && v.Status.Phase == model.PhaseRunning && v.Status.Health == "healthy"
	},
	"succeeded": func(v api.SpecView) bool { return current(v) && v.Status.Phase == model.PhaseSucceeded },
}

// current says the status is of the spec's current definition, and its
// container too (not one being replaced).
func current(v api.SpecView) bool {
	return v.Status != nil && v.Status.SpecHash == v.Hash && !v.Status.Updating
}

// waitFor is `wait NAME --for=COND`: it polls until the condition holds
// (exit 0) or the timeout passes (exit 1, with what was seen last), as
// kubectl wait does.
func waitFor(ctx context.Context, cl *api.Client, cmd *cobra.Command, name, cond string, timeout time.Duration) error {
	check, ok := waitConditions[cond]
	if !ok && cond != "deleted" {
		return fmt.Errorf("--for=%s: use running, healthy, succeeded or deleted", cond)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := "no status yet"
	err := poll(ctx, func() (bool, error) {
		v, err := cl.Get(ctx, name)
		if cond == "deleted" {
			return deleted(ctx, cl, name, err, &last)
		}
		if isNotFound(err) {
			last = "no such spec"
			return false, nil // kubectl waits for an object that is not there yet
		}
		if err != nil {
			return false, err
		}
		last = phaseOf(v)
		if v.Status != nil && v.Status.Health != "" {
			last += " (health " + v.Status.Health + ")"
		}
		if v.Status != nil && v.Status.Updating {
			last += "; its container is being replaced"
		}
		return check(v), nil
	})
	if errors.Is(err, context.DeadlineExceeded) && timeout > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "error: timed out after %s waiting for %s to be %s: %s\n", timeout, name, cond, last)
		return exitError{code: 1}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s condition met (%s)\n", name, cond)
	return nil
}

// deleted says whether the spec and its container are gone. A client
// whose role may not inspect (exec) judges by the spec alone.
func deleted(ctx context.Context, cl *api.Client, name string, getErr error, last *string) (bool, error) {
	switch {
	case getErr == nil:
		*last = "the spec exists"
		return false, nil
	case !isNotFound(getErr):
		return false, getErr
	}
	_, err := cl.Inspect(ctx, name)
	var ae *api.APIError
	switch {
	case err == nil:
		*last = "the spec is deleted, its container is not gone yet"
		return false, nil
	case isNotFound(err), errors.As(err, &ae) && ae.Status == http.StatusForbidden:
		return true, nil
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
		*last = "the spec is deleted; the agent cannot tell about its container yet (" + ae.Message + ")"
		return false, nil
	}
	return false, err
}

// strategyText is a spec's updateStrategy for describe ("" for the default).
func strategyText(s *spec.ContainerSpec) string {
	u := s.UpdateStrategy
	if u == nil || u.Type == "" && u.MinReady.Duration == 0 {
		return ""
	}
	text := string(cmp.Or(u.Type, spec.StopFirst))
	if u.MinReady.Duration > 0 {
		text += fmt.Sprintf(" (minReady %s)", u.MinReady)
	}
	return text
}

// dependsText is a spec's dependsOn for describe.
func dependsText(deps []spec.Dependency) string {
	parts := make([]string, len(deps))
	for i, d := range deps {
		parts[i] = fmt.Sprintf("%s (%s)", d.Name, d.Cond())
	}
	return strings.Join(parts, ", ")
}
