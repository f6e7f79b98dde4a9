package controller

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/spec"
)

// A spec's secrets[] reach its container as files the agent writes below
// Options.SecretsDir, one directory per spec and definition:
//
//	SecretsDir/<spec>/<spec-hash label>/<index>
//
// each bind-mounted read-only at its target. So the content is in neither
// the container's environment, its docker inspect (only the host path),
// the state file nor the API. The directories are 0700 (only the agent and
// the daemon, both root, enter them); the files are 0444 so that a
// container running as any user can read its own secret, as with Docker
// swarm's secrets. A directory goes when its container is removed.

// secretValues is what a spec's secret files held when read for one
// reconcile: the hash and the container then agree on the same content.
type secretValues struct {
	env   map[string]string // env name -> value, trailing newline trimmed
	files [][]byte          // spec.secrets[i] content
	all   [][]byte          // everything read, in spec order, for the hash
}

func hasSecretFiles(s *spec.Spec) bool {
	if len(s.Spec.Secrets) > 0 {
		return true
	}
	for _, e := range s.Spec.Env {
		if e.ValueFrom != nil {
			return true
		}
	}
	return false
}

// readSecrets reads every file the spec names as a secret through
// Options.ReadSecret, which checks the current policy and the file.
func (c *Controller) readSecrets(s *spec.Spec) (*secretValues, error) {
	if c.opts.ReadSecret == nil {
		return nil, fmt.Errorf("secret files are not enabled")
	}
	v := &secretValues{env: map[string]string{}}
	for _, e := range s.Spec.Env {
		if e.ValueFrom == nil {
			continue
		}
		b, err := c.opts.ReadSecret(e.ValueFrom.File)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", e.Name, err)
		}
		v.env[e.Name] = strings.TrimRight(string(b), "\r\n")
		v.all = append(v.all, b)
	}
	for i, f := range s.Spec.Secrets {
		b, err := c.opts.ReadSecret(f.File)
		if err != nil {
			return nil, fmt.Errorf("secrets[%d]: %w", i, err)
		}
		v.files = append(v.files, b)
		v.all = append(v.all, b)
	}
	return v, nil
}

// withSecrets reads d's secret files (when it has any) and sets Want.
func (c *Controller) withSecrets(d Desired) Desired {
	if d.Spec == nil || !hasSecretFiles(d.Spec) {
		return d
	}
	v, err := c.readSecrets(d.Spec)
	if err != nil {
		d.SecretErr = err.Error()
		return d
	}
	d.secrets = v
	d.Want = spec.HashWithSecrets(d.Hash, c.opts.SecretKey, v.all)
	return d
}

// writeSecretFiles writes d's secrets[] for its new container and drops
// the copies of the spec's earlier definitions, whose containers are gone
// by now (decide removes before it creates).
func (c *Controller) writeSecretFiles(name string, d Desired) ([]docker.FileMount, error) {
	if d.secrets == nil || len(d.secrets.files) == 0 {
		return nil, nil
	}
	if c.opts.SecretsDir == "" {
		return nil, fmt.Errorf("secrets need the agent's secrets directory, which is not set")
	}
	specDir := filepath.Join(c.opts.SecretsDir, name)
	dir := filepath.Join(specDir, d.Label())
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("secrets directory: %w", err)
	}
	for _, p := range []string{c.opts.SecretsDir, specDir, dir} {
		if err := os.Chmod(p, 0o700); err != nil {
			return nil, fmt.Errorf("secrets directory: %w", err)
		}
	}
	if old, err := os.ReadDir(specDir); err == nil {
		for _, e := range old {
			if e.Name() != d.Label() {
				_ = os.RemoveAll(filepath.Join(specDir, e.Name()))
			}
		}
	}
	files := make([]docker.FileMount, 0, len(d.secrets.files))
	for i, content := range d.secrets.files {
		p := filepath.Join(dir, strconv.Itoa(i))
		if err := writeFileAtomic(p, content, 0o444); err != nil {
			return nil, fmt.Errorf("secrets[%d]: %w", i, err)
		}
		files = append(files, docker.FileMount{Source: p, Target: d.Spec.Spec.Secrets[i].TargetPath()})
	}
	return files, nil
}

// dropSecretFiles removes the copies of a removed container's secrets.
func (c *Controller) dropSecretFiles(name string, ct *docker.Container) {
	if c.opts.SecretsDir == "" || ct == nil {
		return
	}
	label := ct.Labels[docker.LabelSpecHash]
	if label == "" || strings.ContainsAny(label, "/.") {
		return
	}
	if err := os.RemoveAll(filepath.Join(c.opts.SecretsDir, name, label)); err != nil {
		c.log.Warn("cannot remove a container's secret files", "spec", name, "err", err)
	}
}

// forgetSecretFiles removes every copy of a deleted spec's secrets.
func (c *Controller) forgetSecretFiles(name string) {
	if c.opts.SecretsDir == "" {
		return
	}
	if err := os.RemoveAll(filepath.Join(c.opts.SecretsDir, name)); err != nil {
		c.log.Warn("cannot remove a spec's secret files", "spec", name, "err", err)
	}
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(tmp, mode)); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}
