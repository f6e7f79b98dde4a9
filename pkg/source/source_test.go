package source

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

func doc(name, args string) string {
	return "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: " + name + "}\nspec:\n  image: reconciler/box:latest\n  args: [" + args + "]\n"
}

type fixture struct {
	t       *testing.T
	dir     string
	st      *store.Store
	src     *Source
	mu      sync.Mutex
	changed []string
	nerrs   int
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir()}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f.st = st
	f.src = New(st, Options{Dir: f.dir,
		Changed:       func(n string) { f.mu.Lock(); f.changed = append(f.changed, n); f.mu.Unlock() },
		ErrorsChanged: func(n int) { f.mu.Lock(); f.nerrs = n; f.mu.Unlock() },
	})
	return f
}

func (f *fixture) write(name, content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sync() {
	f.t.Helper()
	if err := f.src.Sync(); err != nil {
		f.t.Fatal(err)
	}
}

// specs returns name -> args of what the store holds.
func (f *fixture) specs() map[string]string {
	f.t.Helper()
	recs, err := f.st.ListSpecs()
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range recs {
		out[r.Spec.Metadata.Name] = strings.Join(r.Spec.Spec.Args, " ")
	}
	return out
}

func (f *fixture) takeChanged() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changed
	f.changed = nil
	sort.Strings(c)
	return c
}

func TestSyncAddsChangesAndDeletes(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", doc("web", "tick")+"---\n"+doc("db", "sleep"))
	f.write("b.yml", doc("job", "exit"))
	f.write(".hidden.yaml", doc("hidden", "sleep")) // editor swap or backup
	f.write("notes.txt", doc("txt", "sleep"))
	f.sync()
	if got := f.specs(); len(got) != 3 || got["web"] != "tick" || got["job"] != "exit" {
		t.Fatalf("specs = %v", got)
	}
	if got := f.takeChanged(); strings.Join(got, ",") != "db,job,web" {
		t.Fatalf("changed = %v", got)
	}

	f.sync() // nothing changed: nothing stored, nobody told
	if got := f.takeChanged(); len(got) != 0 {
		t.Fatalf("a no-op sync reported %v", got)
	}

	f.write("a.yaml", doc("web", "sleep"))
	f.sync()
	if got := f.specs(); got["web"] != "sleep" || got["db"] != "" {
		t.Fatalf("after edit: %v (db dropped from the file must be deleted)", got)
	}
	if got := f.takeChanged(); strings.Join(got, ",") != "db,web" {
		t.Fatalf("changed = %v", got)
	}

	if err := os.Remove(filepath.Join(f.dir, "b.yml")); err != nil {
		t.Fatal(err)
	}
	f.sync()
	if _, ok := f.specs()["job"]; ok {
		t.Fatal("a removed file's spec is still stored")
	}
}

func TestBadFileKeepsLastGoodSpecs(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", doc("web", "tick"))
	f.sync()
	f.takeChanged()

	f.write("a.yaml", doc("web", "sleep")+"  resourcs: {memory: 1Gi}\n")
	f.sync()
	if got := f.specs(); got["web"] != "tick" {
		t.Fatalf("a bad file changed the stored spec: %v", got)
	}
	if got := f.takeChanged(); len(got) != 0 {
		t.Fatalf("a bad file reported changes %v", got)
	}
	errs := f.src.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error, "a.yaml:7") || !strings.Contains(errs[0].Error, "resourcs") {
		t.Fatalf("errors = %+v, want one naming the file, line and field", errs)
	}
	if f.nerrs != 1 {
		t.Fatalf("ErrorsChanged got %d", f.nerrs)
	}

	f.write("a.yaml", doc("web", "sleep"))
	f.sync()
	if got := f.specs(); got["web"] != "sleep" || len(f.src.Errors()) != 0 || f.nerrs != 0 {
		t.Fatalf("fixed file: specs %v, errors %v", got, f.src.Errors())
	}
}

func TestDuplicateNamesAcrossFiles(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", doc("web", "tick"))
	f.write("b.yaml", doc("web", "sleep")+"---\n"+doc("other", "sleep"))
	f.sync()
	got := f.specs()
	if got["web"] != "tick" {
		t.Fatalf("the first file keeps the name: %v", got)
	}
	if _, ok := got["other"]; ok {
		t.Fatal("a refused file is refused whole")
	}
	errs := f.src.Errors()
	if len(errs) != 1 || !strings.Contains(errs[0].Error, "already defined in") || !strings.Contains(errs[0].Path, "b.yaml") {
		t.Fatalf("errors = %+v", errs)
	}
}

func TestTheFileThatHasANameKeepsIt(t *testing.T) {
	f := newFixture(t)
	f.write("b.yaml", doc("web", "tick"))
	f.sync()
	// Positive control: a name nobody has goes to the file that defines it.
	if got := f.specs(); got["web"] != "tick" {
		t.Fatalf("b.yaml did not get web: %v", got)
	}

	// 00-x.yaml sorts first but comes later: b.yaml keeps web, now and
	// after a restart (a new Source over the same store).
	f.write("00-x.yaml", doc("web", "sleep"))
	for _, run := range []string{"rescan", "restart"} {
		if run == "restart" {
			f.src = New(f.st, Options{Dir: f.dir})
		}
		f.sync()
		if got := f.specs(); got["web"] != "tick" {
			t.Fatalf("%s: 00-x.yaml took web: %v", run, got)
		}
		errs := f.src.Errors()
		x, b := filepath.Join(f.dir, "00-x.yaml"), filepath.Join(f.dir, "b.yaml")
		if len(errs) != 1 || errs[0].Path != x || !strings.Contains(errs[0].Error, x+":3: metadata.name") ||
			!strings.Contains(errs[0].Error, "already defined in "+b) {
			t.Fatalf("%s: errors = %+v, want one for 00-x.yaml naming both files", run, errs)
		}
	}

	// An owner that stops parsing keeps its name (its last good spec stays).
	f.write("b.yaml", "spec: [\n")
	f.sync()
	if got := f.specs(); got["web"] != "tick" {
		t.Fatalf("broken owner lost web: %v", got)
	}
	if errs := f.src.Errors(); len(errs) != 2 {
		t.Fatalf("errors = %+v, want both files", errs)
	}

	// Once the owner is gone, the name is free.
	if err := os.Remove(filepath.Join(f.dir, "b.yaml")); err != nil {
		t.Fatal(err)
	}
	f.sync()
	if got := f.specs(); got["web"] != "sleep" || len(f.src.Errors()) != 0 {
		t.Fatalf("after the owner left: specs %v, errors %+v", got, f.src.Errors())
	}
}

func TestAFileThePolicyRefusesIsStoredAsIs(t *testing.T) {
	f := newFixture(t)
	f.write("a.yaml", doc("web", "tick"))
	f.sync()
	// The policy is the controller's to apply: the source stores the new
	// definition, so the old one is not kept in force behind a refusal.
	f.write("a.yaml", doc("web", "sleep")+"  privileged: true\n")
	f.sync()
	r, err := f.st.GetSpec("web")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Spec.Spec.Privileged || len(f.src.Errors()) != 0 {
		t.Fatalf("stored %+v, errors %+v; want the privileged definition and no file error", r.Spec.Spec, f.src.Errors())
	}
}

func TestAPISpecNameIsNotTakenByAFile(t *testing.T) {
	f := newFixture(t)
	s := &spec.Spec{APIVersion: spec.APIVersion, Kind: spec.KindContainer, Metadata: spec.Metadata{Name: "web"},
		Spec: spec.ContainerSpec{Image: "reconciler/box:latest", Args: []string{"api"}}}
	s.Default()
	if err := f.st.PutSpec(store.Record{Spec: s, Hash: s.Hash(), Source: store.Source{Kind: store.SourceAPI}}); err != nil {
		t.Fatal(err)
	}
	f.write("a.yaml", doc("web", "file"))
	f.sync()
	if got := f.specs(); got["web"] != "api" {
		t.Fatalf("specs = %v", got)
	}
	if errs := f.src.Errors(); len(errs) != 1 || !strings.Contains(errs[0].Error, "applied through the API") {
		t.Fatalf("errors = %+v", errs)
	}
	if err := os.Remove(filepath.Join(f.dir, "a.yaml")); err != nil {
		t.Fatal(err)
	}
	f.sync()
	if got := f.specs(); got["web"] != "api" {
		t.Fatal("removing a file deleted a spec applied through the API")
	}
}

func TestSymlinksMayNotLeaveTheDirectory(t *testing.T) {
	f := newFixture(t)
	outside := filepath.Join(t.TempDir(), "outside.yaml")
	if err := os.WriteFile(outside, []byte(doc("escape", "sleep")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(f.dir, "link.yaml")); err != nil {
		t.Fatal(err)
	}
	f.write("real.yaml", doc("inside", "sleep"))
	if err := os.Symlink(filepath.Join(f.dir, "real.yaml"), filepath.Join(f.dir, "alias.yaml")); err != nil {
		t.Fatal(err)
	}
	f.sync()
	if _, ok := f.specs()["escape"]; ok {
		t.Fatal("a symlink out of the spec directory was followed")
	}
	var refused []string
	for _, e := range f.src.Errors() {
		refused = append(refused, filepath.Base(e.Path)+": "+e.Error)
	}
	if len(refused) != 2 || !strings.Contains(strings.Join(refused, "\n"), "outside the spec directory") {
		// alias.yaml is inside, but names "inside" a second time.
		t.Fatalf("refused = %v", refused)
	}
}

func TestRunPicksUpChangesWithoutRescan(t *testing.T) {
	f := newFixture(t)
	f.src.opts.Rescan = time.Hour // only fsnotify can make this pass
	f.src.opts.Debounce = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.src.Run(ctx) }()
	defer func() { cancel(); <-done }()

	tmp := filepath.Join(f.dir, ".web.yaml.swp")
	if err := os.WriteFile(tmp, []byte(doc("web", "tick")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "web.yaml")); err != nil { // as editors save
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.specs()["web"] != "tick" {
		if time.Now().After(deadline) {
			t.Fatal("a renamed-in file was not picked up by the watch")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An atomic save (a temporary file renamed over the spec file) is whole
// when it appears, so it is read after CreateDebounce, not Debounce; a
// file created in place and then written waits for the full Debounce
// after its last write, so it is not read half-written.
func TestAtomicSaveIsReadWithoutTheWriteDebounce(t *testing.T) {
	f := newFixture(t)
	f.src.opts.Rescan = time.Hour
	f.src.opts.Debounce = time.Hour // only the create path can read anything
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	started := f.src.LastProgress()
	go func() { done <- f.src.Run(ctx) }()
	defer func() { cancel(); <-done }()
	// The loop's first turn comes after its first read of the directory
	// and after the watch is set: what follows is seen by the watch alone.
	for wait := time.Now().Add(5 * time.Second); f.src.LastProgress().Equal(started); time.Sleep(time.Millisecond) {
		if time.Now().After(wait) {
			t.Fatal("the source's loop did not start within 5s")
		}
	}

	tmp := filepath.Join(f.dir, ".web.yaml.tmp")
	if err := os.WriteFile(tmp, []byte(doc("web", "tick")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.dir, "web.yaml")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.specs()["web"] != "tick" {
		if time.Now().After(deadline) {
			t.Fatalf("an atomic save was not read within 5s, with Debounce 1h and CreateDebounce %s", f.src.opts.CreateDebounce)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// Created in place, then written in two parts: the first part is not
	// a valid spec, and it is never read, because the write put the read
	// off by Debounce.
	full := doc("job", "tick")
	w, err := os.Create(filepath.Join(f.dir, "job.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.WriteString(full[:len(full)/2]); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(50 * f.src.opts.CreateDebounce); time.Now().Before(end); time.Sleep(f.src.opts.CreateDebounce) {
		if errs := f.src.Errors(); len(errs) > 0 {
			t.Fatalf("a half-written file was read: %+v", errs)
		}
		if _, ok := f.specs()["job"]; ok {
			t.Fatal("a half-written file was read")
		}
	}
}

// TestFIFOSwappedInDoesNotBlock swaps a spec file for a FIFO and back, by
// rename, while the source syncs: whenever the FIFO is what it opens, the
// file is refused at once (a plain open of a FIFO with no writer blocks
// forever). The other file's spec is stored throughout.
func TestFIFOSwappedInDoesNotBlock(t *testing.T) {
	f := newFixture(t)
	f.write("other.yaml", doc("other", "sleep"))
	path := filepath.Join(f.dir, "web.yaml")
	good := filepath.Join(f.dir, ".good")
	fifo := filepath.Join(f.dir, ".fifo")

	stop := make(chan struct{})
	swapped := make(chan int)
	go func() {
		n := 0
		defer func() { swapped <- n }()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if i%2 == 0 {
				err = syscall.Mkfifo(fifo, 0o644)
				if err == nil {
					err = os.Rename(fifo, path)
				}
			} else {
				err = os.WriteFile(good, []byte(doc("web", "tick")), 0o644)
				if err == nil {
					err = os.Rename(good, path)
				}
			}
			if err != nil {
				t.Error(err)
				return
			}
			n++
		}
	}()
	var refused int
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		done := make(chan error, 1)
		go func() { done <- f.src.Sync() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Sync blocked on a FIFO swapped in for a spec file")
		}
		for _, e := range f.src.Errors() {
			if strings.Contains(e.Error, "is a FIFO") && strings.Contains(e.Error, "web.yaml") {
				refused++
			}
		}
		if _, ok := f.specs()["other"]; !ok {
			t.Fatal("the other file's spec is gone")
		}
	}
	close(stop)
	n := <-swapped
	if refused == 0 || n < 10 {
		t.Fatalf("the FIFO was refused by %d syncs over %d swaps; the test did not race", refused, n)
	}
	t.Logf("%d swaps; the FIFO was refused by %d syncs", n, refused)
}
