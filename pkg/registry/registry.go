// Package registry holds the agent's registry credentials: a Docker
// config.json (--registry-config) read from a private file, and the
// lookup of the entry for an image's registry. The daemon reads no
// client config, so every pull and digest check carries the credentials
// itself (the X-Registry-Auth header).
//
// Credentials never leave this package except encoded for the daemon:
// Config has no exported field, and its String and errors name hosts and
// users only.
package registry

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/distribution/reference"
	dregistry "github.com/docker/docker/api/types/registry"

	"github.com/reconciler/reconciler/pkg/secrets"
)

// DockerHub is the registry host images without a host name live on.
const DockerHub = "docker.io"

// hubAliases are the spellings Docker's tools use for Docker Hub in
// config.json and image names.
var hubAliases = []string{"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}

// entry is one registry's credentials.
type entry struct {
	host          string
	username      string
	password      string
	identityToken string
}

// Config is a parsed config.json: credentials by registry host.
type Config struct {
	entries map[string]entry
}

// fileEntry is an auths entry as Docker writes it.
type fileEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// Load reads the config file at path, which must be a regular file owned
// by root or the agent's user with mode 0600 or stricter.
func Load(path string) (*Config, error) {
	raw, err := secrets.ReadOwnerOnlyFile("--registry-config", path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("--registry-config %s: %w", path, err)
	}
	return c, nil
}

// Parse reads a Docker config.json. Only "auths" is used; credsStore and
// credHelpers name programs the agent does not run, and are refused so
// that an operator does not believe they are in force. Errors name the
// registry, never a credential.
func Parse(raw []byte) (*Config, error) {
	var doc struct {
		Auths       map[string]fileEntry `json:"auths"`
		CredsStore  string               `json:"credsStore"`
		CredHelpers map[string]string    `json:"credHelpers"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not JSON: syntax error at byte %d", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("field %s: wrong type (want %s)", te.Field, te.Type)
		}
		return nil, errors.New("not a Docker config.json")
	}
	if doc.CredsStore != "" || len(doc.CredHelpers) > 0 {
		return nil, errors.New("credsStore and credHelpers are not supported: put the credentials in auths")
	}
	c := &Config{entries: map[string]entry{}}
	for key, fe := range doc.Auths {
		host := NormalizeHost(key)
		if host == "" {
			return nil, fmt.Errorf("auths: %q is not a registry host", key)
		}
		e := entry{host: host, username: fe.Username, password: fe.Password, identityToken: fe.IdentityToken}
		if fe.Auth != "" {
			dec, err := base64.StdEncoding.DecodeString(fe.Auth)
			if err != nil {
				return nil, fmt.Errorf("auths.%s.auth: not base64", key)
			}
			user, pass, ok := strings.Cut(string(dec), ":")
			if !ok {
				return nil, fmt.Errorf("auths.%s.auth: not base64 of user:password", key)
			}
			e.username, e.password = user, pass
		}
		if e.identityToken == "" && (e.username == "" || e.password == "") {
			return nil, fmt.Errorf("auths.%s: needs auth, username and password, or identitytoken", key)
		}
		if _, dup := c.entries[host]; dup {
			return nil, fmt.Errorf("auths: two entries for registry %s", host)
		}
		c.entries[host] = e
	}
	return c, nil
}

// NormalizeHost turns a config.json key ("https://index.docker.io/v1/",
// "http://127.0.0.1:5000", "ghcr.io") into the registry host image names
// use; Docker Hub's aliases all become docker.io. It returns "" for a key
// with no host.
func NormalizeHost(key string) string {
	k := strings.TrimSpace(key)
	if strings.Contains(k, "://") {
		u, err := url.Parse(k)
		if err != nil {
			return ""
		}
		k = u.Host
	} else if i := strings.IndexByte(k, '/'); i >= 0 {
		k = k[:i]
	}
	k = strings.ToLower(k)
	if slices.Contains(hubAliases, k) {
		return DockerHub
	}
	return k
}

// HostOf is the registry host of an image reference, docker.io for a
// name without one.
func HostOf(ref string) (string, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", fmt.Errorf("image %q: %w", ref, err)
	}
	return NormalizeHost(reference.Domain(n)), nil
}

// Hosts lists the registries the config has credentials for, sorted.
func (c *Config) Hosts() []string {
	if c == nil {
		return nil
	}
	out := make([]string, 0, len(c.entries))
	for h := range c.entries {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// Username is the user name of host's entry ("" for an identity token).
func (c *Config) Username(host string) string {
	if c == nil {
		return ""
	}
	return c.entries[host].username
}

// Equal reports whether c and o hold the same credentials.
func (c *Config) Equal(o *Config) bool {
	if c == nil || o == nil {
		return c == o
	}
	if len(c.entries) != len(o.entries) {
		return false
	}
	for h, e := range c.entries {
		if o.entries[h] != e {
			return false
		}
	}
	return true
}

// String names the registries only.
func (c *Config) String() string {
	return fmt.Sprintf("registry credentials for %s", strings.Join(c.Hosts(), ", "))
}

// EncodedAuth is the X-Registry-Auth value for pulling or inspecting ref:
// the entry for ref's registry, or "" when there is none (an anonymous
// request).
func (c *Config) EncodedAuth(ref string) (string, error) {
	if c == nil || len(c.entries) == 0 {
		return "", nil
	}
	host, err := HostOf(ref)
	if err != nil {
		return "", err
	}
	e, ok := c.entries[host]
	if !ok {
		return "", nil
	}
	server := e.host
	if server == DockerHub {
		server = "https://index.docker.io/v1/"
	}
	enc, err := dregistry.EncodeAuthConfig(dregistry.AuthConfig{Username: e.username, Password: e.password,
		IdentityToken: e.identityToken, ServerAddress: server})
	if err != nil {
		return "", fmt.Errorf("encode credentials for %s: %w", e.host, err)
	}
	return enc, nil
}

// Current holds the credentials in force; the agent swaps them when the
// file changes. A nil Current, or one holding nil, has no credentials.
type Current struct {
	p atomic.Pointer[Config]
}

// Get returns the credentials in force (nil: none).
func (c *Current) Get() *Config {
	if c == nil {
		return nil
	}
	return c.p.Load()
}

// Set puts cfg in force.
func (c *Current) Set(cfg *Config) { c.p.Store(cfg) }

// EncodedAuth is Get().EncodedAuth(ref).
func (c *Current) EncodedAuth(ref string) (string, error) { return c.Get().EncodedAuth(ref) }
