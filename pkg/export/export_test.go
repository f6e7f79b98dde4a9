package export

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/reconciler/reconciler/pkg/spec"
)

// decodeSpec decodes one spec named name whose spec: body is body.
func decodeSpec(t *testing.T, name, body string) *spec.Spec {
	t.Helper()
	doc := "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: " + name + "}\nspec:\n" + indent(body)
	specs, err := spec.Decode(name+".yaml", []byte(doc))
	if err != nil {
		t.Fatalf("decode:\n%v\n%s", err, doc)
	}
	return specs[0]
}

func indent(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// docs splits multi-document YAML into generic maps.
func docs(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(out))
	var all []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return all
		}
		if err != nil {
			t.Fatalf("output is not YAML: %v\n%s", err, out)
		}
		all = append(all, m)
	}
}

// at follows a dotted path ("spec.template.spec.containers.0.image").
func at(v any, path string) (any, error) {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil, fmt.Errorf("no %q in %s", k, path)
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(x) {
				return nil, fmt.Errorf("no index %q in %s", k, path)
			}
			v = x[i]
		default:
			return nil, fmt.Errorf("%q of %s is under a scalar", k, path)
		}
	}
	return v, nil
}

const (
	pod = "spec.template.spec."
	ctr = pod + "containers.0."
)

func TestKubernetes(t *testing.T) {
	tests := []struct {
		name string
		body string
		// want maps a path to its value written as YAML flow text
		// ("[a, b]", "1", "TCP"); "-" means the path must be absent.
		want     map[string]string
		warnings []string // fields warned about, in order
	}{
		{
			name: "service",
			body: "image: reconciler/box:latest\nargs: [tick]\nrestartPolicy: Always",
			want: map[string]string{
				"apiVersion": "apps/v1", "kind": "Deployment", "metadata.name": "service",
				"metadata.labels": "{app.kubernetes.io/name: service}",
				"spec.replicas":   "1", "spec.strategy.type": "Recreate",
				"spec.selector.matchLabels":           "{app.kubernetes.io/name: service}",
				"spec.template.metadata.labels":       "{app.kubernetes.io/name: service}",
				pod + "restartPolicy":                 "Always",
				pod + "terminationGracePeriodSeconds": "10",
				ctr + "name":                          "service", ctr + "image": "reconciler/box:latest",
				ctr + "imagePullPolicy": "IfNotPresent",
				ctr + "args":            "[tick]",
				ctr + "command":         "-",
				ctr + "resources":       "-",
				ctr + "securityContext": "{seccompProfile: {type: RuntimeDefault}}",
				"spec.backoffLimit":     "-",
			},
		},
		{
			name: "onfailure",
			body: "image: i\nrestartPolicy: OnFailure\nmaxRestarts: 3\nactiveDeadline: 90s\nttlAfterFinished: 1h",
			want: map[string]string{
				"apiVersion": "batch/v1", "kind": "Job",
				"spec.backoffLimit": "3", "spec.activeDeadlineSeconds": "90", "spec.ttlSecondsAfterFinished": "3600",
				pod + "restartPolicy": "OnFailure", "spec.selector": "-",
			},
			warnings: []string{"spec.activeDeadline"},
		},
		{
			name:     "priority",
			body:     "image: i\nrestartPolicy: Never\npriority: 7",
			want:     map[string]string{"metadata.annotations": "{reconciler/priority: \"7\"}", "spec.template.metadata.annotations": "-"},
			warnings: []string{"spec.priority"},
		},
		{
			name: "startfirst",
			body: "image: i\nupdateStrategy: {type: StartFirst, minReady: 5s}\nhealthcheck: {test: [CMD, 'true']}",
			want: map[string]string{
				"kind": "Deployment", "spec.strategy.type": "RollingUpdate",
				"spec.strategy.rollingUpdate": "{maxSurge: 1, maxUnavailable: 0}", "spec.minReadySeconds": "5",
			},
		},
		{
			name:     "startfirst-no-healthcheck",
			body:     "image: i\nupdateStrategy: {type: StartFirst}",
			want:     map[string]string{"spec.strategy.type": "RollingUpdate", "spec.minReadySeconds": "-"},
			warnings: []string{"spec.updateStrategy"},
		},
		{
			name: "stopfirst",
			body: "image: i\nupdateStrategy: {type: StopFirst}",
			want: map[string]string{"spec.strategy.type": "Recreate", "spec.strategy.rollingUpdate": "-"},
		},
		{
			name:     "dependson",
			body:     "image: i\ndependsOn: [{name: db, condition: Healthy}]",
			want:     map[string]string{"kind": "Deployment", pod + "initContainers": "-"},
			warnings: []string{"spec.dependsOn"},
		},
		{
			name:     "job-startfirst",
			body:     "image: i\nrestartPolicy: Never\nupdateStrategy: {type: StartFirst}",
			want:     map[string]string{"kind": "Job"},
			warnings: []string{"spec.updateStrategy"},
		},
		{
			name:     "onfailure-unbounded",
			body:     "image: i\nrestartPolicy: OnFailure",
			want:     map[string]string{"kind": "Job", "spec.backoffLimit": "-"},
			warnings: []string{"spec.maxRestarts"},
		},
		{
			name: "never",
			body: "image: i\nrestartPolicy: Never\nactiveDeadline: 1500ms\nremoveOnExit: true",
			want: map[string]string{
				"kind": "Job", "spec.backoffLimit": "0", "spec.activeDeadlineSeconds": "2",
				pod + "restartPolicy": "Never", "spec.ttlSecondsAfterFinished": "-",
			},
			warnings: []string{"spec.removeOnExit"},
		},
		{
			name: "never-without-deadline",
			body: "image: i\nrestartPolicy: Never",
			want: map[string]string{"kind": "Job", "spec.backoffLimit": "0", "spec.activeDeadlineSeconds": "-"},
		},
		{
			name: "job-fields-on-a-service",
			body: "image: i\nmaxRestarts: 2\nactiveDeadline: 1m\nttlAfterFinished: 1m\nremoveOnExit: true\nbackoff: {initial: 2s}",
			want: map[string]string{"kind": "Deployment", "spec.activeDeadlineSeconds": "-"},
			warnings: []string{"spec.backoff", "spec.maxRestarts", "spec.activeDeadline", "spec.ttlAfterFinished",
				"spec.removeOnExit"},
		},
		{
			name: "command-env-secret",
			body: `image: reconciler/claude-code:2.0.31
command: [claude]
args: [-p, hello]
workingDir: /workspace
env:
  - {name: MODE, value: batch}
  - {name: EMPTY}
  - {name: ANTHROPIC_API_KEY, valueFrom: {file: /etc/reconciler/secrets/anthropic-key}}
  - {name: anthropic-api-key, valueFrom: {file: /etc/other}}`,
			want: map[string]string{
				ctr + "command": "[claude]", ctr + "args": "[-p, hello]", ctr + "workingDir": "/workspace",
				ctr + "env.0":           "{name: MODE, value: batch}",
				ctr + "env.1":           "{name: EMPTY}",
				ctr + "env.2":           "{name: ANTHROPIC_API_KEY, valueFrom: {secretKeyRef: {name: command-env-secret-secrets, key: anthropic-api-key}}}",
				ctr + "env.3.valueFrom": "{secretKeyRef: {name: command-env-secret-secrets, key: anthropic-api-key-2}}",
			},
			warnings: []string{"spec.env[2].valueFrom.file", "spec.env[3].valueFrom.file"},
		},
		{
			name: "resources",
			body: "image: i\nresources: {memory: 1.5Gi, cpus: 250m, pids: 64}",
			want: map[string]string{
				ctr + "resources": "{limits: {cpu: 250m, memory: 1.5Gi}, requests: {cpu: 250m, memory: 1.5Gi}}",
			},
			warnings: []string{"spec.resources.pids"},
		},
		{
			name: "cpus-as-a-number",
			body: "image: i\nresources: {cpus: 0.5}",
			want: map[string]string{ctr + "resources.limits": "{cpu: \"0.5\"}"},
		},
		{
			name: "mounts",
			body: `image: i
mounts:
  - {type: bind, source: /srv/work/repo, target: /workspace}
  - {type: volume, source: claude_home, target: /home/node/.claude, readOnly: true}
  - {type: tmpfs, target: /tmp}
  - {type: tmpfs, target: /TMP}`,
			want: map[string]string{
				ctr + "volumeMounts": "[{name: workspace, mountPath: /workspace}, {name: home-node-claude, mountPath: /home/node/.claude, readOnly: true}, " +
					"{name: tmp, mountPath: /tmp}, {name: mount-3, mountPath: /TMP}]",
				pod + "volumes": "[{name: workspace, hostPath: {path: /srv/work/repo}}, " +
					"{name: home-node-claude, persistentVolumeClaim: {claimName: claude-home, readOnly: true}}, " +
					"{name: tmp, emptyDir: {medium: Memory}}, {name: mount-3, emptyDir: {medium: Memory}}]",
			},
			warnings: []string{"spec.mounts[1].source"},
		},
		{
			name: "ports",
			body: `image: i
ports:
  - {containerPort: 8080, hostPort: 18080, hostIP: 127.0.0.1}
  - {containerPort: 53, protocol: udp}
  - {containerPort: 9000, hostIP: 127.0.0.1}`,
			want: map[string]string{
				ctr + "ports": "[{containerPort: 8080, hostPort: 18080, hostIP: 127.0.0.1, protocol: TCP}, " +
					"{containerPort: 53, protocol: UDP}, {containerPort: 9000, protocol: TCP}]",
			},
		},
		{
			name: "healthcheck-cmd",
			body: "image: i\nhealthcheck: {test: [CMD, /box, check], interval: 5s, timeout: 1500ms, retries: 2, startPeriod: 20s}",
			want: map[string]string{
				ctr + "livenessProbe":  "{exec: {command: [/box, check]}, initialDelaySeconds: 20, timeoutSeconds: 2, periodSeconds: 5, failureThreshold: 2}",
				ctr + "readinessProbe": "-",
			},
		},
		{
			name: "healthcheck-docker-defaults",
			body: "image: i\nrestartPolicy: OnFailure\nmaxRestarts: 1\nhealthcheck: {test: [CMD-SHELL, test -f /ok]}",
			want: map[string]string{
				ctr + "livenessProbe": "{exec: {command: [sh, -c, test -f /ok]}, timeoutSeconds: 30, periodSeconds: 30, failureThreshold: 3}",
			},
		},
		{
			name: "healthcheck-never",
			body: "image: i\nrestartPolicy: Never\nhealthcheck: {test: [CMD, /ok]}",
			want: map[string]string{
				ctr + "livenessProbe":               "-",
				ctr + "readinessProbe.exec.command": "[/ok]",
			},
			warnings: []string{"spec.healthcheck"},
		},
		{
			name: "healthcheck-none",
			body: "image: i\nhealthcheck: {test: [NONE]}",
			want: map[string]string{ctr + "livenessProbe": "-", ctr + "readinessProbe": "-"},
		},
		{
			name:     "grace-and-signal",
			body:     "image: i\nterminationGracePeriod: 2500ms\nstopSignal: INT",
			want:     map[string]string{pod + "terminationGracePeriodSeconds": "3"},
			warnings: []string{"spec.stopSignal"},
		},
		{
			name: "security",
			body: `image: i
user: "1000:1001"
capAdd: [cap_net_bind_service]
capDrop: [ALL]
readOnlyRootFilesystem: true
securityOpt: [no-new-privileges, "apparmor=unconfined", "label=type:container_t", "label:level:s0:c1"]`,
			want: map[string]string{
				ctr + "securityContext": "{capabilities: {add: [NET_BIND_SERVICE], drop: [ALL]}, readOnlyRootFilesystem: true, " +
					"runAsUser: 1000, runAsGroup: 1001, allowPrivilegeEscalation: false, " +
					"seLinuxOptions: {type: container_t, level: \"s0:c1\"}, seccompProfile: {type: RuntimeDefault}, appArmorProfile: {type: Unconfined}}",
			},
		},
		{
			name: "security-unmappable",
			body: `image: i
user: node:staff
securityOpt: ["seccomp=/etc/profile.json", "apparmor=my-profile", "label=disable", "systempaths=unconfined"]`,
			want: map[string]string{
				ctr + "securityContext": "{seccompProfile: {type: RuntimeDefault}, appArmorProfile: {type: Localhost, localhostProfile: my-profile}}",
			},
			warnings: []string{"spec.user", "spec.user", "spec.securityOpt[0]", "spec.securityOpt[1]",
				"spec.securityOpt[2]", "spec.securityOpt[3]"},
		},
		{
			name: "privileged-host",
			body: "image: i\nprivileged: true\nnetwork: host\nhostPID: true\nhostIPC: true\nhostUTS: true\n" +
				"devices: [/dev/fuse]\nsecurityOpt: [no-new-privileges, seccomp=unconfined]",
			want: map[string]string{
				pod + "hostNetwork": "true", pod + "hostPID": "true", pod + "hostIPC": "true",
				ctr + "securityContext": "{privileged: true, seccompProfile: {type: Unconfined}}",
			},
			warnings: []string{"spec.hostUTS", "spec.devices[0]", "spec.securityOpt[0]"},
		},
		{
			name:     "logging-init",
			body:     "image: i\nlogging: {driver: local, options: {max-size: 5m}}\ninit: true",
			want:     map[string]string{pod + "shareProcessNamespace": "-"},
			warnings: []string{"spec.logging", "spec.init"},
		},
		{
			name:     "networks",
			body:     "image: i\nnetwork: none",
			want:     map[string]string{pod + "hostNetwork": "-"},
			warnings: []string{"spec.network"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := decodeSpec(t, tt.name, tt.body)
			out, warnings, err := Kubernetes([]*spec.Spec{s})
			if err != nil {
				t.Fatal(err)
			}
			ds := docs(t, out)
			if len(ds) != 1 {
				t.Fatalf("%d documents, want 1:\n%s", len(ds), out)
			}
			for path, want := range tt.want {
				got, err := at(ds[0], path)
				if want == "-" {
					if err == nil {
						t.Errorf("%s = %v, want it absent", path, got)
					}
					continue
				}
				if err != nil {
					t.Errorf("%v\n%s", err, out)
					continue
				}
				var w any
				if err := yaml.Unmarshal([]byte(want), &w); err != nil {
					t.Fatalf("bad want %q: %v", want, err)
				}
				if g, w := flow(t, got), flow(t, w); g != w {
					t.Errorf("%s = %s, want %s", path, g, w)
				}
			}
			var fields []string
			for _, w := range warnings {
				if w.Spec != tt.name || w.Message == "" {
					t.Errorf("warning %v: want spec %s and a message", w, tt.name)
				}
				fields = append(fields, w.Field)
			}
			if !slices.Equal(fields, tt.warnings) {
				t.Errorf("warnings on %q, want %q:\n%v", fields, tt.warnings, warnings)
			}
		})
	}
}

// flow renders a decoded value one way, so that key order and styles of
// the expectation do not matter.
func flow(t *testing.T, v any) string {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestKubernetesSeveralSpecs(t *testing.T) {
	a := decodeSpec(t, "a", "image: i")
	b := decodeSpec(t, "b", "image: i\nrestartPolicy: Never")
	out, _, err := Kubernetes([]*spec.Spec{a, b})
	if err != nil {
		t.Fatal(err)
	}
	ds := docs(t, out)
	if len(ds) != 2 || ds[0]["kind"] != "Deployment" || ds[1]["kind"] != "Job" {
		t.Fatalf("want a Deployment then a Job, got:\n%s", out)
	}
	if !bytes.Contains(out, []byte("\n---\n")) {
		t.Errorf("documents are not separated by ---:\n%s", out)
	}
	if _, _, err := Kubernetes([]*spec.Spec{a, a}); err == nil || !strings.Contains(err.Error(), `"a" given twice`) {
		t.Errorf("a name given twice: err = %v", err)
	}
	if out, w, err := Kubernetes(nil); err != nil || len(out) != 0 || len(w) != 0 {
		t.Errorf("no specs: %q %v %v", out, w, err)
	}
}

func TestKubernetesKeepsNameLabel(t *testing.T) {
	doc := "apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: web, labels: {app.kubernetes.io/name: shop, team: a}}\nspec: {image: i}\n"
	specs, err := spec.Decode("web.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := Kubernetes(specs)
	if err != nil {
		t.Fatal(err)
	}
	d := docs(t, out)[0]
	sel, _ := at(d, "spec.selector.matchLabels")
	labels, _ := at(d, "spec.template.metadata.labels")
	if flow(t, sel) != flow(t, map[string]any{NameLabel: "shop"}) ||
		flow(t, labels) != flow(t, map[string]any{NameLabel: "shop", "team": "a"}) {
		t.Errorf("selector %v, template labels %v: the selector must use the spec's own name label", sel, labels)
	}
	if specs[0].Metadata.Labels[NameLabel] != "shop" || len(specs[0].Metadata.Labels) != 2 {
		t.Errorf("the spec's labels were changed: %v", specs[0].Metadata.Labels)
	}
}

func TestWarningString(t *testing.T) {
	w := Warning{Spec: "job", Field: "spec.resources.pids", Message: "not mapped"}
	if got := w.String(); got != "job: spec.resources.pids: not mapped" {
		t.Errorf("String() = %q", got)
	}
}

func TestSecretKey(t *testing.T) {
	for in, want := range map[string]string{"ANTHROPIC_API_KEY": "anthropic-api-key", "a.b-c": "a.b-c", "_X": "-x"} {
		if got := SecretKey(in); got != want {
			t.Errorf("SecretKey(%q) = %q, want %q", in, got, want)
		}
	}
}
