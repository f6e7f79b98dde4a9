package spec

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Input limits. A spec file is a few hundred bytes; these only stop hostile
// or broken input early.
const (
	// MaxFileSize is the largest spec file or JSON body accepted.
	MaxFileSize = 1 << 20
	// MaxDocuments is the most specs one file or body may hold.
	MaxDocuments = 100
)

// Decode reads the specs in one YAML file: one or more documents separated
// by "---", empty documents skipped. Decoding is strict: an unknown field, a
// field given twice or a value of the wrong type is an error naming the
// file, line and field path. Each spec is then defaulted and validated. On
// any problem Decode returns no specs and an ErrorList with every problem
// found; a file is accepted or refused as a whole.
func Decode(file string, data []byte) ([]*Spec, error) {
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: file, Msg: fmt.Sprintf("file is %d bytes, more than the %d-byte limit", len(data), MaxFileSize)}}
	}
	docs, ferr := parseYAML(data)
	if ferr != nil {
		ferr.File = file
		return nil, ErrorList{ferr}
	}
	return decodeDocs(file, docs)
}

// parseYAML splits data into its non-empty documents and checks their
// shape (see MaxNodes) before anything is decoded from them.
func parseYAML(data []byte) ([]*yaml.Node, *FieldError) {
	r := &docReader{data: data}
	dec := yaml.NewDecoder(r)
	var docs []*yaml.Node
	var sh shape
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if ferr := r.tooLarge(); ferr != nil {
			return nil, ferr
		}
		if err != nil {
			return nil, syntaxError(err)
		}
		r.nextDocument()
		if len(doc.Content) == 0 || isNull(doc.Content[0]) {
			continue
		}
		if len(docs) == MaxDocuments {
			return nil, &FieldError{Line: doc.Line, Msg: fmt.Sprintf("more than %d documents", MaxDocuments)}
		}
		root := doc.Content[0]
		if ferr := sh.walk(root, 0); ferr != nil {
			return nil, ferr
		}
		docs = append(docs, root)
	}
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): `)

func syntaxError(err error) *FieldError {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &FieldError{Line: line, Msg: "invalid YAML: " + msg[len(m[0]):]}
	}
	return &FieldError{Msg: "invalid YAML: " + yamlMessage(err)}
}

// decodeDocs decodes, defaults and validates each document of one file.
func decodeDocs(file string, docs []*yaml.Node) ([]*Spec, error) {
	budget := nodeBudget(docs...)
	var specs []*Spec
	var errs ErrorList
	for _, doc := range docs {
		s, docErrs := decodeSpec(file, doc, &budget)
		errs = append(errs, docErrs...)
		specs = append(specs, s)
		if len(errs) > maxErrors || budget < 0 {
			break
		}
	}
	errs = append(errs, ValidateSet(specs)...)
	if len(errs) > 0 {
		for _, e := range errs {
			e.File = file
		}
		slices.SortStableFunc(errs, func(a, b *FieldError) int { return cmp.Compare(a.Line, b.Line) })
		return nil, errs
	}
	return specs, nil
}

func decodeSpec(file string, doc *yaml.Node, budget *int) (*Spec, ErrorList) {
	d := newNodeDecoder(budget)
	d.lines.paths[""] = doc.Line
	s := &Spec{}
	d.decode(doc, reflect.ValueOf(s).Elem(), "", 0)
	if d.stopped || doc.Kind != yaml.MappingNode {
		return s, d.errs
	}
	s.setSource(&source{file: file, lines: d.lines})
	s.Default()
	errs := d.errs
	for _, e := range s.Validate() {
		if !underFailed(e.Path, d.errs) {
			errs = append(errs, e)
		}
	}
	return s, errs
}

// underFailed reports a validation error about a field whose decoding
// already failed: "spec.image: required" says nothing new after
// "spec.image: expected text, got a list".
func underFailed(path string, failed ErrorList) bool {
	for _, f := range failed {
		for p := path; ; p = parentPath(p) {
			if p == f.Path && p != "" {
				return true
			}
			if p == "" {
				break
			}
		}
	}
	return false
}
