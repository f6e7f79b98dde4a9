package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
)

// The example specs shipped in specs/ must decode, validate, be unique and
// pass the default policy, since `make run` starts an agent on them.
func TestExampleSpecs(t *testing.T) {
	files, err := filepath.Glob("../../specs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example specs in ../../specs: %v", err)
	}
	checkExamples(t, files, DefaultPolicy(), "")
}

// specs/examples/ holds specs the agent of `make run` does not read (they
// need an image built apart, or a policy), together with the policy file
// they are written for: they must pass that policy.
func TestExampleSpecsWithPolicy(t *testing.T) {
	const dir = "../../specs/examples"
	policy, err := LoadPolicy(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatalf("example policy: %v", err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var specFiles []string
	for _, f := range files {
		if filepath.Base(f) != "policy.yaml" {
			specFiles = append(specFiles, f)
		}
	}
	if len(specFiles) == 0 {
		t.Fatalf("no example specs in %s", dir)
	}
	// A bind source must exist to pass the policy, and /srv/work is not
	// on this machine: move the allowed paths and the sources below a
	// temporary root, as the host they are written for would have them.
	root := t.TempDir()
	for i, p := range policy.AllowedBindPaths {
		policy.AllowedBindPaths[i] = filepath.Join(root, p)
	}
	checkExamples(t, specFiles, policy, root)

	// The example policy is the reference: it shows every field.
	raw, err := os.ReadFile(filepath.Join(dir, "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for field := range yamlFields(reflect.TypeFor[Policy]()) {
		if !regexp.MustCompile(`(?m)^` + field + `:`).Match(raw) {
			t.Errorf("specs/examples/policy.yaml does not show the policy field %s", field)
		}
	}
}

// checkExamples checks files against policy; bind sources are made below
// root when root is set.
func checkExamples(t *testing.T, files []string, policy *Policy, root string) {
	t.Helper()
	var all []*Spec
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		specs, err := Decode(filepath.Base(f), data)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		for _, s := range specs {
			for i, m := range s.Spec.Mounts {
				if m.Type == "bind" && root != "" {
					s.Spec.Mounts[i].Source = filepath.Join(root, m.Source)
					if err := os.MkdirAll(s.Spec.Mounts[i].Source, 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
			if ws := s.Spec.Workspace; ws != nil && root != "" {
				ws.Source = filepath.Join(root, ws.Source)
				if err := os.MkdirAll(ws.Source, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if errs := policy.Check(s); len(errs) > 0 {
				t.Errorf("refused by the policy:\n%v", errs)
			}
		}
		all = append(all, specs...)
	}
	if errs := ValidateSet(all); len(errs) > 0 {
		t.Errorf("%v", errs)
	}
}

// The Claude Code example is the job the product exists for: README shows
// it with admission (priority and resources), an egress allow-list and a
// private workspace (its output is kept for every job), so it must use them.
func TestClaudeCodeExampleUsesTheJobFeatures(t *testing.T) {
	data, err := os.ReadFile("../../specs/examples/claude-code-job.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specs, err := Decode("claude-code-job.yaml", data)
	if err != nil || len(specs) != 1 {
		t.Fatalf("decode: %v (%d specs)", err, len(specs))
	}
	c := specs[0].Spec
	if c.Priority == 0 || c.Resources.Memory == "" || c.Resources.CPUs == "" {
		t.Errorf("admission: priority %d, resources %+v; want a priority and memory and cpus", c.Priority, c.Resources)
	}
	if c.Egress == nil || len(c.Egress.Allow) == 0 {
		t.Errorf("egress: %+v; want an allow-list", c.Egress)
	}
	if c.Workspace == nil || c.Workspace.Source == "" || c.Workspace.Target == "" {
		t.Errorf("workspace: %+v; want source and target", c.Workspace)
	}
	if c.RestartPolicy != RestartNever || c.TTLAfterFinished.Duration == 0 {
		t.Errorf("restartPolicy %s, ttlAfterFinished %s: want a Never job kept for a while", c.RestartPolicy, c.TTLAfterFinished)
	}
}
