package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
)

func execCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "exec NAME -- CMD [ARG...]",
		Short: "Run a command in a spec's running container; its exit code becomes this one's",
		Example: `  reconciler exec web -- ls -l /
  reconciler exec web -- sh -c 'echo $HOME'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 || len(args) < 2 {
				return errors.New("usage: reconciler exec NAME -- CMD [ARG...]")
			}
			return nil
		},
	}
	c := addConnFlags(cmd)
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		res, err := cl.Exec(ctx, args[0], args[1:])
		if err != nil {
			return err
		}
		if _, err := cmd.OutOrStdout().Write(res.Stdout); err != nil {
			return err
		}
		if _, err := cmd.ErrOrStderr().Write(res.Stderr); err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return exitError{code: res.ExitCode}
		}
		return nil
	})
	return cmd
}

func deleteCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delete NAME...",
		Short: "Delete specs applied through the API; their containers stop with grace",
		Args:  cobra.MinimumNArgs(1),
	}
	c := addConnFlags(cmd)
	cmd.RunE = c.run(func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error {
		return eachName(cmd, args, "deleted", func(name string) error { return cl.Delete(ctx, name) })
	})
	return cmd
}

// eachName runs do for every name: an answer of the agent's refusing one
// (an API error: no such spec, a file's spec) is printed and the rest go on,
// ending with exit code 1; any other error (no agent) stops at once. Each
// success prints "NAME done".
func eachName(cmd *cobra.Command, names []string, done string, do func(name string) error) error {
	failed := 0
	for _, name := range names {
		err := do(name)
		var ae *api.APIError
		switch {
		case errors.As(err, &ae):
			failed++
			fmt.Fprintf(cmd.ErrOrStderr(), "error: %s\n", ae.Message)
		case err != nil:
			return err
		default:
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", name, done)
		}
	}
	if failed > 0 {
		return exitError{code: 1}
	}
	return nil
}
