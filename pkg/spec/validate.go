package spec

import (
	"cmp"
	"fmt"
	"net/netip"
	"path"
	"strings"
	"time"
)

// MinProbePeriod is the least healthcheck interval and timeout.
const MinProbePeriod = time.Second

// validator collects the problems of one spec.
type validator struct{ errs ErrorList }

func (v *validator) add(path, format string, args ...any) {
	v.errs = append(v.errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks one spec and returns every problem with its field path
// (and file and line when s was decoded). Fields that Default fills may be
// left empty. It does not apply the agent's Policy; see Policy.Check.
func (s *Spec) Validate() ErrorList {
	v := &validator{}
	switch s.APIVersion {
	case APIVersion:
	case "":
		v.add("apiVersion", "required (use %s)", APIVersion)
	default:
		v.add("apiVersion", "%q is not supported (use %s)", s.APIVersion, APIVersion)
	}
	switch s.Kind {
	case KindContainer:
	case "":
		v.add("kind", "required (use %s)", KindContainer)
	default:
		v.add("kind", "%q is not supported (use %s)", s.Kind, KindContainer)
	}
	v.metadata(&s.Metadata)
	v.container(&s.Spec)
	v.rollout(s)
	return s.locate(v.errs)
}

func (v *validator) metadata(m *Metadata) {
	switch {
	case m.Name == "":
		v.add("metadata.name", "required")
	case len(m.Name) > 63 || !dnsLabel.MatchString(m.Name):
		v.add("metadata.name", "%q is not a DNS label (at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit)", m.Name)
	}
	for k, val := range m.Labels {
		p := keyPath("metadata.labels", k)
		if msg := labelKeyProblem(k); msg != "" {
			v.add(p, "%s", msg)
		}
		if len(val) > 63 || val != "" && !labelName.MatchString(val) {
			v.add(p, "value %q is not a label value (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit)", val)
		}
	}
}

// labelKeyProblem checks a Kubernetes-style label key: [prefix/]name.
func labelKeyProblem(k string) string {
	if reservedLabels[k] {
		return fmt.Sprintf("label %q is reserved for the agent", k)
	}
	prefix, name, hasPrefix := strings.Cut(k, "/")
	if !hasPrefix {
		prefix, name = "", k
	}
	if hasPrefix && (len(prefix) > 253 || !dnsSubdomain.MatchString(prefix)) {
		return fmt.Sprintf("label key %q: the prefix must be a DNS subdomain", k)
	}
	if len(name) > 63 || !labelName.MatchString(name) {
		return fmt.Sprintf("label key %q is not valid (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, after an optional DNS prefix and '/')", k)
	}
	return ""
}

func (v *validator) container(c *ContainerSpec) {
	if c.Image == "" {
		v.add("spec.image", "required")
	} else if strings.ContainsFunc(c.Image, isSpaceOrControl) {
		v.add("spec.image", "%q is not an image reference", c.Image)
	}
	if c.ImagePullPolicy != "" {
		v.oneOf("spec.imagePullPolicy", string(c.ImagePullPolicy), string(PullAlways), string(PullIfNotPresent), string(PullNever))
	}
	if c.RestartPolicy != "" {
		v.oneOf("spec.restartPolicy", string(c.RestartPolicy), string(RestartAlways), string(RestartOnFailure), string(RestartNever))
	}
	if c.WorkingDir != "" && !path.IsAbs(c.WorkingDir) {
		v.add("spec.workingDir", "%q is not an absolute path", c.WorkingDir)
	}
	v.env(c.Env)
	targets := v.mounts(c.Mounts)
	v.secrets(c.Secrets, targets)
	v.workspace(c, targets)
	v.priority(c.Priority)
	v.ports(c)
	v.resources(&c.Resources)
	v.backoff(&c.Backoff)
	if c.MaxRestarts != nil && *c.MaxRestarts < 0 {
		v.add("spec.maxRestarts", "must not be negative")
	}
	if c.StopSignal != "" {
		if _, ok := NormalizeSignal(c.StopSignal); !ok {
			v.add("spec.stopSignal", "%q is not a stop signal (use SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGKILL, SIGUSR1 or SIGUSR2)", c.StopSignal)
		}
	}
	v.duration("spec.terminationGracePeriod", c.TerminationGracePeriod)
	v.duration("spec.activeDeadline", c.ActiveDeadline)
	v.duration("spec.ttlAfterFinished", c.TTLAfterFinished)
	switch c.Network {
	case "", "bridge", "host", "none":
	default:
		if !netName.MatchString(c.Network) {
			v.add("spec.network", "%q is not a network (use bridge, none, host or a network name)", c.Network)
		}
	}
	v.egress(c)
	v.capabilities("spec.capAdd", c.CapAdd)
	v.capabilities("spec.capDrop", c.CapDrop)
	for i, dev := range c.Devices {
		if msg := deviceProblem(dev); msg != "" {
			v.add(fmt.Sprintf("spec.devices[%d]", i), "%q: %s", dev, msg)
		}
	}
	for i, opt := range c.SecurityOpt {
		key, _ := SplitSecurityOpt(opt)
		switch key {
		case "no-new-privileges", "seccomp", "apparmor", "label", "systempaths":
		default:
			v.add(fmt.Sprintf("spec.securityOpt[%d]", i), "%q is not a security option (use no-new-privileges, seccomp=..., apparmor=..., label=... or systempaths=unconfined)", opt)
		}
	}
	if c.Healthcheck != nil {
		v.healthcheck(c.Healthcheck)
	}
	v.autoUpdate(c)
	v.logging(c.Logging)
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }

func (v *validator) oneOf(path, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	if val == "" {
		v.add(path, "required (one of %s)", strings.Join(allowed, ", "))
		return
	}
	v.add(path, "%q is not one of %s", val, strings.Join(allowed, ", "))
}

func (v *validator) duration(path string, d Duration) {
	if d.Duration < 0 {
		v.add(path, "%s is negative", d)
	}
}

func (v *validator) env(env []EnvVar) {
	seen := map[string]bool{}
	for i, e := range env {
		p := fmt.Sprintf("spec.env[%d]", i)
		switch {
		case e.Name == "":
			v.add(p+".name", "required")
		case !envName.MatchString(e.Name):
			v.add(p+".name", "%q is not a variable name (letters, digits, '_', '-' and '.', not starting with a digit)", e.Name)
		case seen[e.Name]:
			v.add(p+".name", "%q is set twice", e.Name)
		}
		seen[e.Name] = true
		if e.ValueFrom == nil {
			continue
		}
		switch {
		case e.Value != "":
			v.add(p, "give either value or valueFrom, not both")
		case e.ValueFrom.File == "":
			v.add(p+".valueFrom.file", "required")
		case !path.IsAbs(e.ValueFrom.File):
			v.add(p+".valueFrom.file", "%q is not an absolute path", e.ValueFrom.File)
		}
	}
}

// secrets checks secrets[]: each file an absolute path, each target an
// absolute path used by no other secret or mount.
func (v *validator) secrets(secrets []SecretFile, targets map[string]bool) {
	for i, sec := range secrets {
		p := fmt.Sprintf("spec.secrets[%d]", i)
		switch {
		case sec.File == "":
			v.add(p+".file", "required")
		case !path.IsAbs(sec.File) || path.Clean(sec.File) == "/":
			v.add(p+".file", "%q is not an absolute path to a file", sec.File)
		}
		if sec.File == "" && sec.Target == "" {
			continue
		}
		field := p + ".target"
		if sec.Target == "" {
			field = p + ".file" // the target comes from the file's name
		}
		v.target(field, sec.TargetPath(), targets)
	}
}

// target checks a mount point: an absolute path below /, not used yet.
func (v *validator) target(field, t string, targets map[string]bool) {
	switch {
	case t == "":
		v.add(field, "required")
	case !path.IsAbs(t) || path.Clean(t) == "/":
		v.add(field, "%q is not an absolute path below /", t)
	case targets[path.Clean(t)]:
		v.add(field, "%q is mounted twice", t)
	}
	targets[path.Clean(t)] = true
}

// mounts checks mounts[] and returns the targets they use.
func (v *validator) mounts(mounts []Mount) map[string]bool {
	targets := map[string]bool{}
	for i, m := range mounts {
		p := fmt.Sprintf("spec.mounts[%d]", i)
		v.target(p+".target", m.Target, targets)
		switch m.Type {
		case "bind":
			if !path.IsAbs(m.Source) {
				v.add(p+".source", "a bind mount needs an absolute host path, got %q", m.Source)
			}
		case "volume":
			// No source: an anonymous volume, the container's own.
			if m.Source != "" && !volumeName.MatchString(m.Source) {
				v.add(p+".source", "%q is not a volume name (letters, digits, '_', '.' and '-', at least 2; none for an anonymous volume)", m.Source)
			}
		case "tmpfs":
			if m.Source != "" {
				v.add(p+".source", "a tmpfs mount has no source")
			}
		default:
			v.oneOf(p+".type", m.Type, "bind", "volume", "tmpfs")
		}
	}
	return targets
}

func (v *validator) ports(c *ContainerSpec) {
	if len(c.Ports) > 0 && (c.Network == "host" || c.Network == "none") {
		v.add("spec.ports", "ports cannot be published with network %q", c.Network)
	}
	type binding struct {
		ip    string
		port  int
		proto string
	}
	bound := map[binding]bool{}
	for i, port := range c.Ports {
		p := fmt.Sprintf("spec.ports[%d]", i)
		if port.ContainerPort < 1 || port.ContainerPort > 65535 {
			v.add(p+".containerPort", "%d is not a port (1-65535)", port.ContainerPort)
		}
		if port.HostPort < 0 || port.HostPort > 65535 {
			v.add(p+".hostPort", "%d is not a port (1-65535, or 0 for any)", port.HostPort)
		}
		if port.HostIP != "" {
			if _, err := netip.ParseAddr(port.HostIP); err != nil {
				v.add(p+".hostIP", "%q is not an IP address", port.HostIP)
			}
		}
		proto := strings.ToLower(port.Protocol)
		if port.Protocol != "" {
			v.oneOf(p+".protocol", proto, "tcp", "udp", "sctp")
		}
		if port.HostPort != 0 {
			b := binding{port.HostIP, port.HostPort, cmp.Or(proto, DefaultProtocol)}
			if bound[b] {
				v.add(p+".hostPort", "%d/%s is published twice", port.HostPort, b.proto)
			}
			bound[b] = true
		}
	}
}

func (v *validator) resources(r *Resources) {
	if r.Memory != "" {
		if n, err := ParseMemory(r.Memory); err != nil {
			v.add("spec.resources.memory", "%v", err)
		} else if n < MinMemory {
			v.add("spec.resources.memory", "%q is below Docker's minimum of 6Mi", r.Memory)
		}
	}
	if r.CPUs != "" {
		if n, err := ParseCPUs(r.CPUs); err != nil {
			v.add("spec.resources.cpus", "%v", err)
		} else if n < 1e7 {
			v.add("spec.resources.cpus", "%q is below Docker's minimum of 0.01 (10m)", r.CPUs)
		}
	}
	if r.Pids < 0 {
		v.add("spec.resources.pids", "must not be negative")
	}
}

func (v *validator) backoff(b *Backoff) {
	v.duration("spec.backoff.initial", b.Initial)
	v.duration("spec.backoff.max", b.Max)
	v.duration("spec.backoff.resetAfter", b.ResetAfter)
	if b.Max.Duration > 0 && b.Max.Duration < b.Initial.Duration {
		v.add("spec.backoff.max", "%s is less than initial %s (max defaults to %s)", b.Max, b.Initial, DefaultBackoffMax)
	}
}

func (v *validator) capabilities(path string, caps []string) {
	for i, c := range caps {
		if !knownCapability(c) {
			v.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a Linux capability", c)
		}
	}
}

// deviceProblem checks Docker's device syntax: host[:container][:rwm].
func deviceProblem(dev string) string {
	parts := strings.Split(dev, ":")
	if len(parts) > 3 {
		return "use host-path[:container-path][:permissions]"
	}
	if !path.IsAbs(parts[0]) {
		return "the host path must be absolute"
	}
	rest := parts[1:]
	if len(rest) > 0 && !path.IsAbs(rest[0]) {
		if len(rest) == 2 {
			return "the container path must be absolute"
		}
		rest = append([]string{""}, rest...)
	}
	if len(rest) == 2 && (rest[1] == "" || strings.Trim(rest[1], "rwm") != "") {
		return "permissions must be made of r, w and m"
	}
	return ""
}

// SplitSecurityOpt splits "key=value" (or the older "key:value") as the
// daemon does: at the first "=" when there is one, else at the first ":".
// Splitting otherwise would let "label:x=seccomp..." pass as a label here
// while the daemon reads another key.
func SplitSecurityOpt(opt string) (key, value string) {
	if k, v, ok := strings.Cut(opt, "="); ok {
		return k, v
	}
	if k, v, ok := strings.Cut(opt, ":"); ok {
		return k, v
	}
	return opt, ""
}

func (v *validator) healthcheck(h *Healthcheck) {
	const p = "spec.healthcheck"
	switch {
	case len(h.Test) == 0:
		v.add(p+".test", "required (e.g. [CMD, /bin/check] or [CMD-SHELL, \"curl -f localhost\"])")
	case h.Test[0] == "NONE" && len(h.Test) != 1,
		h.Test[0] == "CMD" && len(h.Test) < 2,
		h.Test[0] == "CMD-SHELL" && len(h.Test) != 2:
		v.add(p+".test", "use [CMD, program, args...], [CMD-SHELL, command] or [NONE]")
	case h.Test[0] != "NONE" && h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL":
		v.add(p+".test[0]", "%q must be CMD, CMD-SHELL or NONE", h.Test[0])
	}
	// A probe every millisecond is a fork bomb on the daemon; the agent's
	// floor is a second, as Kubernetes' (periodSeconds, timeoutSeconds).
	for _, d := range []struct {
		name string
		d    Duration
		min  time.Duration
	}{{"interval", h.Interval, MinProbePeriod}, {"timeout", h.Timeout, MinProbePeriod}, {"startPeriod", h.StartPeriod, time.Millisecond}} {
		if d.d.Duration != 0 && d.d.Duration < d.min {
			v.add(p+"."+d.name, "%s is below the minimum of %s", d.d, d.min)
		}
	}
	if h.Retries < 0 {
		v.add(p+".retries", "must not be negative")
	}
}

// ValidateSet checks what no single spec can: that no two specs share a
// name. Each spec is validated on its own by Validate.
func ValidateSet(specs []*Spec) ErrorList {
	var errs ErrorList
	first := map[string]*Spec{}
	for _, s := range specs {
		if s.Metadata.Name == "" {
			continue // Validate reports it
		}
		prev, ok := first[s.Metadata.Name]
		if !ok {
			first[s.Metadata.Name] = s
			continue
		}
		msg := fmt.Sprintf("%q is defined twice", s.Metadata.Name)
		if o := prev.Origin(); o.File != "" {
			msg = fmt.Sprintf("%q is already defined at %s:%d", s.Metadata.Name, o.File, o.Line)
		}
		errs = append(errs, s.locate(ErrorList{{Path: "metadata.name", Msg: msg}})...)
	}
	return append(errs, CheckDependencies(specs)...)
}
