package docker

import (
	"strings"
	"testing"

	"github.com/docker/docker/api/types/mount"

	"github.com/reconciler/reconciler/pkg/spec"
)

func TestBuildConfigMountsTheWorkspaceCopyReadWrite(t *testing.T) {
	s := &spec.Spec{Metadata: spec.Metadata{Name: "job"}, Spec: spec.ContainerSpec{Image: "img",
		Workspace: &spec.Workspace{Source: "/srv/repo", Target: "/workspace"}}}
	_, host, _, err := BuildConfig(CreateRequest{Spec: s, Workspace: "/var/lib/reconciler/workspaces/job/run"})
	if err != nil {
		t.Fatal(err)
	}
	want := mount.Mount{Type: mount.TypeBind, Source: "/var/lib/reconciler/workspaces/job/run", Target: "/workspace"}
	if len(host.Mounts) != 1 || host.Mounts[0] != want {
		t.Fatalf("mounts = %+v, want %+v", host.Mounts, want)
	}
	// Never the source itself.
	if _, _, _, err := BuildConfig(CreateRequest{Spec: s}); err == nil || !strings.Contains(err.Error(), "spec.workspace") {
		t.Fatalf("without a copy: err = %v", err)
	}
}
