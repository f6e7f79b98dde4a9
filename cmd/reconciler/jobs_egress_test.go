package main

import (
	"slices"
	"strings"
	"testing"
)

func TestRunEgress(t *testing.T) {
	o := runOptions{image: "reconciler/box:latest", restart: "Never", maxRestarts: -1}
	o.egress = "api.example.com:443, *.github.com:443"
	s, err := buildJobSpec("job", o, nil)
	if err != nil {
		t.Fatal(err)
	}
	if e := s.Spec.Egress; e == nil || !slices.Equal(e.Allow, []string{"api.example.com:443", "*.github.com:443"}) {
		t.Fatalf("egress = %+v", s.Spec.Egress)
	}
	o.egress = "none"
	if s, err := buildJobSpec("job", o, nil); err != nil || s.Spec.Egress == nil || !s.Spec.Egress.NoNetwork() {
		t.Fatalf("--egress none: %+v, %v", s, err)
	}
	o.egress = ""
	if s, err := buildJobSpec("job", o, nil); err != nil || s.Spec.Egress != nil {
		t.Fatalf("no --egress: %+v, %v", s, err)
	}
	for flags, want := range map[[2]string]string{
		{"example.com", ""}:      `--egress: "example.com" is not host:port`,
		{"a.io:443", "host"}:     "--egress: cannot be combined with network host",
		{"a.io:443", "backend"}:  `--egress: cannot be combined with network "backend"`,
		{"a.io:443,,b.io:1", ""}: `--egress: "" is not host:port`,
	} {
		o.egress, o.network = flags[0], flags[1]
		if _, err := buildJobSpec("job", o, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--egress %q --network %q: err = %v, want %q", flags[0], flags[1], err, want)
		}
	}
}
