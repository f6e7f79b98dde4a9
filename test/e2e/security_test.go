package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/images"
	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// roleToken is one line of the test's --api-tokens file.
type roleToken struct{ token, name, role string }

var roleTokens = []roleToken{
	{"tok-view-" + strconv.Itoa(os.Getpid()) + "-a81f", "grafana", "view"},
	{"tok-edit-" + strconv.Itoa(os.Getpid()) + "-93c2", "ci", "edit"},
	{"tok-exec-" + strconv.Itoa(os.Getpid()) + "-07de", "oncall", "exec"},
	{"tok-admin-" + strconv.Itoa(os.Getpid()) + "-5b44", "ops", "admin"},
}

var roleRank = map[string]int{"view": 1, "edit": 2, "exec": 3, "admin": 4}

// writeTokens writes the tokens file, mode 0600.
func writeTokens(dir string) string {
	var b strings.Builder
	b.WriteString("# token,name,role\n\n")
	for _, t := range roleTokens {
		fmt.Fprintf(&b, "%s,%s,%s\n", t.token, t.name, t.role)
	}
	p := filepath.Join(dir, "tokens.csv")
	Expect(os.WriteFile(p, []byte(b.String()), 0o600)).To(Succeed())
	return p
}

// readAudit reads the audit log's lines.
func readAudit(path string) []api.AuditRecord {
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	var out []api.AuditRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var rec api.AuditRecord
		Expect(json.Unmarshal(sc.Bytes(), &rec)).To(Succeed(), "audit line %q", sc.Text())
		out = append(out, rec)
	}
	return out
}

// auditKey is what a test expects of one audit line.
type auditKey struct {
	who, verb, spec string
	status          int
}

func auditKeys(recs []api.AuditRecord) []auditKey {
	var out []auditKey
	for _, r := range recs {
		out = append(out, auditKey{r.Who, r.Verb, r.Spec, r.Status})
	}
	return out
}

// refusal is the message of a 403 for a verb.
func refusal(need, verb, who, have string) string {
	return fmt.Sprintf("role %s required to %s; you (%s) have role %s", need, verb, who, have)
}

var _ = Describe("API roles and audit", func() {
	It("refuses each TCP token's role exactly the verbs above it, and audits every write and exec", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		addr := freeAddr()
		auditLog := filepath.Join(dir, "log", "audit.log")
		a := startAgent("--api-addr", addr, "--api-tokens", writeTokens(dir), "--audit-log", auditLog)
		fi, err := os.Stat(auditLog)
		Expect(err).NotTo(HaveOccurred(), "the audit log exists from the start")
		Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o600)))

		By("a running container to read from and exec into, applied over the socket as root")
		// Container names are the daemon's to share: this run's names.
		web := fname("web")
		a.mustCLI(ctx, "apply", "-f", a.writeFile("web.yaml", cliSpec(web, []string{"sleep"})))
		Eventually(func() string { return a.mustCLI(ctx, "get", web) }).WithTimeout(converge).Should(MatchRegexp(web + `\s+Running`))

		type verb struct {
			name, need string
			args       func(t roleToken) []string
		}
		verbs := []verb{
			{"get", "view", func(roleToken) []string { return []string{"get"} }},
			{"get", "view", func(roleToken) []string { return []string{"describe", web} }},
			{"logs", "view", func(roleToken) []string { return []string{"logs", "--tail", "1", web} }},
			{"exits", "view", func(roleToken) []string { return []string{"exits", web} }},
			{"events", "view", func(roleToken) []string { return []string{"events"} }},
			{"apply", "edit", func(t roleToken) []string {
				return []string{"apply", "-f", a.writeFile("scratch-"+t.role+".yaml", cliSpec(fname("scratch-"+t.role), []string{"sleep"}))}
			}},
			{"delete", "edit", func(t roleToken) []string { return []string{"delete", fname("scratch-" + t.role)} }},
			{"apply", "edit", func(t roleToken) []string { // run
				return []string{"run", fname("job-" + t.role), "--image", images.BoxImage, "--label", testLabel + "=" + runID,
					"--network", "none", "--start-timeout", "0", "--", "exit", "--code", "0"}
			}},
			{"exec", "exec", func(roleToken) []string { return []string{"exec", web, "--", "/box", "exit", "--code", "0"} }},
		}
		var want []auditKey
		for _, t := range roleTokens {
			who := fmt.Sprintf("token %q", t.name)
			for _, v := range verbs {
				args := v.args(t)
				// The flags go before any "--", after which run's and
				// exec's words are the container's.
				res := a.runCLI(ctx, append([]string{args[0], "--server", "http://" + addr, "--token", t.token}, args[1:]...)...)
				if roleRank[t.role] < roleRank[v.need] {
					Expect(res.code).To(Equal(1), "%s as %s", args[0], t.role)
					Expect(res.stderr).To(ContainSubstring(refusal(v.need, v.name, who, t.role)), "%s as %s", args[0], t.role)
				} else {
					Expect(res.code).To(Equal(0), "%s as %s: %s", args[0], t.role, res.stderr)
				}
				if v.need == "view" {
					continue
				}
				k := auditKey{t.name, v.name, "", 200}
				switch {
				case roleRank[t.role] < roleRank[v.need]:
					k.status = 403
					if args[0] == "delete" || args[0] == "exec" {
						k.spec = args[1] // from the path; an apply's names come from its body, unread when refused
					}
				case args[0] == "run":
					k.spec = args[1]
				default:
					k.spec = args[1]
					if args[0] == "apply" {
						k.spec = fname("scratch-" + t.role)
					}
				}
				want = append(want, k)
			}

			By("inspect, which shows the environment, needs exec: " + t.role)
			status, e := apiCall(ctx, http.DefaultClient, http.MethodGet, "http://"+addr+"/v1/specs/"+web+"/inspect", t.token, nil)
			k := auditKey{t.name, "inspect", web, 200}
			if roleRank[t.role] < roleRank["exec"] {
				Expect(status).To(Equal(403))
				Expect(e.Message).To(Equal(refusal("exec", "inspect", who, t.role)))
				k.status = 403
			} else {
				Expect(status).To(Equal(200))
			}
			want = append(want, k)
		}

		By("the audit log: one line per write and exec, in order, naming who and never a token")
		recs := readAudit(auditLog)
		Expect(recs).NotTo(BeEmpty())
		Expect(recs[0].Via).To(Equal("socket"), "the first apply came over the socket")
		Expect(recs[0].Who).To(Equal("root"))
		Expect(recs[0].UID).NotTo(BeNil())
		Expect(*recs[0].UID).To(Equal(0))
		Expect(recs[0].Role).To(Equal("admin"))
		Expect(auditKeys(recs[1:])).To(Equal(want))
		for _, r := range recs[1:] {
			Expect(r.Via).To(Equal("token"))
			Expect(r.Time).To(BeTemporally("~", time.Now(), 5*time.Minute))
			if r.Status == 403 {
				Expect(r.Result).To(HavePrefix("role "))
			} else {
				Expect(r.Result).To(Equal("ok"))
			}
		}
		raw, err := os.ReadFile(auditLog)
		Expect(err).NotTo(HaveOccurred())
		for _, t := range roleTokens {
			Expect(string(raw)).NotTo(ContainSubstring(t.token))
			Expect(a.Log()).NotTo(ContainSubstring(t.token))
		}
		summary("API roles", "%d calls by 4 roles over TCP, each refused exactly the verbs above it (403 naming the role); %d audit lines; no token in the audit log or the agent's log",
			len(roleTokens)*(len(verbs)+1), len(recs))
	})

	It("refuses to start with a tokens file others may read, a bad line, or an unknown --socket-role", func(ctx SpecContext) {
		dir := GinkgoT().TempDir()
		write := func(name, content string, mode os.FileMode) string {
			p := filepath.Join(dir, name)
			Expect(os.WriteFile(p, []byte(content), mode)).To(Succeed())
			Expect(os.Chmod(p, mode)).To(Succeed())
			return p
		}
		good := write("good.csv", "s3cret-good,ci,edit\n", 0o600)
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--api-tokens", write("group.csv", "s3cret-group,ci,edit\n", 0o640)}, "group.csv has mode 0640: it must be 0600 or stricter"},
			{[]string{"--api-tokens", write("bad.csv", "# ok\ns3cret-bad,ci,root\n", 0o600)}, `bad.csv:2: role "root": use view, edit, exec or admin`},
			{[]string{"--api-tokens", good, "--socket-role", "owner"}, `--socket-role: role "owner"`},
		} {
			rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			res := exec2(rctx, append([]string{"agent", "--specs-dir", dir, "--state", filepath.Join(dir, "state.db"),
				"--socket", filepath.Join(dir, "api.sock"), "--metrics-addr", freeAddr(), "--api-addr", freeAddr()}, c.args...)...)
			cancel()
			Expect(res.err).To(HaveOccurred(), "started with %v", c.args)
			Expect(res.stderr).To(ContainSubstring(c.want))
			Expect(res.stderr).NotTo(ContainSubstring("s3cret"))
		}
	})

	It("gives a socket peer other than root --socket-role", func(ctx SpecContext) {
		// The socket is 0660 and owned by the agent's user (root here). An
		// operator grants it to a group; the test does the same: the
		// socket's directory belongs to nobody's group and is setgid, so the
		// socket created in it (through a private directory created in it
		// too) inherits that group. The CLI then runs as nobody:nogroup,
		// from a copy of the binary in that directory, since the suite's
		// build directory is root's alone.
		Expect(os.Getuid()).To(BeZero(), "this test runs the CLI as another user, which needs root")
		nobody, err := user.LookupId("65534")
		Expect(err).NotTo(HaveOccurred(), "this test needs the user 65534 (nobody)")
		peerDir, err := os.MkdirTemp("", "reconciler-e2e-peer-")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, peerDir)
		for d := filepath.Dir(peerDir); d != "/"; d = filepath.Dir(d) {
			fi, err := os.Stat(d)
			Expect(err).NotTo(HaveOccurred())
			Expect(fi.Mode().Perm()&0o001).NotTo(BeZero(), "%s must be searchable by other users for this test (set TMPDIR)", d)
		}
		Expect(os.Chown(peerDir, 0, 65534)).To(Succeed())
		Expect(os.Chmod(peerDir, 0o750|os.ModeSetgid)).To(Succeed())
		peerBin := filepath.Join(peerDir, "reconciler")
		bin, err := os.ReadFile(binPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(peerBin, bin, 0o755)).To(Succeed())
		auditLog := filepath.Join(peerDir, "audit.log")

		peer := func(args ...string) cliResult {
			cctx, cancel := context.WithTimeout(ctx, cliTimeout)
			defer cancel()
			var out, errb bytes.Buffer
			cmd := exec.CommandContext(cctx, peerBin, args...)
			cmd.Env = []string{"RECONCILER_SOCKET=" + filepath.Join(peerDir, "api.sock"), "HOME=" + peerDir}
			cmd.Dir = peerDir
			cmd.Stdout, cmd.Stderr = &out, &errb
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			err := cmd.Run()
			res := cliResult{stdout: out.String(), stderr: errb.String()}
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				res.code = ee.ExitCode()
			} else {
				Expect(err).NotTo(HaveOccurred())
			}
			GinkgoWriter.Printf("(as nobody) $ reconciler %s  => %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
			return res
		}
		specFile := func(name string) string {
			p := filepath.Join(peerDir, name+".yaml")
			Expect(os.WriteFile(p, []byte(cliSpec(name, []string{"sleep"})), 0o644)).To(Succeed())
			return p
		}
		who := fmt.Sprintf("uid 65534 (%s)", nobody.Username)

		a := newAgent("--audit-log", auditLog)
		a.Socket = filepath.Join(peerDir, "api.sock")
		a.Start()
		fi, err := os.Stat(a.Socket)
		Expect(err).NotTo(HaveOccurred())
		Expect(fi.Mode().Perm()).To(Equal(os.FileMode(0o660)))
		Expect(fi.Sys().(*syscall.Stat_t).Gid).To(Equal(uint32(65534)), "the socket took its directory's group")

		By("default --socket-role edit: nobody applies, reads and deletes, but may not exec")
		web := fname("peer-web")
		Expect(peer("apply", "-f", specFile(web)).code).To(Equal(0))
		Eventually(func() string { return peer("get", web).stdout }).WithTimeout(converge).Should(MatchRegexp(web + `\s+Running`))
		res := peer("exec", web, "--", "/box", "exit", "--code", "0")
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring(refusal("exec", "exec", who, "edit")))
		By("root, on the same socket, is admin")
		Expect(a.runCLI(ctx, "exec", web, "--", "/box", "exit", "--code", "0").code).To(Equal(0))
		Expect(peer("delete", web).code).To(Equal(0))

		By("--socket-role view: nobody reads, and may not apply")
		a.Stop()
		a.ExtraArgs = append(a.ExtraArgs, "--socket-role", "view")
		a.Start()
		Expect(peer("get").code).To(Equal(0))
		res = peer("apply", "-f", specFile(fname("peer-two")))
		Expect(res.code).To(Equal(1))
		Expect(res.stderr).To(ContainSubstring(refusal("edit", "apply", who, "view")))

		By("the audit log names nobody by uid and name")
		recs := readAudit(auditLog)
		Expect(auditKeys(recs)).To(Equal([]auditKey{
			{nobody.Username, "apply", web, 200},
			{nobody.Username, "exec", web, 403},
			{"root", "exec", web, 200},
			{nobody.Username, "delete", web, 200},
			{nobody.Username, "apply", "", 403},
		}))
		for _, r := range recs {
			Expect(r.Via).To(Equal("socket"))
			Expect(r.UID).NotTo(BeNil())
			if r.Who == nobody.Username {
				Expect(*r.UID).To(Equal(65534))
			}
		}
		Expect(recs[1].Role).To(Equal("edit"))
		Expect(recs[4].Role).To(Equal("view"))
	})
})

// apiCall sends one request with a bearer token (and a YAML body, when
// given) and returns the status and the JSON error, if one came.
func apiCall(ctx context.Context, c *http.Client, method, url, token string, yaml []byte) (int, api.Error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(yaml))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/yaml")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var e api.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e
}

// rawRequest writes one HTTP/1.1 request on c and reads its answer.
func rawRequest(c net.Conn, br *bufio.Reader, method, path, header, body string) *http.Response {
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: reconciler\r\n%sContent-Length: %d\r\n\r\n%s", method, path, header, len(body), body)
	resp, err := http.ReadResponse(br, nil)
	Expect(err).NotTo(HaveOccurred())
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	return resp
}

// closedWithin reads c until the agent closes it: it returns how long
// that took, or fails when c is still open after limit.
func closedWithin(c net.Conn, br *bufio.Reader, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(limit))
	_, err := br.ReadByte()
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return time.Since(start), nil
	case err == nil:
		return 0, errors.New("the agent sent more bytes")
	}
	return 0, fmt.Errorf("still open after %v: %w", limit, err)
}

var _ = Describe("HTTP limits", func() {
	It("closes idle metrics connections and unauthenticated TCP API connections, cuts no stream, and refuses big bodies", func(ctx SpecContext) {
		const (
			idle     = 4 * time.Second
			deadline = 2 * time.Second // read and write
			conns    = 50
			// slack is what a loaded machine adds to a timer firing and
			// a close reaching the client.
			slack = 3 * time.Second
		)
		dir := GinkgoT().TempDir()
		addr := freeAddr()
		tokens := writeTokens(dir)
		admin := roleTokens[3]
		a := startAgent("--api-addr", addr, "--api-tokens", tokens, "--http-idle-timeout", idle.String(),
			"--http-read-timeout", deadline.String(), "--http-write-timeout", deadline.String())

		By(fmt.Sprintf("%d metrics connections, served and then idle", conns))
		type result struct {
			open   bool // still open right after its answer: kept alive
			closed time.Duration
			err    error
		}
		results := make(chan result, 2*conns)
		for range conns {
			go func() {
				defer GinkgoRecover()
				c, err := net.Dial("tcp", a.MetricsAddr)
				Expect(err).NotTo(HaveOccurred())
				defer c.Close()
				br := bufio.NewReader(c)
				resp := rawRequest(c, br, "GET", "/healthz", "", "")
				Expect(resp.StatusCode).To(Equal(200))
				// The positive control: the agent keeps a served
				// connection open, so what closes it later is idleness.
				_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				_, err = br.ReadByte()
				var ne net.Error
				open := errors.As(err, &ne) && ne.Timeout()
				closed, err := closedWithin(c, br, idle+slack)
				results <- result{open: open, closed: closed, err: err}
			}()
		}
		By(fmt.Sprintf("%d TCP API connections without a token", conns))
		for range conns {
			go func() {
				defer GinkgoRecover()
				c, err := net.Dial("tcp", addr)
				Expect(err).NotTo(HaveOccurred())
				defer c.Close()
				br := bufio.NewReader(c)
				resp := rawRequest(c, br, "GET", "/v1/version", "", "")
				Expect(resp.StatusCode).To(Equal(401))
				closed, err := closedWithin(c, br, idle/2)
				results <- result{open: false, closed: closed, err: err}
			}()
		}
		var idleClosed, unauthClosed []time.Duration
		for range 2 * conns {
			var r result
			Eventually(results).WithTimeout(idle + 2*slack + 10*time.Second).Should(Receive(&r))
			Expect(r.err).NotTo(HaveOccurred())
			if r.open {
				idleClosed = append(idleClosed, r.closed)
			} else {
				unauthClosed = append(unauthClosed, r.closed)
			}
		}
		Expect(idleClosed).To(HaveLen(conns), "every metrics connection was kept alive after its answer")
		Expect(unauthClosed).To(HaveLen(conns))
		for _, d := range idleClosed {
			Expect(d).To(BeNumerically("<=", idle+slack))
		}
		for _, d := range unauthClosed {
			Expect(d).To(BeNumerically("<", idle/2), "closed after the 401, well before the idle timeout")
		}

		By("a follow outlives the read and write timeouts")
		cl := api.NewTCPClient("http://"+addr, admin.token)
		fctx, cancel := context.WithCancel(ctx)
		defer cancel()
		evs := make(chan string, 100)
		go func() {
			_ = cl.FollowEvents(fctx, api.EventQuery{}, func(ev model.Event) error { evs <- ev.Reason + " " + ev.Spec; return nil })
		}()
		time.Sleep(2 * deadline) // the follow must outlast both deadlines: waiting is the test
		late := fname("late")
		_, err := cl.Apply(ctx, []byte(cliSpec(late, []string{"sleep"})), "application/yaml", true)
		Expect(err).NotTo(HaveOccurred())
		_, err = cl.Apply(ctx, []byte(cliSpec(late, []string{"sleep"})), "application/yaml", false)
		Expect(err).NotTo(HaveOccurred())
		Eventually(evs).WithTimeout(10 * time.Second).Should(Receive(Equal("Applied " + late)))
		Expect(cl.Delete(ctx, late)).To(Succeed())

		By("a body over 256 KiB gets 413 on TCP and on the socket; one under it is served")
		unix := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", a.Socket)
		}}}
		// padded is a body of at least size bytes: documents under the
		// decoder's per-document limit (spec.MaxDocumentSize), each a
		// comment block and a spec.
		padded := func(size int) []byte {
			var b strings.Builder
			for i := 0; b.Len() < size; i++ {
				if i > 0 {
					b.WriteString("---\n")
				}
				b.WriteString(strings.Repeat("#"+strings.Repeat("x", 99)+"\n", spec.MaxDocumentSize/2/101))
				b.WriteString(cliSpec(fname(fmt.Sprintf("padded-%d", i)), []string{"sleep"}))
			}
			return []byte(b.String())
		}
		for _, via := range []struct {
			name, base string
			c          *http.Client
		}{{"tcp", "http://" + addr, http.DefaultClient}, {"socket", "http://reconciler", unix}} {
			for _, c := range []struct {
				size, status int
			}{{200 << 10, 200}, {300 << 10, 413}} {
				status, e := apiCall(ctx, via.c, http.MethodPost, via.base+"/v1/specs?dryRun=true", admin.token, padded(c.size))
				Expect(status).To(Equal(c.status), "%d KiB over %s: %s", c.size>>10, via.name, e.Message)
				if c.status == 413 {
					Expect(e.Message).To(Equal("request body is over the 262144-byte limit"))
				}
			}
		}
		summary("HTTP limits", "%d idle metrics connections closed after %v-%v (idle timeout %v); %d TCP connections closed %v-%v after their 401; a follow outlived %v deadlines; 300 KiB bodies 413 on TCP and socket",
			conns, minDur(idleClosed), maxDur(idleClosed), idle, conns, minDur(unauthClosed), maxDur(unauthClosed), deadline)
	})

	It("caps concurrent connections on each listener", func(ctx SpecContext) {
		const limit = 4
		dir := GinkgoT().TempDir()
		addr := freeAddr()
		admin := roleTokens[3]
		// Held connections must keep their slots for the whole test.
		a := startAgent("--api-addr", addr, "--api-tokens", writeTokens(dir), "--http-max-conns", strconv.Itoa(limit),
			"--http-idle-timeout", "5m")
		// The suite's readiness probe keeps a connection to the metrics
		// listener alive; it would hold a slot.
		http.DefaultClient.CloseIdleConnections()

		listeners := []struct {
			name, network, addr, path, header string
		}{
			{"metrics", "tcp", a.MetricsAddr, "/healthz", ""},
			{"API over TCP", "tcp", addr, "/v1/version", "Authorization: Bearer " + admin.token + "\r\n"},
			{"API socket", "unix", a.Socket, "/v1/version", ""},
		}
		for _, l := range listeners {
			By(l.name + ": the cap's connections are served and held")
			var held []net.Conn
			for i := range limit {
				var c net.Conn
				// A slot freed by a client's close is free once the agent
				// has read that close: retry until then.
				Eventually(func() error {
					var err error
					c, err = net.Dial(l.network, l.addr)
					if err != nil {
						return err
					}
					_ = c.SetDeadline(time.Now().Add(time.Second))
					fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: reconciler\r\n%s\r\n", l.path, l.header)
					resp, err := http.ReadResponse(bufio.NewReader(c), nil)
					if err != nil {
						c.Close()
						return fmt.Errorf("connection %d of %d: %w", i+1, limit, err)
					}
					resp.Body.Close()
					_ = c.SetDeadline(time.Time{})
					if resp.StatusCode != 200 {
						c.Close()
						return fmt.Errorf("status %d", resp.StatusCode)
					}
					return nil
				}).WithTimeout(10 * time.Second).Should(Succeed())
				held = append(held, c)
			}

			By(l.name + ": one more waits while the cap is in use")
			extra, err := net.Dial(l.network, l.addr)
			Expect(err).NotTo(HaveOccurred(), "the kernel's backlog takes it")
			defer extra.Close()
			fmt.Fprintf(extra, "GET %s HTTP/1.1\r\nHost: reconciler\r\n%s\r\n", l.path, l.header)
			br := bufio.NewReader(extra)
			_ = extra.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = br.Peek(1)
			var ne net.Error
			Expect(errors.As(err, &ne) && ne.Timeout()).To(BeTrue(), "no answer beyond the cap (got %v)", err)

			By(l.name + ": and is served once a held one closes")
			held[0].Close()
			_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
			resp, err := http.ReadResponse(br, nil)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(200))
			for _, c := range held[1:] {
				c.Close()
			}
			extra.Close()
		}
	})
})

// summary writes a scenario's result line to the run's output and report.
func summary(scenario, format string, args ...any) {
	line := fmt.Sprintf("%s: ", scenario) + fmt.Sprintf(format, args...)
	fmt.Fprintln(GinkgoWriter, line)
	AddReportEntry(scenario, ReportEntryVisibilityAlways, line)
}

func minDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m.Round(10 * time.Millisecond)
}

func maxDur(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = max(m, d)
	}
	return m.Round(10 * time.Millisecond)
}
