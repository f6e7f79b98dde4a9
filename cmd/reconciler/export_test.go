package main

import (
	"errors"
	"io"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/reconciler/reconciler/pkg/spec"
)

// manifestKinds lists "Kind/name" of each document of out.
func manifestKinds(t *testing.T, out string) []string {
	t.Helper()
	dec := yaml.NewDecoder(strings.NewReader(out))
	var kinds []string
	for {
		var m struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		}
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return kinds
		}
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		kinds = append(kinds, m.Kind+"/"+m.Metadata.Name)
	}
}

func TestExportFromFiles(t *testing.T) {
	out, errOut, err := (*jobAgent)(nil).reconciler("export", "--format", "kubernetes",
		"-f", "../../specs", "-f", "../../specs/examples/claude-code-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(manifestKinds(t, out), " ")
	if got != "Job/batch Deployment/ticker Job/claude-fix-tests" {
		t.Errorf("exported %s", got)
	}
	for _, want := range []string{
		"warning: ticker: spec.resources.pids: ",
		"warning: claude-fix-tests: spec.env[0].valueFrom.file: create Secret claude-fix-tests-secrets with key anthropic-api-key",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
		if !strings.HasPrefix(line, "warning: ") || strings.Count(line, ": ") < 3 {
			t.Errorf("stderr line %q is not 'warning: SPEC: FIELD: what'", line)
		}
	}

	out, _, err = (*jobAgent)(nil).reconciler("export", "-f", "../../specs", "ticker")
	if err != nil || strings.Join(manifestKinds(t, out), " ") != "Deployment/ticker" {
		t.Errorf("export of one name: %v\n%s", err, out)
	}
}

func TestExportRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"another format", []string{"--format", "nomad", "-f", "../../specs"}, `--format "nomad": kubernetes is the only format`},
		{"an unknown name", []string{"-f", "../../specs", "nope"}, `no spec named "nope"`},
		{"a bad file", []string{"-f", "../../pkg/spec/testdata/unknown-field.bad.yaml"}, "unknown-field.bad.yaml:"},
		{"a name twice", []string{"-f", "../../specs/ticker.yaml", "-f", "../../specs/ticker.yaml"}, "ticker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, _, err := (*jobAgent)(nil).reconciler(append([]string{"export"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed manifests despite the error:\n%s", out)
			}
		})
	}
}

func TestExportFromTheAgent(t *testing.T) {
	a := startJobAgent(t)
	for _, doc := range []string{
		"apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: svc}\nspec: {image: i, restartPolicy: Always}\n",
		"apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: job}\nspec: {image: i, restartPolicy: Never, resources: {pids: 10}}\n",
	} {
		specs, err := spec.Decode("t.yaml", []byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		a.put(t, specs[0])
	}
	out, errOut, err := a.reconciler("export", "--format", "kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(manifestKinds(t, out), " "); got != "Job/job Deployment/svc" {
		t.Errorf("exported %s", got)
	}
	if strings.TrimSpace(errOut) != "warning: job: spec.resources.pids: Kubernetes has no per-pod pids limit (10); the kubelet's podPidsLimit applies to every pod of a node" {
		t.Errorf("stderr %q", errOut)
	}

	out, _, err = a.reconciler("export", "svc")
	if err != nil || strings.Join(manifestKinds(t, out), " ") != "Deployment/svc" {
		t.Errorf("export svc: %v\n%s", err, out)
	}
	if _, _, err := a.reconciler("export", "absent"); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("export of an unknown spec: err = %v", err)
	}
}
