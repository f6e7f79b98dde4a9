package export

import (
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/spec"
)

func TestKubernetesEgressWarns(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"allow-list": {"image: i\nrestartPolicy: Never\negress: {allow: [\"api.anthropic.com:443\", \"*.github.com:443\"]}", "cannot express a host allow-list (api.anthropic.com:443, *.github.com:443)"},
		"none":       {"image: i\nrestartPolicy: Never\negress: {allow: []}", "no egress at all is not mapped"},
	} {
		s := decodeSpec(t, "job", tc.body)
		out, warnings, err := Kubernetes([]*spec.Spec{s})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var found bool
		for _, w := range warnings {
			if w.Field == "spec.egress" && strings.Contains(w.Message, tc.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: warnings %v lack %q", name, warnings, tc.want)
		}
		if strings.Contains(string(out), "egress") || strings.Contains(string(out), "PROXY") {
			t.Errorf("%s: the manifest claims to map egress:\n%s", name, out)
		}
	}
	plain := decodeSpec(t, "job", "image: i")
	if _, warnings, _ := Kubernetes([]*spec.Spec{plain}); len(warnings) != 0 {
		t.Errorf("a spec without egress warns: %v", warnings)
	}
}
