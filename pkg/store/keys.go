package store

import "encoding/binary"

var (
	bucketMeta        = []byte("meta")
	bucketSpecs       = []byte("specs")
	bucketStatus      = []byte("status")
	bucketHistory     = []byte("history")
	bucketExits       = []byte("exits")
	bucketExitLedger  = []byte("ledger")
	bucketExitIDs     = []byte("ids")
	bucketEvents      = []byte("events")
	bucketEventLatest = []byte("eventLatest")
	bucketGone        = []byte("gone")

	keySchema    = []byte("schema")
	keyInstance  = []byte("instance")
	keySecretKey = []byte("secretKey")
	keyProbe     = []byte("probe")

	// keyAgentEvents stands for the empty spec name, which bbolt cannot use
	// as a key; NUL never appears in a DNS-label spec name.
	keyAgentEvents = []byte{0}
)

// seqKey encodes a sequence number so that byte order is numeric order.
func seqKey(n uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, n)
	return k
}

func latestKey(spec string) []byte {
	if spec == "" {
		return keyAgentEvents
	}
	return []byte(spec)
}
