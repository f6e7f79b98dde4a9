package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
)

func logsCmd() *cobra.Command {
	var q api.LogQuery
	var tail int
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] [--timestamps] [-p] NAME",
		Short: "Print the output of a spec's container (stdout to stdout, stderr to stderr)",
		Long: `Print the output of a spec's container: stdout to stdout, stderr to stderr.

The agent saves each run's complete output when the run ends, so logs NAME
also works after the container is removed (removeOnExit, ttlAfterFinished):
it prints the latest saved run. --previous prints the run before the
current one. A run that wrote more than the agent's --output-max-run-bytes
keeps its end, after a line on stderr saying how much was dropped.`,
		Args: cobra.ExactArgs(1),
	}
	c := addConnFlags(cmd)
	f := cmd.Flags()
	f.BoolVarP(&q.Follow, "follow", "f", false, "keep printing new output until the container stops")
	f.IntVar(&tail, "tail", -1, "print only the last N lines (default: all)")
	f.BoolVar(&q.Timestamps, "timestamps", false, "start each line with its time")
	f.StringVar(&q.Since, "since", "", "only output since a time (RFC 3339), Unix seconds, or a duration back (10m)")
	f.BoolVarP(&q.Previous, "previous", "p", false, "print the saved output of the run before the current one")
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		if tail >= 0 {
			q.Tail = strconv.Itoa(tail)
		}
		return cl.Logs(ctx, args[0], q, func(l api.LogLine) error {
			w := cmd.OutOrStdout()
			if l.Stream == api.Stderr || l.Stream == api.Notice {
				w = cmd.ErrOrStderr()
			}
			if l.Time != nil {
				_, err := fmt.Fprintf(w, "%s %s\n", l.Time.Format(time.RFC3339Nano), l.Line)
				return err
			}
			_, err := fmt.Fprintln(w, l.Line)
			return err
		})
	})
	return cmd
}

func exitsCmd() *cobra.Command {
	var limit int
	cmd := &cobra.Command{
		Use:   "exits NAME",
		Short: "Show how a spec's containers ended, newest first (kept after the spec is deleted)",
		Args:  cobra.ExactArgs(1),
	}
	c, o := addConnFlags(cmd), addOutputFlag(cmd)
	cmd.Flags().IntVar(&limit, "limit", 0, "show only the newest N exits (default: all kept)")
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		exits, err := cl.Exits(ctx, args[0], limit)
		if err != nil {
			return err
		}
		if !o.table() {
			return o.print(cmd.OutOrStdout(), exits)
		}
		if len(exits) == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "No exits recorded for %s.\n", args[0])
			return nil
		}
		tw := newTable(cmd.OutOrStdout(), "FINISHED", "CODE", "REASON", "RAN", "RESTARTS", "CONTAINER", "ERROR")
		now := time.Now()
		for _, e := range exits {
			row(tw, age(e.FinishedAt, now)+" ago", exitCode(e), e.Reason, e.Duration, e.RestartCount, shortID(e.ContainerID), oneLine(e.Error))
		}
		return tw.Flush()
	})
	return cmd
}

func eventsCmd() *cobra.Command {
	var watch bool
	cmd := &cobra.Command{
		Use:   "events [-w] [NAME]",
		Short: "List events, of all specs or of one; -w keeps printing new ones",
		Args:  cobra.MaximumNArgs(1),
	}
	c, o := addConnFlags(cmd), addOutputFlag(cmd)
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after the list, print new events as they happen")
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		var q api.EventQuery
		if len(args) == 1 {
			q.Spec = args[0]
		}
		out := cmd.OutOrStdout()
		if watch {
			// Rows come one at a time, so columns have fixed widths; with
			// -o the events are JSON lines or YAML documents.
			w := &eventWriter{w: out, format: o.format}
			w.header()
			return cl.FollowEvents(ctx, q, w.write)
		}
		evs, err := cl.Events(ctx, q)
		if err != nil {
			return err
		}
		if !o.table() {
			return o.print(out, evs)
		}
		if len(evs) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "No events found.")
			return nil
		}
		tw := newTable(out, "LAST SEEN", "TYPE", "REASON", "SPEC", "COUNT", "MESSAGE")
		now := time.Now()
		for _, ev := range evs {
			row(tw, age(ev.LastTime, now)+" ago", ev.Type, ev.Reason, specOrAgent(ev.Spec), ev.Count, oneLine(ev.Message))
		}
		return tw.Flush()
	})
	return cmd
}

func specOrAgent(spec string) string {
	if spec == "" {
		return "(agent)"
	}
	return spec
}

// eventWriter prints followed events as they arrive.
type eventWriter struct {
	w      io.Writer
	format string
}

const eventRow = "%-20s %-8s %-16s %-20s %5v  %s\n"

func (e *eventWriter) header() {
	if e.format == "" {
		fmt.Fprintf(e.w, eventRow, "TIME", "TYPE", "REASON", "SPEC", "COUNT", "MESSAGE")
	}
}

func (e *eventWriter) write(ev model.Event) error {
	switch e.format {
	case "json":
		return json.NewEncoder(e.w).Encode(ev)
	case "yaml":
		if _, err := fmt.Fprintln(e.w, "---"); err != nil {
			return err
		}
		return writeYAML(e.w, ev)
	}
	_, err := fmt.Fprintf(e.w, eventRow, ev.LastTime.Local().Format(time.DateTime), ev.Type, ev.Reason,
		specOrAgent(ev.Spec), ev.Count, oneLine(ev.Message))
	return err
}
