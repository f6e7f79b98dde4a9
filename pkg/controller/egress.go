package controller

import (
	"context"
	"maps"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Egress keeps what a spec with egress.allow needs around its container:
// an internal network whose only way out is an allow-list proxy
// (pkg/egress). Ensure runs right before the container is created, so the
// proxy is there when the container starts; Release when the spec is
// gone. Nothing of it is a spec's container: its exits are not the job's.
type Egress interface {
	// Ensure is given the spec with the name the container gets; its
	// labels go on the network and proxy too.
	Ensure(ctx context.Context, s *spec.Spec) (network string, env map[string]string, err error)
	Release(ctx context.Context, spec string) error
}

// withEgress puts a container with spec.egress on its network: none for
// an empty allow-list, else the spec's internal network, with the proxy
// variables in its environment. The spec-hash label stays the spec's own:
// the network is derived from it.
func (c *Controller) withEgress(ctx context.Context, name string, req *docker.CreateRequest) *Failure {
	e := req.Spec.Spec.Egress
	if e == nil {
		return nil
	}
	sp := *req.Spec
	req.Spec = &sp
	if e.NoNetwork() {
		sp.Spec.Network = "none"
		return nil
	}
	if c.opts.Egress == nil {
		return &Failure{Reason: "EgressUnavailable", Message: "this agent runs no egress proxies; spec.egress.allow cannot be honoured"}
	}
	network, env, err := c.opts.Egress.Ensure(ctx, req.Spec)
	if err != nil {
		return &Failure{Reason: "EgressUnavailable", Message: err.Error()}
	}
	sp.Spec.Network = network
	merged := maps.Clone(req.Env)
	if merged == nil {
		merged = make(map[string]string, len(env))
	}
	maps.Copy(merged, env)
	req.Env = merged
	return nil
}

// releaseEgress drops a gone spec's network and proxy; what fails is
// retried by the egress manager's own repair pass.
func (c *Controller) releaseEgress(ctx context.Context, name string) {
	if c.opts.Egress == nil {
		return
	}
	if err := c.opts.Egress.Release(ctx, name); err != nil {
		c.log.Warn("cannot remove a spec's egress network and proxy yet", "spec", name, "err", err)
	}
}
