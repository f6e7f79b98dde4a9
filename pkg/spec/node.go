package spec

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Bounds that keep a hostile document cheap to reject.
const (
	// maxDepth bounds nesting; the deepest real spec field is 4 levels down.
	maxDepth = 32
	// maxAliasNodes bounds how many nodes aliases and merge keys may add to
	// those written in a file, so a billion-laughs document stops after a
	// few milliseconds while an alias-free file is never refused for size.
	maxAliasNodes = 1 << 15
	// maxErrors bounds the errors reported per file.
	maxErrors = 50
)

// nodeDecoder decodes a yaml.Node tree into a Go value strictly, guided by
// the value's type and its yaml tags. Unlike yaml.Node.Decode it reports
// every problem with its field path and line, rejects unknown and duplicate
// fields, and bounds alias expansion. yaml.Node.Decode is used for scalars
// only.
type nodeDecoder struct {
	lines     lineMap
	errs      ErrorList
	budget    *int
	expanding map[*yaml.Node]bool
	stopped   bool
}

func newNodeDecoder(budget *int) *nodeDecoder {
	return &nodeDecoder{lines: newLineMap(), budget: budget, expanding: map[*yaml.Node]bool{}}
}

func (d *nodeDecoder) add(line int, path, msg string) {
	if d.stopped {
		return
	}
	if len(d.errs) >= maxErrors {
		d.stop(line, path, "too many errors, giving up")
		return
	}
	d.errs = append(d.errs, &FieldError{Line: line, Path: path, Msg: msg})
}

func (d *nodeDecoder) stop(line int, path, msg string) {
	if d.stopped {
		return
	}
	d.errs = append(d.errs, &FieldError{Line: line, Path: path, Msg: msg})
	d.stopped = true
}

// spend charges one visited node; false once the file's budget is gone.
func (d *nodeDecoder) spend(n *yaml.Node, path string) bool {
	if d.stopped {
		return false
	}
	*d.budget--
	if *d.budget < 0 {
		d.stop(n.Line, path, fmt.Sprintf("aliases expand to more than %d nodes; refusing the file", maxAliasNodes))
		return false
	}
	return true
}

// nodeBudget is the visits a decoder may make over docs: every node written
// plus maxAliasNodes.
func nodeBudget(docs ...*yaml.Node) int {
	n := maxAliasNodes
	var count func(*yaml.Node)
	count = func(node *yaml.Node) {
		n++
		for _, c := range node.Content {
			count(c)
		}
	}
	for _, d := range docs {
		count(d)
	}
	return n
}

func (d *nodeDecoder) record(path string, line int) {
	if _, ok := d.lines.paths[path]; !ok {
		d.lines.paths[path] = line
	}
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

func (d *nodeDecoder) decode(n *yaml.Node, v reflect.Value, path string, depth int) {
	if !d.spend(n, path) {
		return
	}
	if depth > maxDepth {
		d.stop(n.Line, path, fmt.Sprintf("nested deeper than %d levels", maxDepth))
		return
	}
	if n.Kind == yaml.AliasNode {
		d.alias(n, path, depth, func(target *yaml.Node) { d.decode(target, v, path, depth+1) })
		return
	}
	d.record(path, n.Line)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		d.scalar(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path, depth)
	case reflect.Struct:
		d.structure(n, v, path, depth)
	case reflect.Map:
		d.mapping(n, v, path, depth)
	case reflect.Slice:
		d.sequence(n, v, path, depth)
	default:
		d.scalar(n, v, path)
	}
}

// alias expands an alias, refusing one that contains itself.
func (d *nodeDecoder) alias(n *yaml.Node, path string, depth int, f func(*yaml.Node)) {
	if n.Alias == nil {
		d.add(n.Line, path, fmt.Sprintf("unknown alias *%s", n.Value))
		return
	}
	if d.expanding[n] {
		d.stop(n.Line, path, fmt.Sprintf("alias *%s refers to itself", n.Value))
		return
	}
	if depth > maxDepth {
		d.stop(n.Line, path, fmt.Sprintf("nested deeper than %d levels", maxDepth))
		return
	}
	d.expanding[n] = true
	f(n.Alias)
	delete(d.expanding, n)
}

func (d *nodeDecoder) structure(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.add(n.Line, path, fmt.Sprintf("expected a mapping, got %s", describe(n)))
		return
	}
	fields := yamlFields(v.Type())
	for _, p := range d.pairs(n, path, depth) {
		fp := keyPath(path, p.key.Value)
		i, ok := fields[p.key.Value]
		if !ok {
			d.add(p.key.Line, fp, unknownField(p.key.Value, fields))
			continue
		}
		d.record(fp, p.key.Line)
		d.decode(p.val, v.Field(i), fp, depth+1)
	}
}

func (d *nodeDecoder) mapping(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.MappingNode {
		d.add(n.Line, path, fmt.Sprintf("expected a mapping, got %s", describe(n)))
		return
	}
	t := v.Type()
	if v.IsNil() {
		v.Set(reflect.MakeMap(t))
	}
	for _, p := range d.pairs(n, path, depth) {
		kp := keyPath(path, p.key.Value)
		d.record(kp, p.key.Line)
		elem := reflect.New(t.Elem()).Elem()
		d.decode(p.val, elem, kp, depth+1)
		v.SetMapIndex(reflect.ValueOf(p.key.Value).Convert(t.Key()), elem)
	}
}

func (d *nodeDecoder) sequence(n *yaml.Node, v reflect.Value, path string, depth int) {
	if n.Kind != yaml.SequenceNode {
		d.add(n.Line, path, fmt.Sprintf("expected a list, got %s", describe(n)))
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	leaf := isLeaf(v.Type().Elem())
	var lines []int32
	if leaf {
		lines = make([]int32, len(n.Content))
		d.lines.items[path] = lines
	}
	for i, c := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		if !leaf || c.Kind != yaml.ScalarNode {
			d.record(ip, c.Line)
			d.decode(c, s.Index(i), ip, depth+1)
			continue
		}
		// What decode does for a scalar, with the line kept in lines.
		lines[i] = int32(c.Line)
		if !d.spend(c, ip) {
			return
		}
		if c.ShortTag() != "!!null" {
			d.scalar(c, s.Index(i), ip)
		}
	}
	v.Set(s)
}

// isLeaf reports a type decoded from a scalar alone.
func isLeaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Struct, reflect.Map, reflect.Slice, reflect.Interface, reflect.Array:
		return false
	}
	return true
}

// scalar decodes a leaf with yaml itself, after the checks yaml would skip:
// yaml silently truncates 0.5 into an int and reads "yes" as true.
func (d *nodeDecoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.ScalarNode {
		d.add(n.Line, path, fmt.Sprintf("expected %s, got %s", want(v.Type()), describe(n)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		if n.ShortTag() != "!!binary" {
			v.SetString(n.Value) // what yaml does, without a decoder per value
			return
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if n.ShortTag() != "!!int" {
			d.add(n.Line, path, fmt.Sprintf("%q is not an integer", n.Value))
			return
		}
	case reflect.Bool:
		if n.ShortTag() != "!!bool" {
			d.add(n.Line, path, fmt.Sprintf("%q is not a boolean (use true or false)", n.Value))
			return
		}
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.add(n.Line, path, yamlMessage(err))
	}
}

type pair struct{ key, val *yaml.Node }

// pairs lists a mapping's entries with merge keys (<<) applied as YAML
// defines them: explicit keys win over merged ones, earlier merges over
// later. A key written twice is an error rather than yaml's silent "last wins".
func (d *nodeDecoder) pairs(n *yaml.Node, path string, depth int) []pair {
	var explicit, merged []pair
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if !d.spend(k, path) {
			return nil
		}
		switch {
		case k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge":
			merged = append(merged, d.merge(val, path, depth)...)
		case k.Kind != yaml.ScalarNode:
			d.add(k.Line, path, fmt.Sprintf("a field name must be text, got %s", describe(k)))
		case seen[k.Value]:
			d.add(k.Line, keyPath(path, k.Value), "field given twice")
		default:
			seen[k.Value] = true
			explicit = append(explicit, pair{k, val})
		}
	}
	for _, p := range merged {
		if !seen[p.key.Value] {
			seen[p.key.Value] = true
			explicit = append(explicit, p)
		}
	}
	return explicit
}

func (d *nodeDecoder) merge(n *yaml.Node, path string, depth int) []pair {
	var out []pair
	var from func(n *yaml.Node, list bool, depth int)
	from = func(n *yaml.Node, list bool, depth int) {
		switch {
		case n.Kind == yaml.AliasNode:
			d.alias(n, path, depth, func(t *yaml.Node) { from(t, list, depth+1) })
		case n.Kind == yaml.MappingNode:
			out = append(out, d.pairs(n, path, depth+1)...)
		case n.Kind == yaml.SequenceNode && !list:
			for _, c := range n.Content {
				from(c, true, depth+1)
			}
		default:
			d.add(n.Line, path, "<< must merge a mapping or a list of mappings")
		}
	}
	from(n, false, depth)
	return out
}

var fieldCache sync.Map // reflect.Type -> map[string]int

// yamlFields maps a struct's yaml field names to field indexes.
func yamlFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

func unknownField(name string, fields map[string]int) string {
	msg := fmt.Sprintf("unknown field %q", name)
	best, bestDist := "", 3
	for f := range fields {
		if dist := editDistance(strings.ToLower(name), strings.ToLower(f)); dist < bestDist || dist == bestDist && f < best {
			best, bestDist = f, dist
		}
	}
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", best)
	}
	return msg
}

// editDistance is Levenshtein's, for "did you mean" hints on short names.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return len(a) + len(b)
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath extends a field path; keys that would be ambiguous in dotted form
// (label keys such as app.kubernetes.io/name) are written as ["..."].
func keyPath(path, key string) string {
	if !plainKey.MatchString(key) {
		return fmt.Sprintf("%s[%q]", path, key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	}
	if len(n.Value) > 40 {
		return fmt.Sprintf("%q...", n.Value[:40])
	}
	return fmt.Sprintf("%q", n.Value)
}

func want(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "text"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return "an integer"
}

var linePrefix = regexp.MustCompile(`^(yaml: )?(unmarshal errors:\n\s*)?line \d+: `)

// yamlMessage strips what the FieldError already says (the line) from a
// yaml error.
func yamlMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, m := range te.Errors {
			msgs[i] = linePrefix.ReplaceAllString(m, "")
		}
		return strings.Join(msgs, "; ")
	}
	return strings.TrimPrefix(linePrefix.ReplaceAllString(err.Error(), ""), "yaml: ")
}
