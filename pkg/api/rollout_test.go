package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/reconciler/reconciler/pkg/store"
)

func TestApplyRefusesDependsOnCycle(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("a", "box:1", "dependsOn: [{name: b}]"))
	f.apply(specYAML("c", "box:1"))
	// b -> a -> b closes a cycle with what is stored.
	e := f.wantError("POST", "/v1/specs", specYAML("b", "box:1", "dependsOn: [{name: a}]"), http.StatusBadRequest)
	if !strings.Contains(e.Message, "dependsOn cycle: a -> b -> a") || e.Field != "spec.dependsOn[0].name" {
		t.Fatalf("error %+v, want the cycle named on spec.dependsOn[0].name", e)
	}
	if _, err := f.st.GetSpec("b"); err == nil {
		t.Fatal("b was stored despite the cycle")
	}
	// The positive control: the same body without the cycle is taken.
	f.apply(specYAML("b", "box:1", "dependsOn: [{name: c}]"))
	// Within one body, validation names it.
	e = f.wantError("POST", "/v1/specs", specYAML("x", "box:1", "dependsOn: [{name: y}]")+"---\n"+specYAML("y", "box:1", "dependsOn: [{name: x}]"), http.StatusBadRequest)
	if !strings.Contains(e.Message, "dependsOn cycle: x -> y -> x") {
		t.Fatalf("error %+v, want the cycle named", e)
	}
}

func TestRestartRecordsARequest(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box:1", "updateStrategy: {type: StartFirst}"))
	f.takeChanged()
	res, err := f.c.Restart(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.st.GetSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if res.RestartedAt.IsZero() || !rec.RestartedAt.Equal(res.RestartedAt) || rec.Hash != rec.Spec.Hash() {
		t.Fatalf("answer %+v, stored %+v: want the request stored, the definition kept", res, rec)
	}
	if ch := f.takeChanged(); len(ch) != 1 || ch[0] != "web" {
		t.Fatalf("controller told %v, want web", ch)
	}
	// A new definition keeps the request, as kubectl apply keeps the
	// restartedAt annotation; otherwise applying would restart again.
	f.apply(specYAML("web", "box:2", "updateStrategy: {type: StartFirst}"))
	if rec2, _ := f.st.GetSpec("web"); !rec2.RestartedAt.Equal(rec.RestartedAt) {
		t.Fatalf("restartedAt after apply %v, want %v", rec2.RestartedAt, rec.RestartedAt)
	}
	evs, _ := f.st.Events("web", 0, 0)
	found := false
	for _, ev := range evs {
		found = found || ev.Reason == "RestartRequested" && strings.Contains(ev.Message, "StartFirst")
	}
	if !found {
		t.Fatalf("events %+v, want RestartRequested naming the strategy", evs)
	}
	if e := f.wantError("POST", "/v1/specs/nope/restart", "", http.StatusNotFound); !strings.Contains(e.Message, "nope") {
		t.Fatalf("unknown spec: %+v", e)
	}
	// A spec from a file may be restarted: only the request is written.
	if err := f.st.PutSpec(store.Record{Spec: rec.Spec, Hash: rec.Hash, Source: store.Source{Kind: store.SourceFile, Path: "/x.yaml"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Restart(context.Background(), "web"); err != nil {
		t.Fatalf("restart of a file spec: %v", err)
	}
}
