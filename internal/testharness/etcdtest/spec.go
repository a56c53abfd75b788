package etcdtest

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

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

// freePorts returns n distinct free TCP ports on ip, chosen below the
// kernel's ephemeral range. A port the kernel handed out (listen on :0)
// and released is free again for the source port of any outgoing
// connection, and parallel tests open thousands of client connections to
// their members: one took a member's port between the choice and etcd's
// bind ("bind: address already in use", seen with tests run in parallel).
// Ports below the range are never used as source ports. The ports are held
// until all are chosen, and a port is handed out once per process, so two
// tests in one package never pick the same one; another package's test
// process can still take one before etcd binds it, which Start detects and
// retries.
func freePorts(ip string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, port, err := listenBelowEphemeral(ip)
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	return ports, nil
}

// portsLow and portsHigh bound where test members listen when the
// ephemeral range cannot be read: Linux's default range starts at 32768.
const portsLow, portsHigh = 20000, 32767

var (
	handedMu sync.Mutex
	handed   = map[string]bool{} // ip:port handed out by this process
)

// listenBelowEphemeral listens on a random port of ip below the kernel's
// ephemeral range that this process has not handed out before.
func listenBelowEphemeral(ip string) (net.Listener, int, error) {
	lo, hi := portsLow, min(portsHigh, ephemeralStart()-1)
	if hi-lo < 1000 {
		// An unusual range: let the kernel choose (Start still retries).
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, 0, err
		}
		_, p, _ := net.SplitHostPort(l.Addr().String())
		port, _ := strconv.Atoi(p)
		return l, port, nil
	}
	handedMu.Lock()
	defer handedMu.Unlock()
	var last error
	for range 200 {
		port := lo + rand.IntN(hi-lo+1)
		addr := net.JoinHostPort(ip, strconv.Itoa(port))
		if handed[addr] {
			continue
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			last = err
			continue
		}
		handed[addr] = true
		return l, port, nil
	}
	return nil, 0, fmt.Errorf("no free port in %d-%d: %v", lo, hi, last)
}

// ephemeralStart is the first port of the kernel's ephemeral range (the
// source ports of outgoing connections), 32768 when it cannot be read.
func ephemeralStart() int {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(data))
	if len(f) < 1 {
		return 32768
	}
	if v, err := strconv.Atoi(f[0]); err == nil && v > 0 {
		return v
	}
	return 32768
}
