package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/imagegc"
	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
)

// withImage is a Spec of the box program run from another image (one
// built FROM the box image).
func withImage(ref, doc string) string {
	return strings.Replace(doc, "image: "+images.BoxImage+"\n", "image: "+ref+"\n", 1)
}

// inspectOf inspects the one container of a spec on the machine's daemon.
func inspectOf(ctx context.Context, specName string) container.InspectResponse {
	GinkgoHelper()
	cs := containers(ctx, specName)
	Expect(cs).To(HaveLen(1))
	ins, err := dcli.ContainerInspect(ctx, cs[0].ID)
	Expect(err).NotTo(HaveOccurred())
	return ins
}

var _ = Describe("Logging and init", func() {
	It("runs a spec with the local log driver and init, refuses a driver the policy does not list, and says when logs cannot be read", func(ctx SpecContext) {
		policy := filepath.Join(GinkgoT().TempDir(), "policy.yaml")
		Expect(os.WriteFile(policy, []byte("allowedLogDrivers: [json-file, local, none]\n"), 0o600)).To(Succeed())
		a := startAgent("--policy", policy)
		local, refused, silent := fname("log-local"), fname("log-syslog"), fname("log-none")
		a.WriteSpec(local+".yaml", Spec(local, tickArgs, "network: none", "init: true",
			"logging: {driver: local, options: {max-size: 5m}}"))
		a.WriteSpec(refused+".yaml", Spec(refused, tickArgs, "network: none", "logging: {driver: syslog}"))
		a.WriteSpec(silent+".yaml", Spec(silent, []string{"tick", "--interval", "200ms", "--count", "3", "--exit-code", "3"},
			"network: none", "init: true", "restartPolicy: Never", "logging: {driver: none}"))

		By("local: docker inspect shows the driver, its options and init")
		Eventually(func() error { _, err := runningContainer(ctx, local); return err }).WithTimeout(converge).Should(Succeed())
		ins := inspectOf(ctx, local)
		Expect(ins.HostConfig.LogConfig.Type).To(Equal("local"))
		Expect(ins.HostConfig.LogConfig.Config).To(Equal(map[string]string{"max-size": "5m"}))
		Expect(ins.HostConfig.Init).To(HaveValue(BeTrue()))

		By("PID 1 of the container is docker-init, whose child is the box program")
		pid1, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ins.State.Pid))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(pid1)).To(ContainSubstring("docker-init"), "the container's first process")
		Eventually(func() []string {
			var kids []string
			for _, p := range processes() {
				if p.ppid == ins.State.Pid {
					kids = append(kids, p.cmdline)
				}
			}
			return kids
		}).WithTimeout(startBudget).Should(ContainElement(ContainSubstring("/box tick")))

		By("its output reads back through the agent (local keeps it)")
		Eventually(func() string { return a.runCLI(ctx, "logs", local, "--tail", "3").stdout }).
			WithTimeout(converge).Should(ContainSubstring("tick"))

		By("syslog is not in allowedLogDrivers: Refused, with the rule")
		Eventually(func() (model.Status, error) { return a.Status(ctx, refused) }).WithTimeout(converge).Should(And(
			HaveField("Phase", model.PhaseRefused),
			HaveField("Message", ContainSubstring("allowedLogDrivers")),
			HaveField("Message", ContainSubstring(`log driver "syslog"`))))
		Expect(containers(ctx, refused)).To(BeEmpty())
		// The metric and the event follow the status by a moment.
		Eventually(a.Metrics).WithTimeout(resync).Should(HaveKeyWithValue(`reconciler_policy_refusals_total{rule="allowedLogDrivers"}`, 1.0))
		Eventually(func() ([]model.Event, error) { return a.API().Events(ctx, api.EventQuery{Spec: refused}) }).WithTimeout(resync).
			Should(ContainElement(And(HaveField("Reason", "Refused"), HaveField("Message", ContainSubstring("allowedLogDrivers")))))

		By("none: the exit comes through init, and logs say why there is nothing to show")
		Eventually(a.exitCount(ctx, silent)).WithTimeout(converge).Should(Equal(1))
		ex := a.Exits(ctx, silent)[0]
		Expect(ex.ExitCode).To(Equal(3), "docker-init passes the program's exit code on")
		Expect(ex.LogTail).To(ContainSubstring("does not support reading"), "the ledger says why it holds no output")
		res := a.runCLI(ctx, "logs", silent)
		Expect(res.code).NotTo(Equal(0))
		Expect(res.stderr).To(ContainSubstring("does not support reading"))
		Expect(res.stderr).To(ContainSubstring("json-file or local"))
		Expect(inspectOf(ctx, silent).HostConfig.Init).To(HaveValue(BeTrue()))
	})
})

// gcImage is one image built into the private daemon for the GC scenario.
type gcImage struct{ ref, id string }

// buildPadded builds an image FROM the box image with padMB of random
// bytes on top (every one distinct), tagged ref, in the daemon of cli.
func buildPadded(ctx context.Context, cli *client.Client, ref string, padMB int) gcImage {
	GinkgoHelper()
	pad := make([]byte, padMB<<20)
	_, _ = rand.Read(pad)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dockerfile := fmt.Sprintf("FROM %s\nCOPY pad /pad\nLABEL %s=%s\n", images.BoxImage, testLabel, runID)
	for _, f := range []struct {
		name string
		body []byte
	}{{"Dockerfile", []byte(dockerfile)}, {"pad", pad}} {
		Expect(tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body))})).To(Succeed())
		_, err := tw.Write(f.body)
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(tw.Close()).To(Succeed())
	resp, err := cli.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true})
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	Expect(jsonmessage.DisplayJSONMessagesStream(resp.Body, GinkgoWriter, 0, false, nil)).To(Succeed(), "building %s", ref)
	ins, err := cli.ImageInspect(ctx, ref)
	Expect(err).NotTo(HaveOccurred())
	return gcImage{ref: ref, id: ins.ID}
}

// fill writes n bytes into a new file at path (tmpfs pages are taken as
// they are written; a sparse file would take none).
func fill(path string, n int64) {
	GinkgoHelper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	buf := bytes.Repeat([]byte{1}, 1<<20)
	for n > 0 {
		w, err := f.Write(buf[:min(int64(len(buf)), n)])
		Expect(err).NotTo(HaveOccurred())
		n -= int64(w)
	}
}

func usageOf(root string) imagegc.Usage {
	GinkgoHelper()
	u, err := imagegc.StatFS(root)
	Expect(err).NotTo(HaveOccurred())
	return u
}

// gcEvents are the agent's ImageGC events so far. The caller keeps one
// client for its polls: a client each poll would leave an idle connection
// each, and the API serves at most --http-max-conns at once.
func gcEvents(ctx context.Context, cl *api.Client) []model.Event {
	evs, err := cl.Events(ctx, api.EventQuery{})
	Expect(err).NotTo(HaveOccurred())
	var out []model.Event
	for _, e := range evs {
		if e.Reason == imagegc.Reason {
			out = append(out, e)
		}
	}
	return out
}

// phaseOf polls a spec's phase through one client.
func phaseOf(ctx context.Context, cl *api.Client, name string) func() (model.Phase, error) {
	return func() (model.Phase, error) {
		v, err := cl.Get(ctx, name)
		if err != nil || v.Status == nil {
			return "", err
		}
		return v.Status.Phase, nil
	}
}

// removedImages names the images of the Normal ImageGC events, in order.
func removedImages(evs []model.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type != model.EventNormal {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimPrefix(e.Message, "removed image "), " ")
		out = append(out, name)
	}
	return out
}

var _ = Describe("Image GC", func() {
	It("removes unused images least recently used first until below the low threshold, on a small data-root of a private daemon", func(ctx SpecContext) {
		// vfs copies an image's whole file tree for each layer and twice for
		// each container (its init layer and its own), so the images the
		// agent must keep, which containers use, are small, and the ones it
		// may remove are large: each old image is more than a tenth of the
		// filesystem, so that removing one and a half of them crosses from
		// above the high threshold to below the low one.
		const (
			sizeMB  = 1000 // the data-root's filesystem
			smallMB = 1
			largeMB = 80
			high    = 90
			low     = 80
		)
		var root string
		d := startPrivateDaemon(ctx, func(dir string) {
			root = filepath.Join(dir, "data")
			Expect(os.MkdirAll(root, 0o700)).To(Succeed())
			Expect(syscall.Mount("tmpfs", root, "tmpfs", 0, fmt.Sprintf("size=%dm,mode=0700", sizeMB))).To(Succeed(),
				"mounting a %d MB tmpfs as the private daemon's data-root (needs root)", sizeMB)
		})

		By("building five distinct images into it, oldest first")
		ref := buildPadded(ctx, d.cli, "gct/ref:1", smallMB)
		used := buildPadded(ctx, d.cli, "gct/used:1", smallMB)
		old1 := buildPadded(ctx, d.cli, "gct/old1:1", largeMB)
		old2 := buildPadded(ctx, d.cli, "gct/old2:1", largeMB)
		before := usageOf(root).Used
		old3 := buildPadded(ctx, d.cli, "gct/old3:1", largeMB)
		imageBytes := int64(usageOf(root).Used - before)
		GinkgoWriter.Printf("one large image takes %d MB of the data-root; usage %d%%\n", imageBytes>>20, usageOf(root).Percent())
		Expect(imageBytes*3/2).To(BeNumerically(">", int64(sizeMB<<20)*(high-low)/100),
			"one and a half large images must span the gap between the thresholds")

		By("a container no agent manages uses one")
		_, err := d.cli.ContainerCreate(ctx, &container.Config{Image: used.ref, Labels: map[string]string{testLabel: runID}},
			&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
		Expect(err).NotTo(HaveOccurred())

		a := startAgent("--docker-host", d.host, "--image-gc-high-threshold", fmt.Sprint(high),
			"--image-gc-low-threshold", fmt.Sprint(low), "--image-gc-period", resync.String())
		Eventually(a.Log).WithTimeout(startBudget).Should(ContainSubstring("image GC on"))
		cl := a.API()

		By("a spec references one (its job ran and its container is gone); another job uses old1 and its spec is deleted")
		refSpec, useSpec := fname("gc-ref"), fname("gc-use")
		job := []string{"network: none", "restartPolicy: Never", "removeOnExit: true"}
		// One after the other: two containers of large images at once
		// would cross the high threshold by themselves.
		a.WriteSpec(refSpec+".yaml", withImage(ref.ref, Spec(refSpec, []string{"exit"}, job...)))
		for _, n := range []string{refSpec, useSpec} {
			if n == useSpec {
				a.WriteSpec(useSpec+".yaml", withImage(old1.ref, Spec(useSpec, []string{"exit"}, job...)))
			}
			Eventually(phaseOf(ctx, cl, n)).WithTimeout(converge).Should(Equal(model.PhaseSucceeded))
			Eventually(func() int { return len(listOf(ctx, d.cli, n)) }).WithTimeout(converge).Should(BeZero())
		}
		a.RemoveSpec(useSpec + ".yaml")
		Eventually(func() error { _, err := cl.Get(ctx, useSpec); return err }).WithTimeout(converge).Should(
			MatchError(ContainSubstring("not found")), "the spec naming old1 is gone")
		Expect(gcEvents(ctx, cl)).To(BeEmpty(), "nothing removed while below the high threshold")
		Expect(usageOf(root).Percent()).To(BeNumerically("<", high))

		By("filling the data-root above the high threshold, so that two images must go to get below the low one")
		u := usageOf(root)
		total := int64(u.Used + u.Avail)
		target := total*low/100 + imageBytes*3/2
		Expect(target*100/total).To(BeNumerically(">", high), "the scenario's sizes must put usage above the high threshold")
		fill(filepath.Join(root, "filler-1"), target-int64(u.Used))
		GinkgoWriter.Printf("usage after filling: %d%%\n", usageOf(root).Percent())

		gcBudget := 2*resync + converge
		Eventually(func() []string { return removedImages(gcEvents(ctx, cl)) }).WithTimeout(gcBudget).Should(
			Equal([]string{old2.ref, old3.ref}), "old2 then old3: old1 was built before them but used since")
		Expect(usageOf(root).Percent()).To(BeNumerically("<", low))
		By("no more removals below the low threshold; the protected images and old1 stay")
		Consistently(func() []string { return removedImages(gcEvents(ctx, cl)) }).WithTimeout(quietWindow).Should(HaveLen(2),
			"stops once below the low threshold")
		present := imageIDs(ctx, d.cli)
		for _, img := range []gcImage{ref, used, old1} {
			Expect(present).To(HaveKey(img.id), "%s stays", img.ref)
		}
		for _, img := range []gcImage{old2, old3} {
			Expect(present).NotTo(HaveKey(img.id), "%s is gone", img.ref)
		}
		By("one ImageGC event per removal, with the bytes freed, and the metrics")
		evs := gcEvents(ctx, cl)
		Expect(evs[0].Message).To(MatchRegexp(`^removed image gct/old2:1 \(\w{12}, \d+ bytes\): freed [1-9]\d* bytes; never used by this agent`))
		m := a.Metrics()
		Expect(m).To(HaveKeyWithValue("reconciler_image_gc_removed_total", 2.0))
		Expect(m["reconciler_image_gc_freed_bytes_total"]).To(BeNumerically(">=", 2*imageBytes*9/10))

		By("filling it again: old1 goes; the referenced, the used and the pinned box image stay, and a Warning says so")
		u = usageOf(root)
		fill(filepath.Join(root, "filler-2"), total*(high+3)/100-int64(u.Used))
		Eventually(func() []string { return removedImages(gcEvents(ctx, cl)) }).WithTimeout(gcBudget).Should(
			Equal([]string{old2.ref, old3.ref, old1.ref}))
		Eventually(func() []model.Event { return gcEvents(ctx, cl) }).WithTimeout(gcBudget).Should(ContainElement(And(
			HaveField("Type", model.EventWarning), HaveField("Message", ContainSubstring("no image left that may be removed")))))
		present = imageIDs(ctx, d.cli)
		for _, img := range []gcImage{ref, used} {
			Expect(present).To(HaveKey(img.id), "%s stays", img.ref)
		}
		Expect(present).NotTo(HaveKey(old1.id))
		box, err := d.cli.ImageInspect(ctx, images.BoxImage)
		Expect(err).NotTo(HaveOccurred())
		Expect(present).To(HaveKey(box.ID), "the pinned box image stays")
		Expect(a.Metrics()).To(HaveKeyWithValue("reconciler_image_gc_removed_total", 3.0))
	})
})

// imageIDs are the IDs of the images on the daemon of cli.
func imageIDs(ctx context.Context, cli *client.Client) map[string]bool {
	GinkgoHelper()
	list, err := cli.ImageList(ctx, image.ListOptions{})
	Expect(err).NotTo(HaveOccurred())
	out := map[string]bool{}
	for _, i := range list {
		out[i.ID] = true
	}
	return out
}

// listOf lists a spec's containers on the daemon of cli.
func listOf(ctx context.Context, cli *client.Client, specName string) []container.Summary {
	GinkgoHelper()
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true})
	Expect(err).NotTo(HaveOccurred())
	var out []container.Summary
	for _, c := range cs {
		if c.Labels["reconciler.spec"] == specName {
			out = append(out, c)
		}
	}
	return out
}
