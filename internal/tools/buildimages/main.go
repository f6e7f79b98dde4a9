// Command buildimages builds the project's images (for `make images`): it
// rebuilds reconciler/box:latest when cmd/box changed and
// reconciler/egress-proxy:latest when cmd/egress-proxy or a package it
// imports changed, and prints their ids.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/docker/docker/client"

	"github.com/reconciler/reconciler/pkg/images"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "buildimages: %v\n", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	if err := images.EnsureBox(ctx, cli, images.BoxImage, os.Stderr); err != nil {
		return err
	}
	if err := images.EnsureEgressProxy(ctx, cli, images.EgressProxyImage, os.Stderr); err != nil {
		return err
	}
	for _, tag := range []string{images.BoxImage, images.EgressProxyImage} {
		img, err := cli.ImageInspect(ctx, tag)
		if err != nil {
			return fmt.Errorf("inspect %s: %w", tag, err)
		}
		fmt.Println(tag, img.ID)
	}
	return nil
}
