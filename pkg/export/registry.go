package export

import (
	"fmt"
	"strings"

	"github.com/reconciler/reconciler/pkg/registry"
)

// Options carry what the agent knows besides its specs.
type Options struct {
	// Registries are the agent's registry credentials (--registry-config);
	// only hosts and user names are read from them.
	Registries *registry.Config
}

type localRef struct {
	Name string `yaml:"name"`
}

// PullSecretName is the docker-registry Secret a manifest names for
// registry host.
func PullSecretName(host string) string {
	r := strings.NewReplacer(".", "-", ":", "-", "_", "-")
	return "regcred-" + strings.Trim(r.Replace(strings.ToLower(host)), "-")
}

// pullSecrets maps the agent's credentials for the spec's image registry
// to imagePullSecrets, and says how to make that Secret: the manifest never
// carries a credential. autoUpdate has no Kubernetes equivalent.
func (m *mapper) pullSecrets() []localRef {
	c := &m.spec.Spec
	if u := c.AutoUpdate; u != nil {
		m.warn("spec.autoUpdate", "Kubernetes does not follow a tag's digest or roll back a failed image by itself: "+
			"use an image updater (Flux image automation, Argo CD Image Updater) and a Deployment's progressDeadlineSeconds with `kubectl rollout undo`")
	}
	cfg := m.opts.Registries
	if cfg == nil {
		return nil
	}
	host, err := registry.HostOf(c.Image)
	if err != nil {
		return nil
	}
	hosts := cfg.Hosts()
	found := false
	for _, h := range hosts {
		found = found || h == host
	}
	if !found {
		return nil
	}
	name := PullSecretName(host)
	server := host
	if host == registry.DockerHub {
		server = "https://index.docker.io/v1/"
	}
	user := cfg.Username(host)
	hint := fmt.Sprintf("kubectl create secret docker-registry %s --docker-server=%s --docker-username=%s --docker-password=...", name, server, user)
	if user == "" {
		hint = fmt.Sprintf("kubectl create secret docker-registry %s --docker-server=%s --docker-username=<user> --docker-password=<identity token>", name, server)
	}
	m.warn("spec.image", "registry %s needs the agent's credentials: the pod names imagePullSecrets %s; create it in the namespace with: %s", host, name, hint)
	return []localRef{{Name: name}}
}

// OptionsFrom reads the agent's --registry-config file (mode 0600, as the
// agent needs it); "" gives no options.
func OptionsFrom(registryConfig string) (Options, error) {
	var o Options
	if registryConfig == "" {
		return o, nil
	}
	cfg, err := registry.Load(registryConfig)
	if err != nil {
		return o, err
	}
	o.Registries = cfg
	return o, nil
}
