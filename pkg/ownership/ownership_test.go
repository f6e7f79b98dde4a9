package ownership

import (
	"maps"
	"testing"
)

// The names are the operator contract (DESIGN.md): scripts and other
// tools select the agent's containers by them.
func TestContractNames(t *testing.T) {
	if got := ContainerName("web"); got != "reconciler-web" {
		t.Errorf("ContainerName(web) = %q", got)
	}
	want := map[string]string{
		"reconciler.managed": "true", "reconciler.instance": "a1",
		"reconciler.spec": "web", "reconciler.spec-hash": "h1",
	}
	if got := Labels("a1", "web", "h1"); !maps.Equal(got, want) {
		t.Errorf("Labels = %v, want %v", got, want)
	}
}

func TestSelectorsMatchTheLabels(t *testing.T) {
	labels := Labels("a1", "web", "h1")
	matches := func(sel map[string]string) bool {
		for k, v := range sel {
			if labels[k] != v {
				return false
			}
		}
		return true
	}
	for name, sel := range map[string]map[string]string{
		"Selector": Selector("a1"), "SpecSelector": SpecSelector("a1", "web"),
	} {
		if !matches(sel) {
			t.Errorf("%s %v does not match the labels %v it should select", name, sel, labels)
		}
	}
	if matches(SpecSelector("a1", "db")) || matches(Selector("a2")) {
		t.Error("a selector for another spec or agent matches")
	}
}

func TestOwns(t *testing.T) {
	labels := Labels("a1", "web", "h1")
	if !Owns(labels, "a1", "web") {
		t.Fatal("the agent does not own the container it labelled")
	}
	for name, tc := range map[string]struct {
		labels          map[string]string
		instance, specN string
	}{
		"another agent":  {labels, "a2", "web"},
		"another spec":   {labels, "a1", "db"},
		"no labels":      {nil, "a1", "web"},
		"managed=false":  {map[string]string{LabelManaged: "false", LabelInstance: "a1", LabelSpec: "web"}, "a1", "web"},
		"no managed key": {map[string]string{LabelInstance: "a1", LabelSpec: "web"}, "a1", "web"},
	} {
		if Owns(tc.labels, tc.instance, tc.specN) {
			t.Errorf("%s: Owns = true", name)
		}
	}
}
