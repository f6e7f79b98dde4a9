package export

import (
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/registry"
	"github.com/reconciler/reconciler/pkg/spec"
)

func TestKubernetesImagePullSecretsAndAutoUpdate(t *testing.T) {
	cfg, err := registry.Parse([]byte(`{"auths": {"http://127.0.0.1:5000": {"username": "alice", "password": "s3cret-pw"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	private := decodeSpec(t, "web", "image: 127.0.0.1:5000/box:v1\nautoUpdate: {interval: 1m}")
	public := decodeSpec(t, "pub", "image: reconciler/box:latest")
	out, warns, err := KubernetesWith([]*spec.Spec{private, public}, Options{Registries: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ds := docs(t, out)
	pod := ds[0]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)
	secrets, _ := pod["imagePullSecrets"].([]any)
	if len(secrets) != 1 || secrets[0].(map[string]any)["name"] != "regcred-127-0-0-1-5000" {
		t.Fatalf("imagePullSecrets = %v", pod["imagePullSecrets"])
	}
	if _, ok := ds[1]["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["imagePullSecrets"]; ok {
		t.Error("an image of a registry without credentials got imagePullSecrets")
	}
	var all []string
	for _, w := range warns {
		all = append(all, w.String())
	}
	text := strings.Join(all, "\n")
	for _, want := range []string{
		"web: spec.image: registry 127.0.0.1:5000",
		"kubectl create secret docker-registry regcred-127-0-0-1-5000 --docker-server=127.0.0.1:5000 --docker-username=alice",
		"web: spec.autoUpdate: Kubernetes does not follow a tag's digest",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("warnings lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text+string(out), "s3cret-pw") {
		t.Error("a password is in the output")
	}
}
