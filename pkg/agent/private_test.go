package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadPrivateFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	if b, err := ReadPrivateFile("secret file", write("ok", []byte("s3cret\n"), 0o600)); err != nil || string(b) != "s3cret\n" {
		t.Fatalf("private file: %q, %v", b, err)
	}
	for _, tc := range []struct {
		name string
		path string
		want string
	}{
		{"world-readable", write("open", []byte("x"), 0o644), "readable by every user"},
		{"too big", write("big", make([]byte, maxSecretSize+1), 0o600), "over 65536 bytes"},
		{"missing", filepath.Join(dir, "none"), "no such file"},
	} {
		_, err := ReadPrivateFile("secret file", tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "secret file") {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
