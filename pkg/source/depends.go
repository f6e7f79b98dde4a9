package source

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/reconciler/reconciler/pkg/spec"
	"github.com/reconciler/reconciler/pkg/store"
)

// refuseCycles keeps dependsOn free of cycles across the directory and the
// specs applied through the API. While the specs the directory asks for
// close a cycle, every file this round would take a spec of the cycle
// from is refused, with the cycle and the files forming it named, and
// keeps its last good specs, as a file that does not parse does.
func refuseCycles(want map[string]store.Record, fileErrs map[string]error, lastGood map[string][]store.Record, stored map[string]store.Record) {
	for range len(want) + 1 {
		var all []*spec.Spec
		for _, r := range want {
			all = append(all, r.Spec)
		}
		for name, r := range stored {
			if _, ok := want[name]; !ok && r.Source.Kind == store.SourceAPI {
				all = append(all, r.Spec)
			}
		}
		sort.Slice(all, func(i, j int) bool { return all[i].Metadata.Name < all[j].Metadata.Name })
		cycle := spec.FindCycle(all)
		if cycle == nil {
			return
		}
		// The files that changed the graph are refused; when none did
		// (new files, an agent restart), every file of the cycle is.
		var where []string
		blamed, changed := map[string]bool{}, map[string]bool{}
		for _, name := range cycle[:len(cycle)-1] {
			r, ok := want[name]
			if !ok {
				where = append(where, fmt.Sprintf("%s through the API", name))
				continue
			}
			where = append(where, fmt.Sprintf("%s in %s", name, r.Source.Path))
			if _, refused := fileErrs[r.Source.Path]; refused {
				continue
			}
			blamed[r.Source.Path] = true
			if old, ok := stored[name]; !ok || old.Source != r.Source || !slices.Equal(old.Spec.Spec.DependsOn, r.Spec.Spec.DependsOn) {
				changed[r.Source.Path] = true
			}
		}
		if len(changed) > 0 {
			blamed = changed
		}
		if len(blamed) == 0 {
			return // only last good specs form it: nothing this round can undo
		}
		msg := fmt.Sprintf("dependsOn cycle: %s (%s); the file's last good specs stay in force",
			strings.Join(cycle, " -> "), strings.Join(where, ", "))
		for p := range blamed {
			var errs spec.ErrorList
			for _, name := range cycle[:len(cycle)-1] {
				r, ok := want[name]
				if !ok || r.Source.Path != p {
					continue
				}
				i := slices.IndexFunc(r.Spec.Spec.DependsOn, func(d spec.Dependency) bool { return d.Name == nextName(cycle, name) })
				errs = append(errs, r.Spec.Locate(spec.ErrorList{{File: p,
					Path: fmt.Sprintf("spec.dependsOn[%d].name", i), Msg: msg}})...)
			}
			fileErrs[p] = errs
			for name, r := range want {
				if r.Source.Kind == store.SourceFile && r.Source.Path == p {
					delete(want, name)
				}
			}
			for _, r := range lastGood[p] {
				if _, taken := want[r.Spec.Metadata.Name]; !taken {
					want[r.Spec.Metadata.Name] = r
				}
			}
		}
	}
}

func nextName(cycle []string, name string) string {
	return cycle[slices.Index(cycle, name)+1]
}
