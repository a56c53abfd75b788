package issue

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdpki/etcdpki/internal/probe"
	"github.com/etcdpki/etcdpki/pki"
)

// TestReadersNeverSeeATornPair renews a pair again and again while
// readers list the PKI and load the pair as a TLS client would. A reader
// that read the certificate and the key through their two links could
// pair a new certificate with the old key, and report a good pair as
// "key does not match"; every reader reads both from one version of the
// store, so none ever does. Readers take no lock, so the writer is never
// held up either. Bounded by the number of renewals, not by time.
func TestReadersNeverSeeATornPair(t *testing.T) {
	const renewals = 40
	s, _ := initTree(t, threeNodes)
	inv := pki.New(s)
	picked, _ := pki.Select(inv.Targets, []string{"etcd-node-1/etcd-server"})
	srv := picked[0]

	var done atomic.Bool
	var werr error
	go func() {
		defer done.Store(true)
		for i := 0; i < renewals; i++ {
			if _, err := Renew(context.Background(), inv, picked, RenewOptions{}); err != nil {
				werr = err
				return
			}
		}
	}()

	var wg sync.WaitGroup
	var lists, loads atomic.Int64
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for first := true; first || !done.Load(); first = false {
			infos, err := pki.List(inv, 0, time.Now())
			if err != nil {
				errs <- err
				return
			}
			for _, in := range infos {
				if in.Status != pki.StatusOK {
					errs <- errors.New("certs list: " + in.Name + ": " + in.Status + ": " + in.Reason)
					return
				}
			}
			lists.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for first := true; first || !done.Load(); first = false {
			if _, err := probe.LoadKeyPair(srv.CertPath(), srv.KeyPath()); err != nil {
				errs <- err
				return
			}
			if c, k, err := pki.ReadTargetPair(srv); err != nil || c == nil || k == nil {
				errs <- errors.New("read pair: missing or " + strings.TrimSpace(errString(err)))
				return
			}
			loads.Add(1)
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a reader saw a torn pair: %v", err)
	}
	if werr != nil {
		t.Fatalf("renew: %v", werr)
	}
	t.Logf("%d renewals, %d listings, %d pair loads, none torn", renewals, lists.Load(), loads.Load())
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
