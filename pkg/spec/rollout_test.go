package spec

import (
	"slices"
	"strings"
	"testing"
)

func TestValidateRollout(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Spec)
		want   string // "path: message" substring; empty for valid
	}{
		{"StartFirst", func(s *Spec) { s.Spec.UpdateStrategy = &UpdateStrategy{Type: StartFirst} }, ""},
		{"StopFirst with a fixed host port", func(s *Spec) {
			s.Spec.UpdateStrategy = &UpdateStrategy{Type: StopFirst}
			s.Spec.Ports = []Port{{ContainerPort: 80, HostPort: 8080}}
		}, ""},
		{"StartFirst with a random host port", func(s *Spec) {
			s.Spec.UpdateStrategy = &UpdateStrategy{Type: StartFirst}
			s.Spec.Ports = []Port{{ContainerPort: 80}}
		}, ""},
		{"StartFirst with a fixed host port", func(s *Spec) {
			s.Spec.UpdateStrategy = &UpdateStrategy{Type: StartFirst}
			s.Spec.Ports = []Port{{ContainerPort: 80, HostPort: 8080}}
		}, "spec.ports[0].hostPort: 8080 is a fixed host port, which updateStrategy StartFirst cannot use: the new container starts while the old one still holds the port"},
		{"unknown type", func(s *Spec) { s.Spec.UpdateStrategy = &UpdateStrategy{Type: "Rolling"} }, `spec.updateStrategy.type: "Rolling" is not one of StopFirst, StartFirst`},
		{"negative minReady", func(s *Spec) { s.Spec.UpdateStrategy = &UpdateStrategy{MinReady: Duration{-1}} }, "spec.updateStrategy.minReady: -1ns is negative"},
		{"dependsOn", func(s *Spec) {
			s.Spec.DependsOn = []Dependency{{Name: "db", Condition: DependsHealthy}, {Name: "migrate", Condition: DependsSucceeded}}
		}, ""},
		{"dependsOn without a name", func(s *Spec) { s.Spec.DependsOn = []Dependency{{}} }, "spec.dependsOn[0].name: required"},
		{"dependsOn a name of 63 bytes", func(s *Spec) { s.Spec.DependsOn = []Dependency{{Name: strings.Repeat("d", 63)}} }, ""},
		{"dependsOn a name of 64 bytes", func(s *Spec) { s.Spec.DependsOn = []Dependency{{Name: strings.Repeat("d", 64)}} }, "spec.dependsOn[0].name: \"" + strings.Repeat("d", 64) + "\" is not a spec name"},
		{"dependsOn on itself", func(s *Spec) { s.Spec.DependsOn = []Dependency{{Name: "web"}} }, "dependsOn cycle: web -> web"},
		{"dependsOn twice", func(s *Spec) { s.Spec.DependsOn = []Dependency{{Name: "db"}, {Name: "db"}} }, `spec.dependsOn[1].name: "db" is listed twice`},
		{"bad condition", func(s *Spec) { s.Spec.DependsOn = []Dependency{{Name: "db", Condition: "Ready"}} }, `spec.dependsOn[0].condition: "Ready" is not one of Started, Healthy, Succeeded`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSpec()
			tt.mutate(s)
			errs := s.Validate()
			if tt.want == "" {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs)
				}
				return
			}
			if !strings.Contains(errs.Error(), tt.want) {
				t.Fatalf("errors %q, want %q", errs.Error(), tt.want)
			}
		})
	}
}

func TestRolloutFieldsDoNotReplace(t *testing.T) {
	a := validSpec()
	b := validSpec()
	b.Spec.UpdateStrategy = &UpdateStrategy{Type: StartFirst}
	b.Spec.DependsOn = []Dependency{{Name: "db"}}
	if a.Hash() != b.Hash() {
		t.Error("updateStrategy and dependsOn changed the hash: changing them would replace the container")
	}
}

func named(name string, deps ...string) *Spec {
	s := validSpec()
	s.Metadata.Name = name
	for _, d := range deps {
		s.Spec.DependsOn = append(s.Spec.DependsOn, Dependency{Name: d})
	}
	return s
}

func TestFindCycle(t *testing.T) {
	tests := []struct {
		name  string
		specs []*Spec
		want  []string
	}{
		{"none", []*Spec{named("a", "b"), named("b", "c"), named("c")}, nil},
		{"missing dependency is no cycle", []*Spec{named("a", "x")}, nil},
		{"two", []*Spec{named("a", "b"), named("b", "a")}, []string{"a", "b", "a"}},
		{"three, from the smallest name", []*Spec{named("c", "a"), named("b", "c"), named("a", "b")}, []string{"a", "b", "c", "a"}},
		{"a cycle behind a chain", []*Spec{named("x", "b"), named("b", "c"), named("c", "b")}, []string{"b", "c", "b"}},
		{"diamond is no cycle", []*Spec{named("a", "b", "c"), named("b", "d"), named("c", "d"), named("d")}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FindCycle(tt.specs); !slices.Equal(got, tt.want) {
				t.Errorf("FindCycle = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckDependenciesAcrossFiles(t *testing.T) {
	one, err := Decode("one.yaml", []byte(`apiVersion: reconciler/v1
kind: Container
metadata: {name: a}
spec:
  image: reconciler/box:latest
  dependsOn:
  - name: b
    condition: Healthy
`))
	if err != nil {
		t.Fatal(err)
	}
	two, err := Decode("two.yaml", []byte(`apiVersion: reconciler/v1
kind: Container
metadata: {name: b}
spec:
  image: reconciler/box:latest
  dependsOn: [{name: a}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := CheckDependencies(append(one, two...)).Error()
	for _, want := range []string{
		`one.yaml:8: spec.dependsOn[0].condition: "b" has no healthcheck, so it can never be Healthy`,
		"one.yaml:7: spec.dependsOn[0].name: dependsOn cycle: a -> b -> a",
		"two.yaml:6: spec.dependsOn[0].name: dependsOn cycle: a -> b -> a",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("errors:\n%s\nwant a line %q", got, want)
		}
	}
	// Within one file the decoder refuses it already.
	if _, err := Decode("both.yaml", []byte("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: a}\nspec: {image: x, dependsOn: [{name: b}]}\n---\n"+
		"apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: b}\nspec: {image: x, dependsOn: [{name: a}]}\n")); err == nil ||
		!strings.Contains(err.Error(), "dependsOn cycle: a -> b -> a") {
		t.Errorf("one file with a cycle: %v", err)
	}
}
