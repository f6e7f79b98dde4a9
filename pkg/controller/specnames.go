package controller

// specNamer is a Store that lists spec names without decoding the specs
// (pkg/store does): a resync needs only the names.
type specNamer interface {
	SpecNames() ([]string, error)
}

// specNames returns every stored spec's name.
func specNames(st Store) ([]string, error) {
	if n, ok := st.(specNamer); ok {
		return n.SpecNames()
	}
	recs, err := st.ListSpecs()
	if err != nil {
		return nil, err
	}
	names := make([]string, len(recs))
	for i, r := range recs {
		names[i] = r.Spec.Metadata.Name
	}
	return names, nil
}
