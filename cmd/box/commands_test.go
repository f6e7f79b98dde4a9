package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

func TestTouchThenHealth(t *testing.T) {
	file := filepath.Join(t.TempDir(), "healthy")
	var out, errOut bytes.Buffer
	if code := run([]string{"health", "--file", file}, &out, &errOut); code != 1 {
		t.Fatalf("health before touch: exit %d, want 1 (stdout %q)", code, out.String())
	}
	if code := run([]string{"touch", "--file", file}, &out, &errOut); code != 0 {
		t.Fatalf("touch: exit %d, want 0 (stderr %q)", code, errOut.String())
	}
	if code := run([]string{"health", "--file", file}, &out, &errOut); code != 0 {
		t.Fatalf("health after touch: exit %d, want 0 (stdout %q)", code, out.String())
	}
}

func TestExitWritesStderrAndReturnsCode(t *testing.T) {
	var out, errOut bytes.Buffer
	cmd := &exitCmd{code: 3, stderr: "boom"}
	if code := cmd.run(&out, &errOut); code != 3 {
		t.Errorf("exit code = %d, want 3", code)
	}
	if errOut.String() != "boom\n" {
		t.Errorf("stderr = %q, want %q", errOut.String(), "boom\n")
	}
}

func TestRunUsageError(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"dance"}, &out, &errOut); code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), `unknown command "dance"`) || !strings.Contains(errOut.String(), "usage: box") {
		t.Errorf("stderr = %q, want the error and the usage", errOut.String())
	}
}
