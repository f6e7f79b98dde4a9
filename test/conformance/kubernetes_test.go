package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/reconciler/reconciler/pkg/export"
	"github.com/reconciler/reconciler/pkg/spec"
)

// richSpecs use every field the export maps, and the ones it only warns
// about, in each restart policy.
const richSpecs = `
apiVersion: reconciler/v1
kind: Container
metadata: {name: rich-service, labels: {team: a, tier: web}}
spec:
  image: reconciler/box:latest
  imagePullPolicy: Never
  command: [/box]
  args: [serve, --addr, ":8080"]
  env:
    - {name: GREETING, value: hello}
    - {name: API_TOKEN, valueFrom: {file: /run/secrets/token}}
  workingDir: /srv
  user: "1000:1000"
  mounts:
    - {type: volume, source: web_data, target: /data}
    - {type: tmpfs, target: /tmp}
    - {type: bind, source: /srv/web, target: /srv, readOnly: true}
    - {type: volume, target: /cache}
  secrets:
    - {file: /etc/reconciler/secrets/tls.key, target: /etc/tls/key.pem}
    - {file: /etc/reconciler/secrets/ca.pem}
  ports:
    - {containerPort: 8080, hostPort: 18080, hostIP: 127.0.0.1}
    - {containerPort: 53, protocol: udp}
    - {containerPort: 9000, protocol: SCTP}
  resources: {memory: 256Mi, cpus: "0.5", pids: 128}
  restartPolicy: Always
  backoff: {initial: 1s, max: 1m}
  maxRestarts: 5
  stopSignal: SIGINT
  terminationGracePeriod: 2500ms
  network: host-less
  capAdd: [NET_BIND_SERVICE]
  capDrop: [ALL]
  securityOpt: [no-new-privileges, "apparmor=unconfined", "label=type:container_t", "label=level:s0:c1,c2"]
  readOnlyRootFilesystem: true
  healthcheck: {test: [CMD-SHELL, "wget -q -O- localhost:8080"], interval: 10s, timeout: 2s, startPeriod: 5s, retries: 3}
  logging: {driver: local, options: {max-size: 5m}}
  init: true
---
apiVersion: reconciler/v1
kind: Container
metadata: {name: rich-batch}
spec:
  image: reconciler/box:latest
  args: [exit, --code, "1"]
  resources: {memory: 1.5Gi, cpus: 250m}
  restartPolicy: OnFailure
  maxRestarts: 3
  activeDeadline: 10m
  ttlAfterFinished: 1h
  removeOnExit: true
  healthcheck: {test: [CMD, /box, check]}
  privileged: true
  network: host
  hostPID: true
  hostIPC: true
  hostUTS: true
  devices: [/dev/fuse]
  securityOpt: ["seccomp=unconfined", no-new-privileges]
---
apiVersion: reconciler/v1
kind: Container
metadata: {name: rich-job}
spec:
  image: reconciler/claude-code:2.0.31
  args: [-p, hello]
  user: node
  env:
    - {name: ANTHROPIC_API_KEY, valueFrom: {file: /etc/reconciler/secrets/anthropic-key}}
  mounts:
    - {type: bind, source: /srv/work/repo, target: /workspace}
    - {type: volume, source: claude-home, target: /home/node/.claude}
  resources: {memory: "2147483648", cpus: "1.5", pids: 512}
  restartPolicy: Never
  priority: 5
  activeDeadline: 2h
  ttlAfterFinished: 24h
  healthcheck: {test: [CMD, "true"]}
  network: none
  securityOpt: ["seccomp=/etc/docker/profile.json", "apparmor=my-profile", "label=disable", "systempaths=unconfined"]
---
apiVersion: reconciler/v1
kind: Container
metadata: {name: rich-rollout}
spec:
  image: reconciler/box:latest
  args: [serve]
  ports: [{containerPort: 8080}]
  updateStrategy: {type: StartFirst, minReady: 5s}
  dependsOn: [{name: rich-service, condition: Healthy}, {name: rich-batch, condition: Succeeded}]
  healthcheck: {test: [CMD, /box, health, --file, /tmp/healthy]}
`

// exportedSpecs gathers the shipped examples (specs/ and specs/examples/)
// and the rich specs above.
func exportedSpecs(t *testing.T) []*spec.Spec {
	t.Helper()
	var files []string
	for _, pattern := range []string{"../../specs/*.yaml", "../../specs/examples/*.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	all, err := spec.Decode("rich.yaml", []byte(richSpecs))
	if err != nil {
		t.Fatalf("rich specs:\n%v", err)
	}
	examples := 0
	for _, f := range files {
		if filepath.Base(f) == "policy.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		specs, err := spec.Decode(f, data)
		if err != nil {
			t.Fatalf("%v", err)
		}
		examples += len(specs)
		all = append(all, specs...)
	}
	if examples < 3 {
		t.Fatalf("found %d example specs in specs/ and specs/examples/, want at least 3", examples)
	}
	return all
}

// TestKubernetesExportDecodesStrictly decodes every exported manifest into
// the real Kubernetes API types, refusing unknown fields, as an API server
// would, and checks what each spec field became.
func TestKubernetesExportDecodesStrictly(t *testing.T) {
	specs := exportedSpecs(t)
	out, warnings, err := export.Kubernetes(specs)
	if err != nil {
		t.Fatal(err)
	}
	docs := splitDocs(t, out)
	if len(docs) != len(specs) {
		t.Fatalf("%d manifests for %d specs", len(docs), len(specs))
	}
	warned := map[string]bool{}
	for _, w := range warnings {
		warned[w.Spec+" "+w.Field] = true
	}
	for i, s := range specs {
		t.Run(s.Metadata.Name, func(t *testing.T) {
			meta, pod := decodeManifest(t, s, docs[i])
			if meta.Name != s.Metadata.Name {
				t.Errorf("name %q", meta.Name)
			}
			for k, v := range s.Metadata.Labels {
				if meta.Labels[k] != v {
					t.Errorf("label %s = %q, want %q", k, meta.Labels[k], v)
				}
			}
			checkPod(t, s, pod, warned)
		})
	}
}

// splitDocs reads the documents as kubectl does.
func splitDocs(t *testing.T, out []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	var docs [][]byte
	for {
		d, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
}

// decodeManifest decodes one manifest strictly into the type its restart
// policy calls for and returns its metadata and pod template.
func decodeManifest(t *testing.T, s *spec.Spec, doc []byte) (meta objectMeta, pod corev1.PodTemplateSpec) {
	t.Helper()
	c := &s.Spec
	strict := func(into any) {
		t.Helper()
		if err := decodeStrict(doc, into); err != nil {
			t.Fatalf("not a valid %T: %v\n%s", into, err, doc)
		}
	}
	switch c.RestartPolicy {
	case spec.RestartAlways:
		var d appsv1.Deployment
		strict(&d)
		if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
			t.Fatalf("%s %s, want apps/v1 Deployment", d.APIVersion, d.Kind)
		}
		want := appsv1.RecreateDeploymentStrategyType
		if c.IsStartFirst() {
			want = appsv1.RollingUpdateDeploymentStrategyType
			ru := d.Spec.Strategy.RollingUpdate
			if ru == nil || ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable.IntValue() != 0 ||
				d.Spec.MinReadySeconds != int32(c.UpdateStrategy.MinReady.Seconds()) {
				t.Errorf("rollingUpdate %+v, minReadySeconds %d: want maxSurge 1, maxUnavailable 0, minReady", ru, d.Spec.MinReadySeconds)
			}
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != want {
			t.Errorf("replicas %v, strategy %q: want 1 replica, %s", d.Spec.Replicas, d.Spec.Strategy.Type, want)
		}
		sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
		if len(d.Spec.Selector.MatchLabels) == 0 || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("selector %v does not select the template's labels %v", d.Spec.Selector, d.Spec.Template.Labels)
		}
		return objectMeta{d.Name, d.Labels}, d.Spec.Template
	default:
		var j batchv1.Job
		strict(&j)
		if j.APIVersion != "batch/v1" || j.Kind != "Job" {
			t.Fatalf("%s %s, want batch/v1 Job", j.APIVersion, j.Kind)
		}
		wantBackoff := int32(-1) // unset
		if c.RestartPolicy == spec.RestartNever {
			wantBackoff = 0
		} else if c.MaxRestarts != nil {
			wantBackoff = int32(*c.MaxRestarts)
		}
		if got := deref(j.Spec.BackoffLimit, -1); got != wantBackoff {
			t.Errorf("backoffLimit %d, want %d", got, wantBackoff)
		}
		if got, want := deref(j.Spec.ActiveDeadlineSeconds, 0), ceilSeconds(c.ActiveDeadline.Seconds()); got != want {
			t.Errorf("activeDeadlineSeconds %d, want %d", got, want)
		}
		if got, want := deref(j.Spec.TTLSecondsAfterFinished, 0), int32(ceilSeconds(c.TTLAfterFinished.Seconds())); got != want {
			t.Errorf("ttlSecondsAfterFinished %d, want %d", got, want)
		}
		return objectMeta{j.Name, j.Labels}, j.Spec.Template
	}
}

// decodeStrict decodes as the API server does: YAML to JSON, then JSON
// with case-sensitive keys, refusing unknown and duplicate fields
// (encoding/json alone would accept "mountpath" for mountPath).
func decodeStrict(doc []byte, into any) error {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strictErrs, err := kjson.UnmarshalStrict(js, into)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

type objectMeta struct {
	Name   string
	Labels map[string]string
}

func deref[T any](p *T, unset T) T {
	if p == nil {
		return unset
	}
	return *p
}

func ceilSeconds(s float64) int64 {
	n := int64(s)
	if float64(n) < s {
		n++
	}
	return n
}

// checkPod compares the pod template with the spec, field by field; a spec
// field that has no place in it must have been warned about.
func checkPod(t *testing.T, s *spec.Spec, tmpl corev1.PodTemplateSpec, warned map[string]bool) {
	t.Helper()
	c := &s.Spec
	name := s.Metadata.Name
	mustWarn := func(field string) {
		t.Helper()
		if !warned[name+" "+field] {
			t.Errorf("%s is not mapped and was not warned about", field)
		}
	}
	p := tmpl.Spec
	if string(p.RestartPolicy) != string(c.RestartPolicy) {
		t.Errorf("restartPolicy %q, want %q", p.RestartPolicy, c.RestartPolicy)
	}
	if got, want := deref(p.TerminationGracePeriodSeconds, -1), ceilSeconds(c.TerminationGracePeriod.Seconds()); got != want {
		t.Errorf("terminationGracePeriodSeconds %d, want %d", got, want)
	}
	if p.HostNetwork != (c.Network == "host") || p.HostPID != c.HostPID || p.HostIPC != c.HostIPC {
		t.Errorf("hostNetwork/PID/IPC %v/%v/%v for network %q, hostPID %v, hostIPC %v", p.HostNetwork, p.HostPID, p.HostIPC, c.Network, c.HostPID, c.HostIPC)
	}
	if len(p.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(p.Containers))
	}
	ctr := p.Containers[0]
	if ctr.Image != c.Image || string(ctr.ImagePullPolicy) != string(c.ImagePullPolicy) ||
		strings.Join(ctr.Command, " ") != strings.Join(c.Command, " ") ||
		strings.Join(ctr.Args, " ") != strings.Join(c.Args, " ") || ctr.WorkingDir != c.WorkingDir {
		t.Errorf("container %+v does not run the spec's image and command", ctr)
	}
	if errs := validation.IsDNS1123Label(ctr.Name); len(errs) > 0 {
		t.Errorf("container name %q: %v", ctr.Name, errs)
	}
	checkEnv(t, s, ctr.Env, mustWarn)
	checkResources(t, c.Resources, ctr.Resources, mustWarn)
	checkMounts(t, s, ctr.VolumeMounts, p.Volumes, mustWarn)
	checkPorts(t, c.Ports, ctr.Ports)
	checkProbe(t, c, ctr)
	checkSecurity(t, c, ctr.SecurityContext, mustWarn)
	if c.Egress != nil { // the network is the agent's pick
		mustWarn("spec.egress")
	} else if c.Network != "host" && c.Network != "bridge" {
		mustWarn("spec.network")
	}
	if c.HostUTS {
		mustWarn("spec.hostUTS")
	}
	if c.StopSignal != "SIGTERM" {
		mustWarn("spec.stopSignal")
	}
	if c.Priority != 0 {
		mustWarn("spec.priority") // kept as an annotation; Kubernetes wants a PriorityClass
	}
	if len(c.DependsOn) > 0 {
		mustWarn("spec.dependsOn") // no ordering between pods
	}
	for i := range c.Devices {
		mustWarn(fmt.Sprintf("spec.devices[%d]", i))
	}
	if c.RestartPolicy == spec.RestartAlways {
		for field, set := range map[string]bool{"spec.maxRestarts": c.MaxRestarts != nil, "spec.activeDeadline": c.ActiveDeadline.Duration > 0,
			"spec.ttlAfterFinished": c.TTLAfterFinished.Duration > 0, "spec.removeOnExit": c.RemoveOnExit} {
			if set {
				mustWarn(field)
			}
		}
	}
}

func checkEnv(t *testing.T, s *spec.Spec, env []corev1.EnvVar, mustWarn func(string)) {
	t.Helper()
	if len(env) != len(s.Spec.Env) {
		t.Fatalf("%d env vars, want %d", len(env), len(s.Spec.Env))
	}
	for i, e := range s.Spec.Env {
		got := env[i]
		if got.Name != e.Name {
			t.Errorf("env[%d] is %s, want %s", i, got.Name, e.Name)
		}
		if e.ValueFrom == nil {
			if got.Value != e.Value || got.ValueFrom != nil {
				t.Errorf("env %s = %+v, want value %q", e.Name, got, e.Value)
			}
			continue
		}
		ref := got.ValueFrom
		if ref == nil || ref.SecretKeyRef == nil || ref.SecretKeyRef.Name != export.SecretName(s.Metadata.Name) {
			t.Errorf("env %s: %+v, want a reference to Secret %s", e.Name, ref, export.SecretName(s.Metadata.Name))
			continue
		}
		if errs := validation.IsConfigMapKey(ref.SecretKeyRef.Key); len(errs) > 0 {
			t.Errorf("env %s: secret key %q: %v", e.Name, ref.SecretKeyRef.Key, errs)
		}
		mustWarn(fmt.Sprintf("spec.env[%d].valueFrom.file", i))
	}
}

func checkResources(t *testing.T, r spec.Resources, got corev1.ResourceRequirements, mustWarn func(string)) {
	t.Helper()
	if r.Memory != "" {
		want, err := spec.ParseMemory(r.Memory)
		if err != nil {
			t.Fatal(err)
		}
		lim, req := got.Limits[corev1.ResourceMemory], got.Requests[corev1.ResourceMemory]
		if lim.Value() != want || req.Value() != want {
			t.Errorf("memory limit %s, request %s: want %d bytes", lim.String(), req.String(), want)
		}
	}
	if r.CPUs != "" {
		nano, err := spec.ParseCPUs(r.CPUs)
		if err != nil {
			t.Fatal(err)
		}
		want := resource.NewScaledQuantity(nano, resource.Nano)
		lim, req := got.Limits[corev1.ResourceCPU], got.Requests[corev1.ResourceCPU]
		if lim.Cmp(*want) != 0 || req.Cmp(*want) != 0 {
			t.Errorf("cpu limit %s, request %s: want %s", lim.String(), req.String(), want)
		}
	}
	if r.Memory == "" && r.CPUs == "" && (len(got.Limits) > 0 || len(got.Requests) > 0) {
		t.Errorf("resources %+v for a spec with none", got)
	}
	if r.Pids > 0 {
		mustWarn("spec.resources.pids")
	}
}

func checkMounts(t *testing.T, s *spec.Spec, mounts []corev1.VolumeMount, vols []corev1.Volume, mustWarn func(string)) {
	t.Helper()
	if n := len(s.Spec.Mounts) + len(s.Spec.Secrets); len(mounts) != n || len(vols) != n {
		t.Fatalf("%d volume mounts and %d volumes for %d mounts and secrets", len(mounts), len(vols), n)
	}
	byName := map[string]corev1.Volume{}
	for _, v := range vols {
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			t.Errorf("volume name %q: %v", v.Name, errs)
		}
		byName[v.Name] = v
	}
	for i, m := range s.Spec.Mounts {
		vm := mounts[i]
		v, ok := byName[vm.Name]
		if !ok || vm.MountPath != m.Target || vm.ReadOnly != m.ReadOnly {
			t.Errorf("mount %d: %+v (volume found: %v), want %s at %s, readOnly %v", i, vm, ok, m.Type, m.Target, m.ReadOnly)
			continue
		}
		switch m.Type {
		case "bind":
			if v.HostPath == nil || v.HostPath.Path != m.Source {
				t.Errorf("bind of %s became %+v", m.Source, v.VolumeSource)
			}
		case "volume":
			if m.Source == "" {
				if v.EmptyDir == nil {
					t.Errorf("anonymous volume became %+v", v.VolumeSource)
				}
				continue
			}
			if v.PersistentVolumeClaim == nil || len(validation.IsDNS1123Subdomain(v.PersistentVolumeClaim.ClaimName)) > 0 {
				t.Errorf("volume %s became %+v", m.Source, v.VolumeSource)
			}
			mustWarn(fmt.Sprintf("spec.mounts[%d].source", i))
		case "tmpfs":
			if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
				t.Errorf("tmpfs became %+v", v.VolumeSource)
			}
		}
	}
	for i, sec := range s.Spec.Secrets {
		vm := mounts[len(s.Spec.Mounts)+i]
		v, ok := byName[vm.Name]
		if !ok || v.Secret == nil || v.Secret.SecretName != export.SecretName(s.Metadata.Name) || len(v.Secret.Items) != 1 ||
			vm.MountPath != sec.TargetPath() || vm.SubPath != v.Secret.Items[0].Path || !vm.ReadOnly {
			t.Errorf("secret %d: mount %+v, volume %+v; want one key of %s as the read-only file %s",
				i, vm, v.VolumeSource, export.SecretName(s.Metadata.Name), sec.TargetPath())
		}
		mustWarn(fmt.Sprintf("spec.secrets[%d].file", i))
	}
}

func checkPorts(t *testing.T, ports []spec.Port, got []corev1.ContainerPort) {
	t.Helper()
	if len(got) != len(ports) {
		t.Fatalf("%d ports, want %d", len(got), len(ports))
	}
	for i, p := range ports {
		g := got[i]
		if int(g.ContainerPort) != p.ContainerPort || int(g.HostPort) != p.HostPort ||
			!strings.EqualFold(string(g.Protocol), p.Protocol) {
			t.Errorf("port %d: %+v, want %+v", i, g, p)
		}
		if p.HostPort != 0 && g.HostIP != p.HostIP {
			t.Errorf("port %d: host IP %q, want %q", i, g.HostIP, p.HostIP)
		}
	}
}

func checkProbe(t *testing.T, c *spec.ContainerSpec, ctr corev1.Container) {
	t.Helper()
	probe := ctr.LivenessProbe
	if c.RestartPolicy == spec.RestartNever {
		probe = ctr.ReadinessProbe
	}
	if c.Healthcheck == nil || c.Healthcheck.Test[0] == "NONE" {
		if ctr.LivenessProbe != nil || ctr.ReadinessProbe != nil {
			t.Errorf("probes for a spec without a healthcheck")
		}
		return
	}
	if probe == nil || probe.Exec == nil {
		t.Fatalf("healthcheck %v: no exec probe", c.Healthcheck.Test)
	}
	want := c.Healthcheck.Test[1:]
	if c.Healthcheck.Test[0] == "CMD-SHELL" {
		want = append([]string{"sh", "-c"}, want...)
	}
	if strings.Join(probe.Exec.Command, "\x00") != strings.Join(want, "\x00") {
		t.Errorf("probe runs %q, want %q", probe.Exec.Command, want)
	}
	if probe.PeriodSeconds < 1 || probe.TimeoutSeconds < 1 || probe.FailureThreshold < 1 {
		t.Errorf("probe %+v: period, timeout and threshold must be set (Docker's defaults differ from Kubernetes')", probe)
	}
}

func checkSecurity(t *testing.T, c *spec.ContainerSpec, sc *corev1.SecurityContext, mustWarn func(string)) {
	t.Helper()
	if sc == nil {
		t.Fatal("no securityContext")
	}
	if deref(sc.Privileged, false) != c.Privileged || deref(sc.ReadOnlyRootFilesystem, false) != c.ReadOnlyRootFilesystem {
		t.Errorf("privileged %v, readOnlyRootFilesystem %v", sc.Privileged, sc.ReadOnlyRootFilesystem)
	}
	if !c.Privileged && sc.SeccompProfile == nil {
		t.Errorf("no seccompProfile: Docker's default profile must be kept as RuntimeDefault")
	}
	if len(c.CapAdd)+len(c.CapDrop) > 0 {
		if sc.Capabilities == nil || len(sc.Capabilities.Add) != len(c.CapAdd) || len(sc.Capabilities.Drop) != len(c.CapDrop) {
			t.Errorf("capabilities %+v, want add %v drop %v", sc.Capabilities, c.CapAdd, c.CapDrop)
		}
	}
	if c.User != "" && sc.RunAsUser == nil {
		mustWarn("spec.user")
	}
	for i, opt := range c.SecurityOpt {
		if opt == "no-new-privileges" && !c.Privileged {
			if deref(sc.AllowPrivilegeEscalation, true) {
				t.Errorf("no-new-privileges: allowPrivilegeEscalation is not false")
			}
			continue
		}
		if strings.HasPrefix(opt, "seccomp=/") || strings.HasPrefix(opt, "apparmor=my") ||
			opt == "label=disable" || strings.HasPrefix(opt, "systempaths") || opt == "no-new-privileges" {
			mustWarn(fmt.Sprintf("spec.securityOpt[%d]", i))
		}
	}
}
