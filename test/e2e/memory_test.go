package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/reconciler/reconciler/pkg/api"
	"github.com/reconciler/reconciler/pkg/spec"
)

// maxRSSRise is what eight maximum-size applies at once may add to the
// agent's peak RSS.
const maxRSSRise = 64 << 20

var _ = Describe("Memory", func() {
	It("eight maximum-size applies at once raise the agent's peak RSS by less than 64 MiB", func(ctx SpecContext) {
		a := startAgent()
		size := api.DefaultMaxBody // the largest body the API takes

		By("four kinds of body of exactly the largest size, each twice")
		bodies := []applyBody{
			{"JSON spec with a long args list", "application/json", longArgsJSON(size), 400,
				[]string{`"message": "` + strconv.Itoa(argsFitting(size)) + ` items, more than the 1024 limit"`, `"field": "spec.args"`}},
			{"YAML spec with a long flow list", "application/yaml", longArgsYAML(size), 400,
				[]string{"more than 65536 bytes, the limit for one spec"}},
			{"JSON array of specs, each under the list limit", "application/json", manySpecsJSON(size), 400,
				[]string{"more than 32768 values in one file or body"}},
			{"JSON array of valid specs with long env values (accepted, dry run)", "application/json", longValuesJSON(size), 200,
				[]string{`"action": "created"`}},
		}
		for _, b := range bodies {
			Expect(b.data).To(HaveLen(size), b.what)
		}
		// One small apply first, so the baseline includes the code that
		// serves one.
		status, _ := a.applyRaw(ctx, "application/yaml", []byte(Spec(fname("warm"), []string{"sleep"})), true)
		Expect(status).To(Equal(200))
		before := a.peakRSS()

		var wg sync.WaitGroup
		type answer struct {
			status int
			body   string
		}
		answers := make([]answer, 2*len(bodies))
		for i := range answers {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				b := bodies[i%len(bodies)]
				answers[i].status, answers[i].body = a.applyRaw(ctx, b.contentType, b.data, true)
			}()
		}
		wg.Wait()
		after := a.peakRSS()

		By("each reached the decoder: its validation error or its success")
		for i, ans := range answers {
			b := bodies[i%len(bodies)]
			Expect(ans.status).To(Equal(b.status), "%s: %s", b.what, ans.body)
			for _, w := range b.want {
				Expect(ans.body).To(ContainSubstring(w), b.what)
			}
		}
		rise := after - before
		line := fmt.Sprintf("memory: 8 applies of %d bytes at once (%d kinds, 2 each): peak RSS %.1f MiB -> %.1f MiB, +%.1f MiB (limit %d MiB)",
			size, len(bodies), mib(before), mib(after), mib(rise), maxRSSRise>>20)
		fmt.Fprintln(GinkgoWriter, line)
		AddReportEntry("apply memory", ReportEntryVisibilityAlways, line)
		Expect(rise).To(BeNumerically("<", maxRSSRise))
	}, SpecTimeout(3*time.Minute))
})

type applyBody struct {
	what, contentType string
	data              []byte
	status            int
	want              []string // in the answer
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// peakRSS reads the agent's VmHWM, in bytes.
func (a *Agent) peakRSS() int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid))
	Expect(err).NotTo(HaveOccurred(), "the test reads the agent's peak RSS from /proc")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			Expect(err).NotTo(HaveOccurred())
			return kb << 10
		}
	}
	Fail("no VmHWM in /proc/PID/status")
	return 0
}

// applyRaw posts a body to the API on the unix socket and returns the
// status and the answer.
func (a *Agent) applyRaw(ctx context.Context, contentType string, body []byte, dryRun bool) (int, string) {
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", a.Socket)
	}}}
	u := "http://reconciler/v1/specs"
	if dryRun {
		u += "?dryRun=true"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", contentType)
	resp, err := hc.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, out.String()
}

// The bodies below are exactly size bytes.

const jsonHead = `{"apiVersion":"reconciler/v1","kind":"Container","metadata":{"name":"big"},"spec":{"image":"x",`

// argsFitting is how many args longArgsJSON(size) holds.
func argsFitting(size int) int {
	return (size - len(jsonHead) - len(`"args":[]}}`) + 1) / 4
}

// longArgsJSON is one spec whose args are "a" repeated, padded with spaces.
func longArgsJSON(size int) []byte {
	n := argsFitting(size)
	var b bytes.Buffer
	b.WriteString(jsonHead + `"args":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"a"`)
	}
	b.WriteString(`]}}`)
	return pad(b.Bytes(), size, ' ')
}

// longArgsYAML is one spec whose args are a flow list of a.
func longArgsYAML(size int) []byte {
	var b bytes.Buffer
	b.WriteString("apiVersion: reconciler/v1\nkind: Container\nmetadata: {name: big}\nspec:\n  image: x\n  args: [a")
	for b.Len() < size-3 {
		b.WriteString(",a")
	}
	b.WriteString("]\n")
	return pad(b.Bytes(), size, '\n')
}

// manySpecsJSON is an array of specs of 1000 args each: every list is
// under the limit, the body's values are not.
func manySpecsJSON(size int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	one := func(i int) []byte {
		s := map[string]any{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": map[string]any{"name": fmt.Sprintf("s%d", i)},
			"spec": map[string]any{"image": "x", "args": strings.Split(strings.Repeat("a", 1000), "")}}
		data, err := json.Marshal(s)
		Expect(err).NotTo(HaveOccurred())
		return data
	}
	for i := 0; i < spec.MaxDocuments; i++ {
		next := one(i)
		if b.Len()+len(next)+2 > size {
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(next)
	}
	b.WriteByte(']')
	return pad(b.Bytes(), size, ' ')
}

// longValuesJSON is an array of valid specs, each under the size limit
// for one spec, whose env values fill the body.
func longValuesJSON(size int) []byte {
	doc := func(name string, n int) []byte {
		s := map[string]any{"apiVersion": "reconciler/v1", "kind": "Container", "metadata": map[string]any{"name": name},
			"spec": map[string]any{"image": "x", "env": []map[string]string{{"name": "PAD", "value": strings.Repeat("x", n)}}}}
		data, err := json.Marshal(s)
		Expect(err).NotTo(HaveOccurred())
		return data
	}
	count := size/(spec.MaxDocumentSize-1000) + 1
	value := (size-2-count)/count - len(doc(fmt.Sprintf("s%d", count), 0))
	docs := make([][]byte, count)
	for i := range docs {
		docs[i] = doc(fmt.Sprintf("s%d", i), value)
	}
	return pad(append(append([]byte{'['}, bytes.Join(docs, []byte{','})...), ']'), size, ' ')
}

func pad(b []byte, size int, c byte) []byte {
	Expect(len(b)).To(BeNumerically("<=", size))
	return append(b, bytes.Repeat([]byte{c}, size-len(b))...)
}
