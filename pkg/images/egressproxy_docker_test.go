//go:build docker

package images

import (
	"context"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
)

const testProxyTag = "reconciler/egress-proxy:test-proxy"

// The proxy's image: built FROM scratch with its labels, runs as nobody,
// and its program starts and says what it serves.
func TestEgressProxyImage(t *testing.T) {
	cli := dockerClient(t)
	ctx := t.Context()
	if err := EnsureEgressProxy(ctx, cli, testProxyTag, &strings.Builder{}); err != nil {
		t.Fatalf("EnsureEgressProxy: %v", err)
	}
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), testProxyTag, image.RemoveOptions{PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", testProxyTag, err)
		}
	})
	img, err := cli.ImageInspect(ctx, testProxyTag)
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Labels[LabelManagedImage] != "true" || img.Config.Labels[LabelSourceHash] == "" {
		t.Errorf("labels = %v", img.Config.Labels)
	}
	if img.Config.User != "65534:65534" || len(img.Config.Entrypoint) != 1 || img.Config.Entrypoint[0] != "/egress-proxy" {
		t.Errorf("user %q, entrypoint %q", img.Config.User, img.Config.Entrypoint)
	}
	created, err := cli.ContainerCreate(ctx, &container.Config{Image: testProxyTag, Cmd: []string{"--allow", "bad entry"},
		Labels: map[string]string{"reconciler.test": "egress-proxy"}}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cli, created.ID); code != 2 {
		t.Errorf("a bad --allow: exit code %d, want 2", code)
	}
	if _, stderr := logs(t, cli, created.ID); !strings.Contains(stderr, `"bad entry" is not host:port`) {
		t.Errorf("stderr = %q", stderr)
	}
}
