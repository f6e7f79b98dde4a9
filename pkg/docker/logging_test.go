package docker

import (
	"reflect"
	"testing"

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
