# ChatConnect developer commands. `make up` runs the system; `make test` runs every check.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
GENERATED := services/chatconnect/.generated
PROTOS := $(shell find protos -name '*.proto')

.PHONY: help up up-scylla demo test install gen lint typecheck protos-check pytest testenv kubeenv peerenv bench loadgen clean

help:
	@echo "make up      - install, generate stubs, run every service in one process"
	@echo "make up-scylla - the same on ScyllaDB (Cassandra) + Redis started by tools/testenv"
	@echo "make demo    - run the demo against a running 'make up' (another shell)"
	@echo "make test    - install, start test servers, lint, type-check, check contracts, run the suite"
	@echo "make bench   - benchmark ChatConnect beside ejabberd; writes docs/benchmarks.md (~25 min)"

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "ChatConnect needs Python 3.11; set PYTHON=/path/to/python3.11")'
	@echo "==> creating virtual environment in $(VENV)"
	$(PYTHON) -m venv $(VENV)

$(INSTALLED): pyproject.toml | $(PY)
	@echo "==> installing chatconnect and its development tools"
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(INSTALLED)

$(GENERATED): $(INSTALLED) $(PROTOS) tools/gen_protos.py
	@echo "==> generating Python stubs from protos/"
	$(PY) tools/gen_protos.py
	@touch $@

gen: $(GENERATED)

up: $(GENERATED)
	$(VENV)/bin/chatconnect up

# The distributed mode on this machine: the test servers' Redis and Cassandra.
up-scylla: $(GENERATED) testenv
	CHATCONNECT_SERVER__REDIS_URL=redis://127.0.0.1:6390/0 $(VENV)/bin/chatconnect up --store scylla

demo: $(GENERATED)
	$(VENV)/bin/chatconnect demo

protos-check:
	@echo "==> buf lint and breaking-change check"
	tools/check-protos

lint: $(GENERATED)
	@echo "==> ruff"
	$(VENV)/bin/ruff check services operator tests tools tools/testenv tools/kubeenv bench

typecheck: $(GENERATED)
	@echo "==> mypy --strict"
	$(VENV)/bin/mypy

pytest: $(GENERATED) testenv kubeenv
	@echo "==> pytest"
	$(VENV)/bin/pytest

test: protos-check lint typecheck loadgen pytest

# Real Redis and Cassandra for the tests (cached under ~/.cache/chatconnect);
# see tools/testenv --help. `tools/testenv down` stops them.
testenv:
	@echo "==> test servers (Redis, Cassandra)"
	tools/testenv up

# A real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager, kubectl,
# helm), built from the Go module proxy on first use (~6 min), seconds when cached;
# see tools/kubeenv --help. `tools/kubeenv down` stops it.
kubeenv:
	@echo "==> Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager)"
	tools/kubeenv up

# The Go load generator (bench/loadgen): stubs from protos/, gofmt, go vet, go test, build.
loadgen: peerenv
	@echo "==> Go load generator"
	bench/loadgen/build --check

# ejabberd from Debian's package, for the load generator's XMPP side; see tools/peerenv --help.
peerenv:
	@echo "==> ejabberd (benchmark peer)"
	tools/peerenv up

# ChatConnect (embedded, and on the test Cassandra + Redis) beside ejabberd, all scenarios;
# writes docs/benchmarks.md and docs/benchmarks/*.png. BENCH_ARGS=--profile quick for a check.
bench: $(GENERATED) testenv
	@echo "==> installing the benchmark report's dependencies"
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	$(PY) bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) data services/chatconnect/*/v1 $(GENERATED)
