package export

// workspace warns about spec.workspace: Kubernetes has no private copy of
// a host directory per run.
func (m *mapper) workspace() {
	ws := m.spec.Spec.Workspace
	if ws == nil {
		return
	}
	m.warn("spec.workspace", "not mapped: Kubernetes makes no private copy of host directory %s per run; "+
		"mount an emptyDir at %s and fill it in an init container (e.g. git clone), running as the pod's user", ws.Source, ws.Target)
}
