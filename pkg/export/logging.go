package export

// loggingAndInit warns about spec.logging and spec.init, which a pod
// cannot carry: the node's container runtime chooses how logs are kept,
// and a pod has no per-container init process.
func (m *mapper) loggingAndInit() {
	c := &m.spec.Spec
	if c.Logging != nil {
		m.warn("spec.logging", "not mapped: the node's container runtime keeps pod logs (kubelet's containerLogMaxSize and containerLogMaxFiles); ship %s logs with a node agent instead", c.Logging.Driver)
	}
	if c.Init {
		m.warn("spec.init", "not mapped: a pod has no init process; set shareProcessNamespace: true (the pause container reaps) or put tini in the image as its entrypoint")
	}
}
