# Postern — two commands on a fresh machine: `make run` and `make test` (README).
SWIFT ?= swift
BIN := $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
# What the integration suite needs beyond the build: pytest, fail2ban for
# test_fail2ban_regex_tool_matches_the_documented_filter (skipped without it), the IMAP
# clients of test_imap_clients.py: mbsync (isync), mutt driven through a pty (pexpect),
# Dovecot with Python's email test messages for test_imap_dovecot.py; the POP3 clients of
# test_pop3d.py (fetchmail, getmail6); unbound, a DNS server on loopback serving MailDNS's test
# zones, and ldnsutils signing one for the DNSSEC flag; python3-dkim (dkimpy, with
# python3-nacl for ed25519-sha256), the verifier of DKIM signatures.
TEST_PKGS := python3-pytest fail2ban isync mutt python3-pexpect dovecot-imapd libpython3.11-testsuite \
	fetchmail getmail6 unbound ldnsutils python3-dkim python3-nacl
# libFuzzer targets (scripts/fuzz.sh builds them into .build-fuzz with -sanitize=fuzzer,address):
# `make fuzz` runs each FUZZ_TIME seconds; `make test` replays their seeds and regression inputs
# with the regular build, then runs each TEST_FUZZ_TIME seconds.
FUZZ_TARGETS := fuzz-smtp fuzz-mime fuzz-lookup fuzz-rpc fuzz-imap fuzz-pop3
FUZZ_TIME ?= 600
TEST_FUZZ_TIME ?= 10

.PHONY: all deps build run test unit integration bench fuzz fuzz-replay clean install
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
	EXTRA_PKGS="$(TEST_PKGS)" bash scripts/install-deps.sh
	python3 -m pytest -q -x Tests/integration

test: deps
	EXTRA_PKGS="$(TEST_PKGS)" bash scripts/install-deps.sh
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build
	$(BIN)/fuzz-ipc 200000
	for t in $(FUZZ_TARGETS); do $(BIN)/$$t fuzz/corpus/$$t fuzz/regressions/$$t || exit 1; done
	FUZZ_TIME=$(TEST_FUZZ_TIME) FUZZ_JOBS=2 bash scripts/fuzz.sh
	POSTERN_BIN=$(BIN) python3 -m pytest -q Tests/integration

bench: build
	bash bench/lmtp-bench.sh

fuzz: build
	$(BIN)/fuzz-ipc 5000000 $$RANDOM
	FUZZ_TIME=$(FUZZ_TIME) bash scripts/fuzz.sh

# Replays the seed corpora and the inputs of fixed crashes (fuzz/regressions/<target>/).
fuzz-replay: build
	for t in $(FUZZ_TARGETS); do $(BIN)/$$t fuzz/corpus/$$t fuzz/regressions/$$t || exit 1; done

clean:
	rm -rf .build .build-fuzz var

# `make install` (as root): binaries, systemd units, users, an example config.
PREFIX ?= /usr/local
install: build
	$(SWIFT) build -c release
	install -d $(DESTDIR)$(PREFIX)/libexec/postern $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/postern
	for b in master store lmtpd smtpd imapd pop3d lookupd outbound; do install -m 0755 $$($(SWIFT) build -c release --show-bin-path)/$$b $(DESTDIR)$(PREFIX)/libexec/postern/; done
	install -m 0755 $$($(SWIFT) build -c release --show-bin-path)/postern $(DESTDIR)$(PREFIX)/bin/postern
	install -D -m 0644 systemd/postern.service $(DESTDIR)/etc/systemd/system/postern.service
	install -D -m 0644 systemd/postern.sysusers.conf $(DESTDIR)/usr/lib/sysusers.d/postern.conf
	install -D -m 0644 systemd/postern.tmpfiles.conf $(DESTDIR)/usr/lib/tmpfiles.d/postern.conf
	[ -e $(DESTDIR)/etc/postern/postern.toml ] || install -m 0640 postern.toml.example $(DESTDIR)/etc/postern/postern.toml
	install -D -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/postern/README.md
	bash scripts/ensure-users.sh
