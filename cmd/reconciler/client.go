package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/api"
)

// addClientCommands adds the kubectl-style subcommands that talk to a
// running agent over its API.
func addClientCommands(root *cobra.Command) {
	root.AddCommand(applyCmd(), getCmd(), describeCmd(), deleteCmd(), logsCmd(),
		execCmd(), exitsCmd(), eventsCmd(), cpCmd())
}

// conn is where a client command finds the agent.
type conn struct {
	socket, server, token string
}

// addConnFlags gives cmd the flags that locate the agent. They are not
// persistent flags of the root: `agent --socket` means where to listen.
func addConnFlags(cmd *cobra.Command) *conn {
	c := &conn{}
	socket := os.Getenv("RECONCILER_SOCKET")
	if socket == "" {
		socket = api.DefaultSocket
	}
	f := cmd.Flags()
	f.StringVar(&c.socket, "socket", socket, "the agent's API socket (env RECONCILER_SOCKET)")
	f.StringVar(&c.server, "server", "", "the agent's TCP API, http(s)://host:port, instead of the socket")
	f.StringVar(&c.token, "token", "", "bearer token for --server (default: env RECONCILER_TOKEN)")
	return c
}

func (c *conn) client() (*api.Client, error) {
	if c.server == "" {
		return api.NewClient(c.socket), nil
	}
	u, err := url.Parse(c.server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("--server %q: use http://host:port or https://host:port", c.server)
	}
	token := c.token
	if token == "" {
		token = os.Getenv("RECONCILER_TOKEN")
	}
	if token == "" {
		return nil, errors.New("--server needs a token: pass --token or set RECONCILER_TOKEN")
	}
	return api.NewTCPClient(c.server, token), nil
}

// explain adds to an unreachable agent what to do about it, on one line.
func (c *conn) explain(err error) error {
	var unreachable *api.UnreachableError
	if !errors.As(err, &unreachable) {
		return err
	}
	if c.server != "" {
		return fmt.Errorf("%v: is the agent running with --api-addr? Check --server", err)
	}
	return fmt.Errorf("%v: start it with 'reconciler agent' or 'make run', or pass --socket", err)
}

// clientFunc is the body of a client command.
type clientFunc func(ctx context.Context, cl *api.Client, cmd *cobra.Command, args []string) error

// run makes a cobra RunE that connects and explains an unreachable agent.
func (c *conn) run(fn clientFunc) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cl, err := c.client()
		if err != nil {
			return err
		}
		return c.explain(fn(cmd.Context(), cl, cmd, args))
	}
}

// printAgentVersion adds the agent's version to `version`; an agent that
// cannot be reached is only noted, the client's version stands anyway.
func printAgentVersion(cmd *cobra.Command, c *conn) {
	cl, err := c.client()
	if err == nil {
		var v api.Version
		if v, err = cl.Version(cmd.Context()); err == nil {
			fmt.Fprintf(cmd.OutOrStdout(), "agent %s (instance %s) at %s\n", v.Version, v.Instance, cl.Where())
			return
		}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "agent: %v\n", c.explain(err))
}
