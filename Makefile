# etcdpki build, test and demo. Everything the project needs is built here
# from the Go module proxy, including the real etcd used by the tests.

GO      ?= go
BIN     := $(CURDIR)/bin
# Tests and the demo use these; override to run against another etcd
# (for example Debian's etcd-server: ETCD_BIN=/usr/bin/etcd).
ETCD_BIN    ?= $(BIN)/etcd
ETCDCTL_BIN ?= $(BIN)/etcdctl
export ETCD_BIN ETCDCTL_BIN

# kube-apiserver for the controller's and the agent's tests (envtest runs
# it); override to use another build of v1.37.
KUBE_APISERVER_BIN ?= $(BIN)/kube-apiserver
export KUBE_APISERVER_BIN

# What the tests need built: our etcd and kube-apiserver binaries, unless
# overridden.
TEST_ETCD := $(filter $(BIN)/%,$(ETCD_BIN) $(ETCDCTL_BIN) $(KUBE_APISERVER_BIN))

.PHONY: all build etcd kube-apiserver generate deps test test-faults test-short vet bench demo demo-stop clean

all: build

build:
	$(GO) build -o $(BIN)/etcdpki ./cmd/etcdpki

# etcd and etcdctl v3.6.16, built from a separate module (tools/etcd) so
# that etcd's server dependencies stay out of etcdpki's go.mod.
etcd: $(BIN)/etcd $(BIN)/etcdctl

$(BIN)/etcd: tools/etcd/go.mod tools/etcd/go.sum tools/etcd/etcd/main.go
	cd tools/etcd && $(GO) build -o $(BIN)/etcd ./etcd

$(BIN)/etcdctl: tools/etcd/go.mod tools/etcd/go.sum tools/etcd/etcdctl/main.go
	cd tools/etcd && $(GO) build -o $(BIN)/etcdctl ./etcdctl

# kube-apiserver v1.37.2, built from k8s.io/kubernetes in its own module
# (tools/kube-apiserver maps each staging module to its v0.37.2 release):
# about 10 minutes cold on 2 cores, then cached here.
kube-apiserver: $(BIN)/kube-apiserver

$(BIN)/kube-apiserver: tools/kube-apiserver/go.mod tools/kube-apiserver/go.sum tools/kube-apiserver/kube-apiserver/main.go
	cd tools/kube-apiserver && $(GO) build -o $(BIN)/kube-apiserver ./kube-apiserver

# controller-gen (sigs.k8s.io/controller-tools v0.23.0, pinned in
# tools/controller-gen) writes the EtcdCluster deepcopy and CRD; vet
# checks that the committed ones are what it writes.
$(BIN)/controller-gen: tools/controller-gen/go.mod tools/controller-gen/go.sum
	cd tools/controller-gen && $(GO) build -o $(BIN)/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen

CRD := deploy/crd/etcdpki.io_etcdclusters.yaml

generate: $(BIN)/controller-gen
	$(BIN)/controller-gen object paths=./api/...
	$(BIN)/controller-gen crd paths=./api/... output:crd:dir=deploy/crd

# vet also checks the build without cgo (no PKCS#11: file CA keys only),
# that go.mod and go.sum are tidy, for etcdpki and for tools/etcd
# (go mod tidy -diff prints what tidy would change and fails; it changes
# nothing; tools/etcd's check reads its dependencies' test imports, which
# the first run fetches from the module proxy, as the etcd build does),
# and holds production code to 90 lines a function, 420 a file (tools/funclen).
vet: $(BIN)/controller-gen
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) mod tidy -diff
	cd tools/etcd && $(GO) mod tidy -diff
	cd tools/controller-gen && $(GO) mod tidy -diff
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...
	$(GO) run ./tools/funclen
	@$(BIN)/controller-gen object paths=./api/... output:object:stdout | cmp -s - api/v1alpha1/zz_generated.deepcopy.go || { echo "api/v1alpha1/zz_generated.deepcopy.go is stale: run make generate"; exit 1; }
	@$(BIN)/controller-gen crd paths=./api/... output:crd:stdout | cmp -s - $(CRD) || { echo "$(CRD) is stale: run make generate"; exit 1; }

# What the tests run besides etcd, from Debian's packages, installed when
# missing rather than skipped (CI runs as root on a fresh machine): SoftHSM2,
# the PKCS#11 token the CA-in-a-token tests run against (a fresh token per
# test), and rsync, which the bundle coexistence tests copy bundles with (as
# a deploy template would). One recipe: make keeps only the last of two.
deps:
	@missing=""; \
	command -v softhsm2-util >/dev/null || missing="$$missing softhsm2"; \
	command -v rsync >/dev/null || missing="$$missing rsync"; \
	if [ -n "$$missing" ]; then apt-get update && apt-get install -y $$missing; fi

# The README's test command: vet, then every package with the race
# detector, integration tests against real etcd included.
test: deps $(TEST_ETCD) vet
	$(GO) test -race -count=1 -parallel 4 -timeout 20m ./...

# The leader-kill tests with five trials each (revocation, membership, CA
# rotation), as docs/kubernetes.md reports them; make test runs one each.
test-faults: deps $(TEST_ETCD)
	ETCDPKI_FAULT_TRIALS=5 $(GO) test -count=1 -p 1 -timeout 90m -run 'LeaderKilled|TestMembershipThroughAgents' -v ./e2e/

# Fast local loop: skips the tests that start etcd.
test-short: vet
	$(GO) test -short -count=1 ./...

# The README's first command: etcdpki init for examples/local.yaml into
# demo/pki, then a 3-member TLS etcd cluster on 127.0.0.1-3 started from the
# generated configs, checked with the kube-apiserver's certificate and left
# running. `make demo-stop` stops exactly the processes it started (their
# pids are in demo/*.pid).
demo: build etcd
	ETCDPKI_BIN=$(BIN)/etcdpki examples/demo.sh start

demo-stop:
	examples/demo.sh stop

bench: deps $(TEST_ETCD)
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

clean:
	rm -rf $(BIN)
