package spec

import (
	"strings"
	"testing"
	"time"
)

func validSpec() *Spec {
	s := &Spec{
		APIVersion: APIVersion,
		Kind:       KindContainer,
		Metadata:   Metadata{Name: "web", Labels: map[string]string{"team": "a"}},
		Spec:       ContainerSpec{Image: "reconciler/box:latest", Args: []string{"sleep"}},
	}
	s.Default()
	return s
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string // "path: message" substring; empty for valid
	}{
		{"valid", func(*Spec) {}, ""},
		{"no apiVersion", func(s *Spec) { s.APIVersion = "" }, "apiVersion: required"},
		{"kind", func(s *Spec) { s.Kind = "Pod" }, `kind: "Pod" is not supported`},
		{"no name", func(s *Spec) { s.Metadata.Name = "" }, "metadata.name: required"},
		{"upper-case name", func(s *Spec) { s.Metadata.Name = "Web" }, "metadata.name: \"Web\" is not a DNS label"},
		{"name ending in dash", func(s *Spec) { s.Metadata.Name = "web-" }, "is not a DNS label"},
		{"63-char name", func(s *Spec) { s.Metadata.Name = strings.Repeat("a", 63) }, ""},
		{"64-char name", func(s *Spec) { s.Metadata.Name = strings.Repeat("a", 64) }, "is not a DNS label"},
		{"prefixed label", func(s *Spec) { s.Metadata.Labels["example.com/tier"] = "front_end.1" }, ""},
		{"test label", func(s *Spec) { s.Metadata.Labels["reconciler.test"] = "e2e" }, ""},
		{"empty label value", func(s *Spec) { s.Metadata.Labels["x"] = "" }, ""},
		{"bad label key", func(s *Spec) { s.Metadata.Labels["a b"] = "x" }, `metadata.labels["a b"]: label key "a b" is not valid`},
		{"bad label prefix", func(s *Spec) { s.Metadata.Labels["Ex_ample/x"] = "x" }, "the prefix must be a DNS subdomain"},
		{"long label value", func(s *Spec) { s.Metadata.Labels["x"] = strings.Repeat("v", 64) }, "metadata.labels.x: value"},
		{"reserved label", func(s *Spec) { s.Metadata.Labels["reconciler.spec-hash"] = "x" }, "is reserved for the agent"},
		{"no image", func(s *Spec) { s.Spec.Image = "" }, "spec.image: required"},
		{"image with space", func(s *Spec) { s.Spec.Image = "box latest" }, "is not an image reference"},
		{"pull policy", func(s *Spec) { s.Spec.ImagePullPolicy = "always" }, `spec.imagePullPolicy: "always" is not one of Always, IfNotPresent, Never`},
		{"defaulted fields unset", func(s *Spec) { s.Spec = ContainerSpec{Image: "x", Ports: []Port{{ContainerPort: 80}}} }, ""},
		{"restart policy", func(s *Spec) { s.Spec.RestartPolicy = "Sometimes" }, "spec.restartPolicy: "},
		{"relative workingDir", func(s *Spec) { s.Spec.WorkingDir = "app" }, "spec.workingDir: "},
		{"env ok", func(s *Spec) {
			s.Spec.Env = []EnvVar{{Name: "A", Value: "1"}, {Name: "EMPTY"}, {Name: "S", ValueFrom: &EnvSource{File: "/run/s"}}}
		}, ""},
		{"env no name", func(s *Spec) { s.Spec.Env = []EnvVar{{Value: "1"}} }, "spec.env[0].name: required"},
		{"env name with =", func(s *Spec) { s.Spec.Env = []EnvVar{{Name: "A=B"}} }, "spec.env[0].name: \"A=B\" is not a variable name"},
		{"env twice", func(s *Spec) { s.Spec.Env = []EnvVar{{Name: "A"}, {Name: "A"}} }, `spec.env[1].name: "A" is set twice`},
		{"env both", func(s *Spec) { s.Spec.Env = []EnvVar{{Name: "A", Value: "x", ValueFrom: &EnvSource{File: "/f"}}} }, "spec.env[0]: give either value or valueFrom"},
		{"env empty file", func(s *Spec) { s.Spec.Env = []EnvVar{{Name: "A", ValueFrom: &EnvSource{}}} }, "spec.env[0].valueFrom.file: required"},
		{"env relative file", func(s *Spec) { s.Spec.Env = []EnvVar{{Name: "A", ValueFrom: &EnvSource{File: "f"}}} }, "spec.env[0].valueFrom.file: \"f\" is not an absolute path"},
		{"mounts ok", func(s *Spec) {
			s.Spec.Mounts = []Mount{{Type: "bind", Source: "/srv", Target: "/srv"}, {Type: "volume", Source: "data", Target: "/data"}, {Type: "tmpfs", Target: "/tmp"}}
		}, ""},
		{"mount no type", func(s *Spec) { s.Spec.Mounts = []Mount{{Target: "/x"}} }, "spec.mounts[0].type: required (one of bind, volume, tmpfs)"},
		{"mount root", func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "tmpfs", Target: "/"}} }, "spec.mounts[0].target: \"/\" is not an absolute path below /"},
		{"mount no target", func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "tmpfs"}} }, "spec.mounts[0].target: required"},
		{"mount twice", func(s *Spec) {
			s.Spec.Mounts = []Mount{{Type: "tmpfs", Target: "/x"}, {Type: "tmpfs", Target: "/x/"}}
		}, `spec.mounts[1].target: "/x/" is mounted twice`},
		{"anonymous volume", func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "volume", Target: "/x"}} }, ""},
		{"volume name", func(s *Spec) { s.Spec.Mounts = []Mount{{Type: "volume", Source: "a/b", Target: "/x"}} }, `spec.mounts[0].source: "a/b" is not a volume name`},
		{"secret", func(s *Spec) { s.Spec.Secrets = []SecretFile{{File: "/etc/reconciler/secrets/key"}} }, ""},
		{"secret without file", func(s *Spec) { s.Spec.Secrets = []SecretFile{{Target: "/run/secrets/x"}} }, "spec.secrets[0].file: required"},
		{"secret relative file", func(s *Spec) { s.Spec.Secrets = []SecretFile{{File: "key"}} }, `spec.secrets[0].file: "key" is not an absolute path`},
		{"secret relative target", func(s *Spec) { s.Spec.Secrets = []SecretFile{{File: "/s/key", Target: "key"}} }, `spec.secrets[0].target: "key" is not an absolute path below /`},
		{"two secrets, one default target", func(s *Spec) {
			s.Spec.Secrets = []SecretFile{{File: "/s/a/key"}, {File: "/s/b/key"}}
		}, `spec.secrets[1].file: "/run/secrets/key" is mounted twice`},
		{"secret over a mount", func(s *Spec) {
			s.Spec.Mounts = []Mount{{Type: "tmpfs", Target: "/run/secrets/key"}}
			s.Spec.Secrets = []SecretFile{{File: "/s/key", Target: "/run/secrets/key/"}}
		}, `spec.secrets[0].target: "/run/secrets/key/" is mounted twice`},
		{"ports ok", func(s *Spec) {
			s.Spec.Ports = []Port{{ContainerPort: 80, HostPort: 8080, HostIP: "::1", Protocol: "tcp"}, {ContainerPort: 80, HostPort: 8080, Protocol: "udp"}, {ContainerPort: 9000}}
		}, ""},
		{"port zero", func(s *Spec) { s.Spec.Ports = []Port{{}} }, "spec.ports[0].containerPort: 0 is not a port"},
		{"host port range", func(s *Spec) { s.Spec.Ports = []Port{{ContainerPort: 1, HostPort: 65536}} }, "spec.ports[0].hostPort: 65536 is not a port"},
		{"host port twice", func(s *Spec) {
			s.Spec.Ports = []Port{{ContainerPort: 1, HostPort: 80}, {ContainerPort: 2, HostPort: 80, Protocol: "TCP"}}
		}, "spec.ports[1].hostPort: 80/tcp is published twice"},
		{"ports on host network", func(s *Spec) { s.Spec.Network = "host"; s.Spec.Ports = []Port{{ContainerPort: 80}} }, `spec.ports: ports cannot be published with network "host"`},
		{"network name", func(s *Spec) { s.Spec.Network = "my_net.1" }, ""},
		{"network container mode", func(s *Spec) { s.Spec.Network = "container:other" }, `spec.network: "container:other" is not a network`},
		{"memory", func(s *Spec) { s.Spec.Resources.Memory = "12x" }, `spec.resources.memory: "12x" is not a quantity (use e.g. 256Mi, 1Gi)`},
		{"memory minimum", func(s *Spec) { s.Spec.Resources.Memory = "6Mi" }, ""},
		{"memory below minimum", func(s *Spec) { s.Spec.Resources.Memory = "6291455" }, "below Docker's minimum of 6Mi"},
		{"cpus", func(s *Spec) { s.Spec.Resources.CPUs = "half" }, `spec.resources.cpus: "half" is not a CPU count`},
		{"cpus minimum", func(s *Spec) { s.Spec.Resources.CPUs = "10m" }, ""},
		{"cpus zero", func(s *Spec) { s.Spec.Resources.CPUs = "0" }, "spec.resources.cpus: \"0\" is below"},
		{"pids", func(s *Spec) { s.Spec.Resources.Pids = -1 }, "spec.resources.pids: must not be negative"},
		{"negative grace", func(s *Spec) { s.Spec.TerminationGracePeriod.Duration = -time.Second }, "spec.terminationGracePeriod: -1s is negative"},
		{"negative deadline", func(s *Spec) { s.Spec.ActiveDeadline.Duration = -time.Second }, "spec.activeDeadline: "},
		{"negative ttl", func(s *Spec) { s.Spec.TTLAfterFinished.Duration = -time.Second }, "spec.ttlAfterFinished: "},
		{"negative backoff", func(s *Spec) { s.Spec.Backoff.Initial.Duration = -time.Second }, "spec.backoff.initial: -1s is negative"},
		{"backoff max below initial", func(s *Spec) {
			s.Spec.Backoff = Backoff{Initial: Duration{time.Minute}, Max: Duration{time.Second}}
		}, "spec.backoff.max: 1s is less than initial 1m0s"},
		{"backoff max equal initial", func(s *Spec) {
			s.Spec.Backoff = Backoff{Initial: Duration{time.Minute}, Max: Duration{time.Minute}}
		}, ""},
		{"backoff initial without max", func(s *Spec) {
			s.Spec.Backoff = Backoff{Initial: Duration{time.Minute}} // max defaults to 5m
		}, ""},
		{"maxRestarts", func(s *Spec) { n := -1; s.Spec.MaxRestarts = &n }, "spec.maxRestarts: must not be negative"},
		// The edges of each range are inside it.
		{"63-char label value", func(s *Spec) { s.Metadata.Labels["x"] = strings.Repeat("v", 63) }, ""},
		{"63-char label name", func(s *Spec) { s.Metadata.Labels[strings.Repeat("k", 63)] = "x" }, ""},
		{"64-char label name", func(s *Spec) { s.Metadata.Labels[strings.Repeat("k", 64)] = "x" }, "is not valid"},
		{"container port 65535", func(s *Spec) { s.Spec.Ports = []Port{{ContainerPort: 65535}} }, ""},
		{"container port 65536", func(s *Spec) { s.Spec.Ports = []Port{{ContainerPort: 65536}} }, "spec.ports[0].containerPort: 65536 is not a port"},
		{"host port 65535", func(s *Spec) { s.Spec.Ports = []Port{{ContainerPort: 1, HostPort: 65535}} }, ""},
		{"maxRestarts zero", func(s *Spec) { n := 0; s.Spec.MaxRestarts = &n }, ""},
		{"signal without prefix", func(s *Spec) { s.Spec.StopSignal = "QUIT" }, ""},
		{"unknown signal", func(s *Spec) { s.Spec.StopSignal = "SIGWINCH" }, `spec.stopSignal: "SIGWINCH" is not a stop signal`},
		{"capabilities", func(s *Spec) { s.Spec.CapAdd = []string{"CAP_SYS_ADMIN", "all"}; s.Spec.CapDrop = []string{"NET_RAW"} }, ""},
		{"unknown capability", func(s *Spec) { s.Spec.CapDrop = []string{"NET_RAW", "FLY"} }, `spec.capDrop[1]: "FLY" is not a Linux capability`},
		{"devices ok", func(s *Spec) { s.Spec.Devices = []string{"/dev/fuse", "/dev/sda:/dev/xvda:rwm", "/dev/net/tun:rw"} }, ""},
		{"device permissions", func(s *Spec) { s.Spec.Devices = []string{"/dev/sda:/dev/xvda:rx"} }, "permissions must be made of r, w and m"},
		{"device container path", func(s *Spec) { s.Spec.Devices = []string{"/dev/sda:xvda:rw"} }, "the container path must be absolute"},
		{"security options ok", func(s *Spec) {
			s.Spec.SecurityOpt = []string{"no-new-privileges", "no-new-privileges:true", "seccomp=unconfined", "apparmor=docker-default", "label=level:s0:c100,c200"}
		}, ""},
		{"unknown security option", func(s *Spec) { s.Spec.SecurityOpt = []string{"privileged=true"} }, `spec.securityOpt[0]: "privileged=true" is not a security option`},
		// The daemon splits at "=" first: its key here is "label:x", not "label".
		{"security option split as the daemon does", func(s *Spec) { s.Spec.SecurityOpt = []string{"label:x=seccomp"} }, `spec.securityOpt[0]: "label:x=seccomp" is not a security option`},
		{"old security option syntax", func(s *Spec) { s.Spec.SecurityOpt = []string{"apparmor:docker-default"} }, ""},
		{"healthcheck ok", func(s *Spec) {
			s.Spec.Healthcheck = &Healthcheck{Test: []string{"CMD-SHELL", "true"}, Interval: Duration{time.Second}, Retries: 3}
		}, ""},
		{"healthcheck NONE", func(s *Spec) { s.Spec.Healthcheck = &Healthcheck{Test: []string{"NONE"}} }, ""},
		{"healthcheck empty", func(s *Spec) { s.Spec.Healthcheck = &Healthcheck{} }, "spec.healthcheck.test: required"},
		{"healthcheck bare command", func(s *Spec) { s.Spec.Healthcheck = &Healthcheck{Test: []string{"/bin/check"}} }, `spec.healthcheck.test[0]: "/bin/check" must be CMD, CMD-SHELL or NONE`},
		{"healthcheck CMD alone", func(s *Spec) { s.Spec.Healthcheck = &Healthcheck{Test: []string{"CMD"}} }, "spec.healthcheck.test: use [CMD, program, args...]"},
		{"healthcheck interval", func(s *Spec) {
			s.Spec.Healthcheck = &Healthcheck{Test: []string{"NONE"}, Interval: Duration{time.Microsecond}}
		}, "spec.healthcheck.interval: 1µs is below the minimum of 1s"},
		{"healthcheck interval 1ms", func(s *Spec) {
			s.Spec.Healthcheck = &Healthcheck{Test: []string{"NONE"}, Interval: Duration{time.Millisecond}}
		}, "spec.healthcheck.interval: 1ms is below the minimum of 1s"},
		{"healthcheck timeout", func(s *Spec) {
			s.Spec.Healthcheck = &Healthcheck{Test: []string{"NONE"}, Timeout: Duration{999 * time.Millisecond}}
		}, "spec.healthcheck.timeout: 999ms is below the minimum of 1s"},
		{"healthcheck at the minimum", func(s *Spec) {
			s.Spec.Healthcheck = &Healthcheck{Test: []string{"NONE"}, Interval: Duration{time.Second}, Timeout: Duration{time.Second}}
		}, ""},
		{"healthcheck retries", func(s *Spec) { s.Spec.Healthcheck = &Healthcheck{Test: []string{"NONE"}, Retries: -1} }, "spec.healthcheck.retries: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.mutate(s)
			errs := s.Validate()
			if tt.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors:\n%v", errs)
				}
				return
			}
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Fatalf("got errors:\n%v\nwant one containing %q", errs, tt.want)
			}
		})
	}
}

func TestValidateSet(t *testing.T) {
	a, _ := Decode("a.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata:\n  name: web\nspec: {image: x}\n"))
	b, _ := Decode("b.yaml", []byte("# b\napiVersion: reconciler/v1\nkind: Container\nmetadata: {name: web}\nspec: {image: y}\n"))
	c, _ := Decode("c.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: other}\nspec: {image: z}\n"))
	errs := ValidateSet([]*Spec{a[0], c[0], b[0]})
	if len(errs) != 1 {
		t.Fatalf("got %v, want one error", errs)
	}
	if got, want := errs[0].Error(), `b.yaml:4: metadata.name: "web" is already defined at a.yaml:4`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}

	built := validSpec()
	errs = ValidateSet([]*Spec{built, validSpec()})
	if len(errs) != 1 || errs[0].Error() != `metadata.name: "web" is defined twice` {
		t.Errorf("specs without origin: %v", errs)
	}
	if errs := ValidateSet([]*Spec{a[0], c[0]}); len(errs) != 0 {
		t.Errorf("distinct names: %v", errs)
	}
}

func TestOrigin(t *testing.T) {
	specs, err := Decode("dir/web.yaml", []byte("---\n# web\napiVersion: reconciler/v1\nkind: Container\nmetadata:\n  labels: {a: b}\n  name: web\nspec: {image: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := specs[0].Origin(), (Origin{File: "dir/web.yaml", Line: 7}); got != want {
		t.Errorf("Origin() = %+v, want %+v", got, want)
	}
	copied := *specs[0]
	if got := copied.Origin(); got != (Origin{}) {
		t.Errorf("a copy has origin %+v, want none", got)
	}
	// Errors found later, after a change, still point into the file.
	specs[0].Spec.Resources.Memory = "lots"
	errs := specs[0].Validate()
	if len(errs) != 1 || errs[0].Error() != `dir/web.yaml:8: spec.resources.memory: "lots" is not a quantity (use e.g. 256Mi, 1Gi)` {
		t.Errorf("got %v", errs)
	}
}
