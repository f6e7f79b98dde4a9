package main

import (
	"errors"
	"flag"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args     []string
		wantCmd  command
		wantOpts options
	}{
		{[]string{"sleep"}, &sleepCmd{}, options{}},
		{[]string{"sleep", "--for", "2s", "--healthy-file", "/tmp/h"}, &sleepCmd{duration: 2 * time.Second}, options{healthyFile: "/tmp/h"}},
		{[]string{"tick"}, &tickCmd{interval: time.Second}, options{}},
		{
			[]string{"tick", "--interval", "100ms", "--count", "2", "--exit-code", "4", "--term-exit-code", "9"},
			&tickCmd{interval: 100 * time.Millisecond, count: 2, exitCode: 4}, options{termExitCode: 9},
		},
		{[]string{"countdown", "--from", "3"}, &countdownCmd{from: 3, interval: time.Second}, options{}},
		{
			[]string{"exit", "--code", "3", "--after", "1s", "--stderr", "boom"},
			&exitCmd{code: 3, after: time.Second, stderr: "boom"}, options{},
		},
		{[]string{"oom"}, &oomCmd{step: 8 << 20}, options{}},
		{[]string{"oom", "--step", "512Ki"}, &oomCmd{step: 512 << 10}, options{}},
		{[]string{"oom", "--step", "4096"}, &oomCmd{step: 4096}, options{}},
		{[]string{"oom", "--after", "1s"}, &oomCmd{step: 8 << 20, after: time.Second}, options{}},
		{[]string{"env", "--stay", "--ignore-sigterm"}, &envCmd{stay: true}, options{ignoreSigterm: true}},
		{[]string{"serve"}, &serveCmd{addr: ":8080"}, options{}},
		{[]string{"signal", "--sig", "KILL"}, &signalCmd{sig: syscall.SIGKILL}, options{}},
		{[]string{"signal", "--sig", "sigterm"}, &signalCmd{sig: syscall.SIGTERM}, options{}},
		{[]string{"health", "--file", "/tmp/healthy"}, &healthCmd{file: "/tmp/healthy"}, options{}},
		{[]string{"touch", "--file", "/tmp/healthy"}, &touchCmd{file: "/tmp/healthy"}, options{}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			cmd, opts, err := parse(tt.args)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(cmd, tt.wantCmd) {
				t.Errorf("command = %#v, want %#v", cmd, tt.wantCmd)
			}
			if opts != tt.wantOpts {
				t.Errorf("options = %+v, want %+v", opts, tt.wantOpts)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, "no command given"},
		{[]string{"dance"}, `unknown command "dance"`},
		{[]string{"sleep", "extra"}, `unexpected argument "extra"`},
		{[]string{"sleep", "--for", "-1s"}, "--for -1s is negative"},
		{[]string{"tick", "--interval", "0s"}, "--interval 0s is not positive"},
		{[]string{"tick", "--count", "-1"}, "--count -1 is negative"},
		{[]string{"countdown"}, "--from N (N >= 1) is required"},
		{[]string{"countdown", "--from", "0"}, "--from N (N >= 1) is required"},
		{[]string{"exit", "--code", "x"}, `invalid value "x" for flag -code`},
		{[]string{"oom", "--step", "8Mb"}, `"8Mb" is not a positive size`},
		{[]string{"oom", "--after", "-1s"}, "--after -1s is negative"},
		{[]string{"signal"}, "--sig is required"},
		{[]string{"signal", "--sig", "SEGV"}, `unknown signal "SEGV"`},
		{[]string{"health"}, "--file is required"},
		// Short-lived commands do not take the long-running options.
		{[]string{"health", "--file", "f", "--ignore-sigterm"}, "flag provided but not defined: -ignore-sigterm"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, _, err := parse(tt.args)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("parse error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"tick", "-h"}} {
		if _, _, err := parse(args); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("parse(%q) error = %v, want flag.ErrHelp", args, err)
		}
	}
}
