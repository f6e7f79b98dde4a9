package docker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/docker/docker/client"
)

// Options configure a Client.
type Options struct {
	// Host is the daemon address; empty means DOCKER_HOST or the default
	// socket.
	Host string
	Log  *slog.Logger
	// Observe, when set, is called once for every daemon call with a short
	// operation name from a fixed set (ping, list, inspect, create, start,
	// stop, remove, wait, logs, exec_create, exec_attach,
	// exec_inspect, image_inspect, pull, events), its latency and the
	// daemon's own error (a NotFound that Remove or ImagePresent turn into
	// a normal answer is still reported). Streams (wait, events) report
	// their whole lifetime when they end.
	Observe func(op string, d time.Duration, err error)
}

// Client implements Runtime over the Docker Go client.
type Client struct {
	api     client.APIClient
	log     *slog.Logger
	observe func(op string, d time.Duration, err error)
}

var _ Runtime = (*Client)(nil)

// New connects to the daemon and pings it, so that a daemon that is not
// there is reported at once rather than at the first reconcile.
func New(ctx context.Context, opts Options) (*Client, error) {
	copts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if opts.Host != "" {
		copts = append(copts, client.WithHost(opts.Host))
	}
	cli, err := client.NewClientWithOpts(copts...)
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	c := newClient(cli, opts)
	if err := c.Ping(ctx); err != nil {
		_ = cli.Close()
		return nil, err
	}
	return c, nil
}

func newClient(api client.APIClient, opts Options) *Client {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{api: api, log: log, observe: opts.Observe}
}

// Ping checks that the daemon answers and negotiates the API version again
// from its answer, so that a daemon restarted as another version is
// spoken to in a version it understands.
func (c *Client) Ping(ctx context.Context) error {
	start := time.Now()
	p, err := c.api.Ping(ctx)
	c.report("ping", start, err)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("ping docker daemon: %w", err)
		}
		host := c.api.DaemonHost()
		return fmt.Errorf("cannot reach the Docker daemon at %s: %w (is dockerd running?)",
			host, daemonError{kind: ErrUnavailable, err: connectCause(host, err)})
	}
	// The ping in hand carries the version; NegotiateAPIVersion would ping
	// a second time to learn the same thing.
	c.api.NegotiateAPIVersionPing(p)
	return nil
}

// APIVersion is the API version negotiated with the daemon.
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// Close releases the client's idle connections.
func (c *Client) Close() error { return c.api.Close() }

// do runs one daemon call, reports it to Observe and maps its error onto
// the package's sentinels.
func (c *Client) do(op string, call func() error) error {
	start := time.Now()
	err := call()
	c.report(op, start, err)
	return classify(err)
}

func (c *Client) report(op string, start time.Time, err error) {
	if c.observe != nil {
		c.observe(op, time.Since(start), err)
	}
}

// connectCause recovers why the daemon could not be reached: the Docker
// client replaces a missing socket or a refused connection by a generic
// "Cannot connect" that hides which one it was.
func connectCause(host string, err error) error {
	u, perr := client.ParseHostURL(host)
	if perr != nil || !client.IsErrConnectionFailed(err) {
		return err
	}
	// For unix hosts too, Host holds the address (the socket path).
	conn, derr := net.DialTimeout(u.Scheme, u.Host, time.Second)
	if derr != nil {
		return derr
	}
	_ = conn.Close()
	return err
}
