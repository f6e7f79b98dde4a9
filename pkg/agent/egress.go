package agent

import (
	"context"
	"fmt"
	"io"

	"github.com/docker/docker/client"

	"github.com/reconciler/reconciler/pkg/egress"
	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/spec"
)

// newEgress makes the manager of the egress networks and proxies, with a
// Docker client of its own (the controller's Runtime knows containers
// only). Its allow-lists come from the store, the desired state.
func (a *Agent) newEgress(cfg Config) (*egress.Manager, func(), error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if cfg.DockerHost != "" {
		opts = append(opts, client.WithHost(cfg.DockerHost))
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("docker client: %w", err)
	}
	m := egress.New(cli, egress.Options{
		Instance: a.Store.InstanceID(), Log: a.log, Registerer: a.Metrics.Registry, Period: cfg.Resync,
		Want: func(name string) (*spec.Spec, bool) {
			rec, err := a.Store.GetSpec(name)
			if err != nil || rec.Spec == nil || rec.Spec.Spec.Egress == nil || rec.Spec.Spec.Egress.NoNetwork() {
				return nil, false
			}
			return rec.Spec, true
		},
		// Only when the image is missing: this needs the go command and
		// the module's source, which a checkout has and a host may not.
		BuildImage: func(ctx context.Context) error {
			return images.EnsureEgressProxy(ctx, cli, images.EgressProxyImage, io.Discard)
		},
	})
	return m, func() { cli.Close() }, nil
}

// runEgress runs the egress manager once the daemon answers.
func (a *Agent) runEgress(ctx context.Context, m *egress.Manager) error {
	select {
	case <-ctx.Done():
		return nil
	case <-a.ready:
	}
	return m.Run(ctx)
}
