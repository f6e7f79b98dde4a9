package imagegc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// stateFile is the record of uses as kept on disk: when this agent's
// containers last used each image, by image ID.
type stateFile struct {
	Version  int                  `json:"version"`
	LastUsed map[string]time.Time `json:"lastUsed"`
}

// load reads the record; a missing file is an empty record.
func (g *GC) load() error {
	if g.opts.StateFile == "" {
		return nil
	}
	raw, err := os.ReadFile(g.opts.StateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st stateFile
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("%s: %w", g.opts.StateFile, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id, t := range st.LastUsed {
		if t.After(g.lastUsed[id]) {
			g.lastUsed[id] = t
		}
	}
	return nil
}

// save writes the record when it changed, through a temporary file and a
// rename, so a crash leaves the old record or the new one.
func (g *GC) save() {
	g.mu.Lock()
	if !g.dirty || g.opts.StateFile == "" {
		g.mu.Unlock()
		return
	}
	st := stateFile{Version: 1, LastUsed: make(map[string]time.Time, len(g.lastUsed))}
	for _, id := range sortedIDs(g.lastUsed) {
		st.LastUsed[id] = g.lastUsed[id].UTC()
	}
	g.dirty = false
	g.mu.Unlock()
	if err := writeAtomic(g.opts.StateFile, st); err != nil {
		g.opts.Log.Warn("image GC: last-used record not saved", "file", g.opts.StateFile, "err", err)
		g.mu.Lock()
		g.dirty = true
		g.mu.Unlock()
	}
}

func writeAtomic(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
