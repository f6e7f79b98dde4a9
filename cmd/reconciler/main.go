// Command reconciler is the agent (`reconciler agent`) and its
// kubectl-style client.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Set by the linker (see Makefile).
var (
	version  = "dev"
	revision = "unknown"
)

// exitError carries a process exit code through cobra (e.g. `exec`, `wait`).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

func main() {
	root := &cobra.Command{
		Use:           "reconciler",
		Short:         "Keep Docker containers where their specs say they should be",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(agentCmd(), versionCmd(), validateCmd())
	addClientCommands(root)
	addJobCommands(root)
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func versionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, and the agent's when it is reachable",
		Args:  cobra.NoArgs,
	}
	c := addConnFlags(cmd)
	cmd.Run = func(cmd *cobra.Command, _ []string) {
		fmt.Fprintf(cmd.OutOrStdout(), "reconciler %s (%s)\n", version, revision)
		printAgentVersion(cmd, c)
	}
	return cmd
}
