package verify

import (
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/ca"
	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// Options are verify's inputs, as plain values. Sources fill in what is
// left empty, in order: explicit values (Endpoints, CAFile...), then the
// kube-apiserver manifest, then the spec. So "--spec x --endpoints a" checks
// the spec's apiserver bundle against endpoint a only. The spec is the
// inventory Evaluate is handed (cmd expands it from --spec); without
// one, verify checks what the flags and manifests name.
type Options struct {
	// Manifest is a kube-apiserver static Pod manifest whose --etcd-*
	// flags are checked, so the operator tests exactly what it will use.
	Manifest string
	// ManifestsDir is a directory of static Pod manifests (kubeadm's
	// /etc/kubernetes/manifests): the whole control plane is checked,
	// and its kube-apiserver manifest stands in for Manifest.
	ManifestsDir string
	// Endpoints, CAFile, CertFile and KeyFile are kube-apiserver's
	// --etcd-servers, --etcd-cafile, --etcd-certfile and --etcd-keyfile.
	Endpoints []string
	CAFile    string
	CertFile  string
	KeyFile   string

	// Timeout bounds each endpoint's probe; 0 means probe.DefaultTimeout.
	Timeout time.Duration
	// RenewBefore is how close to expiry a certificate must be to warn;
	// 0 means the spec's renewBefore, else cluster.DefaultRenewBefore.
	RenewBefore time.Duration
	// Strict turns warnings into failures.
	Strict bool
	// JSON selects JSON output instead of the table.
	JSON bool
	// PrintFlags prints the kube-apiserver flags and the kubeadm
	// etcd.external block after a passing run.
	PrintFlags bool
	// Now is the clock for expiry checks; nil means time.Now.
	Now func() time.Time
}

// Inputs are the resolved values verify checked, and where each came from.
type Inputs struct {
	Endpoints   []string          `json:"endpoints"`
	CAFile      string            `json:"caFile"`
	CertFile    string            `json:"certFile"`
	KeyFile     string            `json:"keyFile"`
	Sources     map[string]string `json:"sources"`
	RenewBefore string            `json:"renewBefore"`
	Timeout     string            `json:"timeout"`

	// inv is the spec expanded, handed to Evaluate; nil without
	// --spec.
	inv *pki.Inventory
	// specOnly: the spec supplied the endpoints and all three files.
	specOnly bool
	// manifestChecks are --manifests-dir's checks of the control plane.
	manifestChecks []Check
	renewBefore    time.Duration
	timeout        time.Duration
}

// resolve turns options into the values to check, or a *input.Error.
func resolve(inv *pki.Inventory, o Options) (*Inputs, error) {
	in := &Inputs{Sources: map[string]string{}, inv: inv}
	in.set(&in.CAFile, "caFile", o.CAFile, "flag")
	in.set(&in.CertFile, "certFile", o.CertFile, "flag")
	in.set(&in.KeyFile, "keyFile", o.KeyFile, "flag")
	if len(o.Endpoints) > 0 {
		in.Endpoints, in.Sources["endpoints"] = splitList(o.Endpoints), "flag"
	}
	if err := in.fromManifests(o); err != nil {
		return nil, err
	}
	in.fromSpec()
	if err := in.checkComplete(); err != nil {
		return nil, err
	}
	if err := in.thresholds(o); err != nil {
		return nil, err
	}
	return in, nil
}

// set fills *dst with v, taken from src, unless an earlier source filled
// it; it reports whether it did.
func (in *Inputs) set(dst *string, name, v, src string) bool {
	if *dst == "" && v != "" {
		*dst = v
		in.Sources[name] = src
		return true
	}
	return false
}

// fromManifests fills what the flags left empty from the kube-apiserver
// manifest (--apiserver-manifest, or the one in --manifests-dir, whose
// other checks it keeps).
func (in *Inputs) fromManifests(o Options) error {
	if o.ManifestsDir != "" {
		md, err := scanManifests(o.ManifestsDir)
		if err != nil {
			return err
		}
		in.manifestChecks = md.checks
		if o.Manifest == "" {
			o.Manifest = md.apiserver
		}
	}
	if o.Manifest != "" {
		m, err := ReadManifest(o.Manifest)
		if err != nil {
			return err
		}
		src := "manifest " + o.Manifest
		in.set(&in.CAFile, "caFile", m.CAFile, src)
		in.set(&in.CertFile, "certFile", m.CertFile, src)
		in.set(&in.KeyFile, "keyFile", m.KeyFile, src)
		if len(in.Endpoints) == 0 && len(m.Endpoints) > 0 {
			in.Endpoints, in.Sources["endpoints"] = m.Endpoints, src
		}
	}
	return nil
}

// fromSpec fills what is still empty from the spec: its endpoints and
// its apiserver bundle (nothing without a spec).
func (in *Inputs) fromSpec() {
	if in.inv == nil {
		return
	}
	s := in.inv.Spec
	// The files the apiserver is given, from the inventory.
	api, _ := in.inv.Target(ca.KindAPIServer.Name)
	src := "spec " + s.File
	caSet := in.set(&in.CAFile, "caFile", api.CAPath(), src)
	crtSet := in.set(&in.CertFile, "certFile", api.CertPath(), src)
	keySet := in.set(&in.KeyFile, "keyFile", api.KeyPath(), src)
	epsSet := len(in.Endpoints) == 0
	if epsSet {
		in.Endpoints, in.Sources["endpoints"] = s.ClientEndpoints(), src
	}
	in.specOnly = caSet && crtSet && keySet && epsSet
}

// checkComplete refuses to probe without endpoints, a CA file, or a
// client pair: verify never falls back to defaults for any of them.
func (in *Inputs) checkComplete() error {
	switch {
	case len(in.Endpoints) == 0:
		return input.Errorf("no etcd endpoints: give --spec FILE, --apiserver-manifest FILE or --endpoints (--etcd-servers)")
	case in.CAFile == "":
		return input.Errorf("no CA file: give --cacert (--etcd-cafile); verify never falls back to the system roots")
	case in.CertFile == "" || in.KeyFile == "":
		return input.Errorf("no client certificate and key: give --cert and --key (--etcd-certfile, --etcd-keyfile), as kube-apiserver needs both for etcd")
	}
	for _, ep := range in.Endpoints {
		if strings.HasPrefix(ep, "-") {
			return input.Errorf("endpoint %q looks like a flag", ep)
		}
	}
	return nil
}

// thresholds decides the expiry warning threshold (the flag, else the
// spec's renewBefore, else the default) and the probe timeout.
func (in *Inputs) thresholds(o Options) error {
	in.renewBefore = o.RenewBefore
	if in.renewBefore == 0 && in.inv != nil {
		in.renewBefore = in.inv.Spec.Leaf.RenewBefore
	}
	if in.renewBefore == 0 {
		in.renewBefore = cluster.DefaultRenewBefore
	}
	if in.renewBefore < 0 {
		return input.Errorf("--renew-before must be positive")
	}
	in.timeout = o.Timeout
	if in.timeout == 0 {
		in.timeout = probe.DefaultTimeout
	}
	if in.timeout < 0 {
		return input.Errorf("--timeout must be positive")
	}
	in.RenewBefore = cluster.FormatDuration(in.renewBefore)
	in.Timeout = in.timeout.String()
	return nil
}

// splitList accepts repeated flags and comma-separated values alike, as
// --etcd-servers=a,b does.
func splitList(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// APIServerEtcd is what kube-apiserver is told about etcd.
type APIServerEtcd struct {
	Endpoints []string
	CAFile    string
	CertFile  string
	KeyFile   string
}

// ReadManifest reads the --etcd-* flags of the kube-apiserver container
// in a static Pod manifest (its command and args, in both --flag=value and
// --flag value forms). A manifest with no kube-apiserver container or no
// --etcd-servers is a *input.Error.
func ReadManifest(path string) (*APIServerEtcd, error) {
	pod, err := readPod(path, "apiserver manifest")
	if err != nil {
		return nil, err
	}
	args, found := pod["kube-apiserver"]
	if !found && len(pod) == 1 {
		for _, a := range pod {
			args, found = a, true
		}
	}
	if !found {
		return nil, input.Errorf("apiserver manifest %s: no container named kube-apiserver", path)
	}
	m := &APIServerEtcd{}
	flags := map[string]*string{"--etcd-cafile": &m.CAFile, "--etcd-certfile": &m.CertFile, "--etcd-keyfile": &m.KeyFile}
	var servers string
	flags["--etcd-servers"] = &servers
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(args[i], "=")
		dst, ok := flags[name]
		if !ok {
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, input.Errorf("apiserver manifest %s: %s has no value", path, name)
			}
			i++
			val = args[i]
		}
		if err := cluster.CheckText(val); err != nil {
			return nil, input.Errorf("apiserver manifest %s: %s %v", path, name, err)
		}
		*dst = val
	}
	if servers == "" {
		return nil, input.Errorf("apiserver manifest %s: kube-apiserver has no --etcd-servers flag", path)
	}
	m.Endpoints = splitList([]string{servers})
	return m, nil
}
