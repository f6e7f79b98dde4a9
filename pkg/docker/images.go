package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// ImagePresent reports whether ref is in the daemon's local image store.
func (c *Client) ImagePresent(ctx context.Context, ref string) (bool, error) {
	err := c.do(ctx, OpImageInspect, func(ctx context.Context) error {
		_, err := c.api.ImageInspect(ctx, ref)
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return true, nil
}

// Pull pulls ref. The daemon reports most pull failures inside the
// progress stream, after an HTTP success, so the stream is read to its end.
// A pull has no overall deadline (a large image on a slow link takes what
// it takes) but is aborted after the pull timeout passes with no progress
// message; its error then wraps ErrStalled.
func (c *Client) Pull(ctx context.Context, ref string) error {
	stall := c.timeouts.with(OpPull)
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stalled := fmt.Errorf("no progress for %s: %w", stall, ErrStalled)
	t := time.AfterFunc(stall, func() { cancel(stalled) })
	progress := func() { t.Reset(stall) }
	auth, err := c.registryAuth(ref)
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	start := time.Now()
	err = func() error {
		rc, err := c.api.ImagePull(pctx, ref, image.PullOptions{RegistryAuth: auth})
		if err != nil {
			return err
		}
		defer rc.Close()
		return pullStreamError(rc, progress)
	}()
	t.Stop()
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(pctx), ErrStalled) {
		err = stalled
	}
	c.report(OpPull, start, err)
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ref, classify(err))
	}
	return nil
}

// pullStreamError reads the daemon's progress messages to the end, calls
// progress for each and returns the error one of them carries.
func pullStreamError(r io.Reader, progress func()) error {
	dec := json.NewDecoder(r)
	for {
		var msg jsonmessage.JSONMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read pull progress: %w", err)
		}
		progress()
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
	}
}
