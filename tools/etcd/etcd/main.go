// Command etcd is the real etcd server, built from the Go module proxy so
// that etcdpki's tests and demo run against genuine etcd processes.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
