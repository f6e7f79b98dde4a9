package spec

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/reconciler/reconciler/pkg/ownership"
)

// signals are the stop signals a spec may name.
var signals = map[string]bool{
	"SIGTERM": true, "SIGINT": true, "SIGQUIT": true, "SIGHUP": true,
	"SIGKILL": true, "SIGUSR1": true, "SIGUSR2": true,
}

// NormalizeSignal returns the SIG-prefixed upper-case name of a known stop
// signal ("term", "SIGTERM" and "TERM" all give "SIGTERM").
func NormalizeSignal(name string) (string, bool) {
	sig := strings.ToUpper(name)
	if !strings.HasPrefix(sig, "SIG") {
		sig = "SIG" + sig
	}
	return sig, signals[sig]
}

// capabilities are the Linux capabilities, without the CAP_ prefix.
var capabilities = map[string]bool{
	"AUDIT_CONTROL": true, "AUDIT_READ": true, "AUDIT_WRITE": true, "BLOCK_SUSPEND": true,
	"BPF": true, "CHECKPOINT_RESTORE": true, "CHOWN": true, "DAC_OVERRIDE": true,
	"DAC_READ_SEARCH": true, "FOWNER": true, "FSETID": true, "IPC_LOCK": true,
	"IPC_OWNER": true, "KILL": true, "LEASE": true, "LINUX_IMMUTABLE": true,
	"MAC_ADMIN": true, "MAC_OVERRIDE": true, "MKNOD": true, "NET_ADMIN": true,
	"NET_BIND_SERVICE": true, "NET_BROADCAST": true, "NET_RAW": true, "PERFMON": true,
	"SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true,
	"SYS_ADMIN": true, "SYS_BOOT": true, "SYS_CHROOT": true, "SYS_MODULE": true,
	"SYS_NICE": true, "SYS_PACCT": true, "SYS_PTRACE": true, "SYS_RAWIO": true,
	"SYS_RESOURCE": true, "SYS_TIME": true, "SYS_TTY_CONFIG": true, "SYSLOG": true,
	"WAKE_ALARM": true,
}

// CapabilityAll stands for every capability, as in Docker.
const CapabilityAll = "ALL"

// baselineCapabilities may be added under the Kubernetes Pod Security
// "baseline" profile without a policy allowing them.
var baselineCapabilities = map[string]bool{
	"AUDIT_WRITE": true, "CHOWN": true, "DAC_OVERRIDE": true, "FOWNER": true,
	"FSETID": true, "KILL": true, "MKNOD": true, "NET_BIND_SERVICE": true,
	"SETFCAP": true, "SETGID": true, "SETPCAP": true, "SETUID": true, "SYS_CHROOT": true,
}

// NormalizeCapability writes a capability as Kubernetes does: upper case,
// without the CAP_ prefix Docker also accepts.
func NormalizeCapability(name string) string {
	return strings.TrimPrefix(strings.ToUpper(name), "CAP_")
}

func knownCapability(name string) bool {
	n := NormalizeCapability(name)
	return n == CapabilityAll || capabilities[n]
}

var (
	// dnsLabel is RFC 1123's label; the length is checked apart.
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// dnsSubdomain is RFC 1123's subdomain, for label key prefixes.
	dnsSubdomain = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	// labelName is a Kubernetes label name or value (when not empty).
	labelName  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
	envName    = regexp.MustCompile(`^[A-Za-z_.-][A-Za-z0-9_.-]*$`)
	volumeName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]+$`)
	netName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
)

// reservedLabels are the ownership labels the agent sets on its containers;
// a spec may not set them.
var reservedLabels = map[string]bool{
	ownership.LabelManaged: true, ownership.LabelSpec: true,
	ownership.LabelSpecHash: true, ownership.LabelInstance: true,
}

// NameTaken is the error for a spec in file whose name another file,
// owner, already defines: the file that has a name keeps it. Both the
// agent's spec directory and `reconciler validate` report it this way.
func NameTaken(s *Spec, file, owner string) *FieldError {
	name := s.Metadata.Name
	return &FieldError{File: file, Line: s.Origin().Line, Path: "metadata.name",
		Msg: fmt.Sprintf("spec %q is already defined in %s, which keeps it; rename it in %s or remove it from %s",
			name, owner, file, owner)}
}
