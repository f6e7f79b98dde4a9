package controller

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A seccomp profile allowed by path reaches the daemon as the inline JSON
// its API expects; other options pass as written.
func TestInlineSeccompProfiles(t *testing.T) {
	dir := t.TempDir()
	profile := filepath.Join(dir, "strict.json")
	if err := os.WriteFile(profile, []byte("{\n  \"defaultAction\": \"SCMP_ACT_ERRNO\"\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	notJSON := filepath.Join(dir, "profile.txt")
	if err := os.WriteFile(notJSON, []byte("allow everything"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := inlineSeccompProfiles([]string{"no-new-privileges", "seccomp=builtin", "apparmor=x"}); got != nil || err != nil {
		t.Errorf("no profile path: %v, %v; want the spec's options to stand", got, err)
	}
	got, err := inlineSeccompProfiles([]string{"no-new-privileges", "seccomp:" + profile})
	if err != nil || len(got) != 2 || got[0] != "no-new-privileges" || got[1] != `seccomp={"defaultAction":"SCMP_ACT_ERRNO"}` {
		t.Errorf("profile path: %q, %v", got, err)
	}
	for _, bad := range []string{filepath.Join(dir, "missing.json"), notJSON} {
		if _, err := inlineSeccompProfiles([]string{"seccomp=" + bad}); err == nil || !strings.Contains(err.Error(), "seccomp profile") {
			t.Errorf("%s: %v, want an error naming the seccomp profile", bad, err)
		}
	}
}
