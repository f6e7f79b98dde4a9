package controller

import (
	"fmt"
	"testing"
	"time"

	"github.com/reconciler/reconciler/pkg/docker"
)

// TestNotesRememberEachContainerUpToTheirBound: the die of one container
// is not forgotten when another dies; past maxNotes containers the notes
// start afresh instead of growing.
func TestNotesRememberEachContainerUpToTheirBound(t *testing.T) {
	n := newNotes()
	n.record(docker.Event{Action: "die", ContainerID: "c1", Time: t0})
	n.record(docker.Event{Action: "die", ContainerID: "c2", Time: t0})
	for _, id := range []string{"c1", "c2"} {
		if die, _, _ := n.about(id, t0.Add(-time.Minute)); !die {
			t.Fatalf("the die of %s was forgotten", id)
		}
	}
	for i := 3; i <= maxNotes+1; i++ {
		n.record(docker.Event{Action: "die", ContainerID: fmt.Sprint("c", i), Time: t0})
	}
	if len(n.seen) > maxNotes {
		t.Fatalf("%d containers noted, more than the bound %d", len(n.seen), maxNotes)
	}
	last := fmt.Sprint("c", maxNotes+1)
	if die, _, _ := n.about(last, t0.Add(-time.Minute)); !die {
		t.Fatalf("the die of %s, the newest, was forgotten", last)
	}
}

// TestNotesCountADieStampedInTheSecondItsRunStarted: daemons stamp events
// to the second, so a run that starts at .7s and dies within the same
// second has a die event stamped before its start; it still belongs to
// that run. A die of a run before (seconds earlier) does not.
func TestNotesCountADieStampedInTheSecondItsRunStarted(t *testing.T) {
	n := newNotes()
	startedAt := t0.Add(700 * time.Millisecond)
	n.record(docker.Event{Action: "kill", ContainerID: "c1", Time: t0.Add(-5 * time.Second)})
	n.record(docker.Event{Action: "die", ContainerID: "c1", Time: t0})
	n.record(docker.Event{Action: "oom", ContainerID: "c1", Time: t0})
	die, kill, oom := n.about("c1", startedAt)
	if !die || !oom {
		t.Fatalf("die %v, oom %v stamped in the second the run started: want both seen", die, oom)
	}
	if kill {
		t.Fatal("a kill seconds before the run started counted for it")
	}
}
