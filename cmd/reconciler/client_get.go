package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
)

func getCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get [NAME]",
		Short: "List specs with their phase, or show one",
		Args:  cobra.MaximumNArgs(1),
	}
	c, o := addConnFlags(cmd), addOutputFlag(cmd)
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		var views []api.SpecView
		if len(args) == 1 {
			v, err := cl.Get(ctx, args[0])
			if err != nil {
				return err
			}
			views = []api.SpecView{v}
		} else {
			var err error
			if views, err = cl.List(ctx); err != nil {
				return err
			}
		}
		out := cmd.OutOrStdout()
		switch {
		case !o.table() && len(args) == 1:
			return o.print(out, views[0])
		case !o.table():
			return o.print(out, views)
		}
		if len(views) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "No specs found.")
		} else {
			tw := newTable(out, "NAME", "PHASE", "RESTARTS", "AGE", "CONTAINER", "MESSAGE")
			now := time.Now()
			for _, v := range views {
				st := v.Status
				if st == nil {
					st = &model.Status{Phase: model.PhasePending}
				}
				msg := st.Message
				if st.Conflict != "" && msg == "" {
					msg = "name held by foreign container " + st.Conflict
				}
				row(tw, v.Name, st.Phase, st.Restarts, age(v.UpdatedAt, now), shortID(st.ContainerID), oneLine(msg))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		if len(args) == 0 {
			return reportFileErrors(ctx, cl, cmd.ErrOrStderr())
		}
		return nil
	})
	return cmd
}

// reportFileErrors tells about spec files the agent refused: a newcomer's
// spec with a typo would otherwise just be missing from the list.
func reportFileErrors(ctx context.Context, cl *api.Client, w io.Writer) error {
	errs, err := cl.FileErrors(ctx)
	if err != nil {
		return err
	}
	for _, e := range errs {
		fmt.Fprintf(w, "\nspec file %s is refused (its last good specs, if any, stay in force):\n  %s\n",
			e.Path, strings.ReplaceAll(strings.TrimSpace(e.Error), "\n", "\n  "))
	}
	return nil
}

// description is what describe shows, and its -o json|yaml form.
type description struct {
	api.SpecView
	Exits  []model.ContainerExit `json:"exits"`
	Events []model.Event         `json:"events"`
}

// describeExits and describeEvents bound what describe shows.
const (
	describeExits  = 5
	describeEvents = 15
	logTailLines   = 10
)

func describeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a spec, its status, its last exits and recent events",
		Args:  cobra.ExactArgs(1),
	}
	c, o := addConnFlags(cmd), addOutputFlag(cmd)
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		v, err := cl.Get(ctx, args[0])
		if err != nil {
			return err
		}
		d := description{SpecView: v}
		if d.Exits, err = cl.Exits(ctx, v.Name, describeExits); err != nil {
			return err
		}
		if d.Events, err = cl.Events(ctx, api.EventQuery{Spec: v.Name, Limit: describeEvents}); err != nil {
			return err
		}
		if !o.table() {
			return o.print(cmd.OutOrStdout(), d)
		}
		return writeDescription(cmd.OutOrStdout(), d, time.Now())
	})
	return cmd
}

func writeDescription(w io.Writer, d description, now time.Time) error {
	s := d.Spec.Spec
	field := func(name string, v any) {
		if str := fmt.Sprint(v); str != "" && str != "[]" {
			fmt.Fprintf(w, "%-14s%s\n", name+":", str)
		}
	}
	when := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), age(t, now))
	}
	source := string(d.Source.Kind)
	if d.Source.Kind == api.SourceFile {
		source = "file " + d.Source.Path + " (read-only through the API)"
	}
	field("Name", d.Name)
	field("Source", source)
	field("Labels", labels(d.Spec.Metadata.Labels))
	field("Image", s.Image)
	field("Command", quoteAll(s.Command))
	field("Args", quoteAll(s.Args))
	field("Restart", s.RestartPolicy)
	field("Workspace", workspaceLine(d.SpecView))
	if s.Priority != 0 {
		field("Priority", s.Priority)
	}
	field("Grace", s.TerminationGracePeriod)
	field("Strategy", strategyText(&s))
	field("Depends on", dependsText(s.DependsOn))
	field("Hash", d.Hash)
	field("Updated", when(d.UpdatedAt))
	st := d.Status
	if st == nil {
		st = &model.Status{Phase: model.PhasePending, Message: "not reconciled yet"}
	}
	field("Phase", st.Phase)
	field("Message", st.Message)
	field("Conflict", st.Conflict)
	field("Container", shortID(st.ContainerID))
	field("Health", st.Health)
	if st.Updating {
		field("Updating", "yes: the container is not of this definition yet and is being replaced")
	}
	field("Started", when(st.StartedAt))
	field("Finished", when(st.FinishedAt))
	fmt.Fprintf(w, "%-14s%d\n", "Restarts:", st.Restarts)
	if st.Phase == model.PhaseBackoff || st.Phase == model.PhaseImagePullBackOff {
		field("Next try", when(st.NextTryAt))
	}

	fmt.Fprintln(w, "\nExits (newest first):")
	if len(d.Exits) == 0 {
		fmt.Fprintln(w, "  <none>")
	} else {
		tw := newTable(w, "  FINISHED", "CODE", "REASON", "RAN", "CONTAINER")
		for _, e := range d.Exits {
			row(tw, "  "+age(e.FinishedAt, now)+" ago", exitCode(e), e.Reason, e.Duration, shortID(e.ContainerID))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if tail := lastLines(d.Exits[0].LogTail, logTailLines); tail != "" {
			fmt.Fprintf(w, "\nLast output of %s:\n%s\n", shortID(d.Exits[0].ContainerID), indent(tail))
		}
	}

	fmt.Fprintln(w, "\nEvents:")
	if len(d.Events) == 0 {
		fmt.Fprintln(w, "  <none>")
		return nil
	}
	tw := newTable(w, "  LAST SEEN", "TYPE", "REASON", "COUNT", "MESSAGE")
	for _, ev := range d.Events {
		row(tw, "  "+age(ev.LastTime, now)+" ago", ev.Type, ev.Reason, ev.Count, oneLine(ev.Message))
	}
	return tw.Flush()
}

func exitCode(e model.ContainerExit) string {
	code := fmt.Sprint(e.ExitCode)
	if e.Signal != "" {
		code += " (" + e.Signal + ")"
	}
	if e.OOMKilled {
		code += " OOM"
	}
	return code
}

func labels(m map[string]string) string {
	var parts []string
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func quoteAll(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return strings.Join(q, " ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string { return "  " + strings.ReplaceAll(s, "\n", "\n  ") }
