package controller

import (
	"testing"

	"github.com/reconciler/reconciler/pkg/model"
	"github.com/reconciler/reconciler/pkg/spec"
)

// What a spec takes of the budget is its resources as written, and it
// takes a job slot exactly when it runs to completion (Never, OnFailure).
func TestAdmissionRequestIsTheSpecsResourcesAndAJobSlotForNeverOrOnFailure(t *testing.T) {
	tests := []struct {
		policy      spec.RestartPolicy
		memory, cpu string
		want        Resources
		job         bool
	}{
		{spec.RestartAlways, "512Mi", "1.5", Resources{Memory: 512 * mi, NanoCPUs: 15e8}, false},
		{spec.RestartNever, "", "250m", Resources{NanoCPUs: 25e7}, true},
		{spec.RestartOnFailure, "1Gi", "", Resources{Memory: 1024 * mi}, true},
	}
	for _, tt := range tests {
		d := testSpec(tt.policy, func(c *spec.ContainerSpec) {
			c.Resources = spec.Resources{Memory: tt.memory, CPUs: tt.cpu}
		})
		if got, job := requestOf(d.Spec); got != tt.want || job != tt.job {
			t.Errorf("%s memory %q cpus %q: request %+v job %v, want %+v job %v", tt.policy, tt.memory, tt.cpu, got, job, tt.want, tt.job)
		}
	}
	if got, job := requestOf(nil); got != (Resources{}) || job {
		t.Errorf("a deleted spec takes %+v (job %v) of the budget", got, job)
	}
}

// decAdmOutcome is what an operator reads of decide's admission of a new
// spec: it is created, or it waits with a message, or it is refused.
func decAdmOutcome(t *testing.T, adm Admission) string {
	t.Helper()
	d := testSpec(spec.RestartNever)
	d.Admission = adm
	a := decide(d, Observed{}, model.History{SpecHash: d.Hash}, t0)
	switch {
	case a.Kind == ActCreate && a.History.QueuedAt.IsZero():
		return "admitted"
	case a.Kind == ActNone && a.Phase == model.PhaseQueued && a.History.QueuedAt.Equal(t0):
		return "queued: " + a.Message
	case a.Kind == ActNone && a.Phase == model.PhaseError && a.Failed != nil && a.Failed.Reason == "ExceedsAllocatable" &&
		a.Failed.Message == a.Message && a.History.QueuedAt.IsZero():
		return "refused: " + a.Message
	}
	t.Fatalf("neither admitted, queued nor refused: %+v", a)
	return ""
}

// The budget holds a spec back only on what it limits; the bounds are
// inclusive (a spec may fill what is free exactly, and may ask for the whole
// budget), and a spec is refused only when it asks for more than the whole.
func TestDecideAdmitsQueuesOrRefusesAgainstTheBudget(t *testing.T) {
	all := Budget{Allocatable: Resources{Memory: 2048 * mi, NanoCPUs: 2e9}, MaxRunningJobs: 2}
	memOnly := Budget{Allocatable: Resources{Memory: 2048 * mi}}
	cpusOnly := Budget{Allocatable: Resources{NanoCPUs: 2e9}}
	tests := []struct {
		name string
		a    Admission
		want string
	}{
		// Memory.
		{"memory fills what is free exactly", Admission{Request: Resources{Memory: 512 * mi}, Budget: all,
			Allocated: Resources{Memory: 1536 * mi}, Queued: 1}, "admitted"},
		{"memory beyond what is free", Admission{Request: Resources{Memory: 1024 * mi}, Budget: all,
			Allocated: Resources{Memory: 1536 * mi}, Queued: 1},
			"queued: waiting for memory: needs 1Gi, 512Mi free of 2Gi; position 1 of 1"},
		{"the whole memory, all free", Admission{Request: Resources{Memory: 2048 * mi}, Budget: all, Queued: 1}, "admitted"},
		{"the whole memory, some held: waits, never refused", Admission{Request: Resources{Memory: 2048 * mi}, Budget: all,
			Allocated: Resources{Memory: 512 * mi}, Queued: 1},
			"queued: waiting for memory: needs 2Gi, 1.5Gi free of 2Gi; position 1 of 1"},
		{"a little memory, none free: waits, never refused", Admission{Request: Resources{Memory: 512 * mi}, Budget: all,
			Allocated: Resources{Memory: 2048 * mi}, Queued: 1},
			"queued: waiting for memory: needs 512Mi, 0 free of 2Gi; position 1 of 1"},
		{"more memory than the whole", Admission{Request: Resources{Memory: 4096 * mi}, Budget: all, Queued: 1},
			"refused: resources.memory 4Gi is more than the agent's whole allocatable memory 2Gi (--allocatable); it can never be admitted"},
		{"memory, where only cpus are limited, beside any memory held", Admission{Request: Resources{Memory: 1024 * mi, NanoCPUs: 1e9},
			Budget: cpusOnly, Allocated: Resources{Memory: 4096 * mi, NanoCPUs: 1e9}, Queued: 1}, "admitted"},
		{"more memory than a cpus-only budget could hold, waiting for cpus", Admission{Request: Resources{Memory: 4096 * mi, NanoCPUs: 1e9},
			Budget: cpusOnly, Allocated: Resources{NanoCPUs: 15e8}, Queued: 1},
			"queued: waiting for cpus: needs 1, 0.5 free of 2; position 1 of 1"},
		// CPUs.
		{"cpus fill what is free exactly", Admission{Request: Resources{NanoCPUs: 5e8}, Budget: all,
			Allocated: Resources{NanoCPUs: 15e8}, Queued: 1}, "admitted"},
		{"cpus beyond what is free", Admission{Request: Resources{NanoCPUs: 1e9}, Budget: all,
			Allocated: Resources{NanoCPUs: 15e8}, Queued: 1},
			"queued: waiting for cpus: needs 1, 0.5 free of 2; position 1 of 1"},
		{"the whole cpus, all free", Admission{Request: Resources{NanoCPUs: 2e9}, Budget: all, Queued: 1}, "admitted"},
		{"the whole cpus, some held: waits, never refused", Admission{Request: Resources{NanoCPUs: 2e9}, Budget: all,
			Allocated: Resources{NanoCPUs: 5e8}, Queued: 1},
			"queued: waiting for cpus: needs 2, 1.5 free of 2; position 1 of 1"},
		{"a few cpus, none free: waits, never refused", Admission{Request: Resources{NanoCPUs: 5e8}, Budget: all,
			Allocated: Resources{NanoCPUs: 2e9}, Queued: 1},
			"queued: waiting for cpus: needs 0.5, 0 free of 2; position 1 of 1"},
		{"more cpus than the whole", Admission{Request: Resources{NanoCPUs: 3e9}, Budget: all, Queued: 1},
			"refused: resources.cpus 3 is more than the agent's whole allocatable cpus 2 (--allocatable); it can never be admitted"},
		{"cpus, where only memory is limited, beside any cpus held", Admission{Request: Resources{Memory: 512 * mi, NanoCPUs: 4e9},
			Budget: memOnly, Allocated: Resources{Memory: 512 * mi, NanoCPUs: 8e9}, Queued: 1}, "admitted"},
		{"more cpus than a memory-only budget could hold, waiting for memory", Admission{Request: Resources{Memory: 1024 * mi, NanoCPUs: 4e9},
			Budget: memOnly, Allocated: Resources{Memory: 1536 * mi}, Queued: 1},
			"queued: waiting for memory: needs 1Gi, 512Mi free of 2Gi; position 1 of 1"},
		// Job slots.
		{"a job slot free", Admission{Job: true, Budget: all, RunningJobs: 1, Queued: 1}, "admitted"},
		{"the last job slot taken", Admission{Job: true, Budget: all, RunningJobs: 2, Queued: 1},
			"queued: waiting for a job slot: 2 of 2 jobs running (--max-running-jobs); position 1 of 1"},
		{"a job, where jobs are not capped, whatever runs", Admission{Request: Resources{Memory: 512 * mi}, Job: true, Budget: memOnly,
			RunningJobs: 3, Queued: 1}, "admitted"},
		// The queue.
		{"fits and none queued before it", Admission{Request: Resources{Memory: 512 * mi}, Budget: all, Queued: 3}, "admitted"},
		{"fits but one queued before it", Admission{Request: Resources{Memory: 512 * mi}, Budget: all, Ahead: 1, Queued: 3},
			"queued: waiting for its turn: 1 queued before it; position 2 of 3"},
		{"cpus, limited, behind a queued spec", Admission{Request: Resources{NanoCPUs: 1e9}, Budget: all, Ahead: 1, Queued: 2},
			"queued: waiting for its turn: 1 queued before it; position 2 of 2"},
		{"cpus, where only memory is limited, never wait their turn", Admission{Request: Resources{NanoCPUs: 1e9}, Budget: memOnly,
			Ahead: 1, Queued: 2}, "admitted"},
		// decide takes the count of the queue as given, but never shows a
		// position past its end (the controller's count always includes the
		// spec and those ahead of it).
		{"a count that leaves out the spec", Admission{Request: Resources{Memory: 1024 * mi}, Budget: all,
			Allocated: Resources{Memory: 1536 * mi}, Ahead: 2},
			"queued: waiting for memory: needs 1Gi, 512Mi free of 2Gi; position 3 of 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decAdmOutcome(t, tt.a); got != tt.want {
				t.Fatalf("%s\nwant %s", got, tt.want)
			}
		})
	}
}
