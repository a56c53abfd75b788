package issue

import (
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/pki"
)

// journalMode: the journal holds serials and times, nothing secret, but
// it lives next to keys and is only ever read by the operator's own
// tools.
const journalMode fs.FileMode = 0o600

// WriteJournal replaces the journal of the PKI directory pkiDir
// (PKI/rotate-state.json, see pki.Paths.Journal) with data, the encoded
// state of the live operations (rotate, ca rotate, member, revoke). It
// is written here because it lives in the PKI directory, which only this
// package writes. The file switches in one rename after fsync, so a kill
// -9 at any point leaves the previous journal or the new one, never half
// of one, and its mode is enforced on every write. The caller holds the
// PKI directory's lock.
func WriteJournal(pkiDir string, data []byte) error {
	path := filepath.Join(pkiDir, pki.JournalFile)
	if _, err := atomicdir.WriteFile(path, data, journalMode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
