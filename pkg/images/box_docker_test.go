//go:build docker

package images

// This test builds the box image on the local Docker daemon. It builds only
// with -tags docker (make unit sets it), so that go test ./pkg/... stays
// hermetic; with the tag and no daemon it fails saying so.

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"
)

const testTag = "reconciler/box:test-box"

// dockerClient returns a client for the real daemon; without one the test
// fails saying so.
func dockerClient(t *testing.T) *client.Client {
	t.Helper()
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatalf("docker client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	if _, err := cli.Ping(t.Context()); err != nil {
		t.Fatalf("this test builds an image and needs a running Docker daemon (start dockerd): %v", err)
	}
	return cli
}

func TestBoxImage(t *testing.T) {
	cli := dockerClient(t)
	ctx := t.Context()

	start := time.Now()
	var progress bytes.Buffer
	if err := BuildBox(ctx, cli, testTag, &progress); err != nil {
		t.Fatalf("BuildBox: %v\n%s", err, progress.String())
	}
	t.Logf("BuildBox took %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		// Removing the tag leaves reconciler/box:latest alone when both
		// name one image.
		if _, err := cli.ImageRemove(context.Background(), testTag, image.RemoveOptions{PruneChildren: true}); err != nil {
			t.Errorf("remove image %s: %v", testTag, err)
		}
	})
	built, err := cli.ImageInspect(ctx, testTag)
	if err != nil {
		t.Fatalf("inspect built image: %v", err)
	}
	if got := built.Config.Labels[LabelManagedImage]; got != "true" {
		t.Errorf("label %s = %q, want true", LabelManagedImage, got)
	}
	if got := built.Config.Entrypoint; len(got) != 1 || got[0] != "/box" {
		t.Errorf("entrypoint = %q, want [/box]", got)
	}

	t.Run("EnsureBox keeps an up-to-date image", func(t *testing.T) {
		start := time.Now()
		progress.Reset()
		if err := EnsureBox(ctx, cli, testTag, &progress); err != nil {
			t.Fatalf("EnsureBox: %v", err)
		}
		t.Logf("EnsureBox on an up-to-date image took %s", time.Since(start).Round(time.Millisecond))
		again, err := cli.ImageInspect(ctx, testTag)
		if err != nil {
			t.Fatalf("inspect: %v", err)
		}
		if again.ID != built.ID || strings.Contains(progress.String(), "Step ") {
			t.Errorf("EnsureBox rebuilt an up-to-date image (id %s -> %s):\n%s", built.ID, again.ID, progress.String())
		}
	})

	t.Run("EnsureBox replaces a stale image", func(t *testing.T) {
		stale := buildStale(t, cli)
		progress.Reset()
		if err := EnsureBox(ctx, cli, testTag, &progress); err != nil {
			t.Fatalf("EnsureBox: %v", err)
		}
		img, err := cli.ImageInspect(ctx, testTag)
		if err != nil {
			t.Fatalf("inspect: %v", err)
		}
		if img.ID == stale || img.Config.Labels[LabelSourceHash] != built.Config.Labels[LabelSourceHash] {
			t.Errorf("%s still names the stale image %s:\n%s", testTag, stale, progress.String())
		}
		if _, err := cli.ImageInspect(ctx, stale); !errdefs.IsNotFound(err) {
			t.Errorf("stale image %s: inspect error = %v, want not found", stale, err)
		}
	})

	t.Run("exit code", func(t *testing.T) {
		id := runBox(t, cli, "exit", "--code", "3", "--stderr", "boom")
		if code := waitExit(t, cli, id); code != 3 {
			t.Errorf("exit code = %d, want 3", code)
		}
		if _, stderr := logs(t, cli, id); stderr != "boom\n" {
			t.Errorf("stderr = %q, want %q", stderr, "boom\n")
		}
	})

	t.Run("tick", func(t *testing.T) {
		id := runBox(t, cli, "tick", "--count", "2", "--interval", "100ms")
		if code := waitExit(t, cli, id); code != 0 {
			t.Errorf("exit code = %d, want 0", code)
		}
		stdout, _ := logs(t, cli, id)
		var ticks []string
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
			if strings.HasPrefix(line, "tick ") {
				ticks = append(ticks, line)
			}
		}
		if len(ticks) != 2 || !strings.HasPrefix(ticks[0], "tick 1 ") || !strings.HasPrefix(ticks[1], "tick 2 ") {
			t.Fatalf("stdout = %q, want two tick lines", stdout)
		}
		for _, line := range ticks {
			if _, err := time.Parse(time.RFC3339Nano, strings.Fields(line)[2]); err != nil {
				t.Errorf("tick line %q: %v", line, err)
			}
		}
	})

	t.Run("SIGTERM exits with the term exit code", func(t *testing.T) {
		id := runBox(t, cli, "sleep", "--term-exit-code", "7")
		waitForOutput(t, cli, id, "sleeping forever")
		if err := cli.ContainerKill(ctx, id, "SIGTERM"); err != nil {
			t.Fatalf("kill: %v", err)
		}
		if code := waitExit(t, cli, id); code != 7 {
			t.Errorf("exit code = %d, want 7", code)
		}
		if stdout, _ := logs(t, cli, id); !strings.Contains(stdout, "received SIGTERM") {
			t.Errorf("stdout = %q, want it to say received SIGTERM", stdout)
		}
	})

	t.Run("ignore-sigterm leaves only SIGKILL", func(t *testing.T) {
		id := runBox(t, cli, "sleep", "--ignore-sigterm")
		waitForOutput(t, cli, id, "sleeping forever")
		grace := 1
		if err := cli.ContainerStop(ctx, id, container.StopOptions{Timeout: &grace}); err != nil {
			t.Fatalf("stop: %v", err)
		}
		if code := waitExit(t, cli, id); code != 137 {
			t.Errorf("exit code = %d, want 137 (SIGKILL after the grace period)", code)
		}
		if stdout, _ := logs(t, cli, id); !strings.Contains(stdout, "ignoring SIGTERM") {
			t.Errorf("stdout = %q, want it to say ignoring SIGTERM", stdout)
		}
	})

	t.Run("healthcheck sees the healthy file", func(t *testing.T) {
		const interval = 200 * time.Millisecond
		id := runContainer(t, cli, &container.Config{
			Cmd: []string{"sleep", "--healthy-file", "/tmp/healthy"},
			Healthcheck: &container.HealthConfig{
				Test:     []string{"CMD", "/box", "health", "--file", "/tmp/healthy"},
				Interval: interval,
				Retries:  1,
			},
		})
		// Exec under load can take a while; allow many intervals.
		deadline := time.Now().Add(50 * interval)
		for {
			c, err := cli.ContainerInspect(ctx, id)
			if err != nil {
				t.Fatalf("inspect: %v", err)
			}
			if c.State.Health != nil && c.State.Health.Status == "healthy" {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("not healthy within %s: %+v", 50*interval, c.State.Health)
			}
			time.Sleep(interval / 2)
		}
	})

	t.Run("signal KILL as pid 1", func(t *testing.T) {
		id := runBox(t, cli, "signal", "--sig", "KILL")
		if code := waitExit(t, cli, id); code != 137 {
			t.Errorf("exit code = %d, want 137", code)
		}
	})
}

// buildStale tags, as testTag, an image whose source hash label is out of
// date, and returns its id.
func buildStale(t *testing.T, cli *client.Client) string {
	t.Helper()
	dockerfile := "FROM " + testTag + "\nLABEL " + LabelSourceHash + "=stale\n"
	tarball, err := buildContext(file{name: "Dockerfile", data: []byte(dockerfile), mode: 0o644})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.ImageBuild(t.Context(), bytes.NewReader(tarball), build.ImageBuildOptions{
		Tags: []string{testTag}, Remove: true, Version: build.BuilderV1,
	})
	if err != nil {
		t.Fatalf("build stale image: %v", err)
	}
	defer resp.Body.Close()
	if err := readBuildOutput(resp.Body, io.Discard); err != nil {
		t.Fatalf("build stale image: %v", err)
	}
	img, err := cli.ImageInspect(t.Context(), testTag)
	if err != nil {
		t.Fatalf("inspect stale image: %v", err)
	}
	return img.ID
}

// runBox starts a container of the test image with args and removes it at
// cleanup.
func runBox(t *testing.T, cli *client.Client, args ...string) string {
	t.Helper()
	return runContainer(t, cli, &container.Config{Cmd: args})
}

func runContainer(t *testing.T, cli *client.Client, cfg *container.Config) string {
	t.Helper()
	ctx := t.Context()
	cfg.Image = testTag
	cfg.Labels = map[string]string{"reconciler.test": "box"}
	created, err := cli.ContainerCreate(ctx, cfg, nil, nil, nil, "")
	if err != nil {
		t.Fatalf("create container: %v", err)
	}
	t.Cleanup(func() {
		err := cli.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true})
		if err != nil {
			t.Errorf("remove container: %v", err)
		}
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container: %v", err)
	}
	return created.ID
}

// waitExit waits for the container to stop and returns its exit code.
func waitExit(t *testing.T, cli *client.Client, id string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// not-running also answers for a container that exited before the call.
	waitC, errC := cli.ContainerWait(ctx, id, container.WaitConditionNotRunning)
	select {
	case res := <-waitC:
		return int(res.StatusCode)
	case err := <-errC:
		t.Fatalf("wait for container: %v", err)
		return -1
	}
}

func logs(t *testing.T, cli *client.Client, id string) (stdout, stderr string) {
	t.Helper()
	rc, err := cli.ContainerLogs(t.Context(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	defer rc.Close()
	var out, errOut bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errOut, rc); err != nil {
		t.Fatalf("read logs: %v", err)
	}
	return out.String(), errOut.String()
}

// waitForOutput polls the logs until they hold want: box prints its start
// line only once its signal handler is in place.
func waitForOutput(t *testing.T, cli *client.Client, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		stdout, _ := logs(t, cli, id)
		if strings.Contains(stdout, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs within 10s; stdout so far: %q", want, stdout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
