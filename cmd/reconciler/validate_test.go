package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateRefusesOneNameInTwoFiles(t *testing.T) {
	dir := t.TempDir()
	doc := func(name string) string {
		return "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: " + name + "}\nspec:\n  image: reconciler/box:latest\n"
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := write("a.yaml", doc("web")), write("b.yaml", doc("db")+"---\n"+doc("web"))
	run := func(files ...string) (string, string, error) {
		cmd := validateCmd()
		var out, errOut bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&errOut)
		cmd.SetArgs(files)
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		err := cmd.Execute()
		return out.String(), errOut.String(), err
	}

	// Positive control: each file alone is fine.
	for _, f := range []string{a, b} {
		if out, stderr, err := run(f); err != nil || !strings.Contains(out, "web ok") {
			t.Fatalf("%s alone: %v\n%s%s", f, err, out, stderr)
		}
	}

	out, stderr, err := run(a, b)
	if err == nil {
		t.Fatalf("the same name in two files passed:\n%s", out)
	}
	want := b + `:9: metadata.name: spec "web" is already defined in ` + a + ", which keeps it"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr:\n%s\nwant it to contain %q", stderr, want)
	}
	if !strings.Contains(out, a+": web ok") || strings.Contains(out, b) {
		t.Errorf("stdout:\n%s\nwant a.yaml ok and nothing of b.yaml", out)
	}
}
