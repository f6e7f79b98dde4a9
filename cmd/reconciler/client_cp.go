package main

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
)

func cpCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cp NAME:PATH DEST",
		Short: "Copy a file or directory out of a job's workspace, also after its container is gone",
		Long: `Copy a file or directory out of the latest workspace copy of a spec (kubectl cp).
PATH is the path inside the container, under the spec's workspace target. The
agent reads it from its copy on the host, so this works after the container is
removed, until the copy goes with the job's ttlAfterFinished or its spec.
As docker cp: when DEST is an existing directory the copy goes into it under
its own name, otherwise DEST is created as the copy. Symlinks are copied as
symlinks; none that leads out of the workspace is followed.`,
		Example: `  reconciler cp fix-tests:/workspace/report.md ./report.md
  reconciler cp fix-tests:/workspace ./fix-tests-workspace`,
		Args: cobra.ExactArgs(2),
	}
	c := addConnFlags(cmd)
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		name, p, err := parseCopySource(args[0])
		if err != nil {
			return err
		}
		return cl.CopyOut(ctx, name, p, args[1])
	})
	return cmd
}

// parseCopySource reads NAME:PATH; PATH must be absolute (the agent checks
// that it lies under the workspace target).
func parseCopySource(arg string) (name, p string, err error) {
	name, p, ok := strings.Cut(arg, ":")
	if !ok || name == "" || p == "" {
		return "", "", fmt.Errorf("%q: give NAME:PATH, PATH being the path inside the container under its workspace target (e.g. job:/workspace/out)", arg)
	}
	if !path.IsAbs(p) {
		return "", "", fmt.Errorf("%q: PATH %q must be absolute, under the workspace target (e.g. %s:/workspace/%s)", arg, p, name, p)
	}
	return name, p, nil
}

// workspaceLine is describe's Workspace line: what is copied where, and
// the host path of the latest copy.
func workspaceLine(v api.SpecView) string {
	if v.Spec == nil || v.Spec.Spec.Workspace == nil {
		return ""
	}
	ws := v.Spec.Spec.Workspace
	copyAt := "no copy yet"
	if v.Workspace != "" {
		copyAt = "copy at " + v.Workspace
	}
	return fmt.Sprintf("%s -> %s (%s)", ws.Source, ws.Target, copyAt)
}
