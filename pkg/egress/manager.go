// Package egress owns what the agent runs around a container with an
// egress allow-list (spec.egress.allow): a per-spec Docker network made
// with Internal: true, so that nothing on it has a route out, and a proxy
// container (cmd/egress-proxy, image reconciler/egress-proxy:latest) on
// both that network and the default bridge, the only way out. The
// container gets HTTP(S)_PROXY pointing at the proxy's alias on the
// internal network.
//
// Both carry reconciler.managed=true and the agent's instance label, but
// no reconciler.spec label: the controller's listings and event handling
// never see them as a spec's container, so the proxy's exits are not the
// job's. They are named after the spec with a '.', which no spec's own
// container name can hold:
//
//	network  reconciler-<spec>.egress        (reconciler.egress-network=<spec>)
//	proxy    reconciler-<spec>.egress-proxy  (reconciler.egress-proxy=<spec>)
//
// The controller calls Ensure right before it creates the container and
// Release when the spec is gone. Run repairs and collects in the
// background: a proxy that was removed or stopped is made again, one whose
// spec no longer wants it is removed, and every running proxy's output is
// followed for its denial lines, which are logged and counted in
// reconciler_egress_denied_total.
package egress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Labels on the network and the proxy.
const (
	LabelNetwork   = "reconciler.egress-network"
	LabelProxy     = "reconciler.egress-proxy"
	LabelAllowHash = "reconciler.egress-allow-hash"
)

// ProxyAlias is the proxy's name on the internal network; ProxyPort its
// port.
const (
	ProxyAlias = "egress-proxy"
	ProxyPort  = 3128
)

// NoProxy are the destinations a container reaches without the proxy: its
// own loopback.
const NoProxy = "localhost,127.0.0.1,::1"

// NetworkName and ProxyName name a spec's network and proxy.
func NetworkName(spec string) string { return ownership.ContainerName(spec) + ".egress" }
func ProxyName(spec string) string   { return ownership.ContainerName(spec) + ".egress-proxy" }

// Docker is the daemon's API (the Docker client).
type Docker = client.APIClient

// Options configure a Manager.
type Options struct {
	Instance string
	Log      *slog.Logger
	// Registerer gets reconciler_egress_denied_total; nil registers none.
	Registerer prometheus.Registerer
	// Want returns the stored spec when it has a non-empty allow-list;
	// the background repair asks it before it touches a spec's proxy or
	// network.
	Want func(name string) (*spec.Spec, bool)
	// Period is how often Run repairs and collects; default 30s.
	Period time.Duration
	// Image is the proxy's image; default images.EgressProxyImage.
	Image string
	// BuildImage, when set, is called by Run when the image is missing.
	BuildImage func(ctx context.Context) error
	// Timeout bounds one Ensure, Release or repair (every daemon call in
	// it); default 1m. A hung daemon fails the create instead of holding
	// a worker.
	Timeout time.Duration
}

// Manager keeps the egress networks and proxies of one agent instance.
type Manager struct {
	d      Docker
	opts   Options
	log    *slog.Logger
	denied prometheus.Counter

	mu      sync.Mutex
	locks   map[string]*sync.Mutex
	follow  map[string]bool // proxy container ids being followed
	created map[string]bool // proxy container ids this process made: follow from their start
	kick    chan struct{}
	// active is set while this agent has egress networks or proxies.
	active atomic.Bool
}

// New returns a manager; Run starts its background work.
func New(d Docker, opts Options) *Manager {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Period <= 0 {
		opts.Period = 30 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	if opts.Image == "" {
		opts.Image = images.EgressProxyImage
	}
	if opts.Want == nil {
		opts.Want = func(string) (*spec.Spec, bool) { return nil, false }
	}
	m := &Manager{d: d, opts: opts, log: opts.Log.With("component", "egress"),
		denied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reconciler_egress_denied_total",
			Help: "Connections the egress proxies refused because their destination is not on the spec's allow-list.",
		}),
		locks: map[string]*sync.Mutex{}, follow: map[string]bool{}, created: map[string]bool{},
		kick: make(chan struct{}, 1)}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.denied)
	}
	return m
}

func (m *Manager) lock(spec string) func() {
	m.mu.Lock()
	l, ok := m.locks[spec]
	if !ok {
		l = &sync.Mutex{}
		m.locks[spec] = l
	}
	m.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (m *Manager) wake() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// labels are the spec's own labels (as its container has them) under the
// agent's.
func (m *Manager) labels(key string, s *spec.Spec) map[string]string {
	l := maps.Clone(s.Metadata.Labels)
	if l == nil {
		l = map[string]string{}
	}
	maps.Copy(l, ownership.Selector(m.opts.Instance))
	l[key] = s.Metadata.Name
	return l
}

func (m *Manager) owned(labels map[string]string, key, spec string) bool {
	return labels[ownership.LabelManaged] == "true" && labels[ownership.LabelInstance] == m.opts.Instance && labels[key] == spec
}

// AllowHash identifies an allow-list; a proxy with another one is replaced.
func AllowHash(allow []string) string {
	sum := sha256.Sum256([]byte(strings.Join(allow, "\n")))
	return hex.EncodeToString(sum[:8])
}

// ProxyEnv is what a container with an allow-list gets in its environment.
func ProxyEnv() map[string]string {
	url := fmt.Sprintf("http://%s:%d", ProxyAlias, ProxyPort)
	return map[string]string{
		"HTTP_PROXY": url, "HTTPS_PROXY": url, "NO_PROXY": NoProxy,
		"http_proxy": url, "https_proxy": url, "no_proxy": NoProxy,
	}
}

// Ensure makes the internal network of s (a spec with a non-empty
// egress.allow) and a running proxy that allows its list, and returns the
// network to put the container on and the variables to set in it.
func (m *Manager) Ensure(ctx context.Context, s *spec.Spec) (string, map[string]string, error) {
	if s.Spec.Egress == nil || s.Spec.Egress.NoNetwork() {
		return "", nil, fmt.Errorf("spec %s has no egress allow-list", s.Metadata.Name)
	}
	defer m.lock(s.Metadata.Name)()
	m.active.Store(true)
	defer m.wake() // the repair pass sees what this made, and follows it
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	if err := m.ensure(ctx, s); err != nil {
		return "", nil, err
	}
	return NetworkName(s.Metadata.Name), ProxyEnv(), nil
}

func (m *Manager) ensure(ctx context.Context, s *spec.Spec) error {
	spec := s.Metadata.Name
	netName := NetworkName(spec)
	nw, err := m.d.NetworkInspect(ctx, netName, network.InspectOptions{})
	switch {
	case errdefs.IsNotFound(err):
		_, err := m.d.NetworkCreate(ctx, netName, network.CreateOptions{
			Driver: "bridge", Internal: true, Labels: m.labels(LabelNetwork, s),
			// Internal drops what the host would forward, but the host
			// itself is still reached through the bridge's gateway
			// address (on any of its addresses, docker0's included):
			// without an address on the bridge, the host is not there.
			Options: map[string]string{"com.docker.network.bridge.inhibit_ipv4": "true"},
		})
		if err != nil && !errdefs.IsConflict(err) {
			return fmt.Errorf("create egress network %s: %w", netName, err)
		}
		m.log.Info("egress network created", "spec", spec, "network", netName)
	case err != nil:
		return fmt.Errorf("inspect egress network %s: %w", netName, err)
	case !m.owned(nw.Labels, LabelNetwork, spec):
		return fmt.Errorf("a network not managed by this agent holds the name %s; remove or rename it", netName)
	case !nw.Internal || nw.Options["com.docker.network.bridge.inhibit_ipv4"] != "true":
		return fmt.Errorf("network %s is not internal without a host address; remove it and the agent makes it again", netName)
	}
	return m.ensureProxy(ctx, s)
}

func (m *Manager) ensureProxy(ctx context.Context, s *spec.Spec) error {
	spec := s.Metadata.Name
	name, hash := ProxyName(spec), AllowHash(s.Spec.Egress.Allow)
	ct, err := m.d.ContainerInspect(ctx, name)
	switch {
	case errdefs.IsNotFound(err):
		return m.createProxy(ctx, s)
	case err != nil:
		return fmt.Errorf("inspect egress proxy %s: %w", name, err)
	case ct.Config == nil || !m.owned(ct.Config.Labels, LabelProxy, spec):
		return fmt.Errorf("a container not managed by this agent holds the name %s; remove or rename it", name)
	case ct.Config.Labels[LabelAllowHash] != hash || ct.State == nil || ct.State.Dead || !onNetwork(ct, NetworkName(spec)):
		m.log.Info("egress proxy replaced", "spec", spec, "proxy", name)
		if err := m.d.ContainerRemove(ctx, ct.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove egress proxy %s: %w", name, err)
		}
		return m.createProxy(ctx, s)
	case !ct.State.Running && !ct.State.Restarting:
		if err := m.d.ContainerStart(ctx, ct.ID, container.StartOptions{}); err != nil {
			return fmt.Errorf("start egress proxy %s: %w", name, err)
		}
		m.log.Info("egress proxy started again", "spec", spec, "proxy", name)
		m.wake()
	}
	return nil
}

// onNetwork reports whether ct is attached to the network (a network
// removed and made again is another one, which an old proxy is not on).
func onNetwork(ct container.InspectResponse, name string) bool {
	return ct.NetworkSettings != nil && ct.NetworkSettings.Networks[name] != nil
}

func (m *Manager) createProxy(ctx context.Context, s *spec.Spec) error {
	spec, allow := s.Metadata.Name, s.Spec.Egress.Allow
	name := ProxyName(spec)
	labels := m.labels(LabelProxy, s)
	labels[LabelAllowHash] = AllowHash(allow)
	memory, pids := int64(64<<20), int64(256)
	cfg := &container.Config{
		Image:  m.opts.Image,
		Cmd:    []string{"--listen", fmt.Sprintf(":%d", ProxyPort), "--allow", strings.Join(allow, ",")},
		Labels: labels,
	}
	host := &container.HostConfig{
		// The daemon brings a crashed proxy back at once; Run makes a
		// removed one again.
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyAlways},
		NetworkMode:    "bridge",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Resources:      container.Resources{Memory: memory, PidsLimit: &pids},
		LogConfig: container.LogConfig{Type: "json-file", Config: map[string]string{
			"max-size": "10m", "max-file": "3",
		}},
	}
	created, err := m.d.ContainerCreate(ctx, cfg, host, nil, nil, name)
	if errdefs.IsNotFound(err) {
		return fmt.Errorf("egress proxy image %s is missing (make images builds it): %w", m.opts.Image, err)
	}
	if err != nil {
		return fmt.Errorf("create egress proxy %s: %w", name, err)
	}
	cleanup := func(cause error) error {
		_ = m.d.ContainerRemove(context.WithoutCancel(ctx), created.ID, container.RemoveOptions{Force: true})
		return cause
	}
	// API 1.41 takes one network at create; the second is connected
	// before the start.
	err = m.d.NetworkConnect(ctx, NetworkName(spec), created.ID, &network.EndpointSettings{Aliases: []string{ProxyAlias}})
	if err != nil {
		return cleanup(fmt.Errorf("connect egress proxy %s to %s: %w", name, NetworkName(spec), err))
	}
	m.mu.Lock()
	m.created[created.ID] = true
	m.mu.Unlock()
	if err := m.d.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return cleanup(fmt.Errorf("start egress proxy %s: %w", name, err))
	}
	m.log.Info("egress proxy started", "spec", spec, "proxy", name, "allow", len(allow))
	m.wake()
	return nil
}

// Release removes spec's proxy and network. A network that a container is
// still attached to stays, with an error; Run retries.
func (m *Manager) Release(ctx context.Context, spec string) error {
	defer m.lock(spec)()
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	return m.release(ctx, spec)
}

func (m *Manager) release(ctx context.Context, spec string) error {
	var errs []error
	cs, err := m.d.ContainerList(ctx, container.ListOptions{All: true, Filters: m.filter(LabelProxy, spec)})
	if err != nil {
		return fmt.Errorf("list egress proxies: %w", err)
	}
	for _, c := range cs {
		if !m.owned(c.Labels, LabelProxy, spec) {
			continue
		}
		if err := m.d.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove egress proxy %s: %w", short(c.ID), err))
			continue
		}
		m.log.Info("egress proxy removed", "spec", spec, "proxy", ProxyName(spec))
	}
	nws, err := m.d.NetworkList(ctx, network.ListOptions{Filters: m.filter(LabelNetwork, spec)})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list egress networks: %w", err))...)
	}
	for _, nw := range nws {
		if !m.owned(nw.Labels, LabelNetwork, spec) {
			continue
		}
		if err := m.d.NetworkRemove(ctx, nw.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove egress network %s: %w", nw.Name, err))
			continue
		}
		m.log.Info("egress network removed", "spec", spec, "network", nw.Name)
	}
	return errors.Join(errs...)
}

// filter selects this instance's objects with key (for spec, when given).
func (m *Manager) filter(key, spec string) filters.Args {
	f := filters.NewArgs(
		filters.Arg("label", ownership.LabelManaged+"=true"),
		filters.Arg("label", ownership.LabelInstance+"="+m.opts.Instance),
	)
	if spec == "" {
		f.Add("label", key)
	} else {
		f.Add("label", key+"="+spec)
	}
	return f
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
