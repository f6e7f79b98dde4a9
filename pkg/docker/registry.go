package docker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/api/types/image"
)

// Operations of image updates (autoUpdate): asking a registry, through
// the daemon, for the digest of a reference, and tagging or untagging the
// image kept for a rollback.
const (
	OpDistributionInspect = "distribution_inspect"
	OpImageTag            = "image_tag"
)

// ImageInfo is what the agent needs of a local image: autoUpdate its
// digests, the image collector (pkg/imagegc) the rest.
type ImageInfo struct {
	ID string
	// RepoDigests are the image's name@digest references, as the daemon
	// recorded them at pull or push.
	RepoDigests []string
	Tags        []string
	Size        int64
	Created     time.Time
	// Parent is true for an image other images were built on (the classic
	// builder's chain): removing it would only untag it.
	Parent bool
}

// DigestFor returns the digest that ImageInfo's RepoDigests give for
// ref's repository, "" when none does.
func (i ImageInfo) DigestFor(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	repo := n.Name()
	for _, rd := range i.RepoDigests {
		d, err := reference.ParseNormalizedNamed(rd)
		if err != nil {
			continue
		}
		if c, ok := d.(reference.Canonical); ok && d.Name() == repo {
			return c.Digest().String()
		}
	}
	return ""
}

func (c *Client) registryAuth(ref string) (string, error) {
	if c.auth == nil {
		return "", nil
	}
	return c.auth(ref)
}

// RemoteDigest asks ref's registry, through the daemon and with the
// credentials for it, for the digest ref names there now. Nothing is
// pulled.
func (c *Client) RemoteDigest(ctx context.Context, ref string) (string, error) {
	auth, err := c.registryAuth(ref)
	if err != nil {
		return "", err
	}
	var digest string
	err = c.do(ctx, OpDistributionInspect, func(ctx context.Context) error {
		di, err := c.api.DistributionInspect(ctx, ref, auth)
		digest = di.Descriptor.Digest.String()
		return err
	})
	if err != nil {
		return "", fmt.Errorf("ask the registry for %s: %w", ref, err)
	}
	if digest == "" {
		return "", fmt.Errorf("ask the registry for %s: no digest in the answer", ref)
	}
	return digest, nil
}

// Image inspects a local image (by reference or ID); ErrNotFound when the
// daemon does not have it.
func (c *Client) Image(ctx context.Context, ref string) (ImageInfo, error) {
	var resp image.InspectResponse
	err := c.do(ctx, OpImageInspect, func(ctx context.Context) (err error) {
		resp, err = c.api.ImageInspect(ctx, ref)
		return err
	})
	if err != nil {
		return ImageInfo{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	return ImageInfo{ID: resp.ID, RepoDigests: resp.RepoDigests}, nil
}

// Tag adds the reference tag to the image id, so that the daemon keeps
// the image whatever other references move.
func (c *Client) Tag(ctx context.Context, id, tag string) error {
	err := c.do(ctx, OpImageTag, func(ctx context.Context) error {
		return c.api.ImageTag(ctx, id, tag)
	})
	if err != nil {
		return fmt.Errorf("tag image %s as %s: %w", id, tag, err)
	}
	return nil
}

// Untag removes the reference tag; the image goes with it when nothing
// else refers to it and no container uses it. A missing tag is not an
// error, nor is an image still in use (only the tag goes then).
func (c *Client) Untag(ctx context.Context, tag string) error {
	err := c.do(ctx, OpImageTag, func(ctx context.Context) error {
		_, err := c.api.ImageRemove(ctx, tag, image.RemoveOptions{})
		return err
	})
	if err == nil || errors.Is(err, ErrNotFound) {
		return nil
	}
	return fmt.Errorf("untag image %s: %w", tag, err)
}
