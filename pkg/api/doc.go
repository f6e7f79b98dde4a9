// Package api is the agent's HTTP API and the Go client the CLI uses.
//
// The API listens on a unix socket (mode 0660, see ListenUnix) and, when
// asked, on TCP behind bearer tokens (TokenAuth). Every request carries an
// Identity: a token's name and role, or a socket peer's uid (SocketPeer).
// Each route needs a role (routeAccess in roles.go; admin when it is not
// named there), and the writes and execs go to the AuditLog. Bodies are
// at most DefaultMaxBody; bodies and answers are JSON; every error is a
// JSON Error. Requests a browser sends (an Origin
// header, or a Sec-Fetch-Site other than "none") are refused, so a web page
// cannot drive the agent through DNS rebinding or CSRF.
//
//	GET    /v1/version                     agent version and instance id
//	POST   /v1/specs[?dryRun=true]         apply specs: YAML (application/yaml) or JSON
//	GET    /v1/specs                       every spec with its status
//	GET    /v1/specs/{name}                one spec with its status
//	DELETE /v1/specs/{name}                delete; the controller stops it with grace
//	GET    /v1/specs/{name}/exits[?limit=N]  exit ledger, newest first
//	GET    /v1/specs/{name}/logs           ?follow, tail=N|all, since, timestamps, previous
//	POST   /v1/specs/{name}/exec           {"command": [...]} -> stdout, stderr, exit code
//	GET    /v1/specs/{name}/inspect        the container as Docker sees it
//	POST   /v1/specs/{name}/restart        record a restart request (rollout.go)
//	GET    /v1/events                      ?spec, after=SEQ, limit=N, follow
//	GET    /v1/errors                      spec files the agent refused, and why
//
// Streams (logs, events with follow=true) are JSON lines
// (application/x-ndjson), flushed line by line. A log line is
// {"stream":"stdout"|"stderr","line":"...","time":"..."}: the two streams
// stay apart and their order within each is kept; time is there with
// timestamps=true. Lines longer than MaxLogLine are cut into pieces.
//
// Specs read from a file in the specs directory are read-only here: writing
// or deleting one answers 409 naming the file.
package api
