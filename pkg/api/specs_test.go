package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/source"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

func TestVersion(t *testing.T) {
	f := newFixture(t)
	v, err := f.c.Version(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if v != (api.Version{Version: "1.2.3", Instance: instance, API: "v1"}) {
		t.Fatalf("version %+v", v)
	}
}

func TestApplyCreatesConfiguresAndLeavesUnchanged(t *testing.T) {
	f := newFixture(t)
	steps := []struct {
		name        string
		yaml        string
		want        api.Action
		wantChanged bool
	}{
		{"new", specYAML("web", "box:1"), api.ActionCreated, true},
		{"same again", specYAML("web", "box:1"), api.ActionUnchanged, false},
		{"new image", specYAML("web", "box:2"), api.ActionConfigured, true},
		// backoff does not change the hash, but must still be stored.
		{"backoff only", specYAML("web", "box:2", "backoff: {initial: 3s}"), api.ActionConfigured, true},
	}
	for _, s := range steps {
		res := f.apply(s.yaml)
		if res.DryRun || len(res.Specs) != 1 || res.Specs[0].Name != "web" || res.Specs[0].Action != s.want {
			t.Fatalf("%s: result %+v, want web %s", s.name, res, s.want)
		}
		changed := f.takeChanged()
		if got := len(changed) == 1 && changed[0] == "web"; got != s.wantChanged {
			t.Fatalf("%s: controller told %v, want told=%v", s.name, changed, s.wantChanged)
		}
	}
	rec, err := f.st.GetSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Source.Kind != store.SourceAPI || rec.Spec.Spec.Image != "box:2" ||
		rec.Spec.Spec.Backoff.Initial.Duration != 3*time.Second || rec.Hash != rec.Spec.Hash() {
		t.Fatalf("stored %+v", rec)
	}
	evs, err := f.st.Events("web", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 || evs[len(evs)-1].Reason != "Applied" {
		t.Fatalf("events %+v, want an Applied event", evs)
	}
}

func TestApplyJSONAndMany(t *testing.T) {
	f := newFixture(t)
	body := `[{"apiVersion":"reconciler/v1","kind":"Container","metadata":{"name":"a"},"spec":{"image":"box"}},
	          {"apiVersion":"reconciler/v1","kind":"Container","metadata":{"name":"b"},"spec":{"image":"box"}}]`
	res, err := f.c.Apply(t.Context(), []byte(body), "application/json; charset=utf-8", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Specs) != 2 || res.Specs[0].Action != api.ActionCreated || res.Specs[1].Name != "b" {
		t.Fatalf("result %+v", res)
	}
	yaml := specYAML("a", "box") + "---\n" + specYAML("c", "box")
	res = f.apply(yaml)
	if got := []api.Action{res.Specs[0].Action, res.Specs[1].Action}; !slices.Equal(got, []api.Action{api.ActionUnchanged, api.ActionCreated}) {
		t.Fatalf("actions %v", got)
	}
	list, err := f.c.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range list {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("list %v", names)
	}
}

func TestApplyDryRunChangesNothing(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box:1"))
	f.takeChanged()
	body := specYAML("web", "box:2") + "---\n" + specYAML("new", "box") + "---\n" + specYAML("same", "box")
	f.apply(specYAML("same", "box"))
	f.takeChanged()
	res, err := f.c.Apply(t.Context(), []byte(body), "application/yaml", true)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]api.Action{}
	for _, a := range res.Specs {
		got[a.Name] = a.Action
	}
	want := map[string]api.Action{"web": api.ActionConfigured, "new": api.ActionCreated, "same": api.ActionUnchanged}
	if !res.DryRun || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("dry run %+v, want %v", res, want)
	}
	if rec, _ := f.st.GetSpec("web"); rec.Spec.Spec.Image != "box:1" {
		t.Fatalf("dry run changed web to %s", rec.Spec.Spec.Image)
	}
	if _, err := f.st.GetSpec("new"); err == nil {
		t.Fatal("dry run stored a spec")
	}
	if c := f.takeChanged(); len(c) != 0 {
		t.Fatalf("dry run told the controller %v", c)
	}
	// A dry run reports problems as a real apply would.
	_, err = f.c.Apply(t.Context(), []byte(specYAML("x", "box", "privileged: true")), "application/yaml", true)
	if ae := apiError(t, err, http.StatusBadRequest); ae.Field != "spec.privileged" {
		t.Fatalf("dry run of a refused spec: %+v", ae)
	}
}

// Every bad body gets a clear JSON error and leaves what is stored alone.
func TestApplyBadInput(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box:1"))
	f.takeChanged()
	huge := specYAML("web", "box:2") + "# " + strings.Repeat("x", api.DefaultMaxBody) + "\n"
	cases := []struct {
		name, body, ctype string
		status            int
		field, msg        string
		line              int
	}{
		{"malformed YAML", "apiVersion: reconciler/v1\nkind: [Container\n", "application/yaml", 400, "", "invalid YAML", 0},
		{"unknown field", specYAML("web", "box:2", "imagee: box"), "application/yaml", 400, "spec.imagee", "unknown field", 7},
		{"wrong type", specYAML("web", "box:2", "restartPolicy: [Always]"), "application/yaml", 400, "spec.restartPolicy", "", 7},
		{"invalid value", specYAML("web", "box:2", "resources: {memory: 12x}"), "application/yaml", 400, "spec.resources.memory", "", 0},
		{"bad name", specYAML("Web_1", "box:2"), "application/yaml", 400, "metadata.name", "DNS label", 4},
		{"refused by policy", specYAML("web", "box:2", "privileged: true"), "application/yaml", 400, "spec.privileged", "policy", 0},
		{"one bad of two", specYAML("web", "box:2") + "---\n" + specYAML("other", ""), "application/yaml", 400, "spec.image", "required", 0},
		{"same name twice", specYAML("web", "box:2") + "---\n" + specYAML("web", "box:3"), "application/yaml", 400, "metadata.name", "", 0},
		{"malformed JSON", `{"apiVersion": "reconciler/v1",`, "application/json", 400, "", "invalid JSON", 0},
		{"JSON unknown field", `{"apiVersion":"reconciler/v1","kind":"Container","metadata":{"name":"web"},"spec":{"image":"box","nope":1}}`, "application/json", 400, "spec.nope", "", 1},
		{"empty body", "", "application/yaml", 400, "", "no spec", 0},
		{"only comments", "# nothing\n", "application/yaml", 400, "", "no spec", 0},
		{"unsupported type", specYAML("web", "box:2"), "text/plain", 415, "", "application/yaml", 0},
		{"oversized", huge, "application/yaml", 413, "", "limit", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := f.wantError("POST", "/v1/specs", c.body, c.status, "Content-Type", c.ctype)
			if e.Field != c.field || !strings.Contains(e.Message, c.msg) || (c.line != 0 && e.Line != c.line) {
				t.Fatalf("error %+v, want field %q, message with %q, line %d", e, c.field, c.msg, c.line)
			}
			wantRule := "" // only a policy refusal has a rule
			if c.name == "refused by policy" {
				wantRule = "allowPrivileged"
			}
			if e.Rule != wantRule {
				t.Fatalf("rule %q, want %q", e.Rule, wantRule)
			}
			rec, err := f.st.GetSpec("web")
			if err != nil || rec.Spec.Spec.Image != "box:1" {
				t.Fatalf("stored web changed: %+v %v", rec, err)
			}
			if specs, _ := f.st.ListSpecs(); len(specs) != 1 {
				t.Fatalf("%d specs stored, want 1", len(specs))
			}
			if c := f.takeChanged(); len(c) != 0 {
				t.Fatalf("controller told %v", c)
			}
		})
	}
}

func TestApplyReportsEveryProblem(t *testing.T) {
	f := newFixture(t)
	_, err := f.c.Apply(t.Context(), []byte(specYAML("web", "", "restartPolicy: Sometimes")), "application/yaml", false)
	ae := apiError(t, err, http.StatusBadRequest)
	if len(ae.Errors) != 2 || ae.Field != ae.Errors[0].Path {
		t.Fatalf("errors %+v", ae)
	}
	if !strings.Contains(ae.Error(), "spec.image") || !strings.Contains(ae.Error(), "spec.restartPolicy") {
		t.Fatalf("message %q should name both fields", ae.Error())
	}
}

func TestFileSpecsAreReadOnly(t *testing.T) {
	f := newFixture(t)
	sp := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer,
		Metadata: spec.Metadata{Name: "web"}, Spec: spec.ContainerSpec{Image: "box:1"}}
	sp.Default()
	if err := f.st.PutSpec(store.Record{Spec: sp, Hash: sp.Hash(),
		Source: store.Source{Kind: store.SourceFile, Path: "/etc/reconciler/specs/web.yaml"}}); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{false, true} {
		_, err := f.c.Apply(t.Context(), []byte(specYAML("web", "box:2")), "application/yaml", dry)
		ae := apiError(t, err, http.StatusConflict)
		if ae.File != "/etc/reconciler/specs/web.yaml" || !strings.Contains(ae.Message, "/etc/reconciler/specs/web.yaml") {
			t.Fatalf("conflict %+v should name the file", ae)
		}
	}
	ae := apiError(t, f.c.Delete(t.Context(), "web"), http.StatusConflict)
	if ae.File != "/etc/reconciler/specs/web.yaml" {
		t.Fatalf("delete conflict %+v", ae)
	}
	if rec, err := f.st.GetSpec("web"); err != nil || rec.Spec.Spec.Image != "box:1" || rec.Source.Kind != store.SourceFile {
		t.Fatalf("file spec changed: %+v %v", rec, err)
	}
	v, err := f.c.Get(t.Context(), "web")
	if err != nil || v.Source != (api.Source{Kind: api.SourceFile, Path: "/etc/reconciler/specs/web.yaml"}) {
		t.Fatalf("get of a file spec: source %+v, %v", v.Source, err)
	}
	if c := f.takeChanged(); len(c) != 0 {
		t.Fatalf("controller told %v", c)
	}
}

func TestGetAndList(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box:1"))
	v, err := f.c.Get(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "web" || v.Spec.Spec.Image != "box:1" || v.Source.Kind != api.SourceAPI || v.Status != nil || v.UpdatedAt.IsZero() {
		t.Fatalf("get before any status: %+v", v)
	}
	st := model.Status{Name: "web", Phase: model.PhaseRunning, ContainerID: "abc", Restarts: 2}
	if _, _, err := f.st.Commit(store.Change{Status: &st}); err != nil {
		t.Fatal(err)
	}
	v, err = f.c.Get(t.Context(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if v.Status == nil || v.Status.Phase != model.PhaseRunning || v.Status.Restarts != 2 {
		t.Fatalf("status %+v", v.Status)
	}
	list, err := f.c.List(t.Context())
	if err != nil || len(list) != 1 || list[0].Status == nil || list[0].Status.ContainerID != "abc" {
		t.Fatalf("list %+v %v", list, err)
	}
	ae := apiError(t, func() error { _, err := f.c.Get(t.Context(), "nope"); return err }(), http.StatusNotFound)
	if !strings.Contains(ae.Message, `"nope"`) {
		t.Fatalf("not found message %q should name the spec", ae.Message)
	}
}

func TestListEmptyIsAnArray(t *testing.T) {
	f := newFixture(t)
	for _, path := range []string{"/v1/specs", "/v1/events", "/v1/errors"} {
		resp, body := f.raw("GET", path, "")
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "[]" {
			t.Fatalf("GET %s: %d %s, want []", path, resp.StatusCode, body)
		}
	}
}

func TestDelete(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("web", "box:1"))
	f.takeChanged()
	if err := f.c.Delete(t.Context(), "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetSpec("web"); err == nil {
		t.Fatal("spec still stored")
	}
	if c := f.takeChanged(); !slices.Equal(c, []string{"web"}) {
		t.Fatalf("controller told %v, want [web]", c)
	}
	evs, _ := f.st.Events("web", 0, 0)
	if last := evs[len(evs)-1]; last.Reason != "Deleted" {
		t.Fatalf("last event %+v", last)
	}
	apiError(t, f.c.Delete(t.Context(), "web"), http.StatusNotFound)
}

func TestExits(t *testing.T) {
	f := newFixture(t)
	f.apply(specYAML("job", "box"))
	for i, code := range []int{1, 2, 0} {
		e := model.ContainerExit{ContainerID: fmt.Sprintf("c%d", i), SpecName: "job", ExitCode: code, Reason: model.ReasonError}
		if _, _, err := f.st.Commit(store.Change{Exit: &e}); err != nil {
			t.Fatal(err)
		}
	}
	exits, err := f.c.Exits(t.Context(), "job", 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []int
	for _, e := range exits {
		codes = append(codes, e.ExitCode)
	}
	if !slices.Equal(codes, []int{0, 2, 1}) {
		t.Fatalf("exit codes %v, want newest first [0 2 1]", codes)
	}
	if exits, _ := f.c.Exits(t.Context(), "job", 1); len(exits) != 1 || exits[0].ContainerID != "c2" {
		t.Fatalf("limit 1: %+v", exits)
	}
	// The ledger outlives its spec.
	if err := f.c.Delete(t.Context(), "job"); err != nil {
		t.Fatal(err)
	}
	if exits, err := f.c.Exits(t.Context(), "job", 0); err != nil || len(exits) != 3 {
		t.Fatalf("after delete: %d exits, %v", len(exits), err)
	}
	_, err = f.c.Exits(t.Context(), "never", 0)
	apiError(t, err, http.StatusNotFound)
	f.wantError("GET", "/v1/specs/job/exits?limit=-1", "", 400)
	f.wantError("GET", "/v1/specs/job/exits?limit=lots", "", 400)
	// 0 is a limit the help allows ("0 or more"): every exit, as none.
	if resp, body := f.raw("GET", "/v1/specs/job/exits?limit=0", ""); resp.StatusCode != http.StatusOK || strings.Count(string(body), `"containerID"`) != 3 {
		t.Fatalf("limit=0: %d %s; want all three exits", resp.StatusCode, body)
	}
}

func TestFileErrors(t *testing.T) {
	f := newFixture(t)
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	f.fileErrs = []source.FileError{
		{Path: "/specs/z.yaml", Error: "z.yaml:3: spec.image: required", Since: since},
		{Path: "/specs/a.yaml", Error: "a.yaml:1: invalid YAML", Since: since},
	}
	got, err := f.c.FileErrors(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Path != "/specs/a.yaml" || !got[1].Since.Equal(since) {
		t.Fatalf("file errors %+v", got)
	}
}

// Concurrent applies of one name are serialized: exactly one creates it,
// and what is stored is one whole spec, never a mix.
func TestConcurrentApplySameName(t *testing.T) {
	f := newFixture(t)
	const n = 16
	var wg sync.WaitGroup
	results := make([]api.ApplyResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := specYAML("web", fmt.Sprintf("box:%d", i), fmt.Sprintf("env: [{name: N, value: \"%d\"}]", i))
			results[i], errs[i] = f.c.Apply(t.Context(), []byte(body), "application/yaml", false)
		}()
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("apply %d: %v", i, errs[i])
		}
		if results[i].Specs[0].Action == api.ActionCreated {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d applies created the spec, want exactly 1", created)
	}
	rec, err := f.st.GetSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if want := "box:" + rec.Spec.Spec.Env[0].Value; rec.Spec.Spec.Image != want || rec.Hash != rec.Spec.Hash() {
		t.Fatalf("stored spec mixes applies: image %s, env %s, hash %s", rec.Spec.Spec.Image, rec.Spec.Spec.Env[0].Value, rec.Hash)
	}
}

// At most MaxApplies applies are decoded at once; the others wait for a
// turn, as long as their request lasts.
func TestAppliesTakeTurns(t *testing.T) {
	f := newFixture(t, func(d *api.Deps) { d.MaxApplies = 2 })
	entered, release := make(chan struct{}, 10), make(chan struct{})
	t.Cleanup(api.SetApplyTurnHook(func() {
		entered <- struct{}{}
		<-release
	}))
	apply := func(ctx context.Context, name string) <-chan error {
		done := make(chan error, 1)
		go func() {
			_, err := f.c.Apply(ctx, []byte(specYAML(name, "box")), "application/yaml", false)
			done <- err
		}()
		return done
	}
	// Two applies run at once: both reach their turn.
	first, second := apply(t.Context(), "a"), apply(t.Context(), "b")
	for range 2 {
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("two applies did not both get a turn")
		}
	}
	// A third waits while they hold theirs, until its request ends.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := <-apply(ctx, "c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("third apply: %v, want it to wait until its deadline", err)
	}
	select {
	case <-entered:
		t.Fatal("a third apply got a turn while two were held")
	default:
	}
	waitEnded(t, f, "/v1/specs")
	close(release)
	for _, done := range []<-chan error{first, second} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The turns came back: the next apply gets one.
	if err := <-apply(t.Context(), "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.GetSpec("c"); err != nil {
		t.Fatal(err)
	}
}
