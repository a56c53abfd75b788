package pki

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/atomicdir"
)

// The modes etcdpki keeps what it owns at, as package atomicdir writes
// them: reported here, enforced by the writers in package issue.
const (
	KeyMode   = atomicdir.KeyMode
	CAKeyMode = atomicdir.CAKeyMode
	DirMode   = atomicdir.DirMode
)

// OwnedDirs are the directories above the stores that hold bundles: the
// PKI directory, nodes/ and each node's, the apiserver's, clients/ and
// each client's. etcdpki makes them, or forces them, 0700: they hold
// keys, or lead to them.
func (inv *Inventory) OwnedDirs() []string {
	s, p := inv.Spec, inv.Paths
	dirs := []string{s.PKIDir}
	if len(s.Nodes) > 0 {
		dirs = append(dirs, filepath.Join(s.PKIDir, "nodes"))
	}
	for _, n := range s.Nodes {
		dirs = append(dirs, p.NodeDir(n.Name))
	}
	for _, c := range s.Clients {
		switch c.Name {
		case cluster.ClientHealthcheck:
		case cluster.ClientAPIServer:
			dirs = append(dirs, p.APIServerDir())
		default:
			dirs = append(dirs, filepath.Join(s.PKIDir, "clients"), p.ClientDir(c.Name))
		}
	}
	return dirs
}

// dirsOf are the owned directories on the way to a target's key: the
// owned directories above its store, the store, and the store's version
// in effect.
func (inv *Inventory) dirsOf(t Target) []string {
	var dirs []string
	for _, d := range inv.OwnedDirs() {
		if d == t.Dir || strings.HasPrefix(t.Dir, d+string(filepath.Separator)) {
			dirs = append(dirs, d)
		}
	}
	return append(dirs, storeDirs(t.Dir)...)
}

// storeDirs are a store and its version in effect, when it has one.
func storeDirs(dir string) []string {
	dirs := []string{dir}
	if ver, err := atomicdir.Current(dir); err == nil && ver != "" {
		dirs = append(dirs, ver)
	}
	return dirs
}

// LooseMode is a file or directory etcdpki owns whose permission bits are
// not the ones it keeps them at.
type LooseMode struct {
	Path       string
	Have, Want fs.FileMode
}

func (l LooseMode) String() string {
	return fmt.Sprintf("%s is %04o, want %04o", l.Path, l.Have, l.Want)
}

// LooseModes lists what of the PKI has looser modes than etcdpki keeps:
// keys not 0600, the CA key not 0400, owned directories and stores not
// 0700. Modes are read through links (a key's public name is a link into
// its store), and what is missing is someone else's finding.
func (inv *Inventory) LooseModes() []LooseMode {
	var out []LooseMode
	out = append(out, modeFindings(inv.Paths.CAKey(), CAKeyMode, storeDirs(inv.Paths.CADir())...)...)
	seen := map[string]bool{}
	for _, d := range inv.OwnedDirs() {
		out = append(out, modeFindings("", 0, d)...)
		seen[d] = true
	}
	for _, t := range inv.Targets {
		var dirs []string
		for _, d := range append(storeDirs(t.Dir), storeDirs(t.CADir)...) {
			if !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
		out = append(out, modeFindings(t.KeyPath(), KeyMode, dirs...)...)
	}
	return out
}

// looseNote is the warning certs list gives an ok row whose key or
// directories are looser than etcdpki keeps them; "" when none is.
func looseNote(key string, want fs.FileMode, dirs ...string) string {
	ls := modeFindings(key, want, dirs...)
	if len(ls) == 0 {
		return ""
	}
	return "warning: " + ls[0].String() + " (etcdpki init tightens it)"
}

// modeFindings checks key (when not "") against want and each directory
// against DirMode.
func modeFindings(key string, want fs.FileMode, dirs ...string) []LooseMode {
	var out []LooseMode
	if key != "" {
		if fi, err := os.Stat(key); err == nil && fi.Mode().Perm() != want {
			out = append(out, LooseMode{Path: key, Have: fi.Mode().Perm(), Want: want})
		}
	}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() && fi.Mode().Perm() != DirMode {
			out = append(out, LooseMode{Path: d, Have: fi.Mode().Perm(), Want: DirMode})
		}
	}
	return out
}
