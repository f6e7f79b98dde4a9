package docker

import (
	"fmt"

	"github.com/docker/docker/api/types/mount"

	"github.com/reconciler/reconciler/pkg/spec"
)

// withWorkspace adds the bind mount of a run's workspace copy. A spec with
// a workspace and no copy is refused: mounting the source itself would
// hand the job the operator's tree.
func withWorkspace(mounts []mount.Mount, ws *spec.Workspace, copyDir string) ([]mount.Mount, error) {
	if ws == nil {
		return mounts, nil
	}
	if copyDir == "" {
		return nil, fmt.Errorf("spec.workspace: the copy of %s was not made", ws.Source)
	}
	return append(mounts, mount.Mount{Type: mount.TypeBind, Source: copyDir, Target: ws.Target}), nil
}
