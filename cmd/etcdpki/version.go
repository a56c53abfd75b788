package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// testedEtcd is what `make test` runs the integration tests against: the
// etcd that tools/etcd builds (TestTestedEtcdIsWhatToolsEtcdBuilds keeps
// the two equal), printed by --version so that an operator can compare it
// with the etcd they run.
var testedEtcd = []string{"v3.6.16"}

// buildVersion is the App's Version, printed by urfave/cli's own
// --version: the module version, the git revision the binary was built
// from (go build stamps it; a `go install module@version` build has
// none), whether the tree had uncommitted changes, the Go release, and
// the etcd versions the tests ran against. One line, for scripts and bug
// reports.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	return formatVersion(bi, ok)
}

// formatVersion renders build information; ok false means the binary
// carries none.
func formatVersion(bi *debug.BuildInfo, ok bool) string {
	tested := "tested against etcd " + strings.Join(testedEtcd, ", ")
	if !ok || bi == nil {
		return "unknown (no build information), " + tested
	}
	version := bi.Main.Version
	if version == "" {
		version = "(devel)"
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	revision := "revision unknown (no VCS stamp: go install, -buildvcs=false or a git worktree)"
	if r := settings["vcs.revision"]; r != "" {
		revision = "revision " + r
		if t := settings["vcs.time"]; t != "" {
			revision += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			revision += ", modified"
		}
	}
	return fmt.Sprintf("%s, %s, %s, %s", version, revision, bi.GoVersion, tested)
}
