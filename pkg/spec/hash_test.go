package spec

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestHash(t *testing.T) {
	base := func() *Spec {
		return &Spec{
			APIVersion: APIVersion,
			Kind:       KindContainer,
			Metadata:   Metadata{Name: "web", Labels: map[string]string{"team": "a"}},
			Spec: ContainerSpec{
				Image:     "reconciler/box:latest",
				Args:      []string{"tick"},
				Env:       []EnvVar{{Name: "A", Value: "1"}},
				Resources: Resources{Memory: "256Mi", CPUs: "0.5", Pids: 64},
				Ports:     []Port{{ContainerPort: 80, HostPort: 8080}},
				Mounts:    []Mount{{Type: "tmpfs", Target: "/tmp"}},
			},
		}
	}
	tests := []struct {
		name   string
		mutate func(*Spec)
		same   bool
	}{
		// Same container.
		{"memory in bytes", func(s *Spec) { s.Spec.Resources.Memory = "268435456" }, true},
		{"cpus in millicores", func(s *Spec) { s.Spec.Resources.CPUs = "500m" }, true},
		{"defaults written out", func(s *Spec) {
			s.Spec.RestartPolicy, s.Spec.ImagePullPolicy, s.Spec.StopSignal = RestartAlways, PullIfNotPresent, "SIGTERM"
			s.Spec.TerminationGracePeriod, s.Spec.Network, s.Spec.Ports[0].Protocol = Duration{10 * time.Second}, "bridge", "tcp"
		}, true},
		{"signal spelling", func(s *Spec) { s.Spec.StopSignal = "term" }, true},
		{"protocol case", func(s *Spec) { s.Spec.Ports[0].Protocol = "TCP" }, true},
		{"capability spelling", func(s *Spec) { s.Spec.CapAdd = []string{"cap_chown"} }, true}, // compared below with CHOWN
		{"backoff", func(s *Spec) { s.Spec.Backoff = Backoff{Initial: Duration{time.Second}, Max: Duration{time.Hour}} }, true},
		{"maxRestarts", func(s *Spec) { n := 3; s.Spec.MaxRestarts = &n }, true},
		{"activeDeadline", func(s *Spec) { s.Spec.ActiveDeadline = Duration{time.Hour} }, true},
		{"ttlAfterFinished", func(s *Spec) { s.Spec.TTLAfterFinished = Duration{time.Hour} }, true},
		{"removeOnExit", func(s *Spec) { s.Spec.RemoveOnExit = true }, true},
		{"empty label map", func(s *Spec) { s.Metadata.Labels = map[string]string{}; s.Metadata.Labels["team"] = "a" }, true},
		{"empty slices", func(s *Spec) { s.Spec.Command, s.Spec.Devices = []string{}, []string{} }, true},

		// Another container.
		{"image", func(s *Spec) { s.Spec.Image = "reconciler/box:v2" }, false},
		{"args", func(s *Spec) { s.Spec.Args = []string{"sleep"} }, false},
		{"command", func(s *Spec) { s.Spec.Command = []string{"/box"} }, false},
		{"env value", func(s *Spec) { s.Spec.Env[0].Value = "2" }, false},
		{"env from file", func(s *Spec) { s.Spec.Env[0] = EnvVar{Name: "A", ValueFrom: &EnvSource{File: "/run/a"}} }, false},
		{"label value", func(s *Spec) { s.Metadata.Labels["team"] = "b" }, false},
		{"label added", func(s *Spec) { s.Metadata.Labels["tier"] = "front" }, false},
		{"name", func(s *Spec) { s.Metadata.Name = "web2" }, false},
		{"memory", func(s *Spec) { s.Spec.Resources.Memory = "257Mi" }, false},
		{"cpus", func(s *Spec) { s.Spec.Resources.CPUs = "1" }, false},
		{"pids", func(s *Spec) { s.Spec.Resources.Pids = 65 }, false},
		{"restartPolicy", func(s *Spec) { s.Spec.RestartPolicy = RestartNever }, false},
		{"imagePullPolicy", func(s *Spec) { s.Spec.ImagePullPolicy = PullNever }, false},
		{"stopSignal", func(s *Spec) { s.Spec.StopSignal = "SIGINT" }, false},
		{"grace", func(s *Spec) { s.Spec.TerminationGracePeriod = Duration{time.Minute} }, false},
		{"network", func(s *Spec) { s.Spec.Network = "none" }, false},
		{"hostPort", func(s *Spec) { s.Spec.Ports[0].HostPort = 8081 }, false},
		{"hostIP", func(s *Spec) { s.Spec.Ports[0].HostIP = "127.0.0.1" }, false},
		{"mount readOnly", func(s *Spec) { s.Spec.Mounts[0].ReadOnly = true }, false},
		{"workingDir", func(s *Spec) { s.Spec.WorkingDir = "/w" }, false},
		{"user", func(s *Spec) { s.Spec.User = "1000" }, false},
		{"privileged", func(s *Spec) { s.Spec.Privileged = true }, false},
		{"hostPID", func(s *Spec) { s.Spec.HostPID = true }, false},
		{"capDrop", func(s *Spec) { s.Spec.CapDrop = []string{"ALL"} }, false},
		{"devices", func(s *Spec) { s.Spec.Devices = []string{"/dev/fuse"} }, false},
		{"securityOpt", func(s *Spec) { s.Spec.SecurityOpt = []string{"no-new-privileges"} }, false},
		{"readOnlyRootFilesystem", func(s *Spec) { s.Spec.ReadOnlyRootFilesystem = true }, false},
		{"healthcheck", func(s *Spec) { s.Spec.Healthcheck = &Healthcheck{Test: []string{"NONE"}} }, false},
	}
	want := base().Hash()
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(want) {
		t.Fatalf("Hash() = %q, want 16 hex digits", want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base()
			tt.mutate(s)
			ref := want
			if tt.name == "capability spelling" {
				r := base()
				r.Spec.CapAdd = []string{"CHOWN"}
				ref = r.Hash()
			}
			if got := s.Hash(); (got == ref) != tt.same {
				t.Errorf("Hash() = %s, base %s; want same=%v", got, ref, tt.same)
			}
		})
	}
}

// Only the file path changes here, so the test fails when the hash drops
// env[].valueFrom (the "env from file" case above also drops value).
func TestHashCountsEnvFilePath(t *testing.T) {
	spec := func(file string) *Spec {
		return &Spec{APIVersion: APIVersion, Kind: KindContainer, Metadata: Metadata{Name: "web"},
			Spec: ContainerSpec{Image: "reconciler/box:latest",
				Env: []EnvVar{{Name: "A", ValueFrom: &EnvSource{File: file}}}}}
	}
	if a, b := spec("/run/a").Hash(), spec("/run/b").Hash(); a == b {
		t.Errorf("Hash() = %s for env A from /run/a and from /run/b; want them to differ", a)
	}
	if a, b := spec("/run/a").Hash(), spec("/run/a").Hash(); a != b {
		t.Errorf("Hash() = %s and %s for the same spec", a, b)
	}
}

// The hash is written on every managed container: if it changed between
// versions of the agent, an upgrade would recreate every container.
func TestHashIsStable(t *testing.T) {
	s := &Spec{APIVersion: APIVersion, Kind: KindContainer, Metadata: Metadata{Name: "web"},
		Spec: ContainerSpec{Image: "reconciler/box:latest", Resources: Resources{Memory: "32Mi", CPUs: "0.25"}}}
	if got, want := s.Hash(), "1e6a095edabd3149"; got != want {
		t.Errorf("Hash() = %s, want %s: the canonical form changed", got, want)
	}
}

func TestHashLeavesSpecAlone(t *testing.T) {
	s := &Spec{Spec: ContainerSpec{Ports: []Port{{ContainerPort: 80}}, CapAdd: []string{"cap_chown"}}}
	s.Hash()
	if s.Spec.Ports[0].Protocol != "" || s.Spec.CapAdd[0] != "cap_chown" || s.Spec.RestartPolicy != "" {
		t.Errorf("Hash changed the spec: %+v", s.Spec)
	}
}

func TestPolicyOnlyFieldsExist(t *testing.T) {
	names := map[string]bool{}
	typ := reflect.TypeFor[ContainerSpec]()
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		names[name] = true
	}
	for _, f := range policyOnlyFields {
		if !names[f] {
			t.Errorf("policyOnlyFields names %q, which is not a field of ContainerSpec", f)
		}
	}
}

func TestHashWithSecrets(t *testing.T) {
	key, other := []byte("k1"), []byte("k2")
	c := func(s ...string) [][]byte {
		var out [][]byte
		for _, x := range s {
			out = append(out, []byte(x))
		}
		return out
	}
	const h = "0123456789abcdef"
	base := HashWithSecrets(h, key, c("hunter2"))
	if HashWithSecrets(h, key, nil) != h {
		t.Error("without secrets the hash must stay the spec's")
	}
	if len(base) != 16 || base == h || HashWithSecrets(h, key, c("hunter2")) != base {
		t.Errorf("%q: want 16 hex digits, stable, unlike the spec hash", base)
	}
	plain := sha256.Sum256([]byte("hunter2"))
	for name, got := range map[string]string{
		"new content":                   HashWithSecrets(h, key, c("hunter3")),
		"another key (another state)":   HashWithSecrets(h, other, c("hunter2")),
		"another spec":                  HashWithSecrets("fedcba9876543210", key, c("hunter2")),
		"bytes moved between two files": HashWithSecrets(h, key, c("hunter", "2")),
		"a plain hash of the content":   hex.EncodeToString(plain[:8]),
	} {
		if got == base {
			t.Errorf("%s gives the same label %s", name, got)
		}
	}
}
