package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/spec"
)

// rssBound is the agent's peak resident memory allowed while it reads the
// bad files. Measured here: 19 MiB idle with 20 specs, 35 MiB at the peak
// over 1,000 bad files (the 1 MiB ones dominate). 150 MiB leaves room for
// the soak's 5,000 files and a busy machine's GC timing, and still catches
// a YAML bomb expanded or files read without their size limit.
const rssBound = 150 << 20

// badKinds are the malformed or hostile files, with how many of each per
// thousand.
var badKinds = []struct {
	kind  string
	share int
}{
	{"truncated", 200}, {"huge", 10}, {"binary", 200}, {"deep", 20}, {"bomb", 20},
	{"link-passwd", 10}, {"link-outside", 10}, {"duplicate", 130}, {"unknown-field", 200}, {"wrong-type", 200},
}

// writeBadFiles writes n bad files into dir; outside is a directory out of
// it holding a valid spec that links point to. good are the names in use,
// which duplicates redefine in files that sort after theirs.
func writeBadFiles(rng *rand.Rand, dir, outside string, n int, good []string) map[string]string {
	GinkgoHelper()
	target := filepath.Join(outside, "outside.yaml")
	Expect(os.WriteFile(target, []byte(Spec(fname("outside"), []string{"sleep"})), 0o644)).To(Succeed())
	files := map[string]string{} // path -> kind
	i := 0
	for _, k := range badKinds {
		for range k.share * n / 1000 {
			name := fname(fmt.Sprintf("bad-%04d", i))
			path := filepath.Join(dir, fmt.Sprintf("b-%s-%04d.yaml", k.kind, i))
			var data []byte
			switch k.kind {
			case "truncated": // cut inside the args' flow sequence
				doc := Spec(name, []string{"tick", "--interval", "1s"})
				open := strings.Index(doc, "args: [") + len("args: [")
				data = []byte(doc[:open+rng.IntN(strings.Index(doc[open:], "]"))])
			case "huge":
				doc := Spec(name, []string{"sleep"})
				pad := strings.Repeat("# padding\n", (spec.MaxFileSize+rng.IntN(100<<10))/10+1)
				data = []byte(doc + pad)
			case "binary":
				data = make([]byte, 64+rng.IntN(4096))
				for j := range data {
					data[j] = byte(rng.UintN(256))
				}
			case "deep":
				if i%2 == 0 {
					data = []byte(strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000) + "\n")
				} else {
					data = []byte(strings.Repeat("{a: ", 10_000) + "1" + strings.Repeat("}", 10_000) + "\n")
				}
			case "bomb": // billion laughs: nine levels of nine aliases
				var b strings.Builder
				b.WriteString(`a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]` + "\n")
				for l := 1; l < 10; l++ {
					fmt.Fprintf(&b, "a%d: &a%d [%s]\n", l, l, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d,", l-1), 9), ","))
				}
				doc := strings.Replace(Spec(name, []string{"sleep"}), "labels: {", "labels: *a9\n  x: {", 1)
				data = []byte(b.String() + doc)
			case "link-passwd":
				Expect(os.Symlink("/etc/passwd", path)).To(Succeed())
			case "link-outside":
				Expect(os.Symlink(target, path)).To(Succeed())
			case "duplicate":
				path = filepath.Join(dir, fmt.Sprintf("z-duplicate-%04d.yaml", i))
				data = []byte(Spec(good[i%len(good)], []string{"tick", "--interval", "2s"}))
			case "unknown-field":
				data = []byte(Spec(name, []string{"sleep"}, fmt.Sprintf("unknownField%d: 1", i)))
			case "wrong-type":
				wrong := []string{"restartPolicy: [1, 2]", "resources: {memory: true}", "terminationGracePeriod: {a: 1}", "workingDir: [1]", "env: {A: b}"}
				data = []byte(Spec(name, []string{"sleep"}, wrong[i%len(wrong)]))
			}
			if data != nil {
				Expect(os.WriteFile(path, data, 0o644)).To(Succeed())
			}
			files[path] = k.kind
			i++
		}
	}
	return files
}

// badFilesScenario drops a thousand malformed or hostile spec files next
// to 20 good ones: the agent must stay up within its memory bound, report
// every bad file with its error, and leave the good containers alone.
func badFilesScenario(ctx SpecContext) {
	nBad := soaking(1000, 5000)
	nGood := 20
	seed := GinkgoRandomSeed()
	rng := rand.New(rand.NewPCG(uint64(seed), 4))
	sum := &faultSummary{Scenario: "bad files", Specs: nGood}
	a := startAgent()
	instance := a.instance(ctx)
	var good []string
	for i := range nGood {
		n := fname(fmt.Sprintf("good-%02d", i))
		good = append(good, n)
		a.WriteSpec(fmt.Sprintf("a-good-%02d.yaml", i), Spec(n, []string{"tick", "--interval", "1s"}))
	}
	decoys := makeDecoys(ctx, dcli, good[0], false)
	ids := map[string]string{}
	Eventually(func() error {
		for _, n := range good {
			id, err := runningOf(ctx, dcli, instance, n)()
			if err != nil {
				return err
			}
			ids[n] = id
		}
		return nil
	}).WithTimeout(setupBudget + time.Duration(nGood)*time.Second).Should(Succeed())
	idle, err := a.procStatus("VmRSS")
	Expect(err).NotTo(HaveOccurred())

	By(fmt.Sprintf("writing %d bad files (seed %d)", nBad, seed))
	start := time.Now()
	files := writeBadFiles(rng, a.SpecsDir, GinkgoT().TempDir(), nBad, good)
	sum.Faults = len(files)
	Eventually(a.Metrics).WithTimeout(converge+30*time.Second).Should(
		HaveKeyWithValue("reconciler_spec_errors", float64(len(files))), "every bad file counted")
	took := time.Since(start)

	errs, err := a.API().FileErrors(ctx)
	Expect(err).NotTo(HaveOccurred())
	byPath := map[string]string{}
	for _, e := range errs {
		byPath[e.Path] = e.Error
	}
	var missing, unnamed []string
	samples := map[string]string{}
	for path, kind := range files {
		msg, ok := byPath[path]
		switch {
		case !ok:
			missing = append(missing, path)
		case !strings.Contains(msg, filepath.Base(path)):
			unnamed = append(unnamed, path+": "+msg)
		default:
			if s, ok := samples[kind]; !ok || len(msg) < len(s) {
				samples[kind] = msg
			}
		}
	}
	sort.Strings(missing)
	sort.Strings(unnamed)
	Expect(missing).To(BeEmpty(), "bad files not reported")
	Expect(unnamed).To(BeEmpty(), "errors that do not name their file")
	Expect(errs).To(HaveLen(len(files)), "only the bad files are reported")
	for _, k := range badKinds {
		fmt.Fprintf(GinkgoWriter, "%s: %s\n", k.kind, samples[k.kind])
	}

	By("the good specs keep their containers, nothing else runs")
	Consistently(func() map[string]string {
		now := map[string]string{}
		for _, n := range good {
			now[n], _ = runningOf(ctx, dcli, instance, n)()
		}
		return now
	}).WithTimeout(2 * resync).Should(Equal(ids))
	f, err := listFleet(ctx, dcli, instance)
	Expect(err).NotTo(HaveOccurred())
	sum.Duplicates = f.duplicates()
	want := map[string]bool{}
	for _, n := range good {
		want[n] = true
	}
	sum.Orphans = len(f.orphans(want))
	Expect(f.orphans(want)).To(BeEmpty(), "no container for a bad file's spec (nor the linked one outside)")
	Expect(a.Exited()).To(BeFalse())
	Expect(a.probe("/healthz")()).To(Equal(200))
	peak, err := a.procStatus("VmHWM")
	Expect(err).NotTo(HaveOccurred())
	Expect(peak<<10).To(BeNumerically("<", rssBound), "peak resident memory")
	Expect(checkDecoys(ctx, dcli, decoys, true)).To(Succeed())

	sum.Converged = nGood
	sum.note("%d bad files reported in %s, each naming its file; spec_errors %d; RSS %d MiB idle, %d MiB peak (bound %d MiB); good containers unchanged; decoys untouched",
		len(files), took.Round(100*time.Millisecond), len(files), idle>>10, peak>>10, rssBound>>20)
	sum.print()
	Expect(sum.Duplicates).To(BeZero())
}
