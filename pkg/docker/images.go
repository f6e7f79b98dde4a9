package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/pkg/jsonmessage"
)

// ImagePresent reports whether ref is in the daemon's local image store.
func (c *Client) ImagePresent(ctx context.Context, ref string) (bool, error) {
	err := c.do("image_inspect", func() error {
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
func (c *Client) Pull(ctx context.Context, ref string) error {
	err := c.do("pull", func() error {
		rc, err := c.api.ImagePull(ctx, ref, image.PullOptions{})
		if err != nil {
			return err
		}
		defer rc.Close()
		return pullStreamError(rc)
	})
	if err != nil {
		return fmt.Errorf("pull image %s: %w", ref, err)
	}
	return nil
}

func pullStreamError(r io.Reader) error {
	dec := json.NewDecoder(r)
	for {
		var msg jsonmessage.JSONMessage
		if err := dec.Decode(&msg); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read pull progress: %w", err)
		}
		if msg.Error != nil {
			return errors.New(msg.Error.Message)
		}
	}
}
