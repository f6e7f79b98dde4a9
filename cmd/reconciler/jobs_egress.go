package main

import (
	"strings"

	"github.com/reconciler/reconciler/pkg/spec"
)

// egressHelp is the help of run's --egress.
const egressHelp = "allow connections only to these host:port or *.domain:port destinations, comma-separated, through the agent's proxy; none: no network at all (spec.egress)"

// egressOf reads run's --egress: "" leaves spec.egress unset, "none" is
// an empty allow-list (no network), anything else the list itself, which
// the spec's validation checks entry by entry.
func egressOf(v string) *spec.Egress {
	switch strings.TrimSpace(v) {
	case "":
		return nil
	case "none":
		return &spec.Egress{Allow: []string{}}
	}
	var allow []string
	for _, a := range strings.Split(v, ",") {
		allow = append(allow, strings.TrimSpace(a))
	}
	return &spec.Egress{Allow: allow}
}
