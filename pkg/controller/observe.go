package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/store"
)

func (c *Controller) desired(name string) (Desired, error) {
	r, err := c.st.ViewSpec(name)
	if errors.Is(err, store.ErrNotFound) {
		return Desired{}, nil
	}
	if err != nil {
		return Desired{}, fmt.Errorf("read spec: %w", err)
	}
	d := Desired{Spec: r.Spec, Hash: r.Hash, FromFile: r.Source.Kind == store.SourceFile, Arrival: r.Arrival}
	// The policy may have changed since the spec was stored (a reload, an
	// agent restart with another policy file): check it as it is now.
	d.Refused = c.opts.Policy.Get().Check(r.Spec)
	for _, e := range d.Refused {
		if e.File == "" {
			e.File = r.Source.Path // the spec file, for a spec from one
		}
	}
	d = c.withSecrets(d)
	d.Want, d.RestartedAt = restartWant(d.Label(), r.RestartedAt), r.RestartedAt // `reconciler restart` (restart.go)
	d.Deps = c.dependencyFacts(name, r.Spec)
	return d, nil
}

// observe lists the spec's containers (from the cache when it is fresh).
func (c *Controller) observe(ctx context.Context, name string) (Observed, error) {
	cs, ok := c.cache.get(name)
	if !ok {
		v := c.cache.begin(name)
		sel := c.selector()
		sel[docker.LabelSpec] = name
		var err error
		cs, err = c.rt.List(ctx, sel)
		if err != nil {
			return Observed{}, fmt.Errorf("list containers of %q: %w", name, err)
		}
		c.cache.put(name, v, cs)
	}
	var o Observed
	want := ContainerName(name)
	for i := range cs {
		ct := cs[i]
		if ct.Name == want && o.Container == nil {
			o.Container = &ct
			continue
		}
		if ct.Name == NextName(name) && o.Next == nil {
			o.Next = &ct // a start-first replacement (rollout.go)
			continue
		}
		o.Strays = append(o.Strays, ct)
	}
	if ct := o.Container; ct != nil && ct.Running() && !ct.Inspected && c.notes.diedSinceStart(ct.ID) {
		in, err := c.rt.Inspect(ctx, ct.ID)
		switch {
		case errors.Is(err, docker.ErrNotFound):
			o.Container = nil
		case err != nil:
			return Observed{}, fmt.Errorf("inspect: %w", err)
		default:
			o.Container = &in
		}
	}
	if ct := o.Container; ct != nil && ct.State == "created" {
		o.StartHold = c.starts.wait(ct.ID, c.opts.Now(), c.startHold())
	}
	c.annotate(&o)
	if err := c.observeNext(ctx, &o); err != nil {
		return Observed{}, err
	}
	return o, nil
}

// inspectIfNeeded inspects a running container whose spec needs what a
// listing does not show: its start time (activeDeadline) or its health.
// Other specs cost no inspect per resync.
func (c *Controller) inspectIfNeeded(ctx context.Context, d Desired, o *Observed) error {
	ct := o.Container
	if d.Spec == nil || ct == nil || !ct.Running() || ct.Inspected {
		return nil
	}
	if d.Spec.Spec.ActiveDeadline.Duration == 0 && d.Spec.Spec.Healthcheck == nil {
		return nil
	}
	in, err := c.rt.Inspect(ctx, ct.ID)
	switch {
	case errors.Is(err, docker.ErrNotFound):
		o.Container = nil
		return nil
	case err != nil:
		return fmt.Errorf("inspect: %w", err)
	}
	o.Container = &in
	c.annotate(o)
	return nil
}

// renote brings what the event stream said about the observed container
// up to date: a step decided after a slow Docker call (a start takes
// seconds on a loaded daemon) must see the events that arrived during it,
// the oom notice of the run just restarted above all.
func (c *Controller) renote(o *Observed) {
	if o.Container == nil {
		return
	}
	o.DieSeen, o.KillSeen, o.OOMSeen = c.notes.about(o.Container.ID, o.Container.StartedAt)
	o.OOMAt = c.notes.oomAt(o.Container.ID)
	o.DaemonLag = time.Duration(c.startLag.Load())
}

// annotate adds what the agent itself knows about the observed container.
func (c *Controller) annotate(o *Observed) {
	if o.Container == nil {
		return
	}
	c.renote(o)
	c.mu.Lock()
	o.Stopping = c.stopping[o.Container.ID]
	c.mu.Unlock()
	if o.Container.Running() {
		c.watchExit(o.Container.Labels[docker.LabelSpec], o.Container.ID)
	}
}
