package docker

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"
)

// maxExecOutput bounds each of an exec's stdout and stderr: the output goes
// into memory and back through the API.
const maxExecOutput = 1 << 20

// Logs streams the container's stdout and stderr, multiplexed as Docker
// sends them for a container without a TTY (split them with stdcopy).
func (c *Client) Logs(ctx context.Context, id string, opts LogOptions) (io.ReadCloser, error) {
	lo := container.LogsOptions{
		ShowStdout: true, ShowStderr: true,
		Follow: opts.Follow, Tail: opts.Tail, Timestamps: opts.Timestamps,
	}
	if !opts.Since.IsZero() {
		lo.Since = unixText(opts.Since)
	}
	if !opts.Until.IsZero() {
		lo.Until = unixText(opts.Until)
	}
	if opts.Whole && !opts.Follow {
		return c.wholeLogs(ctx, id, lo)
	}
	if !opts.Follow {
		// A tail is read at once: the deadline covers the whole read.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeouts.with(OpLogs))
		rc, err := c.logs(ctx, id, lo)
		if err != nil {
			cancel()
			return nil, err
		}
		return &releaser{ReadCloser: rc, release: cancel}, nil
	}
	return c.logs(ctx, id, lo)
}

func (c *Client) logs(ctx context.Context, id string, lo container.LogsOptions) (io.ReadCloser, error) {
	var rc io.ReadCloser
	start := time.Now()
	_, release, err := c.open(ctx, OpLogs, func(ctx context.Context) (err error) {
		rc, err = c.api.ContainerLogs(ctx, id, lo)
		return err
	})
	c.report(OpLogs, start, err)
	if err != nil {
		return nil, fmt.Errorf("logs of container %s: %w", id, err)
	}
	return closeOnDone(ctx, &releaser{ReadCloser: rc, release: release}), nil
}

// releaser ends a stream's context when the stream is closed.
type releaser struct {
	io.ReadCloser
	release func()
}

func (r *releaser) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}

// closeOnDone closes rc when ctx ends, so that a stream read for a client
// who left is released at once, whatever the transport under it does.
func closeOnDone(ctx context.Context, rc io.ReadCloser) io.ReadCloser {
	stop := context.AfterFunc(ctx, func() { _ = rc.Close() })
	return &doneCloser{ReadCloser: rc, stop: stop}
}

type doneCloser struct {
	io.ReadCloser
	stop func() bool
}

func (d *doneCloser) Close() error {
	d.stop()
	return d.ReadCloser.Close()
}

// unixText writes t as the daemon's "seconds.nanoseconds" timestamp.
func unixText(t time.Time) string {
	return fmt.Sprintf("%d.%09d", t.Unix(), t.Nanosecond())
}

// Exec runs cmd in a running container and collects its output, each
// stream cut after its first MiB. A container that is not running answers
// with an error wrapping ErrConflict.
func (c *Client) Exec(ctx context.Context, id string, cmd []string) (ExecResult, error) {
	var created container.ExecCreateResponse
	err := c.do(ctx, OpExecCreate, func(ctx context.Context) (err error) {
		created, err = c.api.ContainerExecCreate(ctx, id, container.ExecOptions{
			Cmd: cmd, AttachStdout: true, AttachStderr: true,
		})
		return err
	})
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	// The attach starts the command; its stream lasts as long as the command.
	var att types.HijackedResponse
	start := time.Now()
	_, release, err := c.open(ctx, OpExecAttach, func(ctx context.Context) (err error) {
		att, err = c.api.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
		return err
	})
	if err != nil {
		c.report(OpExecAttach, start, err)
		return ExecResult{}, fmt.Errorf("exec in container %s: attach: %w", id, err)
	}
	defer release()
	// The Docker client ties a hijacked connection to ctx only while it
	// dials: closing it when ctx ends is what ends the read below (and
	// frees the daemon's side) once the caller has gone. The command itself
	// goes on in the container; Docker has no call to end an exec.
	stop := context.AfterFunc(ctx, att.Close)
	defer stop()
	defer att.Close()
	stdout, stderr := &boundedBuffer{max: maxExecOutput}, &boundedBuffer{max: maxExecOutput}
	_, err = stdcopy.StdCopy(stdout, stderr, att.Reader)
	if ctx.Err() != nil {
		c.report(OpExecAttach, start, nil) // the caller ended it, not the daemon
		return ExecResult{}, fmt.Errorf("exec in container %s: %w", id, context.Cause(ctx))
	}
	c.report(OpExecAttach, start, err)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in container %s: read output: %w", id, classify(err))
	}
	code, err := c.execExitCode(ctx, created.ID)
	if err != nil {
		return ExecResult{}, fmt.Errorf("exec in container %s: %w", id, err)
	}
	return ExecResult{ExitCode: code, Stdout: stdout.buf, Stderr: stderr.buf}, nil
}

// execExitCode waits for the daemon to record the exit: the output streams
// can end before the process does (a command may close them and go on).
func (c *Client) execExitCode(ctx context.Context, execID string) (int, error) {
	delay := 5 * time.Millisecond
	for {
		var ins container.ExecInspect
		err := c.do(ctx, OpExecInspect, func(ctx context.Context) (err error) {
			ins, err = c.api.ContainerExecInspect(ctx, execID)
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("inspect exec %s: %w", execID, err)
		}
		if !ins.Running {
			return ins.ExitCode, nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("exec %s still running: %w", execID, context.Cause(ctx))
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// boundedBuffer keeps the first max bytes and drops the rest while still
// accepting it, so the stream is drained and the process is not blocked.
type boundedBuffer struct {
	buf []byte
	max int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	if room := b.max - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
