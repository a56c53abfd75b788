package issue

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// TestIssueKeepsAValidPairOrBacksItUp issues the same client twice: the
// second run keeps the valid pair, says so, and changes no byte. Asked
// for another subject, it replaces the pair only after the one backup
// writer has a verified copy of the old one.
func TestIssueKeepsAValidPairOrBacksItUp(t *testing.T) {
	ctx := context.Background()
	s, _ := initTree(t, threeNodes)
	req := OneRequest{Kind: "client", Name: "ops", Organization: []string{"ops"}}
	tg, err := One(ctx, pki.New(s), req, Options{})
	if err != nil {
		t.Fatal(err)
	}
	oldCert, oldKey := mustRead(t, tg.CertPath()), mustRead(t, tg.KeyPath())
	before := snapshot(t, s.PKIDir)
	var out bytes.Buffer
	if _, err := One(ctx, pki.New(s), req, Options{Out: &out}); err != nil {
		t.Fatalf("issue again: %v", err)
	}
	if !strings.Contains(out.String(), "kept") {
		t.Errorf("issue again said %q, want it to say the pair is kept", out.String())
	}
	if after := snapshot(t, s.PKIDir); after != before {
		t.Errorf("issuing the same certificate again changed the PKI:\n%s\nwant\n%s", after, before)
	}

	req.Organization = []string{"system:masters"}
	out.Reset()
	if _, err := One(ctx, pki.New(s), req, Options{Out: &out}); err != nil {
		t.Fatalf("issue with another org: %v", err)
	}
	if bytes.Equal(mustRead(t, tg.CertPath()), oldCert) {
		t.Fatal("a request for another subject kept the old certificate")
	}
	backups, _ := filepath.Glob(filepath.Join(pki.Paths{PKI: s.PKIDir}.Backups(), "*"))
	if len(backups) != 1 {
		t.Fatalf("backups: %v, want one", backups)
	}
	if err := VerifyBackup(backups[0], []atomicdir.File{
		{Name: "issued/ops/ops.crt", Data: oldCert, Mode: atomicdir.CertMode},
		{Name: "issued/ops/ops.key", Data: oldKey, Mode: atomicdir.KeyMode},
	}); err != nil {
		t.Errorf("the replaced pair is not backed up: %v", err)
	}
	if !strings.Contains(out.String(), "previous pair in "+filepath.Join(backups[0], "issued/ops")) {
		t.Errorf("issue said %q, want it to name the backup", out.String())
	}
}
