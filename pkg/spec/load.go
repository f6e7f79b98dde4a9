package spec

// Load decodes a spec file and checks every spec against the agent's
// policy: exactly what the agent accepts from its spec directory, and what
// `reconciler validate` reports offline. All problems come back together.
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
