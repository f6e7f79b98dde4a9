package spec

import (
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	s := &Spec{Spec: ContainerSpec{
		StopSignal: "int",
		Ports:      []Port{{ContainerPort: 80}, {ContainerPort: 53, Protocol: "UDP"}},
		CapAdd:     []string{"cap_net_admin"},
		CapDrop:    []string{"all"},
	}}
	s.Default()
	c := s.Spec
	checks := []struct {
		name      string
		got, want any
	}{
		{"imagePullPolicy", c.ImagePullPolicy, PullIfNotPresent},
		{"restartPolicy", c.RestartPolicy, RestartAlways},
		{"backoff.initial", c.Backoff.Initial.Duration, time.Duration(0)},
		{"backoff.max", c.Backoff.Max.Duration, 5 * time.Minute},
		{"backoff.resetAfter", c.Backoff.ResetAfter.Duration, 10 * time.Minute},
		{"stopSignal", c.StopSignal, "SIGINT"},
		{"terminationGracePeriod", c.TerminationGracePeriod.Duration, 10 * time.Second},
		{"network", c.Network, "bridge"},
		{"ports[0].protocol", c.Ports[0].Protocol, "tcp"},
		{"ports[1].protocol", c.Ports[1].Protocol, "udp"},
		{"ports[0].hostIP", c.Ports[0].HostIP, ""},
		{"capAdd[0]", c.CapAdd[0], "NET_ADMIN"},
		{"capDrop[0]", c.CapDrop[0], "ALL"},
	}
	for _, ck := range checks {
		if ck.got != ck.want {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestDefaultKeepsWhatWasWritten(t *testing.T) {
	s := &Spec{Spec: ContainerSpec{
		Image:                  "x:latest",
		ImagePullPolicy:        PullNever,
		RestartPolicy:          RestartNever,
		Backoff:                Backoff{Initial: Duration{time.Second}, Max: Duration{time.Minute}, ResetAfter: Duration{time.Hour}},
		StopSignal:             "SIGKILL",
		TerminationGracePeriod: Duration{time.Minute},
		Network:                "none",
	}}
	want := s.Spec
	s.Default()
	if s.Spec.ImagePullPolicy != want.ImagePullPolicy || s.Spec.RestartPolicy != want.RestartPolicy ||
		s.Spec.Backoff != want.Backoff || s.Spec.StopSignal != want.StopSignal ||
		s.Spec.TerminationGracePeriod != want.TerminationGracePeriod || s.Spec.Network != want.Network {
		t.Errorf("Default changed written fields: %+v", s.Spec)
	}

	latest := &Spec{Spec: ContainerSpec{Image: "reconciler/box:latest"}}
	latest.Default()
	if latest.Spec.ImagePullPolicy != PullIfNotPresent {
		t.Errorf("a latest tag must not force pulls: %s", latest.Spec.ImagePullPolicy)
	}
}

func TestBackoffDelay(t *testing.T) {
	d := func(s string) Duration {
		v, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return Duration{v}
	}
	tests := []struct {
		name     string
		b        Backoff
		restarts []int
		want     []time.Duration
	}{
		{"default: immediate, then from 1s", Backoff{}, []int{0, 1, 2, 3, 4}, []time.Duration{0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}},
		{"default cap", Backoff{}, []int{9, 10, 1000, 1 << 30}, []time.Duration{256 * time.Second, 5 * time.Minute, 5 * time.Minute, 5 * time.Minute}},
		{"initial set", Backoff{Initial: d("10s"), Max: d("1m")}, []int{0, 1, 2, 3}, []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, time.Minute}},
		{"huge max does not overflow", Backoff{Initial: d("1h"), Max: d("2562047h")}, []int{100}, []time.Duration{2562047 * time.Hour}},
		{"negative count", Backoff{Initial: d("1s")}, []int{-1}, []time.Duration{time.Second}},
	}
	for _, tt := range tests {
		for i, n := range tt.restarts {
			if got := tt.b.Delay(n); got != tt.want[i] {
				t.Errorf("%s: Delay(%d) = %v, want %v", tt.name, n, got, tt.want[i])
			}
		}
	}
}
