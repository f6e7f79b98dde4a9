package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// apiScenario checks the API's doors through the real agent: the unix
// socket is 0660 from the moment it appears (under umask 0), TCP needs the
// bearer token, and a request a browser would send is refused with it.
func apiScenario(ctx SpecContext) {
	dir := GinkgoT().TempDir()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	tokenFile := filepath.Join(dir, "token")
	Expect(os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)).To(Succeed())
	addr := freeAddr()

	a := &Agent{Dir: dir, SpecsDir: filepath.Join(dir, "specs"), State: filepath.Join(dir, "state.db"),
		Socket: filepath.Join(dir, "run", "api.sock"), ExtraArgs: []string{"--api-addr", addr, "--api-token-file", tokenFile}}
	Expect(os.MkdirAll(a.SpecsDir, 0o755)).To(Succeed())
	DeferCleanup(a.Stop)

	By("the socket's first appearance, with the agent under umask 0")
	first := make(chan fs.FileInfo, 1)
	watchCtx, stopWatch := context.WithTimeout(ctx, startBudget)
	defer stopWatch()
	go func() {
		defer GinkgoRecover()
		for watchCtx.Err() == nil {
			if fi, err := os.Lstat(a.Socket); err == nil {
				first <- fi
				return
			}
		}
		close(first)
	}()
	a.relaunchUnder("/bin/sh", "-c", `umask 000; exec "$@"`, "sh")
	fi, ok := <-first
	Expect(ok).To(BeTrue(), "the socket appeared")
	Expect(fi.Mode() & fs.ModeSocket).NotTo(BeZero())
	Expect(fi.Mode().Perm()).To(Equal(fs.FileMode(0o660)), "mode when first seen")
	Expect(fi.Sys().(*syscall.Stat_t).Uid).To(Equal(uint32(os.Getuid())), "owned by the agent's user")
	Eventually(a.Ready).WithTimeout(startBudget).Should(Succeed())
	fi, err := os.Lstat(a.Socket)
	Expect(err).NotTo(HaveOccurred())
	Expect(fi.Mode().Perm()).To(Equal(fs.FileMode(0o660)))
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(a.Socket), ".sock*"))
	Expect(leftovers).To(BeEmpty(), "no private bind directory left behind")

	By("TCP: the bearer token, and no browser")
	tcp := func(header ...string) int {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/version", nil)
		Expect(err).NotTo(HaveOccurred())
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		Expect(err).NotTo(HaveOccurred())
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := "Bearer " + token
	checks := []struct {
		what   string
		header []string
		want   int
	}{
		{"no token", nil, 401},
		{"wrong token", []string{"Authorization", "Bearer " + strings.Repeat("0", len(token))}, 401},
		{"token without Bearer", []string{"Authorization", token}, 401},
		{"right token", []string{"Authorization", bearer}, 200},
		{"right token from a web page", []string{"Authorization", bearer, "Origin", "http://evil.example"}, 403},
		{"right token, browser fetch metadata", []string{"Authorization", bearer, "Sec-Fetch-Site", "cross-site"}, 403},
		{"a web page without the token", []string{"Origin", "http://evil.example"}, 401},
	}
	for _, c := range checks {
		Expect(tcp(c.header...)).To(Equal(c.want), c.what)
	}

	By("unix socket: a web page's request is refused there too")
	unix := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.Socket)
	}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://reconciler/v1/version", nil)
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Origin", "http://evil.example")
	resp, err := unix.Do(req)
	Expect(err).NotTo(HaveOccurred())
	resp.Body.Close()
	Expect(resp.StatusCode).To(Equal(403))

	By("TCP is never served without a token, nor with one anyone can read")
	a.Stop()
	open := filepath.Join(dir, "token-open")
	Expect(os.WriteFile(open, []byte(token), 0o644)).To(Succeed())
	Expect(os.Chmod(open, 0o644)).To(Succeed())
	refusals := []struct {
		args []string
		want string
	}{
		{[]string{"--api-addr", freeAddr()}, "--api-token-file"},
		{[]string{"--api-addr", freeAddr(), "--api-token-file", open}, "readable by every user"},
	}
	for _, r := range refusals {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		res := exec2(rctx, append([]string{"agent", "--specs-dir", a.SpecsDir, "--state", a.State,
			"--socket", a.Socket, "--metrics-addr", freeAddr()}, r.args...)...)
		cancel()
		Expect(res.err).To(HaveOccurred(), "started with %v", r.args)
		Expect(res.stderr).To(ContainSubstring(r.want))
	}
	sum := &faultSummary{Scenario: "API doors", Faults: len(checks) - 1 + 1 + len(refusals)}
	sum.note("socket 0660 and the agent's from its first appearance under umask 0; TCP: no/wrong token 401, token 200, Origin or cross-site fetch 403; unix Origin 403; no TCP without a private token file")
	sum.print()
}
