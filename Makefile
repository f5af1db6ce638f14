# Postern — two commands on a fresh machine: `make run` and `make test` (README).
SWIFT ?= swift
BIN := $(shell $(SWIFT) build --show-bin-path 2>/dev/null)

.PHONY: all deps build run test unit integration bench fuzz clean
all: build

deps:
	bash scripts/install-deps.sh
	bash scripts/ensure-users.sh

build: deps
	$(SWIFT) build

run: build
	bash scripts/dev-run.sh

unit: build
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

integration: build
	EXTRA_PKGS="python3-pytest" bash scripts/install-deps.sh
	python3 -m pytest -q -x Tests/integration

test: deps
	EXTRA_PKGS="python3-pytest" bash scripts/install-deps.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(BIN)/fuzz-ipc 200000
	POSTERN_BIN=$(BIN) python3 -m pytest -q Tests/integration

bench: build
	bash bench/lmtp-bench.sh

fuzz: build
	$(BIN)/fuzz-ipc 5000000 $$RANDOM

clean:
	rm -rf .build var
