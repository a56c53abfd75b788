// Package earlysignal catches SIGTERM and SIGINT from the first moment
// etcdpki's own code runs, before main: the program's other packages
// (grpc, protobuf registrations, cfssl) take milliseconds to initialize,
// and a SIGTERM in that window used to end the process by the signal
// (exit status 143) instead of the documented exit code. It depends only
// on the standard library, and Go initializes packages in import-path
// order as soon as their imports are ready, so its init runs before the
// heavy ones (go.etcd.io, google.golang.org, go.uber.org, github.com/zmap).
// main reads C; nothing else should import this package.
package earlysignal

import (
	"os"
	"os/signal"
	"syscall"
)

// C receives SIGTERM and SIGINT, buffered so that a signal that arrives
// before main starts reading is not lost.
var C = make(chan os.Signal, 2)

func init() { signal.Notify(C, os.Interrupt, syscall.SIGTERM) }
