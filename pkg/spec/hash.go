package spec

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// policyOnlyFields steer what the agent does around the container, not the
// container itself: changing them must not recreate a running container.
// Every other field, metadata.labels included, is part of the container and
// counts. restartPolicy and imagePullPolicy count too, so a changed policy
// takes effect on a fresh container rather than halfway through a run.
// autoUpdate steers when the agent asks the registry; the image it picks
// replaces the container by itself (controller/imageupdate.go).
var policyOnlyFields = []string{"backoff", "maxRestarts", "activeDeadline", "ttlAfterFinished", "removeOnExit", "autoUpdate", "priority"}

// Hash identifies the container s asks for: 16 hex digits of the SHA-256 of
// the canonical JSON (sorted keys) of the defaulted spec, with memory and
// cpus as numbers so that "256Mi" and "268435456" hash the same. It changes
// exactly when the container would differ; see policyOnlyFields. A file
// named by env valueFrom counts by its path, not its content.
func (s *Spec) Hash() string {
	sum := sha256.Sum256(s.canonical())
	return hex.EncodeToString(sum[:8])
}

func (s *Spec) canonical() []byte {
	var c Spec
	jsonCopy(s, &c) // a deep copy, so Default leaves s alone
	c.Default()
	var doc map[string]any
	jsonCopy(&c, &doc)
	container := doc["spec"].(map[string]any)
	for _, f := range policyOnlyFields {
		delete(container, f)
	}
	if res, ok := container["resources"].(map[string]any); ok {
		if n, err := ParseMemory(c.Spec.Resources.Memory); err == nil {
			res["memory"] = n
		}
		if n, err := ParseCPUs(c.Spec.Resources.CPUs); err == nil {
			res["cpus"] = n
		}
	}
	out, err := json.Marshal(doc) // map keys come out sorted
	if err != nil {
		panic(fmt.Sprintf("spec: canonical form: %v", err))
	}
	return out
}

// jsonCopy copies from into to through JSON, keeping numbers exact. Spec
// holds only strings, numbers, booleans and Durations, so it cannot fail.
func jsonCopy(from, to any) {
	raw, err := json.Marshal(from)
	if err != nil {
		panic(fmt.Sprintf("spec: hash: %v", err))
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(to); err != nil {
		panic(fmt.Sprintf("spec: hash: %v", err))
	}
}

// HashWithSecrets mixes the content of a spec's secret files into its hash,
// so that new content makes a new container, as a new spec does. The
// content enters through an HMAC keyed by key, a random value kept in the
// agent's state file: the result sits in a container label anyone with
// docker inspect can read, and a plain hash of a short secret would let
// them test guesses offline. Without secrets it is hash itself.
func HashWithSecrets(hash string, key []byte, contents [][]byte) string {
	if len(contents) == 0 {
		return hash
	}
	mac := hmac.New(sha256.New, key)
	for _, c := range contents {
		// Length-prefixed, so that moving bytes between files counts.
		_ = binary.Write(mac, binary.BigEndian, uint64(len(c)))
		mac.Write(c)
	}
	sum := sha256.Sum256(append([]byte(hash+"\x00"), mac.Sum(nil)...))
	return hex.EncodeToString(sum[:8])
}
