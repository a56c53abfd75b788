package issue

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/pki"
)

// BenchmarkInitThreeNode measures a full bootstrap of the three-node
// example: CA, 3 server + 3 peer + 3 healthcheck, the apiserver client
// and one extra client, every config file, all fsynced.
func BenchmarkInitThreeNode(b *testing.B) {
	base := b.TempDir()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// One tree at a time, removed after each run, so that runs don't
		// pile up dirty files for the next one's fsyncs to wait on.
		pkiDir := filepath.Join(base, "pki")
		if err := os.RemoveAll(pkiDir); err != nil {
			b.Fatal(err)
		}
		s, err := cluster.Load("../examples/three-node.yaml", cluster.Options{PKIDir: pkiDir})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInitNoop is the cost of a second init that reuses everything.
func BenchmarkInitNoop(b *testing.B) {
	s, err := cluster.Load("../examples/three-node.yaml", cluster.Options{PKIDir: filepath.Join(b.TempDir(), "pki")})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Init(context.Background(), pki.New(s), Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
