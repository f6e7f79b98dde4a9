package docker

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/go-connections/nat"

	"github.com/reconciler/reconciler/pkg/ownership"
	"github.com/reconciler/reconciler/pkg/spec"
)

func baseSpec() *spec.Spec {
	return &spec.Spec{
		APIVersion: spec.APIVersion, Kind: spec.KindContainer,
		Metadata: spec.Metadata{Name: "web"},
		Spec: spec.ContainerSpec{
			Image:                  "reconciler/box:latest",
			StopSignal:             "SIGTERM",
			TerminationGracePeriod: spec.Duration{Duration: 10 * time.Second},
		},
	}
}

func TestBuildConfigDefaults(t *testing.T) {
	cfg, host, net, err := BuildConfig(CreateRequest{Name: "web", Spec: baseSpec()})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Image != "reconciler/box:latest" || cfg.StopSignal != "SIGTERM" || *cfg.StopTimeout != 10 {
		t.Errorf("config = image %q, stop signal %q, stop timeout %d", cfg.Image, cfg.StopSignal, *cfg.StopTimeout)
	}
	if cfg.Entrypoint != nil || cfg.Cmd != nil {
		t.Errorf("entrypoint %q, cmd %q: want the image's (nil)", cfg.Entrypoint, cfg.Cmd)
	}
	if host.RestartPolicy.Name != container.RestartPolicyDisabled {
		t.Errorf("restart policy %q, want %q", host.RestartPolicy.Name, container.RestartPolicyDisabled)
	}
	want := container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
	if !reflect.DeepEqual(host.LogConfig, want) {
		t.Errorf("log config %+v, want %+v", host.LogConfig, want)
	}
	if host.Init == nil || *host.Init {
		t.Errorf("init %v, want false", host.Init)
	}
	if host.NetworkMode != "bridge" || net.EndpointsConfig != nil {
		t.Errorf("network mode %q, endpoints %v; want bridge and none", host.NetworkMode, net.EndpointsConfig)
	}
	if host.Memory != 0 || host.MemorySwap != 0 || host.NanoCPUs != 0 || host.PidsLimit != nil {
		t.Errorf("limits without resources: %+v", host.Resources)
	}
	if host.PidMode != "" || host.IpcMode != "" || host.UTSMode != "" || host.Privileged || host.ReadonlyRootfs {
		t.Errorf("unexpected privileges: %+v", host)
	}
}

func TestBuildConfigTranslation(t *testing.T) {
	pids := int64(128)
	tests := []struct {
		name   string
		edit   func(*spec.Spec, *CreateRequest)
		verify func(t *testing.T, cfg *container.Config, host *container.HostConfig, net *network.NetworkingConfig)
	}{{
		name: "command is the entrypoint and args the cmd",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Command = []string{"/box"}
			s.Spec.Args = []string{"tick", "--count", "3"}
		},
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "entrypoint", []string(cfg.Entrypoint), []string{"/box"})
			eq(t, "cmd", []string(cfg.Cmd), []string{"tick", "--count", "3"})
		},
	}, {
		name: "args alone keep the image's entrypoint",
		edit: func(s *spec.Spec, _ *CreateRequest) { s.Spec.Args = []string{"sleep"} },
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "entrypoint", cfg.Entrypoint == nil, true)
			eq(t, "cmd", []string(cfg.Cmd), []string{"sleep"})
		},
	}, {
		name: "env merges values and resolved secrets, sorted",
		edit: func(s *spec.Spec, r *CreateRequest) {
			s.Spec.Env = []spec.EnvVar{
				{Name: "ZED", Value: "last"},
				{Name: "TOKEN", ValueFrom: &spec.EnvSource{File: "/run/secrets/token"}},
				{Name: "ALPHA", Value: "a=b"},
			}
			r.Env = map[string]string{"TOKEN": "s3cret"}
		},
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "env", cfg.Env, []string{"ALPHA=a=b", "TOKEN=s3cret", "ZED=last"})
		},
	}, {
		name: "ownership labels win over the spec's",
		edit: func(s *spec.Spec, r *CreateRequest) {
			s.Metadata.Labels = map[string]string{"team": "a", ownership.LabelSpec: "forged"}
			r.Labels = map[string]string{ownership.LabelManaged: "true", ownership.LabelSpec: "web"}
		},
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "labels", cfg.Labels, map[string]string{"team": "a", ownership.LabelManaged: "true", ownership.LabelSpec: "web"})
		},
	}, {
		name: "stop signal, working dir and user",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.StopSignal, s.Spec.WorkingDir, s.Spec.User = "SIGINT", "/work", "1000:1000"
		},
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "stop signal", cfg.StopSignal, "SIGINT")
			eq(t, "working dir", cfg.WorkingDir, "/work")
			eq(t, "user", cfg.User, "1000:1000")
		},
	}, {
		name: "a sub-second grace rounds up",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.TerminationGracePeriod = spec.Duration{Duration: 1500 * time.Millisecond}
		},
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "stop timeout", *cfg.StopTimeout, 2)
		},
	}, {
		name: "resources: memory without swap, cpus, pids",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Resources = spec.Resources{Memory: "256Mi", CPUs: "0.5", Pids: 128}
		},
		verify: func(t *testing.T, _ *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "memory", host.Memory, int64(256<<20))
			eq(t, "memory+swap", host.MemorySwap, int64(256<<20))
			eq(t, "nano cpus", host.NanoCPUs, int64(500_000_000))
			eq(t, "pids", host.PidsLimit, &pids)
		},
	}, {
		name: "mounts: a bind mount comes from the source the policy resolved",
		edit: func(s *spec.Spec, req *CreateRequest) {
			s.Spec.Mounts = []spec.Mount{
				{Type: "bind", Source: "/srv/data", Target: "/data", ReadOnly: true},
				{Type: "volume", Source: "cache", Target: "/cache"},
				{Type: "tmpfs", Target: "/tmp"},
			}
			req.BindSources = map[int]string{0: "/data/srv/data"}
		},
		verify: func(t *testing.T, _ *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "mounts", host.Mounts, []mount.Mount{
				{Type: mount.TypeBind, Source: "/data/srv/data", Target: "/data", ReadOnly: true},
				{Type: mount.TypeVolume, Source: "cache", Target: "/cache"},
				{Type: mount.TypeTmpfs, Target: "/tmp"},
			})
		},
	}, {
		name: "security options: the request's, with profiles inlined, replace the spec's",
		edit: func(s *spec.Spec, req *CreateRequest) {
			s.Spec.SecurityOpt = []string{"seccomp=/etc/reconciler/seccomp.json"}
			req.SecurityOpt = []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO"}`}
		},
		verify: func(t *testing.T, _ *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "security options", host.SecurityOpt, []string{`seccomp={"defaultAction":"SCMP_ACT_ERRNO"}`})
		},
	}, {
		name: "secret files are read-only bind mounts after the spec's own",
		edit: func(s *spec.Spec, req *CreateRequest) {
			s.Spec.Mounts = []spec.Mount{{Type: "tmpfs", Target: "/tmp"}}
			req.Files = []FileMount{{Source: "/var/lib/reconciler/secrets/i/web/h/0", Target: "/run/secrets/key"}}
		},
		verify: func(t *testing.T, cfg *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "mounts", host.Mounts, []mount.Mount{
				{Type: mount.TypeTmpfs, Target: "/tmp"},
				{Type: mount.TypeBind, Source: "/var/lib/reconciler/secrets/i/web/h/0", Target: "/run/secrets/key", ReadOnly: true},
			})
			eq(t, "env", len(cfg.Env), 0)
		},
	}, {
		name: "ports are exposed, published only with a host port",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Ports = []spec.Port{
				{ContainerPort: 8080, HostPort: 18080, HostIP: "127.0.0.1"},
				{ContainerPort: 53, Protocol: "UDP"},
			}
		},
		verify: func(t *testing.T, cfg *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "exposed", cfg.ExposedPorts, nat.PortSet{"8080/tcp": {}, "53/udp": {}})
			eq(t, "bindings", host.PortBindings, nat.PortMap{
				"8080/tcp": {{HostIP: "127.0.0.1", HostPort: "18080"}},
			})
		},
	}, {
		name: "host network",
		edit: func(s *spec.Spec, _ *CreateRequest) { s.Spec.Network = "host" },
		verify: func(t *testing.T, _ *container.Config, host *container.HostConfig, net *network.NetworkingConfig) {
			eq(t, "network mode", host.NetworkMode, container.NetworkMode("host"))
			eq(t, "endpoints", len(net.EndpointsConfig), 0)
		},
	}, {
		name: "a named network gets an endpoint",
		edit: func(s *spec.Spec, _ *CreateRequest) { s.Spec.Network = "backend" },
		verify: func(t *testing.T, _ *container.Config, host *container.HostConfig, net *network.NetworkingConfig) {
			eq(t, "network mode", host.NetworkMode, container.NetworkMode("backend"))
			eq(t, "endpoints", net.EndpointsConfig, map[string]*network.EndpointSettings{"backend": {}})
		},
	}, {
		name: "host namespaces and privileges",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			c := &s.Spec
			c.HostPID, c.HostIPC, c.HostUTS, c.Privileged, c.ReadOnlyRootFilesystem = true, true, true, true, true
			c.CapAdd, c.CapDrop = []string{"NET_ADMIN"}, []string{"ALL"}
			c.SecurityOpt = []string{"no-new-privileges"}
		},
		verify: func(t *testing.T, _ *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "pid mode", host.PidMode, container.PidMode("host"))
			eq(t, "ipc mode", host.IpcMode, container.IpcMode("host"))
			eq(t, "uts mode", host.UTSMode, container.UTSMode("host"))
			eq(t, "privileged", host.Privileged, true)
			eq(t, "read-only rootfs", host.ReadonlyRootfs, true)
			eq(t, "cap add", []string(host.CapAdd), []string{"NET_ADMIN"})
			eq(t, "cap drop", []string(host.CapDrop), []string{"ALL"})
			eq(t, "security opt", host.SecurityOpt, []string{"no-new-privileges"})
		},
	}, {
		name: "devices",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Devices = []string{"/dev/fuse", "/dev/sda:/dev/xvda", "/dev/null:r", "/dev/kvm:/dev/kvm:rw"}
		},
		verify: func(t *testing.T, _ *container.Config, host *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "devices", host.Devices, []container.DeviceMapping{
				{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
				{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "rwm"},
				{PathOnHost: "/dev/null", PathInContainer: "/dev/null", CgroupPermissions: "r"},
				{PathOnHost: "/dev/kvm", PathInContainer: "/dev/kvm", CgroupPermissions: "rw"},
			})
		},
	}, {
		name: "healthcheck: a bare argv becomes CMD",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Healthcheck = &spec.Healthcheck{
				Test:     []string{"/box", "health", "--file", "/tmp/ok"},
				Interval: spec.Duration{Duration: time.Second}, Timeout: spec.Duration{Duration: 2 * time.Second},
				StartPeriod: spec.Duration{Duration: 3 * time.Second}, Retries: 4,
			}
		},
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "healthcheck", cfg.Healthcheck, &container.HealthConfig{
				Test:     []string{"CMD", "/box", "health", "--file", "/tmp/ok"},
				Interval: time.Second, Timeout: 2 * time.Second, StartPeriod: 3 * time.Second, Retries: 4,
			})
		},
	}, {
		name: "healthcheck: Docker's own forms pass through",
		edit: func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Healthcheck = &spec.Healthcheck{Test: []string{"CMD-SHELL", "true"}}
		},
		verify: func(t *testing.T, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) {
			eq(t, "test", cfg.Healthcheck.Test, []string{"CMD-SHELL", "true"})
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			req := CreateRequest{Name: "web", Spec: s}
			tt.edit(s, &req)
			cfg, host, net, err := BuildConfig(req)
			if err != nil {
				t.Fatal(err)
			}
			tt.verify(t, cfg, host, net)
		})
	}
}

func TestBuildConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*spec.Spec, *CreateRequest)
		want string
	}{
		{"bad memory", func(s *spec.Spec, _ *CreateRequest) { s.Spec.Resources.Memory = "12x" }, "spec.resources.memory"},
		{"bad cpus", func(s *spec.Spec, _ *CreateRequest) { s.Spec.Resources.CPUs = "lots" }, "spec.resources.cpus"},
		{"bad mount type", func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Mounts = []spec.Mount{{Type: "nfs", Target: "/x"}}
		}, `spec.mounts[0].type: "nfs"`},
		{"bad device perms", func(s *spec.Spec, _ *CreateRequest) { s.Spec.Devices = []string{"/dev/a:/dev/b:rwx"} }, "spec.devices[0]"},
		{"relative device", func(s *spec.Spec, _ *CreateRequest) { s.Spec.Devices = []string{"dev/a"} }, "absolute"},
		{"unresolved secret", func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Env = []spec.EnvVar{{Name: "TOKEN", ValueFrom: &spec.EnvSource{File: "/run/secrets/token"}}}
		}, "spec.env[0] (TOKEN)"},
		{"unresolved bind source", func(s *spec.Spec, _ *CreateRequest) {
			s.Spec.Mounts = []spec.Mount{{Type: "bind", Source: "/srv/data", Target: "/data"}}
		}, `spec.mounts[0].source: bind source "/srv/data" was not resolved by the policy`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			req := CreateRequest{Name: "web", Spec: s}
			tt.edit(s, &req)
			_, _, _, err := BuildConfig(req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestBuildConfigIsDeterministic(t *testing.T) {
	s := baseSpec()
	s.Spec.Env = []spec.EnvVar{{Name: "B", Value: "2"}, {Name: "A", Value: "1"}}
	req := CreateRequest{Name: "web", Spec: s, Env: map[string]string{"C": "3", "D": "4"}}
	first, _, _, _ := BuildConfig(req)
	for range 20 {
		cfg, _, _, _ := BuildConfig(req)
		eq(t, "env", cfg.Env, first.Env)
	}
}

func TestGraceSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0: 0, -time.Second: 0, time.Nanosecond: 1, 500 * time.Millisecond: 1,
		time.Second: 1, 1001 * time.Millisecond: 2, 30 * time.Second: 30,
	} {
		if got := graceSeconds(d); got != want {
			t.Errorf("graceSeconds(%v) = %d, want %d", d, got, want)
		}
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}
