// Command etcdctl is the real etcdctl, built alongside etcd for the tests
// and the demo.
package main

import "go.etcd.io/etcd/etcdctl/v3/ctlv3"

func main() { ctlv3.MustStart() }
