package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
	"github.com/reconciler/reconciler/pkg/source"
	"github.com/reconciler/reconciler/pkg/store"
)

// The wire types keep the JSON the API sent when it served the agent's own
// types, so clients built before them still decode every field.
func TestWireTypesKeepTheirJSON(t *testing.T) {
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	c := docker.Container{ID: "c1", Name: "reconciler-web", Image: "box:1", ImageID: "sha256:1", Labels: map[string]string{"a": "b"},
		State: "exited", Created: at, Inspected: true, ExitCode: 3, OOMKilled: true, Error: "e",
		StartedAt: at, FinishedAt: at, Health: "healthy", Pid: 42}
	same(t, "container", c, containerView(c))
	if n := reflect.TypeFor[docker.Container]().NumField(); n != reflect.TypeFor[Container]().NumField()+1 {
		t.Errorf("docker.Container has %d fields: give the new ones to api.Container and containerView", n)
	}
	src := store.Source{Kind: store.SourceFile, Path: "/specs/web.yaml"}
	same(t, "source", src, sourceView(src))
	fe := source.FileError{Path: "/specs/bad.yaml", Error: "line 3: oops", Since: at}
	same(t, "file error", fe, FileError(fe))
}

func same(t *testing.T, what string, internal, wire any) {
	t.Helper()
	a, err := json.Marshal(internal)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(wire)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Errorf("%s: wire JSON\n%s\nwant\n%s", what, b, a)
	}
}
