package docker

import (
	"strings"
	"testing"
)

func TestDigestForPicksTheReferencesRepository(t *testing.T) {
	d1 := "sha256:" + strings.Repeat("1", 64)
	d2 := "sha256:" + strings.Repeat("2", 64)
	info := ImageInfo{ID: "sha256:abc", RepoDigests: []string{
		"127.0.0.1:5001/box@" + d1, "127.0.0.1:5000/box@" + d2, "not a reference",
	}}
	for ref, want := range map[string]string{
		"127.0.0.1:5000/box:v1": d2,
		"127.0.0.1:5001/box":    d1,
		"127.0.0.1:5000/other":  "",
		"box:latest":            "",
		"Not/Valid":             "",
	} {
		if got := info.DigestFor(ref); got != want {
			t.Errorf("DigestFor(%q) = %q, want %q", ref, got, want)
		}
	}
	hub := ImageInfo{RepoDigests: []string{"nginx@" + d1}}
	if got := hub.DigestFor("docker.io/library/nginx:1"); got != d1 {
		t.Errorf("Docker Hub spellings: %q", got)
	}
}
