package docker

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/reconciler/reconciler/pkg/spec"
)

// Bounds on a container's json-file log: containers run for months and
// must not fill the disk.
const (
	logMaxSize  = "10m"
	logMaxFiles = "3"
)

// BuildConfig translates a create request into Docker's create options.
// It is pure, so the whole translation is tested without a daemon.
func BuildConfig(req CreateRequest) (*container.Config, *container.HostConfig, *network.NetworkingConfig, error) {
	if req.Spec == nil {
		return nil, nil, nil, errors.New("create request without a spec")
	}
	s := req.Spec.Spec
	env, err := envOf(s.Env, req.Env)
	if err != nil {
		return nil, nil, nil, err
	}
	res, err := resourcesOf(s.Resources, s.Devices)
	if err != nil {
		return nil, nil, nil, err
	}
	mounts, err := mountsOf(s.Mounts, req.BindSources)
	if err != nil {
		return nil, nil, nil, err
	}
	for _, f := range req.Files {
		mounts = append(mounts, mount.Mount{Type: mount.TypeBind, Source: f.Source, Target: f.Target, ReadOnly: true})
	}
	if mounts, err = withWorkspace(mounts, s.Workspace, req.Workspace); err != nil {
		return nil, nil, nil, err
	}
	exposed, bindings, err := portsOf(s.Ports)
	if err != nil {
		return nil, nil, nil, err
	}
	grace := graceSeconds(s.TerminationGracePeriod.Duration)
	cfg := &container.Config{
		Image:      cmp.Or(req.Image, s.Image),
		Entrypoint: s.Command, // kubelet: command replaces the image's entrypoint (and drops its CMD)
		Cmd:        s.Args,
		Env:        env,
		WorkingDir: s.WorkingDir,
		User:       s.User,
		Labels:     labelsOf(req.Spec.Metadata.Labels, req.Labels),
		// The daemon (API 1.41) ignores a signal passed at stop time, so the
		// spec's signal must be part of the container.
		StopSignal:   s.StopSignal,
		StopTimeout:  &grace,
		Healthcheck:  healthOf(s.Healthcheck),
		ExposedPorts: exposed,
	}
	secOpt := s.SecurityOpt
	if req.SecurityOpt != nil {
		secOpt = req.SecurityOpt
	}
	useInit := s.Init
	netMode, netCfg := networkOf(s.Network)
	host := &container.HostConfig{
		// The agent applies restart policies itself; a daemon restart would
		// race it and hide exits.
		RestartPolicy:  container.RestartPolicy{Name: container.RestartPolicyDisabled},
		Resources:      res,
		Mounts:         mounts,
		NetworkMode:    netMode,
		PortBindings:   bindings,
		Privileged:     s.Privileged,
		CapAdd:         s.CapAdd,
		CapDrop:        s.CapDrop,
		SecurityOpt:    secOpt,
		ReadonlyRootfs: s.ReadOnlyRootFilesystem,
		LogConfig:      logConfigOf(s.Logging),
		Init:           &useInit,
	}
	if s.HostPID {
		host.PidMode = "host"
	}
	if s.HostIPC {
		host.IpcMode = "host"
	}
	if s.HostUTS {
		host.UTSMode = "host"
	}
	return cfg, host, netCfg, nil
}

// graceSeconds rounds a grace period up to Docker's whole seconds, so a
// process never gets less time than the spec promises it.
func graceSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// envOf merges the spec's literal values with the resolved ones (secrets),
// sorted so that equal specs give equal containers.
func envOf(vars []spec.EnvVar, resolved map[string]string) ([]string, error) {
	vals := make(map[string]string, len(vars)+len(resolved))
	for i, v := range vars {
		if v.ValueFrom == nil {
			vals[v.Name] = v.Value
			continue
		}
		if _, ok := resolved[v.Name]; !ok {
			return nil, fmt.Errorf("spec.env[%d] (%s): value from %s was not resolved", i, v.Name, v.ValueFrom.File)
		}
	}
	maps.Copy(vals, resolved)
	env := make([]string, 0, len(vals))
	for _, name := range slices.Sorted(maps.Keys(vals)) {
		env = append(env, name+"="+vals[name])
	}
	return env, nil
}

// labelsOf puts the ownership labels over the spec's own, so a spec can
// never pose as another spec or another agent's container.
func labelsOf(specLabels, owner map[string]string) map[string]string {
	labels := make(map[string]string, len(specLabels)+len(owner))
	maps.Copy(labels, specLabels)
	maps.Copy(labels, owner)
	return labels
}

func resourcesOf(r spec.Resources, devices []string) (container.Resources, error) {
	var res container.Resources
	if r.Memory != "" {
		mem, err := spec.ParseMemory(r.Memory)
		if err != nil {
			return res, fmt.Errorf("spec.resources.memory: %w", err)
		}
		res.Memory = mem
		// No swap: a process over its limit is OOM-killed, which the exit
		// record reports, instead of slowing down unseen.
		res.MemorySwap = mem
	}
	if r.CPUs != "" {
		cpus, err := spec.ParseCPUs(r.CPUs)
		if err != nil {
			return res, fmt.Errorf("spec.resources.cpus: %w", err)
		}
		res.NanoCPUs = cpus
	}
	if r.Pids > 0 {
		pids := r.Pids
		res.PidsLimit = &pids
	}
	for i, d := range devices {
		dm, err := deviceOf(d)
		if err != nil {
			return res, fmt.Errorf("spec.devices[%d]: %w", i, err)
		}
		res.Devices = append(res.Devices, dm)
	}
	return res, nil
}

// deviceOf parses host[:container][:permissions] as docker run --device does.
func deviceOf(s string) (container.DeviceMapping, error) {
	parts := strings.Split(s, ":")
	dm := container.DeviceMapping{PathOnHost: parts[0], CgroupPermissions: "rwm"}
	switch len(parts) {
	case 1:
	case 2:
		if isDevicePerms(parts[1]) {
			dm.CgroupPermissions = parts[1]
		} else {
			dm.PathInContainer = parts[1]
		}
	case 3:
		if !isDevicePerms(parts[2]) {
			return dm, fmt.Errorf("%q: permissions must be letters from rwm", s)
		}
		dm.PathInContainer, dm.CgroupPermissions = parts[1], parts[2]
	default:
		return dm, fmt.Errorf("%q is not host[:container][:permissions]", s)
	}
	if !strings.HasPrefix(dm.PathOnHost, "/") {
		return dm, fmt.Errorf("%q: the host path must be absolute", s)
	}
	if dm.PathInContainer == "" {
		dm.PathInContainer = dm.PathOnHost
	}
	return dm, nil
}

func isDevicePerms(s string) bool {
	return s != "" && strings.Trim(s, "rwm") == ""
}

func mountsOf(ms []spec.Mount, binds map[int]string) ([]mount.Mount, error) {
	var out []mount.Mount
	for i, m := range ms {
		var t mount.Type
		switch m.Type {
		case "bind":
			t = mount.TypeBind
			src, ok := binds[i]
			if !ok {
				return nil, fmt.Errorf("spec.mounts[%d].source: bind source %q was not resolved by the policy", i, m.Source)
			}
			m.Source = src
		case "volume":
			t = mount.TypeVolume
		case "tmpfs":
			t = mount.TypeTmpfs
		default:
			return nil, fmt.Errorf("spec.mounts[%d].type: %q is not bind, volume or tmpfs", i, m.Type)
		}
		out = append(out, mount.Mount{Type: t, Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly})
	}
	return out, nil
}

// portsOf exposes every port and publishes those with a host port; as in
// Kubernetes, a containerPort alone documents the port without opening it
// on the host.
func portsOf(ps []spec.Port) (nat.PortSet, nat.PortMap, error) {
	if len(ps) == 0 {
		return nil, nil, nil
	}
	exposed := nat.PortSet{}
	bindings := nat.PortMap{}
	for i, p := range ps {
		proto := strings.ToLower(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		port, err := nat.NewPort(proto, strconv.Itoa(p.ContainerPort))
		if err != nil {
			return nil, nil, fmt.Errorf("spec.ports[%d]: %w", i, err)
		}
		exposed[port] = struct{}{}
		if p.HostPort != 0 {
			bindings[port] = append(bindings[port], nat.PortBinding{HostIP: p.HostIP, HostPort: strconv.Itoa(p.HostPort)})
		}
	}
	return exposed, bindings, nil
}

// networkOf attaches a user-defined network by name; bridge, host and none
// are Docker's built-in modes.
func networkOf(name string) (container.NetworkMode, *network.NetworkingConfig) {
	switch name {
	case "", "bridge":
		return "bridge", &network.NetworkingConfig{}
	case "host", "none":
		return container.NetworkMode(name), &network.NetworkingConfig{}
	}
	return container.NetworkMode(name), &network.NetworkingConfig{
		EndpointsConfig: map[string]*network.EndpointSettings{name: {}},
	}
}

// healthOf accepts Docker's own test forms (CMD, CMD-SHELL, NONE) and
// treats a bare argv as CMD, the form that needs no shell in the image.
func healthOf(h *spec.Healthcheck) *container.HealthConfig {
	if h == nil {
		return nil
	}
	test := h.Test
	if len(test) > 0 {
		switch test[0] {
		case "CMD", "CMD-SHELL", "NONE":
		default:
			test = append([]string{"CMD"}, test...)
		}
	}
	return &container.HealthConfig{
		Test:        test,
		Interval:    h.Interval.Duration,
		Timeout:     h.Timeout.Duration,
		StartPeriod: h.StartPeriod.Duration,
		Retries:     h.Retries,
	}
}
