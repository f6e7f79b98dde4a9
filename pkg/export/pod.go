package export

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/reconciler/reconciler/pkg/spec"
)

func (m *mapper) pod() podSpec {
	c := &m.spec.Spec
	p := podSpec{
		RestartPolicy:                 string(c.RestartPolicy),
		TerminationGracePeriodSeconds: ptr(seconds(c.TerminationGracePeriod.Duration)),
		HostPID:                       c.HostPID,
		HostIPC:                       c.HostIPC,
	}
	p.ImagePullSecrets = m.pullSecrets()
	switch c.Network {
	case "", "bridge":
	case "host":
		p.HostNetwork = true
	case "none":
		m.warn("spec.network", "a pod always has a network; \"none\" cannot be expressed")
	default:
		m.warn("spec.network", "pods share the cluster network; Docker network %q is not mapped (use a NetworkPolicy to isolate)", c.Network)
	}
	m.egress()
	if c.HostUTS {
		m.warn("spec.hostUTS", "Kubernetes has no separate host UTS namespace (hostNetwork implies it)")
	}
	if c.StopSignal != "" && c.StopSignal != spec.DefaultStopSignal {
		m.warn("spec.stopSignal", "Kubernetes stops containers with SIGTERM (or the image's STOPSIGNAL), not %s; handle SIGTERM or add a preStop hook", c.StopSignal)
	}
	for i, d := range c.Devices {
		m.warn(fmt.Sprintf("spec.devices[%d]", i), "host device %q is not mapped: Kubernetes gives devices through a device plugin", d)
	}
	m.workspace()
	ctr := container{
		Name:            m.spec.Metadata.Name,
		Image:           c.Image,
		ImagePullPolicy: string(c.ImagePullPolicy),
		Command:         c.Command,
		Args:            c.Args,
		WorkingDir:      c.WorkingDir,
		Env:             m.env(),
		Ports:           m.ports(),
		Resources:       m.resources(),
		SecurityContext: m.securityContext(),
	}
	ctr.VolumeMounts, p.Volumes = m.mounts()
	if pr := m.probe(); pr != nil {
		if c.RestartPolicy == spec.RestartNever {
			// A liveness probe would kill the job; the agent only reports it.
			ctr.ReadinessProbe = pr
			m.warn("spec.healthcheck", "mapped to a readinessProbe: the agent does not stop an unhealthy job that never restarts, a livenessProbe would")
		} else {
			ctr.LivenessProbe = pr
		}
	}
	p.Containers = []container{ctr}
	return p
}

// SecretName is the Secret that exported env values from files refer to.
func SecretName(specName string) string { return specName + "-secrets" }

// SecretKey is the key of an env variable's value in SecretName's Secret:
// the variable name in lower kebab case (ANTHROPIC_API_KEY ->
// anthropic-api-key).
func SecretKey(envName string) string {
	return strings.ReplaceAll(strings.ToLower(envName), "_", "-")
}

// secretKey returns a key of SecretName's Secret not used yet.
func (m *mapper) secretKey(base string) string {
	if m.secretKeys == nil {
		m.secretKeys = map[string]bool{}
	}
	key := base
	for n := 2; m.secretKeys[key]; n++ {
		key = fmt.Sprintf("%s-%d", base, n)
	}
	m.secretKeys[key] = true
	return key
}

func (m *mapper) env() []envVar {
	var out []envVar
	for i, e := range m.spec.Spec.Env {
		if e.ValueFrom == nil {
			out = append(out, envVar{Name: e.Name, Value: e.Value})
			continue
		}
		key := m.secretKey(SecretKey(e.Name))
		secret := SecretName(m.spec.Metadata.Name)
		out = append(out, envVar{Name: e.Name, ValueFrom: &envVarSource{SecretKeyRef: secretKeySelector{Name: secret, Key: key}}})
		m.warn(fmt.Sprintf("spec.env[%d].valueFrom.file", i),
			"create Secret %s with key %s from %s: kubectl create secret generic %s --from-file=%s=%s (the agent drops a trailing newline, the Secret keeps it)",
			secret, key, e.ValueFrom.File, secret, key, e.ValueFrom.File)
	}
	return out
}

// resources sets requests equal to limits: the agent reserves nothing, but
// equal values give the pod the Guaranteed class, the closest to a
// container that owns its limits.
func (m *mapper) resources() *resources {
	r := m.spec.Spec.Resources
	if r.Pids > 0 {
		m.warn("spec.resources.pids", "Kubernetes has no per-pod pids limit (%d); the kubelet's podPidsLimit applies to every pod of a node", r.Pids)
	}
	q := map[string]string{}
	if r.Memory != "" {
		q["memory"] = r.Memory
	}
	if r.CPUs != "" {
		q["cpu"] = r.CPUs
	}
	if len(q) == 0 {
		return nil
	}
	return &resources{Limits: q, Requests: q}
}

func (m *mapper) ports() []containerPort {
	var out []containerPort
	for _, p := range m.spec.Spec.Ports {
		cp := containerPort{ContainerPort: int32(p.ContainerPort), Protocol: strings.ToUpper(p.Protocol)}
		if cp.Protocol == "" {
			cp.Protocol = "TCP"
		}
		// As with the agent, a host IP only matters for a published port.
		if p.HostPort != 0 {
			cp.HostPort, cp.HostIP = int32(p.HostPort), p.HostIP
		}
		out = append(out, cp)
	}
	return out
}

func (m *mapper) mounts() ([]volumeMount, []volume) {
	var mounts []volumeMount
	var vols []volume
	used := map[string]bool{}
	for i, mt := range m.spec.Spec.Mounts {
		name := volumeName(mt.Target, i, used)
		v := volume{Name: name}
		switch mt.Type {
		case "bind":
			v.HostPath = &hostPathSource{Path: mt.Source}
		case "volume":
			if mt.Source == "" { // anonymous: the container's own scratch space
				v.EmptyDir = &emptyDirSource{}
				break
			}
			claim := dnsName(mt.Source)
			if claim == "" {
				claim = name
			}
			v.PersistentVolumeClaim = &pvcSource{ClaimName: claim, ReadOnly: mt.ReadOnly}
			m.warn(fmt.Sprintf("spec.mounts[%d].source", i),
				"Docker volume %q becomes PersistentVolumeClaim %q: create the claim (and move the data) before applying", mt.Source, claim)
		case "tmpfs":
			v.EmptyDir = &emptyDirSource{Medium: "Memory"}
		}
		vols = append(vols, v)
		mounts = append(mounts, volumeMount{Name: name, MountPath: mt.Target, ReadOnly: mt.ReadOnly})
	}
	// Each secrets[] file becomes one key of SecretName's Secret, mounted
	// read-only as that one file at its target.
	for i, sec := range m.spec.Spec.Secrets {
		target := sec.TargetPath()
		name := volumeName(target, len(m.spec.Spec.Mounts)+i, used)
		base := path.Base(target)
		key := m.secretKey(dnsName(path.Base(sec.File)))
		secret := SecretName(m.spec.Metadata.Name)
		vols = append(vols, volume{Name: name, Secret: &secretSource{SecretName: secret, Items: []keyToPath{{Key: key, Path: base}}}})
		mounts = append(mounts, volumeMount{Name: name, MountPath: target, SubPath: base, ReadOnly: true})
		m.warn(fmt.Sprintf("spec.secrets[%d].file", i),
			"create Secret %s with key %s from %s: kubectl create secret generic %s --from-file=%s=%s",
			secret, key, sec.File, secret, key, sec.File)
	}
	return mounts, vols
}

var notDNS = regexp.MustCompile(`[^a-z0-9]+`)

// dnsName turns text into a DNS label ("" when nothing is left).
func dnsName(s string) string {
	s = strings.Trim(notDNS.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// volumeName names a pod volume after its mount target (/home/node/.claude
// -> home-node-claude), unique within the pod.
func volumeName(target string, i int, used map[string]bool) string {
	name := dnsName(target)
	if name == "" || used[name] {
		name = fmt.Sprintf("mount-%d", i)
	}
	used[name] = true
	return name
}

// Docker's healthcheck defaults, which the probe must spell out because
// Kubernetes' differ (10s period, 1s timeout).
const (
	dockerHealthInterval = 30 * time.Second
	dockerHealthTimeout  = 30 * time.Second
	dockerHealthRetries  = 3
)

func (m *mapper) probe() *probe {
	h := m.spec.Spec.Healthcheck
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	var cmd []string
	switch h.Test[0] {
	case "CMD":
		cmd = h.Test[1:]
	case "CMD-SHELL":
		cmd = append([]string{"sh", "-c"}, h.Test[1:]...)
	default: // NONE: no check, as Kubernetes never runs an image's HEALTHCHECK
		return nil
	}
	orDefault := func(d, def time.Duration) time.Duration {
		if d == 0 {
			return def
		}
		return d
	}
	retries := h.Retries
	if retries == 0 {
		retries = dockerHealthRetries
	}
	return &probe{
		Exec:                execAction{Command: cmd},
		InitialDelaySeconds: int32(seconds(h.StartPeriod.Duration)),
		TimeoutSeconds:      int32(seconds(orDefault(h.Timeout.Duration, dockerHealthTimeout))),
		PeriodSeconds:       int32(seconds(orDefault(h.Interval.Duration, dockerHealthInterval))),
		FailureThreshold:    int32(retries),
	}
}

// securityContext maps the container's privileges. Docker confines every
// unprivileged container with its default seccomp profile while a pod runs
// unconfined unless told, so RuntimeDefault is written out.
func (m *mapper) securityContext() *securityContext {
	c := &m.spec.Spec
	sc := &securityContext{}
	if c.Privileged {
		sc.Privileged = ptr(true)
	} else {
		sc.SeccompProfile = &securityProfile{Type: "RuntimeDefault"}
	}
	if len(c.CapAdd) > 0 || len(c.CapDrop) > 0 {
		sc.Capabilities = &capabilities{Add: c.CapAdd, Drop: c.CapDrop}
	}
	if c.ReadOnlyRootFilesystem {
		sc.ReadOnlyRootFilesystem = ptr(true)
	}
	m.user(sc)
	for i, opt := range c.SecurityOpt {
		m.securityOpt(sc, fmt.Sprintf("spec.securityOpt[%d]", i), opt)
	}
	return sc
}

// user maps "uid[:gid]"; Kubernetes has no user names.
func (m *mapper) user(sc *securityContext) {
	u := m.spec.Spec.User
	if u == "" {
		return
	}
	uid, gid, hasGroup := strings.Cut(u, ":")
	if n, err := strconv.ParseInt(uid, 10, 64); err == nil && n >= 0 {
		sc.RunAsUser = ptr(n)
	} else {
		m.warn("spec.user", "user %q is not mapped: runAsUser needs a numeric uid", uid)
	}
	if !hasGroup {
		return
	}
	if n, err := strconv.ParseInt(gid, 10, 64); err == nil && n >= 0 {
		sc.RunAsGroup = ptr(n)
	} else {
		m.warn("spec.user", "group %q is not mapped: runAsGroup needs a numeric gid", gid)
	}
}

func (m *mapper) securityOpt(sc *securityContext, field, opt string) {
	key, value := opt, ""
	if i := strings.IndexAny(opt, "=:"); i >= 0 {
		key, value = opt[:i], opt[i+1:]
	}
	switch key {
	case "no-new-privileges":
		if value == "false" {
			return
		}
		if sc.Privileged != nil {
			m.warn(field, "not mapped: Kubernetes refuses allowPrivilegeEscalation false on a privileged container")
			return
		}
		sc.AllowPrivilegeEscalation = ptr(false)
	case "seccomp":
		if value == "unconfined" {
			sc.SeccompProfile = &securityProfile{Type: "Unconfined"}
			return
		}
		m.warn(field, "seccomp profile %q is not mapped: install it on the nodes and set seccompProfile type Localhost (RuntimeDefault is written)", value)
	case "apparmor":
		if value == "unconfined" {
			sc.AppArmorProfile = &securityProfile{Type: "Unconfined"}
			return
		}
		sc.AppArmorProfile = &securityProfile{Type: "Localhost", LocalhostProfile: value}
		m.warn(field, "AppArmor profile %q must be loaded on every node", value)
	case "label":
		m.seLinux(sc, field, value)
	default:
		m.warn(field, "%q has no Kubernetes equivalent", opt)
	}
}

func (m *mapper) seLinux(sc *securityContext, field, value string) {
	kind, v, _ := strings.Cut(value, ":")
	if sc.SELinuxOptions == nil {
		sc.SELinuxOptions = &seLinuxOptions{}
	}
	switch kind {
	case "user":
		sc.SELinuxOptions.User = v
	case "role":
		sc.SELinuxOptions.Role = v
	case "type":
		sc.SELinuxOptions.Type = v
	case "level":
		sc.SELinuxOptions.Level = v
	default:
		m.warn(field, "SELinux option %q has no Kubernetes equivalent", value)
	}
	if *sc.SELinuxOptions == (seLinuxOptions{}) {
		sc.SELinuxOptions = nil
	}
}
