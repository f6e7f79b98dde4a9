package export

import (
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/spec"
)

func TestWorkspaceIsWarnedAbout(t *testing.T) {
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "job"},
		Spec: spec.ContainerSpec{Image: "box", RestartPolicy: spec.RestartNever,
			Workspace: &spec.Workspace{Source: "/srv/repo", Target: "/workspace"}}}
	s.Default()
	out, warnings, err := Kubernetes([]*spec.Spec{s})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, w := range warnings {
		if w.Field == "spec.workspace" && strings.Contains(w.Message, "emptyDir") && strings.Contains(w.Message, "init container") {
			found = true
		}
	}
	if !found {
		t.Fatalf("warnings %v: want one for spec.workspace suggesting an emptyDir and an init container", warnings)
	}
	if strings.Contains(string(out), "/srv/repo") {
		t.Fatalf("the manifest mounts the host source:\n%s", out)
	}
}
