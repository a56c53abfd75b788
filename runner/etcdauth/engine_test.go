package etcdauth_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/runner/etcdauth"
)

// authCluster is a 3-member cluster whose spec turns auth on and gives
// the extra client backup readwrite on /backup/ and read on the key
// /config/leader, and the extra client audit write on the key
// /audit/last only.
func authCluster(t *testing.T) *etcdtest.Cluster {
	return etcdtest.Start(t, etcdtest.Options{Name: "auth", Edit: func(f *etcdtest.SpecFile) {
		withBackup(f)
		f.Clients = append(f.Clients, cluster.FileClient{Name: "audit", Permissions: []cluster.FilePermission{{Key: "/audit/last", Access: "write"}}})
	}})
}

// pair is the certificate and key of inventory target id.
func pair(t *testing.T, c *etcdtest.Cluster, id string) (string, string) {
	t.Helper()
	tg, ok := c.Inventory().Target(id)
	if !ok {
		t.Fatalf("no target %s", id)
	}
	return tg.CertPath(), tg.KeyPath()
}

// TestSyncIsIdempotentAndEnablesAuthLast: the first run makes root
// first and enables auth last; a second run, and a Diff of the live
// state, change nothing.
func TestSyncIsIdempotentAndEnablesAuthLast(t *testing.T) {
	c := authCluster(t)
	ctx := ctxFor(t, 2*time.Minute)
	changes, err := etcdauth.Sync(ctx, c.Client(t), c.Spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first run: %v", changes)
	if len(changes) == 0 || changes[0] != (etcdauth.Change{Op: etcdauth.AddRole, Role: cluster.RootUser}) {
		t.Errorf("first change %v, want add role root", changes)
	}
	if changes[len(changes)-1].Op != etcdauth.EnableAuth {
		t.Errorf("last change %v, want enable auth", changes[len(changes)-1])
	}
	addRoot := slices.Index(changes, etcdauth.Change{Op: etcdauth.AddUser, User: cluster.RootUser})
	giveRoot := slices.Index(changes, etcdauth.Change{Op: etcdauth.GiveRole, User: cluster.RootUser, Role: cluster.RootUser})
	if addRoot < 0 || giveRoot < addRoot || giveRoot > len(changes)-2 {
		t.Errorf("root is not made before auth is enabled: %v", changes)
	}
	rootCrt, rootKey := signClient(t, c, cluster.RootUser)
	root := clientAs(t, c, rootCrt, rootKey)
	again, err := etcdauth.Sync(ctx, root, c.Spec)
	if err != nil || len(again) != 0 {
		t.Errorf("second run changed %v (%v), want nothing", again, err)
	}
	live, err := etcdauth.Live(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if d := etcdauth.Diff(live, etcdauth.Desired(c.Spec)); len(d) != 0 {
		t.Errorf("live state differs from the spec's: %v", d)
	}
	if !live.Enabled {
		t.Error("auth is off after the run")
	}
}

// TestEachCertificateOnTheWire tries every certificate with auth on: one
// permitted and one refused operation each, as the issue asks.
func TestEachCertificateOnTheWire(t *testing.T) {
	c := authCluster(t)
	ctx := ctxFor(t, 2*time.Minute)
	if _, err := etcdauth.Sync(ctx, c.Client(t), c.Spec); err != nil {
		t.Fatal(err)
	}
	as := func(id string) *clientv3.Client { crt, key := pair(t, c, id); return clientAs(t, c, crt, key) }
	rootCrt, rootKey := signClient(t, c, cluster.RootUser)
	root := clientAs(t, c, rootCrt, rootKey)
	for _, k := range []string{"/registry/secrets/default/s", "/registryx", "/backup/x", "/config/leader", "/config/leader/x", "/config/other", "/audit/last", "/other"} {
		if _, err := root.Put(ctx, k, "v"); err != nil {
			t.Fatalf("root put %s: %v", k, err)
		}
	}

	api := as("apiserver-etcd-client")
	allowed(ctx, t, "apiserver put /registry/", api, put("/registry/configmaps/default/c"))
	allowed(ctx, t, "apiserver get /registry/", api, get("/registry/secrets/default/s"))
	refused(ctx, t, "apiserver put compact_rev_key (etcd compacts itself)", api, put("compact_rev_key"))
	refused(ctx, t, "apiserver get outside its prefix", api, get("/backup/x"))
	refused(ctx, t, "apiserver put outside its prefix", api, put("/other"))
	refused(ctx, t, "apiserver get everything", api, getPrefix(""))
	refused(ctx, t, "apiserver get beside its prefix (/registryx)", api, get("/registryx"))
	refused(ctx, t, "apiserver watch outside its prefix", api, watch("/backup/"))

	hcCrt, hcKey := pair(t, c, "etcd-1/etcd-healthcheck-client")
	if out, err := c.Etcdctl(ctx, hcCrt, hcKey, "endpoint", "health"); err != nil || strings.Count(out, "is healthy") != len(c.Members) {
		t.Errorf("etcdctl endpoint health with the healthcheck certificate: %v\n%s", err, out)
	}
	checkHTTPHealth(t, c, hcCrt, hcKey)
	hc := clientAs(t, c, hcCrt, hcKey)
	refused(ctx, t, "healthcheck get a Secret", hc, get("/registry/secrets/default/s"))
	refused(ctx, t, "healthcheck put", hc, put("/other"))
	refused(ctx, t, "healthcheck get everything", hc, getPrefix(""))

	// Every member's server and peer certificate: no read, range, watch
	// or write of anything.
	for _, m := range c.Members {
		for _, id := range []string{m.Name + "/etcd-server", m.Name + "/etcd-peer"} {
			cli := as(id)
			refused(ctx, t, id+" get a Secret", cli, get("/registry/secrets/default/s"))
			refused(ctx, t, id+" get /other", cli, get("/other"))
			refused(ctx, t, id+" get everything", cli, getPrefix(""))
			refused(ctx, t, id+" watch /registry/", cli, watch("/registry/"))
			refused(ctx, t, id+" put", cli, put("/other"))
		}
	}

	b := as("client/backup")
	allowed(ctx, t, "backup put /backup/", b, put("/backup/y"))
	allowed(ctx, t, "backup get /backup/", b, getPrefix("/backup/"))
	allowed(ctx, t, "backup get /config/leader", b, get("/config/leader"))
	refused(ctx, t, "backup put /config/leader (read only)", b, put("/config/leader"))
	refused(ctx, t, "backup get a Secret", b, get("/registry/secrets/default/s"))
	refused(ctx, t, "backup get /other", b, get("/other"))
	// A key is that key alone, not a prefix.
	refused(ctx, t, "backup get under its key /config/leader/", b, get("/config/leader/x"))
	refused(ctx, t, "backup get /config/ (it holds one key there)", b, getPrefix("/config/"))

	au := as("client/audit")
	allowed(ctx, t, "audit put /audit/last (write only)", au, put("/audit/last"))
	refused(ctx, t, "audit get /audit/last (write only)", au, get("/audit/last"))
	refused(ctx, t, "audit put beside its key", au, put("/audit/lastx"))
	refused(ctx, t, "audit get a Secret", au, get("/registry/secrets/default/s"))

	// The spec takes back backup's key: the grant goes, and the wire says so.
	s := *c.Spec
	s.Clients = slices.Clone(c.Spec.Clients)
	for i := range s.Clients {
		if s.Clients[i].Name == "backup" {
			s.Clients[i].Permissions = s.Clients[i].Permissions[:1]
		}
	}
	changes, err := etcdauth.Sync(ctx, root, &s)
	want := []etcdauth.Change{{Op: etcdauth.RevokeAccess, Role: etcdauth.RoleFor("backup"), Grant: etcdauth.Grant{Key: "/config/leader", Access: cluster.AccessRead}}}
	if err != nil || !slices.Equal(changes, want) {
		t.Errorf("taking the key back: %v (%v), want %v", changes, err, want)
	}
	refused(ctx, t, "backup get /config/leader after the spec took it back", b, get("/config/leader"))
	allowed(ctx, t, "backup still gets /backup/", b, get("/backup/y"))

	// The spec drops backup: its user and role go.
	s.Clients = slices.DeleteFunc(s.Clients, func(c cluster.Client) bool { return c.Name == "backup" })
	changes, err = etcdauth.Sync(ctx, root, &s)
	want = []etcdauth.Change{{Op: etcdauth.DeleteUser, User: "backup"}, {Op: etcdauth.DeleteRole, Role: etcdauth.RoleFor("backup")}}
	if err != nil || !slices.Equal(changes, want) {
		t.Errorf("dropping the client: %v (%v), want %v", changes, err, want)
	}
	refused(ctx, t, "backup get /backup/ after the spec dropped it", b, get("/backup/y"))
}

type op func(context.Context, *clientv3.Client) error

func put(k string) op {
	return func(ctx context.Context, c *clientv3.Client) error { _, err := c.Put(ctx, k, "w"); return err }
}

func get(k string) op {
	return func(ctx context.Context, c *clientv3.Client) error { _, err := c.Get(ctx, k); return err }
}

func getPrefix(k string) op {
	return func(ctx context.Context, c *clientv3.Client) error {
		if k == "" {
			_, err := c.Get(ctx, "\x00", clientv3.WithFromKey())
			return err
		}
		_, err := c.Get(ctx, k, clientv3.WithPrefix())
		return err
	}
}

// watch opens a watch on prefix and waits for its first answer: etcd
// checks a watch's permission when it is created, and cancels it then.
func watch(prefix string) op {
	return func(ctx context.Context, c *clientv3.Client) error {
		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer cancel()
		wch := c.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		resp, ok := <-wch
		if !ok {
			return fmt.Errorf("watch %s: closed without an answer", prefix)
		}
		return resp.Err()
	}
}

func allowed(ctx context.Context, t *testing.T, what string, c *clientv3.Client, o op) {
	t.Helper()
	if err := o(ctx, c); err != nil {
		t.Errorf("%s: %v, want it permitted", what, err)
	}
}

func refused(ctx context.Context, t *testing.T, what string, c *clientv3.Client, o op) {
	t.Helper()
	if err := o(ctx, c); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("%s: %v, want permission denied", what, err)
	}
}

// checkHTTPHealth asks each member's /health with the healthcheck
// certificate, as a kubeadm liveness probe would.
func checkHTTPHealth(t *testing.T, c *etcdtest.Cluster, crt, key string) {
	t.Helper()
	cfg, err := etcdtest.TLSConfig(c.CAFile(), crt, key)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg.Clone(), TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}}
	for _, ep := range c.Endpoints() {
		resp, err := hc.Get(ep + "/health")
		if err != nil {
			t.Errorf("%s/health: %v", ep, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
			t.Errorf("%s/health with the healthcheck certificate: %d %s", ep, resp.StatusCode, body)
		}
	}
}
