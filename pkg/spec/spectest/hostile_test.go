package spectest

import (
	"strings"
	"testing"
)

// The doors that reach into the secret directory or the volume name the
// ones given: a door built from another directory would not try the
// policy under test.
func TestHostileDoorsUseTheirArguments(t *testing.T) {
	doors := HostileDoors("/srv/secrets", "shared-data")
	names := map[string]bool{}
	joined := ""
	for _, d := range doors {
		if names[d.Name] {
			t.Errorf("door %q twice", d.Name)
		}
		names[d.Name] = true
		if len(d.Spec) == 0 || d.Field == "" {
			t.Errorf("door %q: no spec line or no field", d.Name)
		}
		joined += strings.Join(d.Spec, "\n") + "\n"
	}
	for _, want := range []string{"file: /srv/secrets/../../etc/shadow}", "file: /srv/secrets/fifo}", "source: shared-data, target: /data}"} {
		if !strings.Contains(joined, want) {
			t.Errorf("no door holds %q", want)
		}
	}
}
