# Postern — two commands on a fresh machine: `make run` and `make test` (README).
SWIFT ?= swift
BIN := $(shell $(SWIFT) build --show-bin-path 2>/dev/null)
# What the integration suite needs beyond the build: pytest, fail2ban for
# test_fail2ban_regex_tool_matches_the_documented_filter (skipped without it), the IMAP
# clients of test_imap_clients.py: mbsync (isync), mutt driven through a pty (pexpect),
# Dovecot with Python's email test messages for test_imap_dovecot.py; the POP3 clients of
# test_pop3d.py (fetchmail, getmail6); unbound, a DNS server on loopback serving MailDNS's test
# zones, and ldnsutils signing one for the DNSSEC flag; python3-dkim (dkimpy, with
# python3-nacl for ed25519-sha256), the verifier of DKIM signatures; systemd (systemd-analyze,
# systemd-socket-activate) and python3-seccomp (unit_sandbox.py applies the unit's system call
# filter) for the deployment tests, patchelf for `make deb`; rspamd and the redis-server its Bayes
# statistics need, started privately on loopback by the spam tests (spam_support.py).
TEST_PKGS := python3-pytest fail2ban isync mutt python3-pexpect dovecot-imapd libpython3.11-testsuite \
	fetchmail getmail6 unbound ldnsutils python3-dkim python3-nacl systemd python3-seccomp patchelf \
	rspamd redis-server
# libFuzzer targets (scripts/fuzz.sh builds them into .build-fuzz with -sanitize=fuzzer,address):
# `make fuzz` runs each FUZZ_TIME seconds; `make test` replays their seeds and regression inputs
# with the regular build, then runs each TEST_FUZZ_TIME seconds.
FUZZ_TARGETS := fuzz-smtp fuzz-mime fuzz-lookup fuzz-rpc fuzz-imap fuzz-pop3
FUZZ_TIME ?= 600
TEST_FUZZ_TIME ?= 10

.PHONY: all deps build run test unit integration bench fuzz fuzz-replay clean
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
	FUZZ_TIME=$(TEST_FUZZ_TIME) FUZZ_JOBS=2 FUZZ_SEED=1 bash scripts/fuzz.sh
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

# Install layout (README "Install"): `make install` (PREFIX /usr/local) and the package (PREFIX /usr).
#   $(PREFIX)/libexec/postern/   master, store and workers (the master spawns them from its own directory)
#   $(PREFIX)/sbin/postern       the admin CLI (root: it talks to the root-only control socket)
#   $(PREFIX)/lib/postern/       the Swift runtime libraries the binaries link (private: Debian packages none;
#                                the binaries' RUNPATH points there, packaging/swift-runtime.sh)
#   /lib/systemd/system, /usr/lib/sysusers.d, /usr/lib/tmpfiles.d: the units and the users/directories they need
#   /etc/postern/postern.toml    the example configuration, only if there is none
# DESTDIR stages everything elsewhere (nothing outside it is touched then). PKG_BIN: the built binaries
# to install (default: the release build; `make deb PKG_BIN=$$(swift build --show-bin-path)` packages
# the debug build, as Tests/integration/test_deploy_package.py does).
PREFIX ?= /usr/local
UNITDIR := /lib/systemd/system
UNITS := postern.service postern-smtp.socket postern-submission.socket postern-smtps.socket postern-imap.socket \
	postern-imaps.socket postern-pop3.socket postern-pop3s.socket postern-lmtp.socket
VERSION ?= 0.1.0
DEB_ARCH = $(shell dpkg --print-architecture)
DEB_STAGE = .build/deb/postern_$(VERSION)_$(DEB_ARCH)
DEB_OUT ?= .
# What `make install`/`make deb` need beyond the build: patchelf (RUNPATH of the installed binaries).
PACKAGING_PKGS := patchelf
PKG_BIN ?=

.PHONY: release install install-files uninstall deb nspawn-root
release:
	[ -n "$(PKG_BIN)" ] || $(SWIFT) build -c release

# The files only: no user, directory or service manager is touched (the package's staging step).
install-files: release
	EXTRA_PKGS="$(PACKAGING_PKGS)" bash scripts/install-deps.sh
	$(eval BINSRC := $(or $(PKG_BIN),$(shell $(SWIFT) build -c release --show-bin-path)))
	install -d $(DESTDIR)$(PREFIX)/libexec/postern $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)/etc/postern $(DESTDIR)$(UNITDIR)
	for b in master store lmtpd smtpd imapd pop3d lookupd outbound; do install -m 0755 $(BINSRC)/$$b $(DESTDIR)$(PREFIX)/libexec/postern/; done
	install -m 0755 $(BINSRC)/postern $(DESTDIR)$(PREFIX)/sbin/postern
	bash packaging/swift-runtime.sh "$(DESTDIR)" "$(PREFIX)"
	for u in $(UNITS); do sed -e 's|/usr/libexec/postern/|$(PREFIX)/libexec/postern/|g' -e 's|/usr/sbin/postern |$(PREFIX)/sbin/postern |g' \
		-e 's|/usr/share/doc/postern/|$(PREFIX)/share/doc/postern/|g' systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u; chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; done
	install -D -m 0644 systemd/postern.sysusers.conf $(DESTDIR)/usr/lib/sysusers.d/postern.conf
	install -D -m 0644 systemd/postern.tmpfiles.conf $(DESTDIR)/usr/lib/tmpfiles.d/postern.conf
	[ -e $(DESTDIR)/etc/postern/postern.toml ] || install -m 0640 postern.toml.example $(DESTDIR)/etc/postern/postern.toml
	install -d $(DESTDIR)$(PREFIX)/share/doc/postern
	install -m 0644 README.md postern.toml.example docs/*.md $(DESTDIR)$(PREFIX)/share/doc/postern/

# `make install` (as root): the files, then (without DESTDIR) the users and directories, and
# systemd told about the units when it runs. Nothing is enabled or started.
install: install-files
	if [ -z "$(DESTDIR)" ]; then bash packaging/postinst configure; fi

# Removes what `make install` put there; keeps /etc/postern (configuration, TLS and DKIM keys),
# /var/lib/postern (the mail) and the two users.
uninstall:
	for b in master store lmtpd smtpd imapd pop3d lookupd outbound; do rm -f $(DESTDIR)$(PREFIX)/libexec/postern/$$b; done
	rmdir $(DESTDIR)$(PREFIX)/libexec/postern 2>/dev/null || true
	rm -f $(DESTDIR)$(PREFIX)/sbin/postern
	rm -rf $(DESTDIR)$(PREFIX)/lib/postern $(DESTDIR)$(PREFIX)/share/doc/postern
	for u in $(UNITS); do rm -f $(DESTDIR)$(UNITDIR)/$$u; done
	rm -f $(DESTDIR)/usr/lib/sysusers.d/postern.conf $(DESTDIR)/usr/lib/tmpfiles.d/postern.conf
	if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# The Debian root Tests/integration/test_deploy_nspawn.py boots with systemd-nspawn (systemd as PID 1),
# made once from the Debian mirror with the package's runtime Depends and python3 for the clients.
NSPAWN_ROOT ?= /var/tmp/postern-nspawn-root
nspawn-root:
	EXTRA_PKGS="systemd-container debootstrap" bash scripts/install-deps.sh
	[ -x $(NSPAWN_ROOT)/lib/systemd/systemd ] || debootstrap --variant=minbase \
		--include=systemd,systemd-sysv,dbus,libssl3,libcap2,libsqlite3-0,libcrypt1,libunbound8,python3,adduser,procps bookworm $(NSPAWN_ROOT)

# postern_$(VERSION)_$(DEB_ARCH).deb from a staged DESTDIR (packaging/build-deb.sh: control file,
# conffiles, maintainer scripts), with dpkg-deb. Install it with `apt-get install ./postern_*.deb`.
deb:
	rm -rf $(DEB_STAGE)
	$(MAKE) install-files DESTDIR=$(abspath $(DEB_STAGE)) PREFIX=/usr PKG_BIN=$(PKG_BIN)
	bash packaging/build-deb.sh $(DEB_STAGE) $(VERSION) $(DEB_ARCH) $(DEB_OUT)
