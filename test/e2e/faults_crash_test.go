package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/docker/docker/api/types/container"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/model"
)

// crashWorld is what the agent-crash scenario asks for and has verified.
type crashWorld struct {
	a        *Agent
	instance string
	services map[string][]string // long-running specs from files: name -> box args
	api      []string            // long-running specs applied through the API
	jobs     []string            // run-to-completion specs (restartPolicy Never)
	extras   map[string]bool     // services added while the agent was down
	// stored are the names the state file must hold at any moment: applied
	// through the API, or seen converged and not removed since.
	stored map[string]bool
}

func (w *crashWorld) desired() map[string]bool {
	out := map[string]bool{}
	for n := range w.services {
		out[n] = true
	}
	for _, n := range append(append([]string{}, w.api...), w.jobs...) {
		out[n] = true
	}
	return out
}

func (w *crashWorld) writeService(name string) {
	w.a.WriteSpec(name+".yaml", Spec(name, w.services[name]))
}

// converged says what still differs from the desired state: every spec
// stored with one container of its current hash, running (or, for a job,
// finished once), no container for a spec that is gone, and the agent ready.
func (w *crashWorld) converged(ctx context.Context) error {
	if err := w.a.Ready(); err != nil {
		return err
	}
	views, err := w.a.API().List(ctx)
	if err != nil {
		return err
	}
	hash, phase := map[string]string{}, map[string]model.Phase{}
	for _, v := range views {
		hash[v.Name] = v.Hash
		if v.Status != nil {
			phase[v.Name] = v.Status.Phase
		}
	}
	f, err := listFleet(ctx, dcli, w.instance)
	if err != nil {
		return err
	}
	desired := w.desired()
	var errs []error
	if len(views) != len(desired) {
		errs = append(errs, fmt.Errorf("%d specs stored, want %d", len(views), len(desired)))
	}
	for n := range desired {
		cs := f.bySpec[n]
		switch {
		case hash[n] == "":
			errs = append(errs, fmt.Errorf("%s: not stored", n))
		case len(cs) != 1:
			errs = append(errs, fmt.Errorf("%s: %d containers", n, len(cs)))
		case cs[0].Labels["reconciler.spec-hash"] != hash[n]:
			errs = append(errs, fmt.Errorf("%s: container of an old hash", n))
		case w.isJob(n) && phase[n] != model.PhaseSucceeded:
			errs = append(errs, fmt.Errorf("%s: job is %s", n, phase[n]))
		case !w.isJob(n) && cs[0].State != "running":
			errs = append(errs, fmt.Errorf("%s: container is %s", n, cs[0].State))
		}
	}
	if o := f.orphans(desired); len(o) > 0 {
		errs = append(errs, fmt.Errorf("containers of removed specs: %v", o))
	}
	return errors.Join(errs...)
}

// sortedExtras are the services added while the agent was down, sorted.
func (w *crashWorld) sortedExtras() []string {
	var out []string
	for n := range w.extras {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (w *crashWorld) isJob(name string) bool {
	for _, j := range w.jobs {
		if j == name {
			return true
		}
	}
	return false
}

// checkState reads the dead agent's state file: bbolt's page check must
// be clean, and no spec it must hold may be missing. It returns the
// missing names.
func (w *crashWorld) checkState() []string {
	GinkgoHelper()
	st, err := readStateFile(w.a.State)
	Expect(err).NotTo(HaveOccurred(), "the state file after kill -9")
	var lost []string
	for n := range w.stored {
		if !st.Specs[n] {
			lost = append(lost, n)
		}
	}
	sort.Strings(lost)
	return lost
}

// crashScenario kills the agent with SIGKILL at random moments while it
// converges (a first start of 30 specs, then replacements, hand-removed
// containers and files changed while it is down), restarts it, and checks
// after every restart that everything converged with no duplicate, no
// orphan, no job run twice and no record lost.
func crashScenario(ctx SpecContext) {
	iterations := soaking(10, 50)
	nServices := soaking(24, 54)
	seed := GinkgoRandomSeed()
	rng := rand.New(rand.NewPCG(uint64(seed), 6))
	sum := &faultSummary{Scenario: "agent kill -9"}
	By(fmt.Sprintf("seed %d (the same kills again: --ginkgo.seed=%d)", seed, seed))

	a := startAgent()
	w := &crashWorld{a: a, instance: a.instance(ctx), services: map[string][]string{}, stored: map[string]bool{},
		extras: map[string]bool{}}
	svc := func(i int) string { return fname(fmt.Sprintf("svc-%02d", i)) }
	decoys := makeDecoys(ctx, dcli, svc(0), false)
	tally := tallyEvents(ctx, dcli)

	for i := range nServices {
		n := svc(i)
		w.services[n] = []string{"tick", "--interval", "1s"}
		w.writeService(n)
	}
	for i := range 4 {
		n := fname(fmt.Sprintf("job-%02d", i))
		w.jobs = append(w.jobs, n)
		a.WriteSpec(n+".yaml", Spec(n, []string{"exit", "--code", "0"}, "restartPolicy: Never"))
	}
	for i := range 2 {
		n := fname(fmt.Sprintf("api-%02d", i))
		_, err := a.API().Apply(ctx, []byte(Spec(n, []string{"tick", "--interval", "1s"})), "application/yaml", false)
		Expect(err).NotTo(HaveOccurred())
		w.api = append(w.api, n)
		w.stored[n] = true
	}
	sum.Specs = len(w.desired())
	By(fmt.Sprintf("%d specs written (%d services, %d jobs, %d through the API)", sum.Specs, nServices, len(w.jobs), len(w.api)))

	var replaced, handRemoved, added, removed, changedDown, startupKills int
	extra := 0
	for it := range iterations {
		if it > 0 {
			// Work for the agent to be in the middle of when it dies.
			for range 3 {
				n := svc(rng.IntN(nServices))
				w.services[n] = []string{"tick", "--interval", fmt.Sprintf("%dms", 500+rng.IntN(1000))}
				w.writeService(n)
				replaced++
			}
			victim := svc(rng.IntN(nServices))
			if id, err := runningOf(ctx, dcli, w.instance, victim)(); err == nil {
				Expect(dcli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true})).To(Succeed())
				handRemoved++
			}
		}
		after := time.Duration(rng.Int64N(int64(3 * time.Second)))
		time.Sleep(after) // the random moment of the crash
		a.Kill9()
		sum.Faults++

		lost := w.checkState()
		sum.Lost += len(lost)
		Expect(lost).To(BeEmpty(), "specs missing from the state file after kill -9 %d", it+1)

		// While it is down: a new spec file, a removed one, a changed one.
		if rng.IntN(2) == 0 {
			n := fname(fmt.Sprintf("extra-%02d", extra))
			extra++
			w.extras[n] = true
			w.services[n] = []string{"tick", "--interval", "1s"}
			w.writeService(n)
			added++
		}
		if extras := w.sortedExtras(); len(extras) > 0 && rng.IntN(2) == 0 {
			n := extras[rng.IntN(len(extras))]
			a.RemoveSpec(n + ".yaml")
			delete(w.extras, n)
			delete(w.services, n)
			delete(w.stored, n)
			removed++
		}
		if rng.IntN(3) == 0 {
			n := svc(rng.IntN(nServices))
			w.services[n] = []string{"tick", "--interval", fmt.Sprintf("%dms", 500+rng.IntN(1000))}
			w.writeService(n)
			changedDown++
		}
		a.relaunch()
		if rng.IntN(3) == 0 {
			// Again while it catches up on what changed while it was down.
			time.Sleep(time.Duration(rng.Int64N(int64(1500 * time.Millisecond))))
			a.Kill9()
			sum.Faults++
			startupKills++
			lost := w.checkState()
			sum.Lost += len(lost)
			Expect(lost).To(BeEmpty(), "specs missing from the state file after a kill -9 during start-up")
			a.relaunch()
		}
		budget := converge + time.Duration(len(w.desired()))*time.Second
		Eventually(w.converged).WithContext(ctx).WithTimeout(budget).WithPolling(250*time.Millisecond).Should(Succeed(),
			"after kill -9 %d (%s into a convergence), the specs converge", it+1, after.Round(time.Millisecond))
		for n := range w.desired() {
			w.stored[n] = true
		}
		Expect(checkDecoys(ctx, dcli, decoys, true)).To(Succeed())
		fmt.Fprintf(GinkgoWriter, "kill -9 %d, %s into a convergence: %d specs converged after the restart\n",
			it+1, after.Round(time.Millisecond), len(w.desired()))
	}

	By("every job ran exactly once, with one exit record")
	for _, j := range w.jobs {
		creates, starts := tally.count(j, "create"), tally.count(j, "start")
		ex := a.Exits(ctx, j)
		if creates != 1 || starts != 1 || len(ex) != 1 {
			sum.Lost += max(0, 1-len(ex))
		}
		Expect([]int{creates, starts, len(ex)}).To(Equal([]int{1, 1, 1}), "job %s: creates, starts, exit records", j)
	}
	f, err := listFleet(ctx, dcli, w.instance)
	Expect(err).NotTo(HaveOccurred())
	sum.Duplicates, sum.Orphans = f.duplicates(), len(f.orphans(w.desired()))
	sum.Specs = len(w.desired())
	sum.Converged = sum.Specs
	a.Stop()
	Expect(w.checkState()).To(BeEmpty())
	sum.note("seed %d; %d of the kills during start-up; %d specs replaced and %d containers hand-removed while it ran; %d files added, %d removed, %d changed while it was down; bbolt check clean after every kill; decoys untouched",
		seed, startupKills, replaced, handRemoved, added, removed, changedDown)
	sum.print()
	Expect(sum.Duplicates + sum.Orphans + sum.Lost).To(BeZero())
}
