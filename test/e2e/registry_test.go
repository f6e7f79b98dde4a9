package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/registry"
	"github.com/docker/docker/pkg/jsonmessage"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
)

// registryModule is the registry the suite builds from the module proxy,
// pinned so every run tests against the same server.
const registryModule = "github.com/distribution/distribution/v3/cmd/registry@v3.0.0"

var (
	registryBinOnce sync.Once
	registryBin     string
	registryBinErr  error
)

// buildRegistry builds the registry once into a GOBIN under the temporary
// directory named by its pinned version, so that later runs reuse it (a
// first build takes minutes on a loaded machine).
func buildRegistry() string {
	registryBinOnce.Do(doBuildRegistry)
	Expect(registryBinErr).NotTo(HaveOccurred())
	return registryBin
}

// prebuildRegistry starts the build while the suite's other specs run (the
// suite's BeforeSuite calls it), so the registry specs seldom wait for it.
func prebuildRegistry() { go registryBinOnce.Do(doBuildRegistry) }

func doBuildRegistry() {
	dir := filepath.Join(os.TempDir(), "reconciler-e2e-"+strings.NewReplacer("/", "-", "@", "-").Replace(registryModule))
	registryBin = filepath.Join(dir, "registry")
	if fi, err := os.Stat(registryBin); err == nil && fi.Mode().IsRegular() {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		registryBinErr = err
		return
	}
	cmd := exec.Command("go", "install", registryModule)
	cmd.Dir = dir // outside the module: go install pkg@version builds it on its own
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		registryBinErr = fmt.Errorf("the registry specs need %s, built with `go install` from the module proxy (GOPROXY=%s); it failed: %v\n%s",
			registryModule, os.Getenv("GOPROXY"), err, out)
	}
}

// testRegistry is a distribution registry on 127.0.0.1 with htpasswd auth.
// Docker treats 127.0.0.0/8 as insecure, so it speaks plain HTTP.
type testRegistry struct {
	Host       string // 127.0.0.1:PORT
	User, Pass string
	dir        string
	cmd        *exec.Cmd
	exited     chan struct{}
	log        *syncWriter
}

func startRegistry() *testRegistry {
	bin := buildRegistry()
	htpasswd, err := exec.LookPath("htpasswd")
	Expect(err).NotTo(HaveOccurred(), "the registry specs need htpasswd (apt-get install apache2-utils)")
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	r := &testRegistry{Host: freeAddr(), User: "e2e", Pass: "pw-" + fmt.Sprintf("%x", b), dir: GinkgoT().TempDir()}
	out, err := exec.Command(htpasswd, "-Bbn", r.User, r.Pass).Output()
	Expect(err).NotTo(HaveOccurred(), "htpasswd -Bbn")
	Expect(os.WriteFile(filepath.Join(r.dir, "htpasswd"), out, 0o600)).To(Succeed())
	cfg := fmt.Sprintf(`version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}
http: {addr: %s}
auth: {htpasswd: {realm: e2e, path: %s}}
`, filepath.Join(r.dir, "data"), r.Host, filepath.Join(r.dir, "htpasswd"))
	Expect(os.WriteFile(filepath.Join(r.dir, "config.yml"), []byte(cfg), 0o600)).To(Succeed())
	r.start(bin)
	DeferCleanup(r.stop)
	return r
}

func (r *testRegistry) start(bin string) {
	r.cmd = exec.Command(bin, "serve", filepath.Join(r.dir, "config.yml"))
	r.log = &syncWriter{}
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	r.cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	Expect(r.cmd.Start()).To(Succeed())
	r.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(r.cmd, r.exited)
	Eventually(func() error {
		c, err := net.DialTimeout("tcp", r.Host, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}).WithTimeout(startBudget).WithPolling(50*time.Millisecond).Should(Succeed(), "registry did not listen; its log:\n%s", r.log)
}

// stop ends the registry; its storage stays for a restart.
func (r *testRegistry) stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	select {
	case <-r.exited:
		return
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.exited
}

func (r *testRegistry) restart() { r.start(registryBin) }

// auth is the X-Registry-Auth value for this registry.
func (r *testRegistry) auth() string {
	enc, err := registry.EncodeAuthConfig(registry.AuthConfig{Username: r.User, Password: r.Pass, ServerAddress: r.Host})
	Expect(err).NotTo(HaveOccurred())
	return enc
}

// writeConfig writes a Docker config.json with this registry's entry
// (password pass), mode 0600, and returns its path.
func (r *testRegistry) writeConfig(dir, pass string) string {
	doc := map[string]any{"auths": map[string]any{
		"http://" + r.Host: map[string]string{"auth": base64.StdEncoding.EncodeToString([]byte(r.User + ":" + pass))},
	}}
	raw, err := json.Marshal(doc)
	Expect(err).NotTo(HaveOccurred())
	p := filepath.Join(dir, "registry-config.json")
	tmp := p + ".tmp"
	Expect(os.WriteFile(tmp, raw, 0o600)).To(Succeed())
	Expect(os.Rename(tmp, p)).To(Succeed())
	return p
}

// push tags image id as ref and pushes it with the registry's credentials.
func (r *testRegistry) push(ctx context.Context, id, ref string) {
	Expect(dcli.ImageTag(ctx, id, ref)).To(Succeed())
	rc, err := dcli.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: r.auth()})
	Expect(err).NotTo(HaveOccurred())
	defer rc.Close()
	dec := json.NewDecoder(rc)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(m.Error).To(BeNil(), "push %s: %v", ref, m.Error)
	}
}

// registryImages tracks what a registry spec adds to the daemon's image
// store, and removes it: tags of its registry, images it built, and the
// agent's rollback tags for its specs.
type registryImages struct {
	refs  []string
	specs []string
	hosts []string // registries whose name@digest references a push or pull left
}

func (ri *registryImages) cleanup(ctx context.Context) {
	for _, ref := range ri.refs {
		_, err := dcli.ImageRemove(ctx, ref, image.RemoveOptions{})
		if err != nil && !cerrdefs.IsNotFound(err) {
			GinkgoWriter.Printf("cleanup: remove %s: %v\n", ref, err)
		}
	}
	list, err := dcli.ImageList(ctx, image.ListOptions{All: true})
	Expect(err).NotTo(HaveOccurred())
	for _, im := range list {
		for _, rd := range im.RepoDigests {
			for _, h := range ri.hosts {
				if strings.HasPrefix(rd, h+"/") {
					_, _ = dcli.ImageRemove(ctx, rd, image.RemoveOptions{})
				}
			}
		}
		for _, tag := range im.RepoTags {
			for _, s := range ri.specs {
				if strings.HasPrefix(tag, "reconciler-rollback/"+s+":") {
					_, _ = dcli.ImageRemove(ctx, tag, image.RemoveOptions{})
				}
			}
		}
	}
	built, err := dcli.ImageList(ctx, image.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", testLabel+"="+runID))})
	Expect(err).NotTo(HaveOccurred())
	for _, im := range built {
		_, err := dcli.ImageRemove(ctx, im.ID, image.RemoveOptions{Force: true, PruneChildren: true})
		if err != nil && !cerrdefs.IsNotFound(err) {
			GinkgoWriter.Printf("cleanup: remove image %s: %v\n", im.ID, err)
		}
	}
}

// buildVariant builds a small image FROM the box image with a label that
// makes it differ, and cmd as its command; it returns the image ID. With
// no cmd the image has no command at all (no entrypoint either), so the
// daemon refuses to create a container of it that names none.
func (ri *registryImages) buildVariant(ctx context.Context, variant string, cmd []string) string {
	run := "ENTRYPOINT []\nCMD []"
	if len(cmd) > 0 {
		cmdJSON, _ := json.Marshal(cmd)
		run = "CMD " + string(cmdJSON)
	}
	dockerfile := fmt.Sprintf("FROM %s\nLABEL %s=%s e2e.variant=%s\n%s\n", images.BoxImage, testLabel, runID, variant, run)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	Expect(tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile))})).To(Succeed())
	_, _ = tw.Write([]byte(dockerfile))
	Expect(tw.Close()).To(Succeed())
	tag := "reconciler-e2e/" + runID + ":" + variant
	resp, err := dcli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var m jsonmessage.JSONMessage
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(m.Error).To(BeNil(), "build %s: %v", variant, m.Error)
	}
	in, err := dcli.ImageInspect(ctx, tag)
	Expect(err).NotTo(HaveOccurred())
	ri.refs = append(ri.refs, tag)
	return in.ID
}

// imageSpec is a spec of image ref running the image's own command.
func imageSpec(name, ref string, more ...string) string {
	s := Spec(name, nil, more...)
	s = strings.Replace(s, "image: "+images.BoxImage, "image: "+ref, 1)
	return strings.Replace(s, "  args: []\n", "", 1)
}

func (a *Agent) eventsOf(ctx context.Context, name, reason string) []model.Event {
	evs, err := a.API().Events(ctx, api.EventQuery{Spec: name})
	if err != nil {
		return nil
	}
	var out []model.Event
	for _, e := range evs {
		if e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}

// runningImage is the image ID of a spec's one running container.
func runningImage(ctx context.Context, name string) func() (string, error) {
	return func() (string, error) {
		c, err := runningContainer(ctx, name)
		if err != nil {
			return "", err
		}
		return c.ImageID, nil
	}
}

func boxID(ctx context.Context) string {
	in, err := dcli.ImageInspect(ctx, images.BoxImage)
	Expect(err).NotTo(HaveOccurred())
	return in.ID
}

var _ = Describe("registry", func() {
	var (
		reg *testRegistry
		ri  *registryImages
	)
	BeforeEach(func(ctx SpecContext) {
		ri = &registryImages{}
		DeferCleanup(func(ctx SpecContext) { ri.cleanup(ctx) })
		reg = startRegistry()
		ri.hosts = append(ri.hosts, reg.Host)
	})

	It("pulls with the credentials of --registry-config, reports a refused pull, re-reads the file, and shows the credentials nowhere", func(ctx SpecContext) {
		ref := reg.Host + "/box:auth"
		ri.refs = append(ri.refs, ref)
		reg.push(ctx, boxID(ctx), ref)
		_, err := dcli.ImageRemove(ctx, ref, image.RemoveOptions{})
		Expect(err).NotTo(HaveOccurred())

		By("no credentials: ImagePullBackOff with the registry's answer")
		a := startAgent("--image-pull-backoff", "1s")
		n := fname("regnone")
		a.WriteSpec(n+".yaml", imageSpec(n, ref))
		Eventually(func() string {
			st, _ := a.Status(ctx, n)
			return string(st.Phase) + ": " + st.Message
		}).WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(And(
			HavePrefix("ImagePullBackOff: "), ContainSubstring("no basic auth credentials")))
		a.Stop()

		By("wrong credentials: ImagePullBackOff with the registry's answer")
		dir := GinkgoT().TempDir()
		cfg := reg.writeConfig(dir, "wrong-password")
		a = startAgent("--image-pull-backoff", "1s", "--registry-config", cfg)
		n = fname("regauth")
		a.WriteSpec(n+".yaml", imageSpec(n, ref))
		Eventually(func() string {
			st, _ := a.Status(ctx, n)
			return string(st.Phase) + ": " + st.Message
		}).WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(And(
			HavePrefix("ImagePullBackOff: "), ContainSubstring("unauthorized")))
		Expect(containers(ctx, n)).To(BeEmpty())

		By("the right credentials written to the file: pulled and running, with no agent restart")
		reg.writeConfig(dir, reg.Pass)
		Eventually(runningImage(ctx, n)).WithTimeout(converge + 2*startBudget).WithPolling(200 * time.Millisecond).Should(Equal(boxID(ctx)))
		_, err = dcli.ImageInspect(ctx, ref)
		Expect(err).NotTo(HaveOccurred(), "the image was pulled")
		Expect(a.Log()).To(ContainSubstring("registry config reloaded"))

		By("a file others can read is refused, and the credentials in force stay")
		Expect(os.Chmod(cfg, 0o644)).To(Succeed())
		Eventually(a.Log).WithTimeout(converge).Should(ContainSubstring("registry config refused"))
		Expect(os.Chmod(cfg, 0o600)).To(Succeed())

		By("the password and its base64 appear in no output of the agent")
		secretForms := []string{reg.Pass, base64.StdEncoding.EncodeToString([]byte(reg.User + ":" + reg.Pass)), reg.auth()}
		places := map[string]string{"agent log (debug)": a.Log()}
		places["GET /v1/specs"] = asJSON(a.API().List(ctx))
		places["GET spec"] = asJSON(a.API().Get(ctx, n))
		places["events"] = asJSON(a.API().Events(ctx, api.EventQuery{}))
		places["inspect"] = asJSON(a.API().Inspect(ctx, n))
		places["describe"] = a.mustCLI(ctx, "describe", n)
		state, err := os.ReadFile(a.State)
		Expect(err).NotTo(HaveOccurred())
		places["state file"] = string(state)
		for where, text := range places {
			for _, s := range secretForms {
				Expect(text).NotTo(ContainSubstring(s), "a credential shows in %s", where)
			}
		}
	})

	It("picks up an update within one interval, and rolls a broken one back with the registry down", func(ctx SpecContext) {
		ref := reg.Host + "/box:upd"
		ri.refs = append(ri.refs, ref)
		v1 := boxID(ctx)
		reg.push(ctx, v1, ref)
		dir := GinkgoT().TempDir()
		a := startAgent("--registry-config", reg.writeConfig(dir, reg.Pass))
		n := fname("autoupd")
		ri.specs = append(ri.specs, n)
		interval := rescan + resync
		// The broken image runs a while before it fails, so that the
		// registry is down (stopped at the Updated event) by then.
		failAfter := max(5*time.Second, 4*startP90)
		rollbackAfter := failAfter + 2*startBudget
		a.WriteSpec(n+".yaml", imageSpec(n, ref, "restartPolicy: Always",
			fmt.Sprintf("autoUpdate: {interval: %s, rollbackAfter: %s}", interval, rollbackAfter)))
		Eventually(runningImage(ctx, n)).WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(Equal(v1))
		checked := func() float64 { return a.Metrics()[`reconciler_image_updates_total{result="checked"}`] }
		updated := func() float64 { return a.Metrics()[`reconciler_image_updates_total{result="updated"}`] }
		Eventually(checked).WithTimeout(interval + converge).Should(BeNumerically(">=", 1))
		Expect(updated()).To(BeZero())

		By("a new image pushed to the same reference replaces the container within one interval")
		v2 := ri.buildVariant(ctx, "good", []string{"sleep"})
		reg.push(ctx, v2, ref)
		pushed := time.Now()
		Eventually(runningImage(ctx, n)).WithTimeout(interval + converge).WithPolling(200 * time.Millisecond).Should(Equal(v2))
		GinkgoWriter.Printf("update running %s after the push (interval %s)\n", time.Since(pushed).Round(time.Millisecond), interval)
		Expect(a.eventsOf(ctx, n, "Updated")).To(HaveLen(1))
		Expect(updated()).To(Equal(1.0))

		By("a broken image, pushed while the new one is on trial: pulled, run, failed, rolled back by ID to the last image that passed its trial, with the registry down")
		v3 := ri.buildVariant(ctx, "broken", []string{"exit", "--code", "1", "--after", failAfter.String()})
		reg.push(ctx, v3, ref)
		Eventually(func() int { return len(a.eventsOf(ctx, n, "Updated")) }).WithTimeout(interval + converge).
			WithPolling(100 * time.Millisecond).Should(Equal(2))
		reg.stop()
		stoppedAt := time.Now()
		Eventually(func() []model.Event { return a.eventsOf(ctx, n, "RolledBack") }).
			WithTimeout(rollbackAfter + converge).WithPolling(200 * time.Millisecond).Should(HaveLen(1))
		rb := a.eventsOf(ctx, n, "RolledBack")[0]
		Expect(rb.FirstTime).To(BeTemporally(">", stoppedAt), "the rollback came after the registry went down")
		Expect(rb.Message).To(ContainSubstring("exited with code 1"))
		Eventually(runningImage(ctx, n)).WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(Equal(v1))
		Expect(a.Metrics()[`reconciler_image_updates_total{result="rolled_back"}`]).To(Equal(1.0))

		By("the bad digest is not tried again: checks go on, nothing is pulled or replaced")
		reg.restart()
		c, err := runningContainer(ctx, n)
		Expect(err).NotTo(HaveOccurred())
		base := checked()
		Eventually(checked).WithTimeout(2*interval + converge).Should(BeNumerically(">=", base+2))
		Expect(updated()).To(Equal(2.0))
		Expect(a.eventsOf(ctx, n, "Updated")).To(HaveLen(2))
		c2, err := runningContainer(ctx, n)
		Expect(err).NotTo(HaveOccurred())
		Expect(c2.ID).To(Equal(c.ID), "the container was not replaced")

		By("an image the daemon cannot make a container of (no command): its refused create rolls it back")
		v4 := ri.buildVariant(ctx, "nocommand", nil)
		reg.push(ctx, v4, ref)
		Eventually(func() int { return len(a.eventsOf(ctx, n, "Updated")) }).WithTimeout(interval + converge).
			WithPolling(100 * time.Millisecond).Should(Equal(3))
		Eventually(func() []model.Event { return a.eventsOf(ctx, n, "RolledBack") }).
			WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(HaveLen(2))
		Expect(a.eventsOf(ctx, n, "RolledBack")[1].Message).To(ContainSubstring("could not be created"))
		Eventually(runningImage(ctx, n)).WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(Equal(v1))
		Eventually(a.phase(ctx, n)).WithTimeout(converge).Should(Equal(model.PhaseRunning))
		Expect(a.Metrics()[`reconciler_image_updates_total{result="rolled_back"}`]).To(Equal(2.0))

		By("an edit of image: to another reference: the replacement runs that reference's image, not the one kept for the old")
		edited := reg.Host + "/box:edited"
		ri.refs = append(ri.refs, edited)
		reg.push(ctx, v2, edited)
		a.WriteSpec(n+".yaml", imageSpec(n, edited, "restartPolicy: Always",
			fmt.Sprintf("autoUpdate: {interval: %s, rollbackAfter: %s}", interval, rollbackAfter)))
		Eventually(runningImage(ctx, n)).WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(Equal(v2))
		c3, err := runningContainer(ctx, n)
		Expect(err).NotTo(HaveOccurred())
		Expect(c3.Image).To(Equal(edited), "the replacement is created from the new reference")
		Expect(a.eventsOf(ctx, n, "Updated")).To(HaveLen(3), "an edit is not an update")
	})
})
