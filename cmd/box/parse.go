package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// command is one parsed subcommand; run returns the process exit code.
type command interface {
	run(stdout, stderr io.Writer) int
	longRunning() bool
}

// options are the flags shared by the long-running commands.
type options struct {
	healthyFile   string
	termExitCode  int
	ignoreSigterm bool
}

func parse(args []string) (command, options, error) {
	var opts options
	if len(args) == 0 {
		return nil, opts, errors.New("no command given")
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		return nil, opts, flag.ErrHelp
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cmd, validate := declare(name, fs)
	if cmd == nil {
		return nil, opts, fmt.Errorf("unknown command %q", name)
	}
	if cmd.longRunning() {
		fs.StringVar(&opts.healthyFile, "healthy-file", "", "create this file at start")
		fs.IntVar(&opts.termExitCode, "term-exit-code", 0, "exit code on SIGTERM or SIGINT")
		fs.BoolVar(&opts.ignoreSigterm, "ignore-sigterm", false, "ignore SIGTERM and SIGINT")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, opts, err
		}
		return nil, opts, fmt.Errorf("%s: %w", name, err)
	}
	if fs.NArg() > 0 {
		return nil, opts, fmt.Errorf("%s: unexpected argument %q", name, fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if err := validate(set); err != nil {
		return nil, opts, fmt.Errorf("%s: %w", name, err)
	}
	return cmd, opts, nil
}

// declare registers the flags of the named command on fs. The returned
// function checks the parsed values; it is told which flags were given.
func declare(name string, fs *flag.FlagSet) (command, func(set map[string]bool) error) {
	switch name {
	case "sleep":
		c := &sleepCmd{}
		fs.DurationVar(&c.duration, "for", 0, "sleep this long (0 = forever)")
		return c, func(map[string]bool) error { return nonNegative("--for", c.duration) }
	case "tick":
		c := &tickCmd{}
		fs.DurationVar(&c.interval, "interval", time.Second, "time between ticks")
		fs.IntVar(&c.count, "count", 0, "exit after this many ticks (0 = forever)")
		fs.IntVar(&c.exitCode, "exit-code", 0, "exit code after the last tick")
		return c, func(map[string]bool) error {
			if c.count < 0 {
				return fmt.Errorf("--count %d is negative", c.count)
			}
			return positive("--interval", c.interval)
		}
	case "countdown":
		c := &countdownCmd{}
		fs.IntVar(&c.from, "from", 0, "first number")
		fs.DurationVar(&c.interval, "interval", time.Second, "time between numbers")
		return c, func(set map[string]bool) error {
			if !set["from"] || c.from < 1 {
				return errors.New("--from N (N >= 1) is required")
			}
			return positive("--interval", c.interval)
		}
	case "exit":
		c := &exitCmd{}
		fs.IntVar(&c.code, "code", 0, "exit code")
		fs.DurationVar(&c.after, "after", 0, "wait this long first")
		fs.StringVar(&c.stderr, "stderr", "", "write this line to stderr before exiting")
		return c, func(map[string]bool) error { return nonNegative("--after", c.after) }
	case "oom":
		c := &oomCmd{step: 8 << 20}
		fs.Func("step", "bytes to allocate per step (e.g. 512Ki, 8Mi, 1Gi)", func(s string) error {
			n, err := parseBytes(s)
			c.step = n
			return err
		})
		fs.DurationVar(&c.after, "after", 0, "wait this long first")
		return c, func(map[string]bool) error { return nonNegative("--after", c.after) }
	case "env":
		c := &envCmd{}
		fs.BoolVar(&c.stay, "stay", false, "sleep after printing")
		return c, func(map[string]bool) error { return nil }
	case "serve":
		c := &serveCmd{}
		fs.StringVar(&c.addr, "addr", ":8080", "listen address")
		return c, func(map[string]bool) error { return nil }
	case "signal":
		c := &signalCmd{}
		fs.Func("sig", "HUP, INT, KILL or TERM (a SIG prefix is allowed)", func(s string) error {
			sig, err := parseSignal(s)
			c.sig = sig
			return err
		})
		return c, func(set map[string]bool) error { return required(set, "sig") }
	case "health":
		c := &healthCmd{}
		fs.StringVar(&c.file, "file", "", "file whose existence means healthy")
		return c, func(set map[string]bool) error { return required(set, "file") }
	case "touch":
		c := &touchCmd{}
		fs.StringVar(&c.file, "file", "", "file to create")
		return c, func(set map[string]bool) error { return required(set, "file") }
	case "fetch":
		c := &fetchCmd{}
		fs.StringVar(&c.url, "url", "", "URL to GET (through HTTP_PROXY/HTTPS_PROXY when set)")
		fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up after this long")
		fs.BoolVar(&c.insecure, "insecure", false, "accept any TLS certificate")
		return c, func(set map[string]bool) error {
			if err := required(set, "url"); err != nil {
				return err
			}
			return positive("--timeout", c.timeout)
		}
	case "dial":
		c := &dialCmd{}
		fs.StringVar(&c.addr, "addr", "", "HOST:PORT to connect to directly")
		fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "give up after this long")
		return c, func(set map[string]bool) error {
			if err := required(set, "addr"); err != nil {
				return err
			}
			return positive("--timeout", c.timeout)
		}
	case "write":
		c := &writeCmd{}
		fs.StringVar(&c.file, "file", "", "file to write (parents are created)")
		fs.StringVar(&c.text, "text", "", "content")
		return c, func(set map[string]bool) error { return required(set, "file") }
	case "cat":
		c := &catCmd{}
		fs.StringVar(&c.file, "file", "", "file to print")
		return c, func(set map[string]bool) error { return required(set, "file") }
	case "ls":
		c := &lsCmd{}
		fs.StringVar(&c.dir, "dir", "", "directory to list, recursively")
		return c, func(set map[string]bool) error { return required(set, "dir") }
	case "lines":
		c := &linesCmd{}
		fs.IntVar(&c.count, "count", 0, "number of lines")
		fs.IntVar(&c.stderrEvery, "stderr-every", 0, "send every K-th line to stderr")
		return c, func(set map[string]bool) error {
			if !set["count"] || c.count < 1 {
				return errors.New("--count N (N >= 1) is required")
			}
			if c.stderrEvery < 0 {
				return fmt.Errorf("--stderr-every %d is negative", c.stderrEvery)
			}
			return nil
		}
	}
	return nil, nil
}

func required(set map[string]bool, name string) error {
	if !set[name] {
		return fmt.Errorf("--%s is required", name)
	}
	return nil
}

func positive(flagName string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s %s is not positive", flagName, d)
	}
	return nil
}

func nonNegative(flagName string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s %s is negative", flagName, d)
	}
	return nil
}

var byteSuffixes = []struct {
	suffix string
	shift  uint
}{{"Ki", 10}, {"Mi", 20}, {"Gi", 30}}

// parseBytes reads a size in bytes with an optional binary suffix, as the
// spec's resources.memory writes it.
func parseBytes(s string) (int, error) {
	num, shift := s, uint(0)
	for _, b := range byteSuffixes {
		if strings.HasSuffix(s, b.suffix) {
			num, shift = strings.TrimSuffix(s, b.suffix), b.shift
			break
		}
	}
	n, err := strconv.Atoi(num)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size such as 8Mi", s)
	}
	return n << shift, nil
}

// signals are those that box can die by: Go's runtime turns the others
// (QUIT, SEGV, USR1, ...) into exit code 2 or ignores them.
var signals = map[string]syscall.Signal{
	"HUP": syscall.SIGHUP, "INT": syscall.SIGINT, "KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM,
}

func parseSignal(s string) (syscall.Signal, error) {
	if sig, ok := signals[strings.TrimPrefix(strings.ToUpper(s), "SIG")]; ok {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func signalName(sig syscall.Signal) string {
	for name, s := range signals {
		if s == sig {
			return "SIG" + name
		}
	}
	return sig.String()
}
