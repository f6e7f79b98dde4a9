// Command buildimages builds the project's images (for `make images`): it
// rebuilds reconciler/box:latest when cmd/box changed and prints its id.
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
	img, err := cli.ImageInspect(ctx, images.BoxImage)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", images.BoxImage, err)
	}
	fmt.Println(img.ID)
	return nil
}
