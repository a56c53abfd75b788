package issue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/etcdpki/etcdpki/internal/atomicdir"
	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/etcdpki/etcdpki/internal/pathx"
	"github.com/etcdpki/etcdpki/internal/regular"
	"github.com/etcdpki/etcdpki/pki"
)

// Join is a node joining a running cluster. etcd checks a joining
// member's initial-cluster against the member list it fetches from its
// peers (same members, same peer URLs), so it is the member list as etcd
// returns it plus the joining node, not the spec's nodes: the two differ
// while the spec names members yet to be added.
type Join struct {
	Name string
	// InitialCluster is etcd's initial-cluster value: name=peerURL,...
	InitialCluster string
}

func apiServerFlags(inv *pki.Inventory, o Options) []string {
	if o.APIServerEndpoints == nil {
		return pki.APIServerFlags(inv)
	}
	ca, crt, key := pki.APIServerFiles(inv)
	return pki.WithCompaction(inv.Spec, pki.APIServerFlagsFor(o.APIServerEndpoints, ca, crt, key))
}

func kubeadmExternal(inv *pki.Inventory, o Options) ([]byte, error) {
	if o.APIServerEndpoints == nil {
		return pki.KubeadmExternal(inv)
	}
	ca, crt, key := pki.APIServerFiles(inv)
	return pki.KubeadmExternalFor(o.APIServerEndpoints, ca, crt, key, pki.CompactionArgs(inv.Spec)...)
}

// ForgetMember takes a removed member off PKI/initial-cluster.json, the
// record of the members the cluster was bootstrapped with: a replacement
// with the same name joins a running cluster ("existing"), it does not
// bootstrap one. The caller holds the PKI directory's lock.
func ForgetMember(p pki.Paths, name string) error {
	rec, err := readInitialCluster(p)
	if err != nil || rec == nil || !slices.Contains(rec.Members, name) {
		return err
	}
	rec.Members = slices.DeleteFunc(rec.Members, func(m string) bool { return m == name })
	data, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if _, err := atomicdir.WriteFile(p.InitialCluster(), append(data, '\n'), configMode); err != nil {
		return fmt.Errorf("write %s: %w", p.InitialCluster(), err)
	}
	return nil
}

// ArchiveBundle moves a removed member's bundle from PKI/nodes/NAME into
// PKI/backup/member-NAME-TIME: the files are copied into a verified
// backup (WriteBackup), and only then is the bundle removed. A missing
// bundle is already archived: "" and no error. The caller holds the PKI
// directory's lock.
func ArchiveBundle(p pki.Paths, name string, now time.Time) (string, error) {
	src := p.NodeDir(name)
	if err := p.CheckOwnerDir(name, src); err != nil {
		return "", err
	}
	if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	var files []atomicdir.File
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		// Versioned stores (dot names) are reached through the links
		// beside them: the files as the member reads them, once each.
		if path != src && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		// A link that leads out of the PKI directory is not the bundle's
		// to copy into a backup (or to hide the removal of behind).
		if d.Type()&fs.ModeSymlink != 0 {
			if in, real, err := pathx.Inside(p.PKI, path); err != nil || !in {
				return input.Errorf("%s leads to %s, outside the PKI directory: move the link away", path, real)
			}
		}
		info, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if info.IsDir() {
			return filepath.WalkDir(path, func(sub string, sd fs.DirEntry, err error) error {
				if err != nil || sd.IsDir() {
					return err
				}
				return addFile(&files, filepath.Join(rel, strings.TrimPrefix(sub, path+string(filepath.Separator))), sub)
			})
		}
		return addFile(&files, rel, path)
	})
	if err != nil {
		return "", fmt.Errorf("archive the bundle of %s: %w", name, err)
	}
	dir, _, err := WriteBackup(p.Backups(), "member-"+name+"-"+now.UTC().Format("20060102T150405Z"), files, true)
	if err != nil {
		return "", err
	}
	if err := os.RemoveAll(src); err != nil {
		return "", fmt.Errorf("remove the bundle of %s after backing it up in %s: %w", name, dir, err)
	}
	return dir, nil
}

func addFile(files *[]atomicdir.File, rel, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	data, err := regular.ReadFile(path, regular.MaxStored)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	*files = append(*files, atomicdir.File{Name: rel, Data: data, Mode: info.Mode().Perm()})
	return nil
}
