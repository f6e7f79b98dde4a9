package spec

import (
	"strings"
	"testing"
	"time"
)

func TestAutoUpdateDecodesAndValidates(t *testing.T) {
	const doc = `apiVersion: reconciler/v1
kind: Container
metadata: {name: web}
spec:
  image: 127.0.0.1:5000/box:v1
  autoUpdate: {interval: 2s, rollbackAfter: 10s}
`
	specs, err := Decode("web.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	u := specs[0].Spec.AutoUpdate
	if u == nil || u.Interval.Duration != 2*time.Second || u.RollbackWindow() != 10*time.Second {
		t.Fatalf("autoUpdate = %+v", u)
	}
	if got := (&AutoUpdate{}).RollbackWindow(); got != 60*time.Second {
		t.Errorf("rollbackAfter unset: window %s, want the documented default of 60s", got)
	}
	_, err = Decode("web.yaml", []byte(strings.Replace(doc, "rollbackAfter", "rollback", 1)))
	if err == nil || !strings.Contains(err.Error(), "rollback") || !strings.Contains(err.Error(), "web.yaml:6") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestAutoUpdateValidation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*ContainerSpec)
		want   string
	}{
		{"ok", func(*ContainerSpec) {}, ""},
		{"no interval", func(c *ContainerSpec) { c.AutoUpdate.Interval = Duration{} }, "spec.autoUpdate.interval: required"},
		{"tiny interval", func(c *ContainerSpec) { c.AutoUpdate.Interval = Duration{time.Millisecond} }, "under the minimum"},
		{"interval at the minimum", func(c *ContainerSpec) { c.AutoUpdate.Interval = Duration{time.Second} }, ""},
		{"interval just under it", func(c *ContainerSpec) { c.AutoUpdate.Interval = Duration{time.Second - 1} }, "under the minimum of 1s"},
		{"negative rollback", func(c *ContainerSpec) { c.AutoUpdate.RollbackAfter = Duration{-time.Second} }, "spec.autoUpdate.rollbackAfter: -1s is negative"},
		{"never pulls", func(c *ContainerSpec) { c.ImagePullPolicy = PullNever }, "imagePullPolicy is Never"},
		{"digest", func(c *ContainerSpec) { c.Image = "r.io/box@sha256:" + strings.Repeat("a", 64) }, "pinned by digest"},
		{"image id", func(c *ContainerSpec) { c.Image = "sha256:" + strings.Repeat("a", 64) }, "not a registry reference"},
		{"upper case", func(c *ContainerSpec) { c.Image = "r.io/Box:v1" }, "not a registry reference"},
	} {
		s := validSpec()
		s.Spec.Image = "127.0.0.1:5000/box:v1"
		s.Spec.AutoUpdate = &AutoUpdate{Interval: Duration{time.Minute}}
		tc.mutate(&s.Spec)
		errs := s.Validate()
		got := ""
		if len(errs) > 0 {
			got = errs.Error()
		}
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestAutoUpdateDoesNotChangeTheContainersHash(t *testing.T) {
	s := validSpec()
	before := s.Hash()
	s.Spec.AutoUpdate = &AutoUpdate{Interval: Duration{time.Minute}}
	if s.Hash() != before {
		t.Error("adding autoUpdate should not replace the container: the image it picks does")
	}
}
