package etcdtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMissingBinary checks the message a fresh checkout gets before
// `make etcd`; it starts no etcd, so it also runs with -short.
func TestMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "etcd")
	t.Setenv("ETCD_BIN", missing)
	_, err := findBinary("ETCD_BIN", "etcd")
	if err == nil {
		t.Fatal("no error for a missing etcd binary")
	}
	for _, want := range []string{missing, "does not exist", "run `make etcd`", "ETCD_BIN"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	t.Setenv("ETCD_BIN", t.TempDir())
	if _, err := findBinary("ETCD_BIN", "etcd"); err == nil || !strings.Contains(err.Error(), "not an executable file") {
		t.Errorf("a directory as ETCD_BIN: %v", err)
	}
}

func TestRefusalAlert(t *testing.T) {
	for _, tc := range []struct{ goVersion, want string }{
		{"go1.19.8", "tls: bad certificate"}, // Debian's etcd 3.4.23
		{"go1.20.14", "tls: bad certificate"},
		{"go1.21.0", "tls: certificate required"},
		{"go1.26.8", "tls: certificate required"},
	} {
		t.Run(tc.goVersion, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "etcd")
			script := "#!/bin/sh\necho 'etcd Version: 3.x'\necho 'Go Version: " + tc.goVersion + "'\n"
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("ETCD_BIN", bin)
			if got := RefusalAlert(t, "tls: certificate required"); got != tc.want {
				t.Errorf("RefusalAlert = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEtcdctlAtLeast(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    bool
	}{{"3.4.23", false}, {"3.5.0", true}, {"3.6.16", true}, {"4.0.0", true}, {"2.9.9", false}} {
		t.Run(tc.version, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "etcdctl")
			script := "#!/bin/sh\necho 'etcdctl version: " + tc.version + "'\necho 'API version: 3.x'\n"
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv("ETCDCTL_BIN", bin)
			if got := EtcdctlAtLeast(t, 3, 5); got != tc.want {
				t.Errorf("EtcdctlAtLeast(3, 5) = %v, want %v", got, tc.want)
			}
		})
	}
}
