// Package source keeps the store's file-backed specs equal to the spec
// directory: fsnotify for quick reaction, a periodic rescan because editors
// rename and replace files and events can be lost. A file that stops
// parsing keeps its last good specs in force and its error is reported. A
// spec name belongs to the file the store records for it. The policy is
// not checked here but by the controller, against the policy in force.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// Store is what the source needs of the state file.
type Store interface {
	ListSpecs() ([]store.Record, error)
	PutSpec(r store.Record) error
	DeleteSpec(name string) error
}

// Options configure a Source.
type Options struct {
	Dir    string
	Rescan time.Duration // default 10s
	// Debounce is how long the directory must be quiet after a write,
	// remove or rename of a spec file before it is read (default 100ms),
	// so a file written in several writes is read once, whole.
	Debounce time.Duration
	// CreateDebounce is the wait after a spec file appears under its name
	// with no write following (default 10ms): an atomic save (write a
	// temporary file, rename it over the spec file) is complete when it
	// appears, so it need not wait for Debounce. A write that follows
	// (a file created in place and written) extends the wait to Debounce.
	CreateDebounce time.Duration
	Log            *slog.Logger
	// Changed is called with each spec name added, changed or deleted.
	Changed func(name string)
	// Warn reports a new file error as a Warning event.
	Warn func(ev model.Event)
	// ErrorsChanged is called with the number of files in error.
	ErrorsChanged func(n int)
}

// FileError is a spec file that is refused, with why.
type FileError struct {
	Path  string    `json:"path"`
	Error string    `json:"error"`
	Since time.Time `json:"since"`
}

// Source syncs one directory into the store.
type Source struct {
	opts Options
	st   Store
	log  *slog.Logger

	mu     sync.Mutex
	errs   map[string]FileError
	parsed map[string]parsedFile // by path: skip files that did not change

	lastProgress atomic.Int64 // unix nanos of the last finished loop iteration
}

type parsedFile struct {
	size  int64
	mtime time.Time
	specs []*spec.Spec
	err   error
}

// New returns a Source for opts.Dir.
func New(st Store, opts Options) *Source {
	if opts.Rescan <= 0 {
		opts.Rescan = 10 * time.Second
	}
	if opts.Debounce <= 0 {
		opts.Debounce = 100 * time.Millisecond
	}
	if opts.CreateDebounce <= 0 {
		opts.CreateDebounce = 10 * time.Millisecond
	}
	opts.CreateDebounce = min(opts.CreateDebounce, opts.Debounce)
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &Source{opts: opts, st: st, log: opts.Log.With("component", "source", "dir", opts.Dir),
		errs: map[string]FileError{}, parsed: map[string]parsedFile{}}
	s.lastProgress.Store(time.Now().UnixNano())
	return s
}

// LastProgress is when the loop last finished an iteration (for /healthz
// and the systemd watchdog). The rescan ticks every Rescan period, so a
// loop that is not stuck moves it at least that often.
func (s *Source) LastProgress() time.Time {
	return time.Unix(0, s.lastProgress.Load())
}

// Errors lists the files currently refused, sorted by path.
func (s *Source) Errors() []FileError {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]FileError, 0, len(s.errs))
	for _, e := range s.errs {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Run syncs once, then on every change and rescan until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	if err := os.MkdirAll(s.opts.Dir, 0o755); err != nil {
		return fmt.Errorf("spec directory: %w", err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", s.opts.Dir, err)
	}
	defer w.Close()
	if err := w.Add(s.opts.Dir); err != nil {
		return fmt.Errorf("watch %s: %w", s.opts.Dir, err)
	}
	s.syncLogged()
	rescan := time.NewTicker(s.opts.Rescan)
	defer rescan.Stop()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	// due is when the pending read is set for (zero: none): an event
	// only ever puts it later, so a write after a create still waits the
	// full Debounce.
	var due time.Time
	wait := func(d time.Duration) {
		if at := time.Now().Add(d); at.After(due) {
			due = at
			debounce.Reset(d)
		}
	}
	for {
		s.lastProgress.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("fsnotify closed its event channel")
			}
			if relevant(filepath.Base(ev.Name)) {
				wait(s.eventDebounce(ev))
			}
		case err, ok := <-w.Errors:
			if ok {
				// An overflow loses events; the rescan covers it, so do one now.
				s.log.Warn("file watch error; rescanning", "err", err)
				wait(s.opts.Debounce)
			}
		case <-debounce.C:
			due = time.Time{}
			s.syncLogged()
		case <-rescan.C:
			s.syncLogged()
		}
	}
}

// eventDebounce is how long to wait after ev before reading the
// directory: CreateDebounce when a spec file appeared under its name (an
// atomic save), Debounce for anything else.
func (s *Source) eventDebounce(ev fsnotify.Event) time.Duration {
	if ev.Op == fsnotify.Create {
		return s.opts.CreateDebounce
	}
	return s.opts.Debounce
}

func (s *Source) syncLogged() {
	if err := s.Sync(); err != nil {
		s.log.Error("spec directory sync failed", "err", err)
	}
}

// relevant says whether a file name can hold specs: *.yaml and *.yml,
// not dot-files (editor swap and backup files).
func relevant(base string) bool {
	if strings.HasPrefix(base, ".") {
		return false
	}
	ext := strings.ToLower(filepath.Ext(base))
	return ext == ".yaml" || ext == ".yml"
}

// Sync makes the store's file specs match the directory.
func (s *Source) Sync() error {
	recs, err := s.st.ListSpecs()
	if err != nil {
		return fmt.Errorf("list specs: %w", err)
	}
	paths, err := s.list()
	if err != nil {
		return err
	}
	// Last good specs per file, and what the store holds for each name.
	lastGood := map[string][]store.Record{}
	stored := map[string]store.Record{}
	for _, r := range recs {
		stored[r.Spec.Metadata.Name] = r
		if r.Source.Kind == store.SourceFile {
			lastGood[r.Source.Path] = append(lastGood[r.Source.Path], r)
		}
	}

	files := make([]parsedSpecs, len(paths))
	for i, p := range paths {
		files[i].path = p
		files[i].specs, files[i].err = s.parse(p)
	}
	own := newOwners(files, stored)

	want := map[string]store.Record{} // name -> record the directory asks for
	fileErrs := map[string]error{}
	for _, f := range files {
		if f.err == nil {
			f.err = own.claim(f.path, f.specs)
		}
		if f.err != nil {
			fileErrs[f.path] = f.err
			continue
		}
		for _, sp := range f.specs {
			want[sp.Metadata.Name] = store.Record{Spec: sp, Hash: sp.Hash(), Source: store.Source{Kind: store.SourceFile, Path: f.path}}
		}
	}
	// A refused file keeps its last good specs in force. They are never
	// taken by another file: the file the store records for a name owns it.
	for p := range fileErrs {
		for _, r := range lastGood[p] {
			if _, taken := want[r.Spec.Metadata.Name]; !taken {
				want[r.Spec.Metadata.Name] = r
			}
		}
	}
	refuseCycles(want, fileErrs, lastGood, stored) // depends.go
	owner := stored

	var changed []string
	for name, r := range want {
		old, ok := owner[name]
		if ok && old.Hash == r.Hash && old.Source == r.Source && sameSpec(old.Spec, r.Spec) {
			continue
		}
		if err := s.st.PutSpec(r); err != nil {
			return fmt.Errorf("store spec %q from %s: %w", name, r.Source.Path, err)
		}
		changed = append(changed, name)
		s.log.Info("spec updated from file", "spec", name, "file", r.Source.Path, "hash", r.Hash)
	}
	for name, r := range owner {
		if r.Source.Kind != store.SourceFile {
			continue
		}
		if _, ok := want[name]; ok {
			continue
		}
		if err := s.st.DeleteSpec(name); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete spec %q: %w", name, err)
		}
		changed = append(changed, name)
		s.log.Info("spec deleted: no longer in any file", "spec", name, "file", r.Source.Path)
	}
	s.setErrors(fileErrs)
	for _, n := range changed {
		if s.opts.Changed != nil {
			s.opts.Changed(n)
		}
	}
	return nil
}

type parsedSpecs struct {
	path  string
	specs []*spec.Spec
	err   error
}

// owners says which file owns each spec name. The owner is the file the
// store records for the name, as long as that file still asks for it (or
// is refused and so keeps its last good specs); a name no recorded file
// asks for goes to the first file, by name, that defines it. So a new file
// cannot take a name from the file that has it, whatever its name sorts
// as, and the answer is the same after every rescan and agent restart.
type owners struct {
	stored map[string]store.Record
	file   map[string]string // spec name -> owning file
}

func newOwners(files []parsedSpecs, stored map[string]store.Record) *owners {
	o := &owners{stored: stored, file: map[string]string{}}
	asks := map[string]map[string]bool{} // file -> names it asks for
	broken := map[string]bool{}          // files that do not parse
	for _, f := range files {
		names := map[string]bool{}
		for _, sp := range f.specs {
			names[sp.Metadata.Name] = true
		}
		asks[f.path], broken[f.path] = names, f.err != nil
	}
	for name, r := range stored {
		if r.Source.Kind != store.SourceFile {
			continue
		}
		// A file that does not parse keeps its last good specs, and so
		// its names.
		if p := r.Source.Path; asks[p][name] || broken[p] {
			o.file[name] = p
		}
	}
	for _, f := range files { // in path order
		for _, sp := range f.specs {
			if name := sp.Metadata.Name; o.file[name] == "" {
				o.file[name] = f.path
			}
		}
	}
	return o
}

// claim checks that every name of a file is the file's to define.
func (o *owners) claim(path string, specs []*spec.Spec) error {
	var errs spec.ErrorList
	for _, sp := range specs {
		name := sp.Metadata.Name
		line := sp.Origin().Line
		if r, ok := o.stored[name]; ok && r.Source.Kind == store.SourceAPI {
			errs = append(errs, &spec.FieldError{File: path, Line: line, Path: "metadata.name",
				Msg: fmt.Sprintf("spec %q was applied through the API; delete it there first", name)})
			continue
		}
		if owner := o.file[name]; owner != path {
			errs = append(errs, spec.NameTaken(sp, path, owner))
		}
	}
	return errs.Err()
}

func (s *Source) list() ([]string, error) {
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("read spec directory: %w", err)
	}
	var out []string
	for _, e := range ents {
		if relevant(e.Name()) {
			out = append(out, filepath.Join(s.opts.Dir, e.Name()))
		}
	}
	return out, nil // sorted by name: of two new files defining one name, the first gets it
}

// parse reads and decodes one file, from cache when it did not change.
func (s *Source) parse(path string) ([]*spec.Spec, error) {
	f, fi, err := s.open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	s.mu.Lock()
	if c, ok := s.parsed[path]; ok && c.size == fi.Size() && c.mtime.Equal(fi.ModTime()) {
		s.mu.Unlock()
		return c.specs, c.err
	}
	s.mu.Unlock()
	specs, err := s.read(path, f)
	s.mu.Lock()
	s.parsed[path] = parsedFile{size: fi.Size(), mtime: fi.ModTime(), specs: specs, err: err}
	s.mu.Unlock()
	return specs, err
}

// open opens one file of the directory with spec.OpenFile: what is checked
// is the open descriptor, so a FIFO swapped in after the listing opens
// without blocking and is refused. A symlink may only point to a file
// within the directory: it is resolved and checked here, and its target is
// opened without following anything more, so a link swapped in after the
// check is refused by the kernel rather than followed.
func (s *Source) open(path string) (*os.File, os.FileInfo, error) {
	li, err := os.Lstat(path)
	if err != nil {
		return nil, nil, err
	}
	if li.Mode()&os.ModeSymlink == 0 {
		return spec.OpenFile(path)
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: broken symlink: %w", path, err)
	}
	dir, err := filepath.EvalSymlinks(s.opts.Dir)
	if err != nil {
		return nil, nil, err
	}
	if rel, err := filepath.Rel(dir, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, nil, fmt.Errorf("%s: symlink points outside the spec directory (to %s); refused", path, target)
	}
	f, fi, err := spec.OpenFile(target)
	if err != nil {
		return nil, nil, fmt.Errorf("%s (linked to %s): %w", path, target, err)
	}
	return f, fi, nil
}

func (s *Source) read(path string, f *os.File) ([]*spec.Spec, error) {
	data, err := spec.ReadLimited(path, f)
	if err != nil {
		return nil, err
	}
	// No policy check here: a spec the policy refuses is stored and shown
	// as Refused by the controller, which checks the policy in force at
	// every reconcile. Its old definition must not stay in force.
	return spec.Decode(path, data)
}

func (s *Source) setErrors(fileErrs map[string]error) {
	s.mu.Lock()
	var fresh []FileError
	next := map[string]FileError{}
	for p, err := range fileErrs {
		fe := FileError{Path: p, Error: err.Error(), Since: time.Now()}
		if old, ok := s.errs[p]; ok && old.Error == fe.Error {
			fe.Since = old.Since
		} else {
			fresh = append(fresh, fe)
		}
		next[p] = fe
	}
	for p := range s.errs {
		if _, ok := next[p]; !ok {
			s.log.Info("spec file accepted again", "file", p)
		}
	}
	for p := range s.parsed {
		if _, err := os.Lstat(p); err != nil {
			delete(s.parsed, p)
		}
	}
	s.errs = next
	n := len(next)
	s.mu.Unlock()
	for _, fe := range fresh {
		s.log.Warn("spec file refused; its last good specs stay in force", "file", fe.Path, "err", fe.Error)
		if s.opts.Warn != nil {
			now := time.Now()
			s.opts.Warn(model.Event{Type: model.EventWarning, Reason: "InvalidSpecFile",
				Message: fe.Error, Count: 1, FirstTime: now, LastTime: now})
		}
	}
	if s.opts.ErrorsChanged != nil {
		s.opts.ErrorsChanged(n)
	}
}
