package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/reconciler/reconciler/pkg/agent"
	saved "github.com/reconciler/reconciler/pkg/output"
	"github.com/reconciler/reconciler/pkg/spec"
)

// addOutputFlags adds the bounds of the saved output of each run.
func addOutputFlags(cmd *cobra.Command, cfg *agent.Config) {
	f := cmd.Flags()
	cfg.OutputMaxRunBytes = saved.DefaultMaxRunBytes
	cfg.OutputMaxSpecBytes = saved.DefaultMaxSpecBytes
	f.Var((*byteSize)(&cfg.OutputMaxRunBytes), "output-max-run-bytes",
		"output kept of each run (stdout and stderr as written, before compression); a run that wrote more keeps its end, and its saved output says how much was dropped")
	f.Var((*byteSize)(&cfg.OutputMaxSpecBytes), "output-max-spec-bytes",
		"saved output kept of each spec, compressed on disk; its oldest runs are deleted first, never the newest")
}

// byteSize is a flag holding a byte count: 16Mi, 1Gi, 500M or plain bytes.
type byteSize int64

func (b *byteSize) String() string {
	n := int64(*b)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"Gi", 1 << 30}, {"Mi", 1 << 20}, {"Ki", 1 << 10}} {
		if n > 0 && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

func (b *byteSize) Set(s string) error {
	n, err := spec.ParseMemory(s)
	if err != nil {
		return err
	}
	if n <= 0 {
		return fmt.Errorf("%q: give a positive size", s)
	}
	*b = byteSize(n)
	return nil
}

func (b *byteSize) Type() string { return "size" }
