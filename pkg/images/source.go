package images

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// source is a Go main package: its directory and the hash of its Go files
// and of the Dockerfile that packs it.
type source struct {
	pkg  string
	dir  string
	hash string
}

// findSource asks the go command where pkg lives, so this works from any
// directory of the module (or of a module that requires it).
func findSource(ctx context.Context, pkg, dockerfile string) (source, error) {
	out, err := goCommand(ctx, "", nil, "list", "-json", pkg)
	if err != nil {
		return source{}, err
	}
	var p struct {
		Dir     string
		GoFiles []string
	}
	if err := json.Unmarshal(out, &p); err != nil {
		return source{}, fmt.Errorf("go list %s: %w", pkg, err)
	}
	// Test files are left out: they do not change the binary.
	h := sha256.New()
	fmt.Fprintf(h, "Dockerfile %d\n%s", len(dockerfile), dockerfile)
	for _, name := range p.GoFiles {
		data, err := os.ReadFile(filepath.Join(p.Dir, name))
		if err != nil {
			return source{}, fmt.Errorf("hash sources of %s: %w", pkg, err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(data))
		h.Write(data)
	}
	return source{pkg: pkg, dir: p.Dir, hash: hex.EncodeToString(h.Sum(nil))}, nil
}

func compile(ctx context.Context, src source, goos, goarch string) ([]byte, error) {
	tmp, err := os.MkdirTemp("", "reconciler-image-")
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", src.pkg, err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "bin")
	env := []string{"CGO_ENABLED=0", "GOOS=" + goos, "GOARCH=" + goarch}
	if _, err := goCommand(ctx, src.dir, env, "build", "-trimpath", "-ldflags=-s -w", "-o", out, "."); err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", src.pkg, err)
	}
	return bin, nil
}

func goCommand(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
