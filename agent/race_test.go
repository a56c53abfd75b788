//go:build race

package agent_test

// Under -race the agents the tests run are built with it too: their
// goroutines (watches, trust, reachability, the main loop) are the ones
// to check.
func init() { buildFlags = append(buildFlags, "-race") }
