// Package spec owns the spec file format: the types (types.go), strict
// decoding of YAML files and JSON bodies with errors located by file, line
// and field path, defaults, validation, the spec hash that decides when a
// container must be recreated, and the agent's security policy.
//
// A spec goes through Decode (or DecodeJSON), which decodes strictly, fills
// defaults and validates; the agent then checks it against its Policy.
// limits.go bounds what one file or body may hold (documents, values, list
// lengths, bytes), so that decoding takes a bounded amount of memory.
package spec
