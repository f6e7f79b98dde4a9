package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
)

// The calls below serve the image garbage collector (pkg/imagegc). They
// are measured and bounded under existing operation names, so the metric
// labels stay a fixed set: the daemon's info as a ping (a short question
// about the daemon), listings as list, image removal as remove.

// DataRoot is the daemon's data-root (docker info's DockerRootDir), where
// its images and containers are stored.
func (c *Client) DataRoot(ctx context.Context) (string, error) {
	var root string
	err := c.do(ctx, OpPing, func(ctx context.Context) error {
		info, err := c.api.Info(ctx)
		root = info.DockerRootDir
		return err
	})
	if err != nil {
		return "", fmt.Errorf("docker info: %w", err)
	}
	if root == "" {
		return "", errors.New("docker info: the daemon does not name its data-root")
	}
	return root, nil
}

// Images lists the local images (intermediate build images left out, but
// telling which images others were built on),
// with their creation time to the nanosecond (the listing has seconds
// only, which cannot order images built in one second).
func (c *Client) Images(ctx context.Context) ([]ImageInfo, error) {
	var list []image.Summary
	err := c.do(ctx, OpList, func(ctx context.Context) (err error) {
		list, err = c.api.ImageList(ctx, image.ListOptions{})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var all []image.Summary
	err = c.do(ctx, OpList, func(ctx context.Context) (err error) {
		all, err = c.api.ImageList(ctx, image.ListOptions{All: true})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	parents := map[string]bool{}
	for _, s := range all {
		if s.ParentID != "" {
			parents[s.ParentID] = true
		}
	}
	out := make([]ImageInfo, 0, len(list))
	for _, s := range list {
		img := ImageInfo{ID: s.ID, Size: s.Size, Created: time.Unix(s.Created, 0), Parent: parents[s.ID]}
		for _, t := range s.RepoTags {
			if t != "<none>:<none>" {
				img.Tags = append(img.Tags, t)
			}
		}
		var created string
		if err := c.do(ctx, OpImageInspect, func(ctx context.Context) error {
			ins, err := c.api.ImageInspect(ctx, s.ID)
			created = ins.Created
			return err
		}); err == nil {
			if t, err := time.Parse(time.RFC3339Nano, created); err == nil {
				img.Created = t
			}
		}
		out = append(out, img)
	}
	return out, nil
}

// ContainerImage is one container and the ID of its image.
type ContainerImage struct {
	ID, ImageID string
	Labels      map[string]string
}

// ContainerImages lists every container on the daemon, managed or not,
// running or not, with the ID of its image.
func (c *Client) ContainerImages(ctx context.Context) ([]ContainerImage, error) {
	var list []container.Summary
	err := c.do(ctx, OpList, func(ctx context.Context) (err error) {
		list, err = c.api.ContainerList(ctx, container.ListOptions{All: true})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]ContainerImage, 0, len(list))
	for _, s := range list {
		out = append(out, ContainerImage{ID: s.ID, ImageID: s.ImageID, Labels: s.Labels})
	}
	return out, nil
}

// ImageID resolves an image reference to the ID of the local image; ""
// when there is none.
func (c *Client) ImageID(ctx context.Context, ref string) (string, error) {
	var id string
	err := c.do(ctx, OpImageInspect, func(ctx context.Context) error {
		ins, err := c.api.ImageInspect(ctx, ref)
		id = ins.ID
		return err
	})
	switch {
	case errors.Is(err, ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return id, nil
}

// RemoveImage removes one reference (a tag, or the ID of an untagged
// image) without force: the daemon refuses, with a conflict, an image a
// container uses, even one created since the caller looked.
func (c *Client) RemoveImage(ctx context.Context, ref string) error {
	err := c.do(ctx, OpRemove, func(ctx context.Context) error {
		_, err := c.api.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true})
		return err
	})
	if err != nil {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}
