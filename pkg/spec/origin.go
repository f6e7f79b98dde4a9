package spec

import (
	"runtime"
	"strconv"
	"strings"
	"sync"
	"weak"
)

// Origin is where a spec was decoded from. Line is the line of its
// metadata.name (of the document when the name is missing). File is empty
// for a spec that came as JSON.
type Origin struct {
	File string
	Line int
}

// origins remembers, beside each decoded *Spec, where it came from and the
// line of every field path. It lives outside Spec because Spec is the stored,
// hashed and transmitted contract, and a file position is none of those. Keys
// are weak so a spec that is dropped takes its entry with it.
var origins = struct {
	sync.Mutex
	m map[weak.Pointer[Spec]]*source
}{m: make(map[weak.Pointer[Spec]]*source)}

type source struct {
	file  string
	lines lineMap
}

// Origin says where s was decoded; the zero Origin when it was built in code
// or copied.
func (s *Spec) Origin() Origin {
	src := s.source()
	if src == nil {
		return Origin{}
	}
	line := src.lines.paths["metadata.name"]
	if line == 0 {
		line = src.lines.paths[""]
	}
	return Origin{File: src.file, Line: line}
}

func (s *Spec) source() *source {
	origins.Lock()
	defer origins.Unlock()
	return origins.m[weak.Make(s)]
}

func (s *Spec) setSource(src *source) {
	key := weak.Make(s)
	origins.Lock()
	_, had := origins.m[key]
	origins.m[key] = src
	origins.Unlock()
	if !had {
		runtime.AddCleanup(s, forget, key)
	}
}

func forget(key weak.Pointer[Spec]) {
	origins.Lock()
	delete(origins.m, key)
	origins.Unlock()
}

// locate fills in the file and line of errors about s, when s was decoded.
func (s *Spec) locate(errs ErrorList) ErrorList {
	src := s.source()
	if src == nil {
		return errs
	}
	for _, e := range errs {
		if e.File == "" {
			e.File = src.file
		}
		if e.Line == 0 {
			e.Line = src.lines.find(e.Path)
		}
	}
	return errs
}

// lineMap maps a field path ("spec.env[0].name") to the line it was
// written on. It lives as long as its spec, so the items of a list of
// scalars (args, capAdd) cost a line number each, kept under the list's
// path, rather than a path of their own.
type lineMap struct {
	paths map[string]int
	items map[string][]int32
}

func newLineMap() lineMap {
	return lineMap{paths: map[string]int{}, items: map[string][]int32{}}
}

// find returns the line of path, or of its nearest ancestor that was
// written: a missing spec.image is reported on the line of spec.
func (m lineMap) find(path string) int {
	for {
		if line, ok := m.paths[path]; ok {
			return line
		}
		if list, i, ok := listItem(path); ok && i < len(m.items[list]) {
			return int(m.items[list][i])
		}
		if path == "" {
			return 0
		}
		path = parentPath(path)
	}
}

// listItem splits "spec.args[3]" into "spec.args" and 3.
func listItem(path string) (string, int, bool) {
	if !strings.HasSuffix(path, "]") {
		return "", 0, false
	}
	open := strings.LastIndexByte(path, '[')
	if open < 0 {
		return "", 0, false
	}
	i, err := strconv.Atoi(path[open+1 : len(path)-1])
	if err != nil || i < 0 {
		return "", 0, false
	}
	return path[:open], i, true
}

func parentPath(path string) string {
	if strings.HasSuffix(path, `"]`) {
		if i := strings.LastIndex(path, `["`); i >= 0 {
			return path[:i]
		}
	}
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}
