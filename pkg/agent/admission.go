package agent

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/reconciler/reconciler/pkg/controller"
	"github.com/reconciler/reconciler/pkg/spec"
)

// Allocatable is the value of --allocatable memory=SIZE,cpus=N: the
// budget that running containers' resources.memory and resources.cpus
// count against. A resource not given gets its default, the host's total
// less 10 % (kubelet's node allocatable keeps a reserve the same way).
type Allocatable struct {
	Memory   int64 // bytes; 0: the default
	NanoCPUs int64 // 0: the default
	text     string
}

// String gives back the text Set took.
func (a *Allocatable) String() string { return a.text }

// Type names the value in --help.
func (a *Allocatable) Type() string { return "memory=SIZE,cpus=N" }

// Set parses "memory=2Gi,cpus=1.5" (either part may be left out).
func (a *Allocatable) Set(s string) error {
	var out Allocatable
	for _, part := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || val == "" {
			return fmt.Errorf("%q is not resource=amount (use memory=SIZE,cpus=N, e.g. memory=8Gi,cpus=3.5)", part)
		}
		switch key {
		case "memory":
			n, err := spec.ParseMemory(val)
			if err != nil {
				return fmt.Errorf("memory: %w", err)
			}
			if n <= 0 {
				return fmt.Errorf("memory: %q: give a positive size", val)
			}
			out.Memory = n
		case "cpus":
			n, err := spec.ParseCPUs(val)
			if err != nil {
				return fmt.Errorf("cpus: %w", err)
			}
			if n <= 0 {
				return fmt.Errorf("cpus: %q: give a positive count", val)
			}
			out.NanoCPUs = n
		default:
			return fmt.Errorf("unknown resource %q (use memory and cpus)", key)
		}
	}
	out.text = s
	*a = out
	return nil
}

// budget is the controller's admission budget from the flags: what
// --allocatable leaves out is the host's total less 10 %.
func budget(a Allocatable, maxJobs int) (controller.Budget, error) {
	if maxJobs < 0 {
		return controller.Budget{}, fmt.Errorf("--max-running-jobs %d: give 0 (no cap) or more", maxJobs)
	}
	b := controller.Budget{Allocatable: controller.Resources{Memory: a.Memory, NanoCPUs: a.NanoCPUs}, MaxRunningJobs: maxJobs}
	if b.Allocatable.Memory == 0 {
		total, err := hostMemory()
		if err != nil {
			return controller.Budget{}, fmt.Errorf("--allocatable: the host's memory is unknown (%w); give memory=SIZE", err)
		}
		b.Allocatable.Memory = total / 10 * 9
	}
	if b.Allocatable.NanoCPUs == 0 {
		b.Allocatable.NanoCPUs = int64(runtime.NumCPU()) * 1e9 / 10 * 9
	}
	return b, nil
}

// hostMemory is the host's total memory (MemTotal of /proc/meminfo).
func hostMemory() (int64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("MemTotal: %w", err)
			}
			return kb << 10, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no MemTotal in /proc/meminfo")
}
