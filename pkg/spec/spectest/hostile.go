// Package spectest holds spec fixtures that the unit tests of pkg/spec and
// the end-to-end suite share, so both try the very same inputs.
package spectest

import "path/filepath"

// Door is one way a spec author may try to get more than the agent's
// policy grants: Spec holds YAML lines under a document's `spec:` (two
// spaces in), Field the field path the refusal names and Rule the policy
// field that would allow it ("" for a floor no policy lifts).
type Door struct {
	Name  string
	Spec  []string
	Field string
	Rule  string
}

// HostileDoors are the doors of a default policy whose allowedSecretPaths
// is [secretDir], in which a FIFO named "fifo" exists; volume names a
// volume that exists on the daemon. Each is the one thing wrong with its
// spec.
func HostileDoors(secretDir, volume string) []Door {
	fifo := filepath.Join(secretDir, "fifo")
	return []Door{
		{"env from /etc/shadow", []string{"env: [{name: X, valueFrom: {file: /etc/shadow}}]"}, "spec.env[0].valueFrom.file", "allowedSecretPaths"},
		{"env escaping the secret directory with ..", []string{"env: [{name: X, valueFrom: {file: " + secretDir + "/../../etc/shadow}}]"}, "spec.env[0].valueFrom.file", "allowedSecretPaths"},
		{"env from a FIFO", []string{"env: [{name: X, valueFrom: {file: " + fifo + "}}]"}, "spec.env[0].valueFrom.file", "allowedSecretPaths"},
		{"secret file from /etc/ssh", []string{"secrets: [{file: /etc/ssh/ssh_host_ed25519_key}]"}, "spec.secrets[0].file", "allowedSecretPaths"},
		{"secret file that is a FIFO", []string{"secrets: [{file: " + fifo + "}]"}, "spec.secrets[0].file", "allowedSecretPaths"},
		{"inline seccomp profile", []string{`securityOpt: ['seccomp={"defaultAction":"SCMP_ACT_ALLOW"}']`}, "spec.securityOpt[0]", "allowedSeccompProfiles"},
		{"inline seccomp profile, old syntax", []string{`securityOpt: ['seccomp:{"defaultAction":"SCMP_ACT_ALLOW"}']`}, "spec.securityOpt[0]", "allowedSeccompProfiles"},
		{"seccomp unconfined", []string{"securityOpt: [seccomp=unconfined]"}, "spec.securityOpt[0]", "allowUnconfined"},
		{"an AppArmor profile", []string{"securityOpt: [apparmor=my-lax-profile]"}, "spec.securityOpt[0]", "allowedAppArmorProfiles"},
		{"host port 80 on 0.0.0.0", []string{"ports: [{containerPort: 80, hostPort: 80, hostIP: 0.0.0.0}]"}, "spec.ports[0].hostPort", "allowedHostPorts"},
		{"an existing named volume", []string{"mounts: [{type: volume, source: " + volume + ", target: /data}]"}, "spec.mounts[0].source", "allowedVolumes"},
		{"a user-defined network", []string{"network: backend"}, "spec.network", "allowedNetworks"},
		{"the host network", []string{"network: host"}, "spec.network", "allowHostNetwork"},
		{"a grace period of 2000000h", []string{"terminationGracePeriod: 2000000h"}, "spec.terminationGracePeriod", "maxTerminationGracePeriod"},
		{"a healthcheck every 1ms", []string{"healthcheck: {test: [CMD, /box, version], interval: 1ms}"}, "spec.healthcheck.interval", ""},
		{"a healthcheck timeout of 1ms", []string{"healthcheck: {test: [CMD, /box, version], timeout: 1ms}"}, "spec.healthcheck.timeout", ""},
		{"privileged", []string{"privileged: true"}, "spec.privileged", "allowPrivileged"},
		{"the host PID namespace", []string{"hostPID: true"}, "spec.hostPID", "allowHostPID"},
		{"a capability beyond the baseline", []string{"capAdd: [SYS_ADMIN]"}, "spec.capAdd[0]", "allowedCapabilities"},
		{"a device", []string{"devices: [/dev/sda]"}, "spec.devices[0]", "allowDevices"},
		{"a bind mount of /", []string{"mounts: [{type: bind, source: /, target: /host}]"}, "spec.mounts[0].source", "allowedBindPaths"},
	}
}
