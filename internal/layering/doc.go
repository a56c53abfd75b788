// Package layering holds tests that keep the architecture's rules true
// of the source itself (see docs/architecture.md): that package issue is
// the only writer of the PKI directory, and that imports point one way
// (cmd -> operations -> runner -> issue -> pki -> ca -> cluster ->
// internal, no operation importing another). It has no code of its own;
// its tests read the module's production packages with go/parser.
package layering
