// Command box is the project's small static demo and test program. Tests
// build it into a FROM scratch image (no registry is needed) and run it to
// get containers that sleep, tick, exit with a code, die by a signal, ignore
// SIGTERM, turn healthy or eat memory until the OOM killer ends them.
//
//	box sleep [--for D]
//	box tick [--interval 1s] [--count N] [--exit-code C]
//	box countdown --from N [--interval 1s]
//	box exit [--code C] [--after D] [--stderr MSG]
//	box oom [--step 8Mi] [--after D]
//	box env [--stay]
//	box serve [--addr :8080]
//	box signal --sig HUP|INT|KILL|TERM
//	box health --file PATH
//	box touch --file PATH
//	box fetch --url URL [--timeout D] [--insecure]
//	box dial --addr HOST:PORT [--timeout D]
//	box write --file PATH [--text T]
//	box cat --file PATH
//	box ls --dir DIR
//	box lines --count N [--stderr-every K]
//
// The long-running commands (all but signal, health and touch) also take
// --healthy-file PATH (created at start), --term-exit-code C (exit code on
// SIGTERM or SIGINT, default 0) and --ignore-sigterm (keep running, so only
// SIGKILL ends it).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd, opts, err := parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "box: %v\n%s", err, usage)
		return 2
	}
	if cmd.longRunning() {
		// The handler is in place before the healthy file or the start line
		// appears, so a test that waits for either can signal at once.
		handleTermination(opts, stdout)
		if opts.healthyFile != "" {
			if err := touch(opts.healthyFile); err != nil {
				fmt.Fprintf(stderr, "box: %v\n", err)
				return 1
			}
		}
	}
	return cmd.run(stdout, stderr)
}

// handleTermination makes SIGTERM and SIGINT end the program with the chosen
// code, or be ignored. A handler is needed either way: as PID 1 of a
// container, a signal without one would be dropped by the kernel.
func handleTermination(opts options, stdout io.Writer) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		for sig := range ch {
			name := signalName(sig.(syscall.Signal))
			if opts.ignoreSigterm {
				fmt.Fprintf(stdout, "ignoring %s\n", name)
				continue
			}
			fmt.Fprintf(stdout, "received %s\n", name)
			os.Exit(opts.termExitCode)
		}
	}()
}

func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return f.Close()
}

const usage = `usage: box COMMAND [flags]
commands:
  sleep [--for D]                                   sleep forever or for D
  tick [--interval 1s] [--count N] [--exit-code C]  print a tick every interval
  countdown --from N [--interval 1s]                print N..1, then liftoff
  exit [--code C] [--after D] [--stderr MSG]        wait D, exit with C
  oom [--step 8Mi] [--after D]                      allocate memory until killed
  env [--stay]                                      print the environment
  serve [--addr :8080]                              answer HTTP with 200 "ok"
  signal --sig HUP|INT|KILL|TERM                    die by a signal
  health --file PATH                                exit 0 if PATH exists, else 1
  touch --file PATH                                 create PATH
  fetch --url URL [--timeout D] [--insecure]        GET URL (via HTTP(S)_PROXY); 0 on 2xx
  dial --addr HOST:PORT [--timeout D]               connect directly; 0 if it connects
  write --file PATH [--text T]                      write T to PATH
  cat --file PATH                                   print PATH
  ls --dir DIR                                      list DIR recursively
  lines --count N [--stderr-every K]                print "line 1".."line N"
long-running commands also take:
  --healthy-file PATH   create PATH at start
  --term-exit-code C    exit code on SIGTERM or SIGINT (default 0)
  --ignore-sigterm      ignore SIGTERM and SIGINT
`
