package agent

import "path/filepath"

// workspaceRoot is --workspace-root, or "workspaces" beside the state
// file: on the same file system as the agent's other state, and only the
// agent's (the copies are made 0700 below it).
func (c Config) workspaceRoot() string {
	if c.WorkspaceRoot != "" {
		return c.WorkspaceRoot
	}
	return filepath.Join(filepath.Dir(c.StatePath), "workspaces")
}
