package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/reconciler/reconciler/pkg/model"
)

// restartWant mixes a restart request (`reconciler restart`, stored as the
// spec record's RestartedAt) into the spec-hash label a container must
// carry, as kubectl rollout restart puts a restartedAt annotation into
// the pod template: the running container no longer matches, and is
// replaced by the spec's update strategy, level-triggered like any other
// change. Without a request the label is want itself.
func restartWant(want string, at time.Time) string {
	if at.IsZero() {
		return want
	}
	sum := sha256.Sum256([]byte(want + "\x00restartedAt=" + at.UTC().Format(time.RFC3339Nano)))
	return hex.EncodeToString(sum[:8])
}

// generation names what a spec's restart history counts against: its
// definition, and its last restart request, so that a restart starts
// afresh (a finished job runs again, a spec failed after maxRestarts
// tries again), as kubectl rollout restart makes new pods. Without a
// request it is the spec hash, as before restart requests existed.
func (d Desired) generation() string { return restartWant(d.Hash, d.RestartedAt) }

func rolloutEqual(a, b model.RolloutFailure) bool {
	return a.Want == b.Want && a.ContainerID == b.ContainerID && a.Failures == b.Failures &&
		a.NextTryAt.Equal(b.NextTryAt) && a.Message == b.Message
}
