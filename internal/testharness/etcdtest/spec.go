package etcdtest

import (
	"fmt"
	"net"
	"strconv"

	"github.com/etcdpki/etcdpki/cluster"
)

// SpecFile is the cluster spec YAML the harness writes and hands to
// cluster.Parse and issue.Init, exactly as an operator's file would be.
// Options.Edit may change it before it is written; fields left empty keep
// etcdpki's defaults. The harness fills each node's Name, IPs, ports and
// Restart (the cluster's control command).
type SpecFile = cluster.File

// SpecNode is one node of the spec.
type SpecNode = cluster.FileNode

// NodeName is the name the harness gives the i-th member (1-based).
func NodeName(i int) string { return fmt.Sprintf("etcd-%d", i) }

// NodeIP is the loopback address of the i-th member (1-based): 127.0.0.i.
// All of 127.0.0.0/8 reaches the loopback interface on Linux, so every
// member gets an address of its own, as on real hosts, and the certificates'
// IP SANs are really checked.
func NodeIP(i int) string { return fmt.Sprintf("127.0.0.%d", i) }

// freePorts returns n distinct free TCP ports on ip. The ports are held
// until all are chosen, so two of them never coincide; another process can
// still take one before etcd binds it, which Start detects and retries.
func freePorts(ip string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		ls = append(ls, l)
		_, p, _ := net.SplitHostPort(l.Addr().String())
		port, _ := strconv.Atoi(p)
		ports = append(ports, port)
	}
	return ports, nil
}
