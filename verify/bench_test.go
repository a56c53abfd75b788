package verify

import (
	"context"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/testharness/etcdtest"
	"github.com/etcdpki/etcdpki/internal/testharness/testpki"
)

// BenchmarkVerify times a whole `etcdpki verify` (local checks, every
// endpoint, cluster checks) on a healthy 3-member cluster, and with one
// black-holed endpoint added under a 1s timeout: that run must end after
// one timeout, not one per endpoint.
func BenchmarkVerify(b *testing.B) {
	c := etcdtest.Start(b, etcdtest.Options{})
	_, crt, key := etcdtest.APIServerFiles(c.Paths)
	base := Options{Endpoints: c.Endpoints(), CAFile: etcdtest.APIServerCA(c.Paths), CertFile: crt, KeyFile: key}
	ctx := context.Background()
	b.Run("three-healthy", func(b *testing.B) {
		for b.Loop() {
			rep, err := Evaluate(ctx, nil, base)
			if err != nil || !rep.Passed {
				b.Fatalf("not passed: %v", err)
			}
		}
	})
	b.Run("three-plus-one-black-holed/timeout=1s", func(b *testing.B) {
		o := base
		o.Endpoints = append(append([]string{}, base.Endpoints...), "https://"+testpki.BlackHole(b))
		o.Timeout = time.Second
		for b.Loop() {
			start := time.Now()
			rep, err := Evaluate(ctx, nil, o)
			if err != nil || rep.Passed {
				b.Fatalf("passed with a black hole: %v", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				b.Fatalf("took %s: more than one timeout", took)
			}
		}
	})
}
