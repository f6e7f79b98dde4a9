package docker

import (
	"fmt"
	"reflect"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"

	"github.com/reconciler/reconciler/pkg/spec"
)

func TestBuildConfigLoggingAndInit(t *testing.T) {
	tests := []struct {
		name    string
		logging *spec.Logging
		want    container.LogConfig
	}{
		{"default", nil, container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}},
		{"local", &spec.Logging{Driver: "local"}, container.LogConfig{Type: "local"}},
		{"local with options", &spec.Logging{Driver: "local", Options: map[string]string{"max-size": "5m"}},
			container.LogConfig{Type: "local", Config: map[string]string{"max-size": "5m"}}},
		{"json-file keeps its bounds", &spec.Logging{Driver: "json-file", Options: map[string]string{"max-file": "9", "labels": "a"}},
			container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "9", "labels": "a"}}},
		{"none", &spec.Logging{Driver: "none"}, container.LogConfig{Type: "none"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := baseSpec()
			s.Spec.Logging = tt.logging
			s.Spec.Init = true
			_, host, _, err := BuildConfig(CreateRequest{Name: "web", Spec: s})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(host.LogConfig, tt.want) {
				t.Errorf("log config %+v, want %+v", host.LogConfig, tt.want)
			}
			if host.Init == nil || !*host.Init {
				t.Errorf("init %v, want true", host.Init)
			}
		})
	}
}

func TestLogsUnreadable(t *testing.T) {
	// What the daemon answers (501) for a container whose driver is none.
	unreadable := cerrdefs.ErrNotImplemented.WithMessage("configured logging driver does not support reading")
	if !LogsUnreadable(unreadable) || !LogsUnreadable(fmt.Errorf("logs of c1: %w", unreadable)) {
		t.Error("a 501 from the daemon's logs is not recognised")
	}
	if LogsUnreadable(nil) || LogsUnreadable(ErrNotFound) || LogsUnreadable(ErrUnavailable) {
		t.Error("other errors taken for an unreadable log driver")
	}
}
