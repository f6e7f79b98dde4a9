// Package conformance holds checks of the project's files that need heavy,
// test-only dependencies (such as BuildKit's Dockerfile parser). It is a
// module of its own so that those never enter the agent's go.mod.
//
//	cd test/conformance && go test ./...
package conformance
