package spec

import (
	"fmt"
	"io"
)

// ReadLimited reads a spec file's content from r without reading past
// MaxFileSize: a larger file is refused, naming it, before any of it is
// decoded or held whole in memory.
func ReadLimited(name string, r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, ErrorList{{File: name, Msg: fmt.Sprintf("file is more than the %d-byte limit", MaxFileSize)}}
	}
	return data, nil
}

// Load decodes a spec file and checks every spec against the agent's
// policy: what `reconciler validate` reports offline and the API refuses.
// (The agent's spec directory stores a spec the policy refuses, and the
// controller shows it Refused.) All problems come back together.
func Load(file string, data []byte, p *Policy) ([]*Spec, error) {
	specs, err := Decode(file, data)
	if err != nil {
		return nil, err
	}
	return specs, p.CheckAll(specs).Err()
}

// CheckAll checks every spec against the policy.
func (p *Policy) CheckAll(specs []*Spec) ErrorList {
	var errs ErrorList
	for _, s := range specs {
		errs = append(errs, p.Check(s)...)
	}
	return errs
}
