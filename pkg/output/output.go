// Package output keeps the complete output of each run of a spec's
// container after the container is gone: the agent saves it when the run
// ends, compressed, one file a run, bounded per run and per spec.
//
// Layout, beside the state file:
//
//	<dir>/<spec>/                      0700, one directory a spec
//	<dir>/<spec>/<run>.log.gz          0600, one file a run, gzip
//	<dir>/<spec>/.<run>.tmp/           segments of a save under way
//
// <run> is the run's start time in UTC, fixed width so that names sort
// in time order, and the container's short id:
// 20261130T121500.123456789Z-0123456789ab.
//
// Each line of a saved file is
//
//	<RFC 3339 time, UTC, nanoseconds> <stream> <text>
//
// with stream stdout or stderr, in the order the daemon returned them, or
// "reconciler" for what the agent says about the file (a truncation).
//
// Bounds: MaxRunBytes counts a run's output as the program wrote it (the
// text and its newlines, uncompressed). A run that wrote more keeps its
// END, as kubelet's log rotation keeps the newest: the last MaxRunBytes
// (at least three quarters of it; whole segments are dropped), after a
// first line that says how much was dropped. MaxSpecBytes counts a spec's
// files as they lie on disk (compressed); the oldest runs go first, never
// the newest.
package output

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of the agent's --output-max-run-bytes and
// --output-max-spec-bytes.
const (
	DefaultMaxRunBytes  = 16 << 20
	DefaultMaxSpecBytes = 64 << 20
)

// Stream names in a saved file.
const (
	Stdout = "stdout"
	Stderr = "stderr"
	// Notice is the agent's own word in a saved file, not the program's.
	Notice = "reconciler"
)

// MaxLine bounds one saved line; a longer one is cut into pieces, as the
// API cuts the lines it streams.
const MaxLine = 64 << 10

// segments is how many pieces a run's budget is cut into: a run over
// budget drops its oldest whole piece, so it keeps at least
// (segments-1)/segments of MaxRunBytes.
const segments = 4

const (
	suffix  = ".log.gz"
	timeFmt = "20060102T150405.000000000Z"
	lineFmt = time.RFC3339Nano
)

// Options configure a Store.
type Options struct {
	Dir          string
	MaxRunBytes  int64 // default DefaultMaxRunBytes
	MaxSpecBytes int64 // default DefaultMaxSpecBytes
	// Keep says whether a spec's saved output must stay: while the spec
	// exists or its exit ledger does. Prune removes the rest; nil keeps
	// everything.
	Keep func(spec string) bool
	Log  *slog.Logger
}

// Store is the directory of saved output.
type Store struct {
	opts Options
	log  *slog.Logger
}

// New returns the store at opts.Dir, creating it (0700).
func New(opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("output directory not set")
	}
	if opts.MaxRunBytes <= 0 {
		opts.MaxRunBytes = DefaultMaxRunBytes
	}
	if opts.MaxSpecBytes <= 0 {
		opts.MaxSpecBytes = DefaultMaxSpecBytes
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	if err := os.Chmod(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}
	return &Store{opts: opts, log: opts.Log.With("component", "output")}, nil
}

// Dir is where the store keeps its files.
func (s *Store) Dir() string { return s.opts.Dir }

// Run names one run of a container: a container restarted in place has
// several.
type Run struct {
	Spec        string
	ContainerID string
	StartedAt   time.Time
}

// Key is the run's file name without its suffix.
func (r Run) Key() string {
	return r.StartedAt.UTC().Format(timeFmt) + "-" + shortID(r.ContainerID)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Same reports whether r and o are one run.
func (r Run) Same(o Run) bool {
	return r.Spec == o.Spec && r.StartedAt.Equal(o.StartedAt) && shortID(r.ContainerID) == shortID(o.ContainerID)
}

// Saved is one saved run.
type Saved struct {
	Run
	Path string
	Size int64 // on disk, compressed
}

// Has reports whether run's output is saved.
func (s *Store) Has(run Run) bool {
	_, err := os.Stat(s.path(run))
	return err == nil
}

func (s *Store) specDir(spec string) string { return filepath.Join(s.opts.Dir, spec) }

func (s *Store) path(run Run) string { return filepath.Join(s.specDir(run.Spec), run.Key()+suffix) }

// Runs lists spec's saved runs, oldest first.
func (s *Store) Runs(spec string) ([]Saved, error) {
	ents, err := os.ReadDir(s.specDir(spec))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("saved output of %q: %w", spec, err)
	}
	var out []Saved
	for _, e := range ents {
		run, ok := parseKey(spec, e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Saved{Run: run, Path: filepath.Join(s.specDir(spec), e.Name()), Size: fi.Size()})
	}
	slices.SortFunc(out, func(a, b Saved) int { return strings.Compare(a.Key(), b.Key()) })
	return out, nil
}

func parseKey(spec, name string) (Run, bool) {
	key, ok := strings.CutSuffix(name, suffix)
	if !ok {
		return Run{}, false
	}
	ts, id, ok := strings.Cut(key, "-")
	if !ok || id == "" {
		return Run{}, false
	}
	t, err := time.Parse(timeFmt, ts)
	if err != nil {
		return Run{}, false
	}
	return Run{Spec: spec, ContainerID: id, StartedAt: t}, true
}

// Latest is spec's newest saved run.
func (s *Store) Latest(spec string) (Saved, bool, error) {
	runs, err := s.Runs(spec)
	if err != nil || len(runs) == 0 {
		return Saved{}, false, err
	}
	return runs[len(runs)-1], true, nil
}

// Previous is the run before current, kubectl logs --previous: the newest
// saved run that started before it. With current nil (no container), the
// current run is the newest saved one, and the previous the one before.
func (s *Store) Previous(spec string, current *Run) (Saved, bool, error) {
	runs, err := s.Runs(spec)
	if err != nil || len(runs) == 0 {
		return Saved{}, false, err
	}
	return previous(runs, current)
}

func previous(runs []Saved, current *Run) (Saved, bool, error) {
	if current == nil {
		if len(runs) < 2 {
			return Saved{}, false, nil
		}
		return runs[len(runs)-2], true, nil
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if !r.Same(*current) && r.StartedAt.Before(current.StartedAt) {
			return r, true, nil
		}
	}
	return Saved{}, false, nil
}

// Open opens a saved run for reading, decompressed.
func (s *Store) Open(saved Saved) (*Reader, error) {
	f, err := os.Open(saved.Path)
	if err != nil {
		return nil, fmt.Errorf("saved output: %w", err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("saved output %s: %w", filepath.Base(saved.Path), err)
	}
	return newReader(f, zr), nil
}

// Remove deletes every saved run of spec.
func (s *Store) Remove(spec string) error {
	if spec == "" || strings.ContainsAny(spec, `/\`) || spec == "." || spec == ".." {
		return fmt.Errorf("bad spec name %q", spec)
	}
	if err := os.RemoveAll(s.specDir(spec)); err != nil {
		return fmt.Errorf("remove saved output of %q: %w", spec, err)
	}
	return nil
}

// Prune removes the saved output of every spec Keep no longer keeps: its
// spec and its exit ledger are both gone.
func (s *Store) Prune() error {
	if s.opts.Keep == nil {
		return nil
	}
	ents, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return fmt.Errorf("saved output: %w", err)
	}
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || s.opts.Keep(e.Name()) || s.recent(e) {
			continue
		}
		if err := s.Remove(e.Name()); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("saved output removed with the spec's exit ledger", "spec", e.Name())
	}
	return errors.Join(errs...)
}

// recentSave is how long a spec directory written to is left alone by
// Prune: a run is saved before its exit is recorded, so a deleted spec's
// first run has neither spec nor ledger for a moment.
const recentSave = time.Minute

func (s *Store) recent(e os.DirEntry) bool {
	fi, err := e.Info()
	return err == nil && time.Since(fi.ModTime()) < recentSave
}

// trim deletes spec's oldest runs until its files fit MaxSpecBytes; the
// newest run stays whatever its size.
func (s *Store) trim(spec string) error {
	runs, err := s.Runs(spec)
	if err != nil {
		return err
	}
	var total int64
	for _, r := range runs {
		total += r.Size
	}
	for i := 0; i < len(runs)-1 && total > s.opts.MaxSpecBytes; i++ {
		if err := os.Remove(runs[i].Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("trim saved output of %q: %w", spec, err)
		}
		total -= runs[i].Size
		s.log.Debug("saved run dropped for --output-max-spec-bytes", "spec", spec, "run", runs[i].Key())
	}
	return nil
}

// Save reads a run's output from src, as the Docker API sends it for a
// container without a TTY with timestamps on (stdcopy frames whose lines
// begin with their time), and saves it. The file appears whole or not at
// all; saving a run again replaces it.
func (s *Store) Save(run Run, src io.Reader) (Result, error) {
	if err := os.MkdirAll(s.specDir(run.Spec), 0o700); err != nil {
		return Result{}, fmt.Errorf("save output of %q: %w", run.Spec, err)
	}
	tmp := filepath.Join(s.specDir(run.Spec), "."+run.Key()+".tmp")
	_ = os.RemoveAll(tmp) // a save cut short by a crash
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return Result{}, fmt.Errorf("save output of %q: %w", run.Spec, err)
	}
	defer os.RemoveAll(tmp)
	w := &segmentWriter{dir: tmp, segBytes: max(s.opts.MaxRunBytes/segments, 1)}
	if err := demux(src, w); err != nil {
		w.close()
		return Result{}, fmt.Errorf("save output of %q: %w", run.Spec, err)
	}
	if err := w.close(); err != nil {
		return Result{}, fmt.Errorf("save output of %q: %w", run.Spec, err)
	}
	res := w.result()
	if err := w.assemble(s.path(run), s.opts.MaxRunBytes); err != nil {
		return Result{}, fmt.Errorf("save output of %q: %w", run.Spec, err)
	}
	if err := s.trim(run.Spec); err != nil {
		s.log.Warn("trim saved output", "spec", run.Spec, "err", err)
	}
	return res, nil
}

// Result counts what a save read and kept.
type Result struct {
	Lines, Bytes               int64 // read from the run
	DroppedLines, DroppedBytes int64 // dropped for MaxRunBytes
}

// Truncated reports whether the save dropped the start of the run.
func (r Result) Truncated() bool { return r.DroppedBytes > 0 }

func (r Result) String() string {
	s := strconv.FormatInt(r.Lines, 10) + " lines, " + strconv.FormatInt(r.Bytes, 10) + " bytes"
	if r.Truncated() {
		s += fmt.Sprintf(" (the first %d lines, %d bytes, dropped)", r.DroppedLines, r.DroppedBytes)
	}
	return s
}
