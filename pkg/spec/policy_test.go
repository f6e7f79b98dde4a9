package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPolicyCheck(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	if err := os.MkdirAll(filepath.Join(allowed, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(allowed, "etc-link")); err != nil {
		t.Fatal(err)
	}
	bind := func(src string) func(*Spec) {
		return func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "bind", Source: src, Target: "/mnt"}} }
	}
	open := &Policy{
		AllowPrivileged: true, AllowHostNetwork: true, AllowHostPID: true, AllowHostIPC: true, AllowHostUTS: true,
		AllowedCapabilities: []string{"net_admin"}, AllowDevices: true, AllowedBindPaths: []string{allowed + "/"}, AllowUnconfined: true,
		AllowedSecretPaths: []string{"/etc/reconciler/secrets", "/srv/keys/"}, AllowedSeccompProfiles: []string{"builtin", `{"defaultAction":"SCMP_ACT_ALLOW"}`},
		AllowedAppArmorProfiles: []string{"my-profile"}, AllowedHostPorts: []string{"8080", "9000-9100"},
		AllowedVolumes: []string{"v", "data"}, AllowedNetworks: []string{"backend"}, MaxTerminationGracePeriod: Duration{time.Hour},
	}
	env := func(file string) func(*Spec) {
		return func(s *Spec) { s.Spec.Env = []EnvVar{{Name: "K", ValueFrom: &EnvSource{File: file}}} }
	}
	secret := func(file string) func(*Spec) {
		return func(s *Spec) { s.Spec.Secrets = []SecretFile{{File: file}} }
	}
	port := func(p int) func(*Spec) {
		return func(s *Spec) { s.Spec.Ports = []Port{{ContainerPort: 80, HostPort: p, HostIP: "0.0.0.0"}} }
	}
	secOpt := func(opt string) func(*Spec) { return func(s *Spec) { s.Spec.SecurityOpt = []string{opt} } }
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string // error substring under the default policy; empty for allowed
		open   bool   // allowed by the open policy
	}{
		{"plain", func(*Spec) {}, "", true},
		{"privileged", func(s *Spec) { s.Spec.Privileged = true },
			"spec.privileged: privileged containers are refused by policy (allow with allowPrivileged in the agent policy file)", true},
		{"host network", func(s *Spec) { s.Spec.Network = "host" }, "spec.network: the host network is refused by policy (allow with allowHostNetwork", true},
		{"host PID", func(s *Spec) { s.Spec.HostPID = true }, "spec.hostPID: the host PID namespace is refused", true},
		{"host IPC", func(s *Spec) { s.Spec.HostIPC = true }, "spec.hostIPC: the host IPC namespace is refused", true},
		{"host UTS", func(s *Spec) { s.Spec.HostUTS = true }, "spec.hostUTS: the host UTS namespace is refused", true},
		{"baseline capabilities", func(s *Spec) { s.Spec.CapAdd = []string{"CHOWN", "cap_net_bind_service", "SYS_CHROOT"} }, "", true},
		{"dropping anything", func(s *Spec) { s.Spec.CapDrop = []string{"ALL"} }, "", true},
		{"capability beyond baseline", func(s *Spec) { s.Spec.CapAdd = []string{"KILL", "CAP_NET_ADMIN"} },
			"spec.capAdd[1]: capability NET_ADMIN is beyond the baseline set and refused by policy (allow with allowedCapabilities", true},
		{"NET_RAW is not baseline", func(s *Spec) { s.Spec.CapAdd = []string{"NET_RAW"} }, "capability NET_RAW", false},
		{"all capabilities", func(s *Spec) { s.Spec.CapAdd = []string{"ALL"} }, "capability ALL", false},
		{"device", func(s *Spec) { s.Spec.Devices = []string{"/dev/fuse"} }, `spec.devices[0]: device "/dev/fuse" is refused by policy (allow with allowDevices`, true},
		{"volume and tmpfs", func(s *Spec) {
			s.Spec.Mounts = []Mount{{Type: "volume", Target: "/v"}, {Type: "tmpfs", Target: "/t"}}
		}, "", true},
		{"bind", bind(filepath.Join(allowed, "data")), `spec.mounts[0].source: bind mount of "` + allowed + `/data" (` + allowed + `/data is not below any of allowedBindPaths []) is refused by policy (allow with allowedBindPaths in the agent policy file)`, true},
		{"bind of the prefix itself", bind(allowed), "bind mount of", true},
		{"bind of a missing path below the prefix", bind(allowed + "/new/dir"), "bind mount of", false},
		{"bind escaping with ..", bind(allowed + "/../../etc"), "bind mount of", false},
		{"bind escaping with a symlink", bind(allowed + "/etc-link/passwd"), "bind mount of", false},
		{"bind of a sibling sharing the prefix", bind(allowed + "-not"), "bind mount of", false},
		{"seccomp unconfined", func(s *Spec) { s.Spec.SecurityOpt = []string{"no-new-privileges", "seccomp=unconfined"} },
			`spec.securityOpt[1]: "seccomp=unconfined" is refused by policy (allow with allowUnconfined`, true},
		{"apparmor unconfined", func(s *Spec) { s.Spec.SecurityOpt = []string{"apparmor:unconfined"} }, `"apparmor:unconfined" is refused`, true},
		{"SELinux disabled", func(s *Spec) { s.Spec.SecurityOpt = []string{"label=disable"} }, `"label=disable" is refused`, true},
		{"SELinux container type", func(s *Spec) { s.Spec.SecurityOpt = []string{"label=type:container_t"} }, "", true},
		{"SELinux other type", func(s *Spec) { s.Spec.SecurityOpt = []string{"label=type:spc_t"} }, "refused", true},
		{"apparmor profile", secOpt("apparmor=my-profile"), `spec.securityOpt[0]: AppArmor profile "my-profile" is refused by policy (allow with allowedAppArmorProfiles`, true},
		{"apparmor profile, old syntax", secOpt("apparmor:my-profile"), `AppArmor profile "my-profile" is refused`, true},
		{"apparmor other profile", secOpt("apparmor=docker-default-but-not"), "allowedAppArmorProfiles", false},
		{"seccomp inline profile", secOpt(`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`),
			`spec.securityOpt[0]: seccomp profile "{\"defaultAction\":\"SCMP_ACT_ALLOW\"}" is refused by policy (allow with allowedSeccompProfiles`, true},
		{"seccomp inline profile, old syntax", secOpt(`seccomp:{"defaultAction":"SCMP_ACT_ALLOW"}`), "allowedSeccompProfiles", true},
		{"seccomp builtin", secOpt("seccomp=builtin"), "allowedSeccompProfiles", true},
		{"seccomp empty", secOpt("seccomp="), "allowedSeccompProfiles", false},
		{"label smuggling another key", secOpt("label:x=seccomp"), "", true}, // Validate refuses the key "label:x"
		{"named volume", func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "volume", Source: "data", Target: "/v"}} },
			`spec.mounts[0].source: named volume "data" is refused by policy (allow with allowedVolumes`, true},
		{"other named volume", func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "volume", Source: "db", Target: "/v"}} }, "allowedVolumes", false},
		{"anonymous volume", func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "volume", Target: "/v"}} }, "", true},
		{"user-defined network", func(s *Spec) { s.Spec.Network = "backend" },
			`spec.network: network "backend" is refused by policy (allow with allowedNetworks`, true},
		{"other network", func(s *Spec) { s.Spec.Network = "frontend" }, "allowedNetworks", false},
		{"bridge and none", func(s *Spec) { s.Spec.Network = "none" }, "", true},
		{"host port", port(80), `spec.ports[0].hostPort: host port 80 is refused by policy (allow with allowedHostPorts`, false},
		{"host port listed", port(8080), "host port 8080", true},
		{"host port in a range", port(9100), "host port 9100", true},
		{"host port past a range", port(9101), "host port 9101", false},
		{"container port only", port(0), "", true},
		{"grace at the default maximum", func(s *Spec) { s.Spec.TerminationGracePeriod = Duration{10 * time.Minute} }, "", true},
		{"grace beyond the maximum", func(s *Spec) { s.Spec.TerminationGracePeriod = Duration{2000000 * time.Hour} },
			"spec.terminationGracePeriod: 2000000h0m0s, longer than 10m0s, refused by policy (allow with maxTerminationGracePeriod", false},
		{"grace beyond the default maximum", func(s *Spec) { s.Spec.TerminationGracePeriod = Duration{time.Hour} }, "maxTerminationGracePeriod", true},
		{"env from a secret file", env("/etc/reconciler/secrets/db"), "", true},
		{"env from /etc/shadow", env("/etc/shadow"),
			`spec.env[0].valueFrom.file: secret file "/etc/shadow" is not below /etc/reconciler/secrets and refused by policy (allow with allowedSecretPaths`, false},
		{"env escaping with ..", env("/etc/reconciler/secrets/../../shadow"), "allowedSecretPaths", false},
		{"env from the secrets directory itself", env("/etc/reconciler/secrets"), "allowedSecretPaths", false},
		{"env from a sibling sharing the prefix", env("/etc/reconciler/secrets-old/db"), "allowedSecretPaths", false},
		{"secret file", secret("/srv/keys/db"), `spec.secrets[0].file: secret file "/srv/keys/db" is not below`, true},
		{"secret from /etc/ssh", secret("/etc/ssh/ssh_host_ed25519_key"), "allowedSecretPaths", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.mutate(s)
			for _, p := range []*Policy{nil, DefaultPolicy()} {
				errs := p.Check(s)
				if tt.want == "" {
					if len(errs) > 0 {
						t.Errorf("refused by the default policy: %v", errs)
					}
				} else if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
					t.Errorf("default policy gave:\n%v\nwant one error containing %q", errs, tt.want)
				} else if r := errs[0].Rule; r == "" || !strings.Contains(errs[0].Msg, "allow with ") || !strings.Contains(errs[0].Msg, r) {
					t.Errorf("rule %q does not name the field the message says allows it: %s", r, errs[0].Msg)
				}
			}
			if errs := open.Check(s); (len(errs) == 0) != tt.open {
				t.Errorf("open policy gave %v, want allowed=%v", errs, tt.open)
			}
		})
	}
}

func TestPolicyErrorsNameTheirRule(t *testing.T) {
	s := validSpec()
	s.Spec.Privileged, s.Spec.HostPID = true, true
	s.Spec.CapAdd = []string{"NET_ADMIN", "SYS_ADMIN"}
	s.Spec.Mounts = []Mount{{Type: "bind", Source: "/etc", Target: "/x"}}
	errs := DefaultPolicy().Check(s)
	want := []string{"allowHostPID", "allowPrivileged", "allowedBindPaths", "allowedCapabilities"}
	if got := errs.Rules(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("rules %v, want %v (errors: %v)", got, want, errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Msg, "allow with "+e.Rule+" ") {
			t.Errorf("%q does not name its rule %s", e.Msg, e.Rule)
		}
	}
}

func TestResolveBind(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := func(target, at string) {
		if err := os.Symlink(target, at); err != nil {
			t.Fatal(err)
		}
	}
	mkdir(filepath.Join(allowed, "data", "sub"))
	link("/etc", filepath.Join(allowed, "etc-link"))
	link(filepath.Join(allowed, "data"), filepath.Join(allowed, "data-link"))
	link(filepath.Join(allowed, "gone"), filepath.Join(allowed, "dangling"))
	// The allowed path itself may be reached through a link.
	viaLink := filepath.Join(dir, "via-link")
	link(allowed, viaLink)
	p := &Policy{AllowedBindPaths: []string{viaLink}}

	tests := []struct{ name, source, want, err string }{
		{"below the allowed path as written", viaLink + "/data/sub", allowed + "/data/sub", ""},
		{"below the allowed path as resolved", allowed + "/data", allowed + "/data", ""},
		{"the allowed path itself", viaLink, allowed, ""},
		{"cleaned", viaLink + "/data/../data//sub/", allowed + "/data/sub", ""},
		{"a symlink below the allowed path", viaLink + "/etc-link/passwd", "", allowed + "/etc-link is a symlink below an allowed path"},
		{"the source is a symlink", viaLink + "/data-link", "", allowed + "/data-link is a symlink"},
		{"a dangling symlink", viaLink + "/dangling", "", allowed + "/dangling is a symlink"},
		{"a missing path", viaLink + "/new/dir", "", "cannot stat " + allowed + "/new: no such file or directory"},
		{"escaping with ..", viaLink + "/../../etc", "", "is not below any of allowedBindPaths"},
		{"a sibling sharing the prefix", viaLink + "-not", "", "is not below any of allowedBindPaths"},
		{"relative", "data", "", `"data" is not an absolute path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.ResolveBind(tt.source)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("got %q, %v; want an error containing %q", got, err, tt.err)
			}
		})
	}

	t.Run("a link planted after a check is refused at the next", func(t *testing.T) {
		src := viaLink + "/data/sub"
		if _, err := p.ResolveBind(src); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(allowed, "data"), filepath.Join(allowed, "data.old")); err != nil {
			t.Fatal(err)
		}
		link("/", filepath.Join(allowed, "data"))
		if got, err := p.ResolveBind(src); err == nil || !strings.Contains(err.Error(), allowed+"/data is a symlink") {
			t.Fatalf("got %q, %v; want the planted link refused", got, err)
		}
	})
}

func TestPolicyCheckLocatesErrors(t *testing.T) {
	specs, err := Decode("web.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: web}\nspec:\n  image: x\n  privileged: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	errs := DefaultPolicy().Check(specs[0])
	if len(errs) != 1 || !strings.HasPrefix(errs[0].Error(), "web.yaml:6: spec.privileged: ") {
		t.Errorf("got %v", errs)
	}
}

func TestLoadPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, err := LoadPolicy(write("full.yaml", "allowPrivileged: true\nallowHostNetwork: true\nallowHostPID: true\nallowHostIPC: true\nallowHostUTS: true\nallowedCapabilities: [NET_ADMIN]\nallowDevices: true\nallowedBindPaths: [/srv]\nallowUnconfined: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Policy{AllowPrivileged: true, AllowHostNetwork: true, AllowHostPID: true, AllowHostIPC: true, AllowHostUTS: true,
		AllowedCapabilities: []string{"NET_ADMIN"}, AllowDevices: true, AllowedBindPaths: []string{"/srv"}, AllowUnconfined: true}
	if p.AllowPrivileged != want.AllowPrivileged || p.AllowedBindPaths[0] != "/srv" || p.AllowedCapabilities[0] != "NET_ADMIN" || !p.AllowUnconfined || !p.AllowHostUTS {
		t.Errorf("got %+v, want %+v", p, want)
	}

	p, err = LoadPolicy(write("empty.yaml", "# deny everything\n"))
	if err != nil || p.AllowPrivileged || len(p.AllowedBindPaths) != 0 {
		t.Errorf("empty file: %+v, %v; want the default policy", p, err)
	}

	tests := []struct{ name, body, want string }{
		{"unknown field", "allowPrivileged: true\nallowPriviledged: true\n", `bad.yaml:2: allowPriviledged: unknown field "allowPriviledged" (did you mean "allowPrivileged"?)`},
		{"wrong type", "allowDevices: sure\n", `bad.yaml:1: allowDevices: "sure" is not a boolean`},
		{"relative bind path", "allowedBindPaths: [/srv, data]\n", `bad.yaml:1: allowedBindPaths[1]: "data" is not an absolute path`},
		{"unknown capability", "allowedCapabilities:\n  - FLY\n", `bad.yaml:2: allowedCapabilities[0]: "FLY" is not a Linux capability`},
		{"two documents", "allowDevices: true\n---\nallowDevices: false\n", "bad.yaml:3: a policy file holds one document"},
		{"syntax", "allowDevices: [\n", "bad.yaml:1: invalid YAML"},
		{"relative secret path", "allowedSecretPaths: [secrets]\n", `bad.yaml:1: allowedSecretPaths[0]: "secrets" is not an absolute path`},
		{"port range backwards", "allowedHostPorts:\n  - \"8080\"\n  - \"9100-9000\"\n", `bad.yaml:3: allowedHostPorts[1]: "9100-9000" is not a port or a range`},
		{"port out of range", "allowedHostPorts: [\"0\"]\n", `bad.yaml:1: allowedHostPorts[0]: "0" is not a port or a range`},
		{"port not a number", "allowedHostPorts: [http]\n", `allowedHostPorts[0]: "http" is not a port`},
		{"volume name", "allowedVolumes: [\"a/b\"]\n", `bad.yaml:1: allowedVolumes[0]: "a/b" is not a volume name`},
		{"network name", "allowedNetworks: [\"-x\"]\n", `bad.yaml:1: allowedNetworks[0]: "-x" is not a network name`},
		{"negative grace", "maxTerminationGracePeriod: -1s\n", `bad.yaml:1: maxTerminationGracePeriod: -1s is negative`},
		{"grace not a duration", "maxTerminationGracePeriod: forever\n", `bad.yaml:1: maxTerminationGracePeriod: "forever" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := LoadPolicy(write("bad.yaml", tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadPolicy = %+v, %v; want error %q", p, err, tt.want)
			}
		})
	}
	if _, err := LoadPolicy(filepath.Join(dir, "missing.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want a not-exist error", err)
	}
}

func TestParsePortRangeEdges(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"1", 1, 1, true}, {"65535", 65535, 65535, true}, {"5-5", 5, 5, true}, {"1-65535", 1, 65535, true},
		{"0", 0, 0, false}, {"65536", 0, 0, false}, {"6-5", 0, 0, false}, {"1-65536", 0, 0, false}, {"x", 0, 0, false},
	} {
		lo, hi, ok := parsePortRange(tc.in)
		if ok != tc.ok || ok && (lo != tc.lo || hi != tc.hi) {
			t.Errorf("parsePortRange(%q) = %d, %d, %v; want %d, %d, %v", tc.in, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}
