package verify

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
)

// Checks of a directory of static Pod manifests (--manifests-dir).
const (
	// CheckManifestEtcdFlags: only kube-apiserver may carry --etcd-*.
	CheckManifestEtcdFlags = "manifest-etcd-flags"
	// CheckManifestAPIServers: every kube-apiserver manifest gives etcd
	// the same flags as the one checked on the wire.
	CheckManifestAPIServers = "manifest-apiservers"
	// CheckManifestLocalEtcd: no stacked etcd left beside an external one.
	CheckManifestLocalEtcd = "manifest-local-etcd"
)

// noEtcdFlags are the control-plane components that have no --etcd-*
// flag at all: given one, they exit at start with "unknown flag". The
// controller manager's went in 2014 (kubernetes#804, #821); guides
// written by hand still add them.
var noEtcdFlags = []string{"kube-controller-manager", "kube-scheduler"}

// flagValues are the values of one flag among args, in both --flag=value
// and --flag value forms.
func flagValues(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		n, v, has := strings.Cut(args[i], "=")
		if n != name {
			continue
		}
		if !has && i+1 < len(args) {
			i++
			v = args[i]
		}
		out = append(out, v)
	}
	return out
}

// manifestsDir is what --manifests-dir found: the checks of the whole
// control plane, and the kube-apiserver manifest to check on the wire.
type manifestsDir struct {
	checks    []Check
	apiserver string
}

// scanManifests reads every *.yaml in dir and checks the control plane:
// kube-controller-manager and kube-scheduler carry no --etcd-* flag; every
// kube-apiserver*.yaml gives etcd the same flags (the first is checked on
// the wire); a local etcd manifest that no apiserver uses is a stacked
// etcd left running.
func scanManifests(dir string) (*manifestsDir, error) {
	entries, err := regular.ReadDir(dir)
	if err != nil {
		return nil, input.Errorf("--manifests-dir %s: %v", dir, pathx.UnwrapPath(err))
	}
	md := &manifestsDir{}
	var apiservers []string
	pods := map[string]podArgs{}
	var names []string
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		p, err := readPod(path, "manifest")
		if err != nil {
			return nil, err
		}
		pods[e.Name()] = p
		names = append(names, e.Name())
		if strings.HasPrefix(e.Name(), "kube-apiserver") {
			apiservers = append(apiservers, e.Name())
		}
	}
	sort.Strings(names)
	sort.Strings(apiservers)
	if len(apiservers) == 0 {
		return nil, input.Errorf("--manifests-dir %s: no kube-apiserver*.yaml in it", dir)
	}
	md.apiserver = filepath.Join(dir, apiservers[0])
	for _, name := range names {
		for cname, args := range pods[name] {
			if !slices.Contains(noEtcdFlags, cname) {
				continue
			}
			target := filepath.Join(dir, name)
			var bad []string
			for _, a := range args {
				if f, _, _ := strings.Cut(a, "="); strings.HasPrefix(f, "--etcd-") && !slices.Contains(bad, f) {
					bad = append(bad, f)
				}
			}
			if len(bad) == 0 {
				md.checks = append(md.checks, Check{Name: CheckManifestEtcdFlags, Target: target, Status: OK, Reason: cname + " has no --etcd-* flag, as it should"})
				continue
			}
			md.checks = append(md.checks, Check{Name: CheckManifestEtcdFlags, Target: target, Status: Fail,
				Reason: fmt.Sprintf("%s is given %s: %s has no such flag and exits at start with \"unknown flag\"; only kube-apiserver talks to etcd (the controller manager's etcd flags were removed in 2014): remove %s",
					cname, strings.Join(bad, ", "), cname, strings.Join(bad, ", "))})
		}
	}
	first := etcdFlagsOf(pods[apiservers[0]])
	for _, name := range apiservers[1:] {
		target := filepath.Join(dir, name)
		if diff := diffFlags(first, etcdFlagsOf(pods[name])); diff != "" {
			md.checks = append(md.checks, Check{Name: CheckManifestAPIServers, Target: target, Status: Fail,
				Reason: fmt.Sprintf("%s differs from %s, the manifest checked on the wire: each apiserver would reach etcd differently", diff, apiservers[0])})
		} else {
			md.checks = append(md.checks, Check{Name: CheckManifestAPIServers, Target: target, Status: OK, Reason: "same --etcd-* flags as " + apiservers[0] + ", checked on the wire"})
		}
	}
	for _, name := range names {
		args, ok := pods[name]["etcd"]
		if !ok {
			continue
		}
		local := append(flagValues(args, "--listen-client-urls"), flagValues(args, "--advertise-client-urls")...)
		if usedBy(local, first["--etcd-servers"]) {
			continue
		}
		md.checks = append(md.checks, Check{Name: CheckManifestLocalEtcd, Target: filepath.Join(dir, name), Status: Warn,
			Reason: fmt.Sprintf("a local etcd static Pod beside a kube-apiserver whose --etcd-servers (%s) point elsewhere: a stacked etcd left running after the move to external etcd; remove %s once nothing uses it",
				strings.Join(first["--etcd-servers"], ","), name)})
	}
	return md, nil
}

// etcdFlagsOf is every --etcd-* flag of a manifest's kube-apiserver
// container (its only container when it names none so).
func etcdFlagsOf(p podArgs) map[string][]string {
	args, ok := p["kube-apiserver"]
	if !ok && len(p) == 1 {
		for _, a := range p {
			args = a
		}
	}
	out := map[string][]string{}
	for _, a := range args {
		if f, _, _ := strings.Cut(a, "="); strings.HasPrefix(f, "--etcd-") {
			out[f] = flagValues(args, f)
		}
	}
	if s, ok := out["--etcd-servers"]; ok {
		out["--etcd-servers"] = splitList(s)
	}
	return out
}

// diffFlags names the first --etcd-* flag whose values differ.
func diffFlags(a, b map[string][]string) string {
	var names []string
	for f := range a {
		names = append(names, f)
	}
	for f := range b {
		if _, ok := a[f]; !ok {
			names = append(names, f)
		}
	}
	sort.Strings(names)
	for _, f := range names {
		if !slices.Equal(a[f], b[f]) {
			return fmt.Sprintf("%s %q", f, strings.Join(b[f], ","))
		}
	}
	return ""
}

// usedBy reports whether any etcd server URL names a host and port the
// local etcd listens on or advertises.
func usedBy(local, servers []string) bool {
	for _, l := range splitList(local) {
		lu, err := url.Parse(l)
		if err != nil {
			continue
		}
		for _, s := range servers {
			su, err := url.Parse(s)
			if err == nil && (su.Host == lu.Host || (su.Port() == lu.Port() && (lu.Hostname() == "0.0.0.0" || lu.Hostname() == "::"))) {
				return true
			}
		}
	}
	return false
}
