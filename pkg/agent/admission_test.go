package agent

import (
	"runtime"
	"strings"
	"testing"
)

func TestAllocatableFlag(t *testing.T) {
	var a Allocatable
	if err := a.Set("memory=2Gi,cpus=1.5"); err != nil {
		t.Fatal(err)
	}
	if a.Memory != 2<<30 || a.NanoCPUs != 15e8 || a.String() != "memory=2Gi,cpus=1.5" {
		t.Fatalf("parsed %+v", a)
	}
	for in, want := range map[string]string{
		"memory=12x":   `memory: "12x" is not a quantity`,
		"cpus=lots":    `cpus: "lots" is not a CPU count`,
		"memory":       `"memory" is not resource=amount`,
		"gpus=1":       `unknown resource "gpus"`,
		"memory=0":     "give a positive size",
		"cpus=0,x=1":   "give a positive count",
		"memory=1Gi,,": `"" is not resource=amount`,
	} {
		var b Allocatable
		err := b.Set(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Set(%q) = %v, want %q", in, err, want)
		}
	}
}

func TestBudgetDefaultsToTheHostLessTenPercent(t *testing.T) {
	total, err := hostMemory()
	if err != nil {
		t.Fatalf("the default budget is read from /proc/meminfo, which this test needs (Linux): %v", err)
	}
	b, err := budget(Allocatable{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if b.Allocatable.Memory != total/10*9 || b.Allocatable.NanoCPUs != int64(runtime.NumCPU())*9e8 || b.MaxRunningJobs != 0 {
		t.Fatalf("default budget %+v (host %d bytes, %d cpus)", b, total, runtime.NumCPU())
	}
	var a Allocatable
	_ = a.Set("memory=1Gi")
	b, _ = budget(a, 3)
	if b.Allocatable.Memory != 1<<30 || b.Allocatable.NanoCPUs != int64(runtime.NumCPU())*9e8 || b.MaxRunningJobs != 3 {
		t.Fatalf("memory given, cpus defaulted: %+v", b)
	}
	if _, err := budget(Allocatable{}, -1); err == nil || !strings.Contains(err.Error(), "--max-running-jobs -1") {
		t.Fatalf("negative cap: %v", err)
	}
}
