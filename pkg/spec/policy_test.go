package spec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	}
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
			s.Spec.Mounts = []Mount{{Type: "volume", Source: "v", Target: "/v"}, {Type: "tmpfs", Target: "/t"}}
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
		{"apparmor profile", func(s *Spec) { s.Spec.SecurityOpt = []string{"apparmor=my-profile"} }, "", true},
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
	want := Policy{true, true, true, true, true, []string{"NET_ADMIN"}, true, []string{"/srv"}, true}
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
