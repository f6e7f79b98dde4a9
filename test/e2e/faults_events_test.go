package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/model"
)

// eventBlackhole is an HTTP proxy on a unix socket in front of the test's
// Docker daemon. It forwards every request but two kinds, which it holds
// open and never answers: the event stream and container waits. An agent
// behind it learns of a change only from its periodic re-list.
type eventBlackhole struct {
	path string
	held atomic.Int64
}

func newEventBlackhole() *eventBlackhole {
	GinkgoHelper()
	u, err := client.ParseHostURL(dcli.DaemonHost())
	Expect(err).NotTo(HaveOccurred())
	network, target := u.Scheme, u.Host // for unix, Host is the socket's path
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "docker"})
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target)
		}},
		FlushInterval: -1, // log streams pass as they come
	}
	b := &eventBlackhole{path: filepath.Join(GinkgoT().TempDir(), "docker.sock")}
	l, err := net.Listen("unix", b.path)
	Expect(err).NotTo(HaveOccurred())
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasSuffix(p, "/events") || (strings.Contains(p, "/containers/") && strings.HasSuffix(p, "/wait")) {
			b.held.Add(1)
			<-r.Context().Done()
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(l) }()
	DeferCleanup(srv.Close)
	return b
}

// eventLossScenario runs the agent with its event stream and waits
// suppressed: a hand-removed container, a hand-killed one and a new spec
// must all converge within one resync period plus a start.
func eventLossScenario(ctx SpecContext) {
	const period = 3 * time.Second
	rounds := soaking(2, 10)
	sum := &faultSummary{Scenario: "event loss"}
	bh := newEventBlackhole()
	web, killed := fname("web"), fname("killed")
	decoys := makeDecoys(ctx, dcli, web, false)
	a := startAgent("--docker-host", "unix://"+bh.path, "--resync", period.String())
	tick := []string{"tick", "--interval", "1s"}
	instance := a.instance(ctx)
	running := func(ctx context.Context, spec string) func() (string, error) {
		return runningOf(ctx, dcli, instance, spec)
	}
	desired := map[string]bool{web: true, killed: true}
	a.WriteSpec(web+".yaml", Spec(web, tick))
	// Killed every round: a short back-off cap keeps its restarts inside
	// the bound checked below.
	a.WriteSpec(killed+".yaml", Spec(killed, tick, "backoff: {max: 1s}"))
	for _, n := range []string{web, killed} {
		Eventually(running(ctx, n)).WithTimeout(setupBudget).Should(Not(BeEmpty()))
	}
	Expect(bh.held.Load()).To(BeNumerically(">", 0), "the agent asked for events and got none")

	var slowest time.Duration
	within := period + startBudget
	for round := range rounds {
		By(fmt.Sprintf("round %d: a container removed, one killed, a spec added, with no event delivered", round+1))
		webID, err := running(ctx, web)()
		Expect(err).NotTo(HaveOccurred())
		killedID, err := running(ctx, killed)()
		Expect(err).NotTo(HaveOccurred())
		exitsBefore := len(a.Exits(ctx, killed))
		late := fname(fmt.Sprintf("late-%d", round))
		desired[late] = true

		at := time.Now()
		Expect(dcli.ContainerRemove(ctx, webID, container.RemoveOptions{Force: true})).To(Succeed())
		Expect(dcli.ContainerKill(ctx, killedID, "SIGKILL")).To(Succeed())
		a.WriteSpec(late+".yaml", Spec(late, tick))
		sum.Faults += 2

		Eventually(func() error {
			if id, err := running(ctx, web)(); err != nil || id == webID {
				return fmt.Errorf("%s not recreated yet: %v", web, err)
			}
			if _, err := running(ctx, late)(); err != nil {
				return err
			}
			ex := a.Exits(ctx, killed)
			if len(ex) <= exitsBefore {
				return errors.New("the kill is not recorded yet")
			}
			if ex[0].ContainerID != killedID || ex[0].ExitCode != 137 || ex[0].Reason == model.ReasonLost {
				return fmt.Errorf("the kill is recorded as %d (%s)", ex[0].ExitCode, ex[0].Reason)
			}
			if _, err := running(ctx, killed)(); err != nil {
				return err
			}
			return nil
		}).WithTimeout(within).WithPolling(100*time.Millisecond).Should(Succeed(),
			"converged within one resync period (%s) plus a start, from the re-list alone", period)
		slowest = max(slowest, time.Since(at))
	}
	m := a.Metrics()
	events := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "reconciler_docker_events_total") {
			events += v
		}
	}
	Expect(events).To(BeZero(), "no Docker event reached the agent")
	Expect(m).To(HaveKeyWithValue("reconciler_event_stream_reconnects_total", 0.0))
	Expect(checkDecoys(ctx, dcli, decoys, true)).To(Succeed())

	f, err := listFleet(ctx, dcli, instance)
	Expect(err).NotTo(HaveOccurred())
	sum.Specs = len(desired)
	sum.Converged = sum.Specs
	sum.Duplicates, sum.Orphans = f.duplicates(), len(f.orphans(desired))
	sum.note("events and waits held unanswered (%d requests); slowest convergence %s with resync %s; 0 events received; decoys untouched",
		bh.held.Load(), slowest.Round(10*time.Millisecond), period)
	sum.print()
	Expect(sum.Duplicates + sum.Orphans).To(BeZero())
}
