package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/egress"
	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
)

// bridgeHostIP is this host's address on Docker's default bridge (the
// docker0 gateway), where a container on the bridge reaches a server the
// test starts: the bridge's subnet comes from the daemon, the address in
// it from the host's interfaces.
func bridgeHostIP(ctx context.Context) string {
	nw, err := dcli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	Expect(err).NotTo(HaveOccurred())
	var subnets []netip.Prefix
	for _, c := range nw.IPAM.Config {
		if c.Gateway != "" {
			return c.Gateway
		}
		if p, err := netip.ParsePrefix(c.Subnet); err == nil {
			subnets = append(subnets, p)
		}
	}
	addrs, err := net.InterfaceAddrs()
	Expect(err).NotTo(HaveOccurred())
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		for _, p := range subnets {
			if p.Contains(ip.Unmap()) {
				return ip.Unmap().String()
			}
		}
	}
	Fail(fmt.Sprintf("no address of this host lies in the default bridge's subnets %v: the test's servers cannot be reached from containers", subnets))
	return ""
}

// countingServer serves on every address at a free port and counts the
// requests that reach it; addr is host:port on the bridge address.
type countingServer struct {
	*httptest.Server
	hits atomic.Int64
	addr string
}

func startServer(host string, tls bool) *countingServer {
	s := &countingServer{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		fmt.Fprintln(w, "hello from the test server")
	}))
	l, err := net.Listen("tcp", "0.0.0.0:0")
	Expect(err).NotTo(HaveOccurred())
	s.Listener.Close()
	s.Listener = l
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	DeferCleanup(s.Close)
	s.addr = net.JoinHostPort(host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	return s
}

// egressObjects lists the egress networks and proxies of the agent
// instance for spec.
func egressObjects(ctx context.Context, instance, spec string) (nets []network.Summary, proxies []container.Summary) {
	sel := func(key string) filters.Args {
		return filters.NewArgs(filters.Arg("label", "reconciler.instance="+instance), filters.Arg("label", key+"="+spec))
	}
	nets, err := dcli.NetworkList(ctx, network.ListOptions{Filters: sel(egress.LabelNetwork)})
	Expect(err).NotTo(HaveOccurred())
	proxies, err = dcli.ContainerList(ctx, container.ListOptions{All: true, Filters: sel(egress.LabelProxy)})
	Expect(err).NotTo(HaveOccurred())
	return nets, proxies
}

// removeTestNetworks removes the networks this run's agents made for
// egress (the containers go with removeTestContainers).
func removeTestNetworks(ctx SpecContext) {
	f := filters.NewArgs(filters.Arg("label", testLabel+"="+runID), filters.Arg("label", egress.LabelNetwork))
	nws, err := dcli.NetworkList(ctx, network.ListOptions{Filters: f})
	Expect(err).NotTo(HaveOccurred())
	for _, nw := range nws {
		if err := dcli.NetworkRemove(ctx, nw.ID); err != nil && !cerrdefs.IsNotFound(err) {
			Expect(err).NotTo(HaveOccurred(), "remove network %s", nw.Name)
		}
	}
}

var _ = Describe("egress", func() {
	It("lets a job reach its allow-list through the agent's proxy and nothing else", func(ctx SpecContext) {
		Expect(images.EnsureEgressProxy(ctx, dcli, images.EgressProxyImage, GinkgoWriter)).To(Succeed(),
			"the egress specs need reconciler/egress-proxy, built from cmd/egress-proxy")
		// Registered before the agent, so it runs after the agent has
		// stopped and its containers are gone.
		DeferCleanup(removeTestNetworks)
		host := bridgeHostIP(ctx)
		allowed := startServer(host, false)
		denied := startServer(host, false)
		secure := startServer(host, true)
		a := startAgent()
		instance := a.instance(ctx)
		// A job's create now waits for its proxy's create and start too.
		jobBudget := converge + 2*startBudget
		run := func(name, egressFlag string, args ...string) {
			cmd := []string{"run", name, "--image", images.BoxImage, "--label", testLabel + "=" + runID,
				"--start-timeout", jobBudget.String()}
			if egressFlag != "" {
				cmd = append(cmd, "--egress", egressFlag)
			}
			res := a.runCLI(ctx, append(append(cmd, "--"), args...)...)
			Expect(res.code).To(Equal(0), res.stderr)
		}
		wait := func(name string) int {
			return a.runCLI(ctx, "wait", name, "--timeout", jobBudget.String()).code
		}
		lastExit := func(name string) model.ContainerExit {
			exits := a.Exits(ctx, name)
			Expect(exits).NotTo(BeEmpty(), "no exit recorded for %s", name)
			return exits[0]
		}
		Expect(a.Metrics()).To(HaveKeyWithValue("reconciler_egress_denied_total", 0.0))

		By("positive control: without egress, a job on the bridge reaches the test server directly")
		direct := fname("eg-direct")
		run(direct, "", "dial", "--addr", allowed.addr, "--timeout", "5s")
		Expect(wait(direct)).To(Equal(0), "the test server must be reachable from a container, or the checks below prove nothing")

		By("an allowed destination: fetch through the proxy succeeds and reaches the server")
		ok := fname("eg-ok")
		run(ok, allowed.addr+","+secure.addr, "fetch", "--url", "http://"+allowed.addr+"/hello", "--timeout", "20s")
		Expect(wait(ok)).To(Equal(0), "agent log:\n%s", a.Log())
		Expect(lastExit(ok).ExitCode).To(Equal(0))
		Expect(allowed.hits.Load()).To(BeNumerically("==", 1), "the proxied fetch reached the server (a dial makes no request)")
		ct, err := dcli.ContainerInspect(ctx, containers(ctx, ok)[0].ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(ct.HostConfig.NetworkMode)).To(Equal(egress.NetworkName(ok)))
		Expect(ct.Config.Env).To(ContainElements("HTTPS_PROXY=http://egress-proxy:3128", "HTTP_PROXY=http://egress-proxy:3128",
			"https_proxy=http://egress-proxy:3128", "http_proxy=http://egress-proxy:3128", HavePrefix("NO_PROXY=")))
		nw, err := dcli.NetworkInspect(ctx, egress.NetworkName(ok), network.InspectOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(nw.Internal).To(BeTrue(), "the job's network has no way out but the proxy")
		Expect(nw.Labels).To(HaveKeyWithValue("reconciler.managed", "true"))
		Expect(nw.Labels).To(HaveKeyWithValue("reconciler.instance", instance))
		nets, proxies := egressObjects(ctx, instance, ok)
		Expect(nets).To(HaveLen(1))
		Expect(proxies).To(HaveLen(1))
		Expect(proxies[0].State).To(Equal("running"))
		Expect(proxies[0].Image).To(Equal(images.EgressProxyImage))
		Expect(proxies[0].Labels).NotTo(HaveKey("reconciler.spec"), "the proxy is not the spec's container")
		Expect(a.Exits(ctx, ok)).To(HaveLen(1), "the proxy's start is not an exit of the job")

		By("HTTPS through CONNECT to an allowed TLS server")
		tlsJob := fname("eg-tls")
		run(tlsJob, secure.addr, "fetch", "--insecure", "--url", "https://"+secure.addr+"/", "--timeout", "20s")
		Expect(wait(tlsJob)).To(Equal(0), "agent log:\n%s", a.Log())
		Expect(secure.hits.Load()).To(BeNumerically(">=", 1))

		By("a destination off the list: 403, logged by the agent and counted")
		deny := fname("eg-deny")
		run(deny, allowed.addr, "fetch", "--url", "http://"+denied.addr+"/secret?token=t0ps3cret", "--timeout", "20s")
		Expect(wait(deny)).To(Equal(1))
		Expect(lastExit(deny).LogTail).To(ContainSubstring("status 403"))
		Expect(denied.hits.Load()).To(BeZero(), "the denied server was reached")
		Eventually(func() float64 { return a.Metrics()["reconciler_egress_denied_total"] }).
			WithTimeout(converge).WithPolling(200 * time.Millisecond).Should(BeNumerically(">=", 1))
		Eventually(a.Log).WithTimeout(converge).Should(MatchRegexp(`egress denied.*spec=%s.*destination=%s`, deny, strings.ReplaceAll(denied.addr, ".", `\.`)))
		Expect(a.Log()).NotTo(ContainSubstring("t0ps3cret"), "the denied URL's query is in the agent's log")

		By("a direct connection that skips the proxy fails")
		dial := fname("eg-dial")
		run(dial, allowed.addr, "dial", "--addr", allowed.addr, "--timeout", "5s")
		Expect(wait(dial)).To(Equal(1), "a direct dial from the internal network connected")

		By("allow: [] means no network at all")
		none := fname("eg-none")
		run(none, "none", "dial", "--addr", allowed.addr, "--timeout", "5s")
		Expect(wait(none)).To(Equal(1))
		ct, err = dcli.ContainerInspect(ctx, containers(ctx, none)[0].ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(ct.HostConfig.NetworkMode)).To(Equal("none"))
		nets, proxies = egressObjects(ctx, instance, none)
		Expect(nets).To(BeEmpty())
		Expect(proxies).To(BeEmpty(), "no proxy for a job without network")

		By("a proxy removed by hand is made again")
		_, proxies = egressObjects(ctx, instance, ok)
		Expect(dcli.ContainerRemove(ctx, proxies[0].ID, container.RemoveOptions{Force: true})).To(Succeed())
		Eventually(func() []string {
			_, ps := egressObjects(ctx, instance, ok)
			var states []string
			for _, p := range ps {
				states = append(states, p.ID[:12]+" "+p.State)
			}
			return states
		}).WithTimeout(converge).WithPolling(250 * time.Millisecond).Should(ConsistOf(
			And(Not(HavePrefix(proxies[0].ID[:12])), HaveSuffix("running"))))

		By("deleting the specs removes their proxies and networks")
		for _, name := range []string{ok, tlsJob, deny, dial, none, direct} {
			a.mustCLI(ctx, "delete", name)
		}
		for _, name := range []string{ok, tlsJob, deny, dial} {
			Eventually(func() int {
				nets, proxies := egressObjects(ctx, instance, name)
				return len(nets) + len(proxies)
			}).WithTimeout(converge).WithPolling(250*time.Millisecond).Should(BeZero(), "egress network or proxy of %s left behind", name)
		}
	})

	It("keeps counting denials across proxy restarts, and a changed allow-list replaces container and proxy", func(ctx SpecContext) {
		Expect(images.EnsureEgressProxy(ctx, dcli, images.EgressProxyImage, GinkgoWriter)).To(Succeed())
		DeferCleanup(removeTestNetworks)
		host := bridgeHostIP(ctx)
		first := startServer(host, false)
		second := startServer(host, false)
		a := startAgent()
		instance := a.instance(ctx)
		name := fname("eg-svc")
		specWith := func(allow string) string {
			return Spec(name, []string{"sleep"}, "restartPolicy: Always", "egress: {allow: ["+allow+"]}")
		}
		fetch := func(target string) int {
			return a.runCLI(ctx, "exec", name, "--", "/box", "fetch", "--url", "http://"+target+"/", "--timeout", "20s").code
		}
		denied := func() float64 { return a.Metrics()["reconciler_egress_denied_total"] }
		proxy := func() (container.Summary, error) {
			_, ps := egressObjects(ctx, instance, name)
			if len(ps) != 1 || ps[0].State != "running" {
				return container.Summary{}, fmt.Errorf("%d proxies, want one running", len(ps))
			}
			return ps[0], nil
		}
		a.WriteSpec("svc.yaml", specWith(fmt.Sprintf("%q", first.addr)))
		Eventually(running(ctx, name)).WithTimeout(converge + startBudget).ShouldNot(BeEmpty())
		job, err := runningContainer(ctx, name)
		Expect(err).NotTo(HaveOccurred())

		By("allowed and denied through the first proxy")
		Expect(fetch(first.addr)).To(Equal(0))
		Expect(fetch(second.addr)).To(Equal(1))
		Eventually(denied).WithTimeout(converge).Should(Equal(1.0))

		By("the proxy dies and comes back: its denials are still counted, once each")
		p, err := proxy()
		Expect(err).NotTo(HaveOccurred())
		before, err := dcli.ContainerInspect(ctx, p.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(dcli.ContainerKill(ctx, p.ID, "SIGKILL")).To(Succeed())
		Eventually(func() (string, error) {
			ct, err := dcli.ContainerInspect(ctx, p.ID)
			if err != nil || !ct.State.Running {
				return "", err
			}
			return ct.State.StartedAt, nil
		}).WithTimeout(converge).WithPolling(200 * time.Millisecond).ShouldNot(Or(BeEmpty(), Equal(before.State.StartedAt)))
		Expect(fetch(second.addr)).To(Equal(1))
		Eventually(denied).WithTimeout(converge).Should(Equal(2.0))
		Expect(fetch(first.addr)).To(Equal(0), "the restarted proxy still forwards")
		Expect(a.Exits(ctx, name)).To(BeEmpty(), "the proxy's death is not an exit of the spec's container")

		By("a changed allow-list replaces the container and the proxy")
		a.WriteSpec("svc.yaml", specWith(fmt.Sprintf("%q, %q", first.addr, second.addr)))
		Eventually(func() (string, error) {
			ct, err := runningContainer(ctx, name)
			return ct.ID, err
		}).WithTimeout(converge + 2*startBudget).WithPolling(250 * time.Millisecond).ShouldNot(Or(BeEmpty(), Equal(job.ID)))
		Eventually(func() (string, error) {
			np, err := proxy()
			return np.ID, err
		}).WithTimeout(converge).WithPolling(250 * time.Millisecond).ShouldNot(Or(BeEmpty(), Equal(p.ID)))
		Expect(fetch(second.addr)).To(Equal(0), "the new list allows the second server")
		Expect(denied()).To(Equal(2.0), "a new proxy's lines are not counted again")

		By("removing the spec file removes the proxy and the network")
		a.RemoveSpec("svc.yaml")
		Eventually(func() int {
			nets, proxies := egressObjects(ctx, instance, name)
			return len(nets) + len(proxies)
		}).WithTimeout(converge + startBudget).WithPolling(250 * time.Millisecond).Should(BeZero())
	})
})
