package docker

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func TestTimeoutsFlag(t *testing.T) {
	var tt Timeouts
	if err := tt.Set("list=3s, stop=1m"); err != nil {
		t.Fatal(err)
	}
	if err := tt.Set("pull=90s"); err != nil { // a second flag adds to the first
		t.Fatal(err)
	}
	eq(t, "list", tt.with(OpList), 3*time.Second)
	eq(t, "stop", tt.with(OpStop), time.Minute)
	eq(t, "pull", tt.with(OpPull), 90*time.Second)
	eq(t, "inspect keeps its default", tt.with(OpInspect), DefaultTimeouts()[OpInspect])
	if s := tt.String(); !strings.HasPrefix(s, "ping=5s,list=3s,inspect=10s,") || !strings.Contains(s, ",pull=1m30s") {
		t.Errorf("String() = %q", s)
	}
	for _, op := range timeoutOps {
		if DefaultTimeouts()[op] <= 0 {
			t.Errorf("operation %s has no default deadline", op)
		}
	}
	// A list is hanging after 5s; a create, which queues behind other
	// starts on a busy daemon, after half its deadline.
	eq(t, "list patience", patience(DefaultTimeouts()[OpList]), 5*time.Second)
	eq(t, "create patience", patience(DefaultTimeouts()[OpCreate]), 15*time.Second)
	eq(t, "ping patience", patience(DefaultTimeouts()[OpPing]), 5*time.Second)
	if _, ok := DefaultTimeouts()[OpWait]; ok {
		t.Error("wait has a deadline; a container may run for days")
	}
	for in, want := range map[string]string{
		"lsit=3s":   `unknown Docker operation "lsit"`,
		"list":      "want op=duration",
		"list=soon": `"soon" is not a positive duration`,
		"list=0s":   `"0s" is not a positive duration`,
		"wait=1h":   `unknown Docker operation "wait"`,
	} {
		err := (&Timeouts{}).Set(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%q) = %v, want an error saying %s", in, err, want)
		}
	}
}

// fakeClock is a settable clock for the in-flight tracker.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestCallsHanging(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1700000000, 0)}
	c := newCalls(clk.now)
	if err := c.hanging(); err != nil {
		t.Fatalf("idle tracker: %v", err)
	}
	stop := c.begin(OpStop, 15*time.Second) // a stop may take its grace period
	clk.add(2 * time.Second)
	list := c.begin(OpList, hangAfter)
	clk.add(hangAfter)
	if err := c.hanging(); err != nil {
		t.Fatalf("calls within their patience: %v", err)
	}
	clk.add(7 * time.Second)
	eqErr(t, "list past its patience", c.hanging(), "docker call list has not answered for 12s")
	clk.add(5 * time.Second) // now the stop too, and it is older
	eqErr(t, "the oldest call is named", c.hanging(), "docker call stop has not answered for 19s")
	c.end(stop, 20*time.Second, false)
	c.end(list, 10*time.Second, true)
	clk.add(3 * time.Second)
	eqErr(t, "a time-out is remembered", c.hanging(), "docker call list did not answer within 10s (3s ago)")
	inspect := c.begin(OpInspect, hangAfter)
	c.end(inspect, 10*time.Second, false)
	eqErr(t, "another operation's answer does not clear it", c.hanging(), "docker call list did not answer within 10s (3s ago)")
	clk.add(rememberTimeout)
	if err := c.hanging(); err != nil {
		t.Fatalf("a time-out %s old still counts: %v", rememberTimeout+3*time.Second, err)
	}
	c.end(c.begin(OpList, hangAfter), 10*time.Second, true)
	list = c.begin(OpList, hangAfter)
	c.end(list, 10*time.Second, false)
	if err := c.hanging(); err != nil {
		t.Fatalf("list answered again: %v", err)
	}
}

func eqErr(t *testing.T, what string, err error, want string) {
	t.Helper()
	if err == nil || err.Error() != want {
		t.Errorf("%s: got %v, want %q", what, err, want)
	}
}

func TestCallDeadline(t *testing.T) {
	answer := make(chan struct{})
	api := &fakeAPI{list: func(ctx context.Context) ([]container.Summary, error) {
		select {
		case <-answer:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	var observed []string
	c := newClient(api, Options{Timeouts: Timeouts{OpList: 50 * time.Millisecond},
		Observe: func(op string, _ time.Duration, err error) { observed = append(observed, op+":"+errText(err)) }})
	start := time.Now()
	_, err := c.List(context.Background(), nil)
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("hung list returned after %s", took)
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v: want it to wrap ErrUnavailable and DeadlineExceeded", err)
	}
	if want := "list containers: docker call list did not answer within 50ms"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if h := c.Hanging(); h == nil || !strings.HasPrefix(h.Error(), "docker call list did not answer within 50ms") {
		t.Errorf("Hanging() = %v", h)
	}
	eq(t, "observed", observed, []string{"list:docker call list did not answer within 50ms"})

	// The caller's own cancellation is not the daemon's time-out.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.List(ctx, nil)
	if errors.Is(err, ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled list: %v", err)
	}
	close(answer)
	if _, err := c.List(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if h := c.Hanging(); h != nil {
		t.Errorf("list answered, still hanging: %v", h)
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// stream is a pull's progress as the daemon writes it, one message per
// send on lines.
type stream struct {
	lines chan string
	buf   []byte
	done  chan struct{}
	once  sync.Once
}

func newStream() *stream { return &stream{lines: make(chan string), done: make(chan struct{})} }

func (s *stream) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		select {
		case l, ok := <-s.lines:
			if !ok {
				return 0, io.EOF
			}
			s.buf = []byte(l + "\n")
		case <-s.done:
			return 0, errors.New("closed")
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *stream) Close() error { s.once.Do(func() { close(s.done) }); return nil }

func TestPullStall(t *testing.T) {
	const stall = 200 * time.Millisecond
	s := newStream()
	api := &fakeAPI{pull: func(ctx context.Context) (io.ReadCloser, error) {
		go func() { <-ctx.Done(); s.Close() }()
		return s, nil
	}}
	c := newClient(api, Options{Timeouts: Timeouts{OpPull: stall}})
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- c.Pull(context.Background(), "box:1") }()
	// Progress every half stall keeps a pull going past several stall periods.
	for range 6 {
		time.Sleep(stall / 2)
		s.lines <- `{"status":"Downloading"}`
	}
	err := <-errc
	if took := time.Since(start); took < 3*stall {
		t.Fatalf("pull with progress aborted after %s", took)
	}
	if !errors.Is(err, ErrStalled) || !strings.Contains(err.Error(), "pull image box:1: no progress for 200ms") {
		t.Fatalf("stalled pull: %v", err)
	}

	// A daemon that never answers the request is a stall too.
	api.pull = func(ctx context.Context) (io.ReadCloser, error) { <-ctx.Done(); return nil, ctx.Err() }
	if err := c.Pull(context.Background(), "box:2"); !errors.Is(err, ErrStalled) {
		t.Fatalf("unanswered pull: %v", err)
	}
	// The daemon's own message is kept.
	s = newStream()
	api.pull = func(context.Context) (io.ReadCloser, error) { return s, nil }
	go func() {
		s.lines <- `{"status":"Pulling"}`
		s.lines <- `{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`
	}()
	if err := c.Pull(context.Background(), "box:3"); err == nil || errors.Is(err, ErrStalled) ||
		err.Error() != "pull image box:3: manifest unknown" {
		t.Fatalf("failed pull: %v", err)
	}
}
