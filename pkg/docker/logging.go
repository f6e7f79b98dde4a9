package docker

import (
	"maps"

	cerrdefs "github.com/containerd/errdefs"

	"github.com/docker/docker/api/types/container"

	"github.com/reconciler/reconciler/pkg/spec"
)

// logConfigOf is the spec's log driver and options, or the agent's bounded
// json-file. A json-file the spec names keeps the bounds unless its
// options set them: a container that runs for months must not fill the
// disk because its spec only wanted, say, labels in its log.
func logConfigOf(l *spec.Logging) container.LogConfig {
	bounds := map[string]string{"max-size": logMaxSize, "max-file": logMaxFiles}
	if l == nil || l.Driver == "" {
		return container.LogConfig{Type: "json-file", Config: bounds}
	}
	opts := map[string]string{}
	if l.Driver == "json-file" {
		maps.Copy(opts, bounds)
	}
	maps.Copy(opts, l.Options)
	if len(opts) == 0 {
		opts = nil
	}
	return container.LogConfig{Type: l.Driver, Config: opts}
}

// LogsUnreadable tells a Logs error that says the container's log driver
// keeps nothing the daemon can read back (none, syslog without dual
// logging, ...): not a failure to retry, a fact to report once.
func LogsUnreadable(err error) bool { return cerrdefs.IsNotImplemented(err) }

// LogsUnreadableMessage says why a container's output cannot be shown.
const LogsUnreadableMessage = "its log driver does not support reading (the daemon keeps no copy of the output; " +
	"read it where the driver sends it, or use logging driver json-file or local)"
