package docker

import (
	"context"
	"fmt"
)

// Rename gives a container a new name: a start-first replacement takes
// its spec's canonical name once the old container is gone. A name
// already taken is ErrConflict.
func (c *Client) Rename(ctx context.Context, id, name string) error {
	// A rename is bounded like a start: both are quick metadata calls.
	err := c.do(ctx, OpStart, func(ctx context.Context) error {
		return c.api.ContainerRename(ctx, id, name)
	})
	if err != nil {
		return fmt.Errorf("rename container %s to %s: %w", id, name, err)
	}
	return nil
}
