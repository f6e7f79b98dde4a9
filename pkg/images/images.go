// Package images builds the project's own container images through the
// Docker API. No registry is reachable where the project is tested, so every
// image is a static Go program of the project's on a FROM scratch base, built
// by the daemon's classic builder from an in-memory tar context.
package images

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// BoxImage is the image of cmd/box, the project's demo and test program.
const BoxImage = "reconciler/box:latest"

// Labels put on every image this package builds.
const (
	LabelManagedImage = "reconciler.managed-image"
	// LabelSourceHash holds the sha256 of the program's Go sources and of
	// its Dockerfile, so an image built from older ones is rebuilt.
	LabelSourceHash = "reconciler.source-sha256"
)

const boxPackage = "github.com/reconciler/reconciler/cmd/box"

// The labels are written into the Dockerfile rather than passed as build
// options: the classic builder runs a container for every metadata
// instruction, and the options add one LABEL instruction per label.
const boxDockerfile = `FROM scratch
COPY rootfs/ /
LABEL %s=true %s=%s
ENTRYPOINT ["/box"]
CMD ["sleep"]
`

// BuildBox compiles cmd/box statically (CGO_ENABLED=0, -trimpath, -s -w)
// with the go command, for the daemon's OS and architecture, and builds a
// FROM scratch image tagged tag with /box as its entrypoint, labelled
// reconciler.managed-image=true and with the source hash. progress gets the
// build output (io.Discard will do).
func BuildBox(ctx context.Context, cli client.APIClient, tag string, progress io.Writer) error {
	src, err := findSource(ctx, boxPackage, boxDockerfile)
	if err != nil {
		return err
	}
	return buildBox(ctx, cli, src, tag, progress)
}

// EnsureBox builds the box image unless an image tagged tag exists that was
// built from the current cmd/box sources. The image it replaces is removed
// unless it is still tagged or used by a container.
func EnsureBox(ctx context.Context, cli client.APIClient, tag string, progress io.Writer) error {
	src, err := findSource(ctx, boxPackage, boxDockerfile)
	if err != nil {
		return err
	}
	return ensure(ctx, cli, src, tag, progress, func() error { return buildBox(ctx, cli, src, tag, progress) })
}

// ensure runs build unless an image tagged tag exists that carries src's
// hash; the image a build replaces is removed unless it is still tagged
// or used by a container.
func ensure(ctx context.Context, cli client.APIClient, src source, tag string, progress io.Writer, build func() error) error {
	img, err := cli.ImageInspect(ctx, tag)
	switch {
	case errdefs.IsNotFound(err): // build it
	case err != nil:
		return fmt.Errorf("inspect image %s: %w", tag, err)
	case img.Config != nil && img.Config.Labels[LabelSourceHash] == src.hash:
		fmt.Fprintf(progress, "image %s is up to date with %s\n", tag, src.dir)
		return nil
	}
	if err := build(); err != nil {
		return err
	}
	if img.ID != "" {
		removeIfDangling(ctx, cli, img.ID, progress)
	}
	return nil
}

// removeIfDangling removes an image that lost its last tag, so that every
// change to a program does not leave one behind. An image that is still
// tagged or used by a container is kept.
func removeIfDangling(ctx context.Context, cli client.APIClient, id string, progress io.Writer) {
	img, err := cli.ImageInspect(ctx, id)
	if err != nil || len(img.RepoTags) > 0 {
		return
	}
	if _, err := cli.ImageRemove(ctx, id, image.RemoveOptions{PruneChildren: true}); err != nil {
		fmt.Fprintf(progress, "kept the replaced image %s: %v\n", id, err)
		return
	}
	fmt.Fprintf(progress, "removed the replaced image %s\n", id)
}

func buildBox(ctx context.Context, cli client.APIClient, src source, tag string, progress io.Writer) error {
	return buildImage(ctx, cli, src, tag, boxDockerfile, "box", progress,
		// scratch has no /tmp, where the healthcheck's file usually goes.
		file{name: "rootfs/tmp/", mode: 0o1777})
}

// buildImage compiles src for the daemon's platform into rootfs/<bin> and
// builds dockerfile (a format taking the two labels and the hash) with
// it and extra as the context.
func buildImage(ctx context.Context, cli client.APIClient, src source, tag, dockerfile, bin string, progress io.Writer, extra ...file) error {
	// The binary must suit the daemon, which need not run on this host's
	// OS or architecture.
	ver, err := cli.ServerVersion(ctx)
	if err != nil {
		return fmt.Errorf("ask the docker daemon its platform: %w", err)
	}
	exe, err := compile(ctx, src, ver.Os, ver.Arch)
	if err != nil {
		return err
	}
	files := append([]file{
		{name: "Dockerfile", data: fmt.Appendf(nil, dockerfile, LabelManagedImage, LabelSourceHash, src.hash), mode: 0o644},
		{name: "rootfs/" + bin, data: exe, mode: 0o755},
	}, extra...)
	tarball, err := buildContext(files...)
	if err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, bytes.NewReader(tarball), build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  "Dockerfile",
		Remove:      true,
		ForceRemove: true,
		// BuildKit would need a gRPC session with this client; the
		// classic builder takes the plain tar context.
		Version: build.BuilderV1,
	})
	if err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	defer resp.Body.Close()
	if err := readBuildOutput(resp.Body, progress); err != nil {
		return fmt.Errorf("build image %s: %w", tag, err)
	}
	return nil
}
