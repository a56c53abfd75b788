package issue_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.yaml.in/yaml/v3"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
)

// TestEtcdStartsOnTheConfigWrittenFromOddURLs writes advertised URLs in
// forms etcd refuses or reads differently when copied verbatim (a
// trailing slash: "URL must not contain a path"; HTTPS in capitals; a
// port with a leading zero), then starts real etcd on the etcd.conf.yml
// that init wrote: it must come up and serve, and every URL key of the
// config must pass etcd's parser (types.NewURLs, types.NewURLsMap).
func TestEtcdStartsOnTheConfigWrittenFromOddURLs(t *testing.T) {
	c := etcdtest.Start(t, etcdtest.Options{Members: 1, Edit: func(f *etcdtest.SpecFile) {
		n := &f.Nodes[0]
		n.ClientURLs = []string{fmt.Sprintf("HTTPS://%s:0%d/", n.IPs[0], n.ClientPort)}
		n.PeerURLs = []string{fmt.Sprintf("https://%s:%d/", n.IPs[0], n.PeerPort)}
	}})
	m := c.Members[0]
	data, err := os.ReadFile(m.ConfigFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"listen-client-urls", "advertise-client-urls", "listen-peer-urls", "initial-advertise-peer-urls"} {
		v, _ := cfg[k].(string)
		if _, err := types.NewURLs(strings.Split(v, ",")); err != nil {
			t.Errorf("%s: %s = %q: etcd refuses it: %v", m.ConfigFile, k, v, err)
		}
		if strings.Contains(v, "HTTPS") || strings.Contains(v, "/,") || strings.HasSuffix(v, "/") || strings.Contains(v, ":0") {
			t.Errorf("%s: %s = %q is not in the normal form", m.ConfigFile, k, v)
		}
	}
	ic, _ := cfg["initial-cluster"].(string)
	if _, err := types.NewURLsMap(ic); err != nil {
		t.Errorf("initial-cluster %q: etcd refuses it: %v", ic, err)
	}
	flags, err := os.ReadFile(c.Paths.APIServerFlags())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("--etcd-servers=https://%s:%d\n", c.File.Nodes[0].IPs[0], c.File.Nodes[0].ClientPort)
	if !strings.Contains(string(flags), want) {
		t.Errorf("%s:\n%s\nwant a line %q", c.Paths.APIServerFlags(), flags, want)
	}
}
