package source

import (
	"bytes"
	"encoding/json"

	"github.com/reconciler/reconciler/pkg/spec"
)

// sameSpec compares whole specs, not hashes: the hash leaves out fields
// that do not change the container (backoff, priority, ...) but must
// still reach the store when a file changes them.
func sameSpec(a, b *spec.Spec) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
