// Package store keeps the agent's state in one bbolt file: desired specs,
// their observed status and restart history, the exit ledger and events.
//
// Bucket tree (names in keys.go; values are JSON unless noted):
//
//	meta/
//	    schema               int: version of the layout below (see migrate.go)
//	    instance             string: agent instance id, made once, kept forever
//	    secretKey            32 random bytes, made once, kept forever: the HMAC key
//	                         that mixes secret content into containers' spec-hash label
//	    probe                raw: a write probe after a refused commit, deleted at once
//	specs/                   NextSequence numbers the specs' arrivals (Record.Arrival)
//	    <spec name>          Record
//	status/
//	    <spec name>          model.Status
//	history/
//	    <spec name>          model.History
//	exits/
//	    <spec name>/         one bucket per spec, kept after the spec is deleted
//	        ledger/          NextSequence numbers the exits
//	            <be64 seq>   model.ContainerExit, newest ExitsPerSpec kept
//	        ids/
//	            <container id>/<start, unix ns>  be64 seq of that run's exit:
//	                         a run's exit is recorded once
//	events/                  NextSequence is the store-wide event Seq
//	    <be64 seq>           model.Event, newest MaxEvents kept
//	gone/
//	    <be64 seq>           name of a deleted spec whose ledger is kept; the
//	                         ledgers beyond the newest GoneLedgers are dropped
//	eventLatest/
//	    <spec name>          be64 seq of that spec's newest event, for aggregation
//	                         (agent events, with no spec, use the key "\x00")
//
// Every exported method runs in one transaction. Nothing is published from
// inside a transaction: callers fan events out after Commit returns.
package store
