# ipsec-gateway: every target installs what it needs on a fresh Debian bookworm (as root).
SHELL := /bin/bash
CARGO ?= cargo
export CARGO_TERM_COLOR ?= never

# Debian packages: DPDK 22.11 and its PMDs, bindgen's libclang, the test peers (ipsec-secgw is
# built from dpdk-doc's sources at test time; scapy and tshark check packets), and namespaces.
APT_PACKAGES := build-essential pkg-config clang libclang-dev \
	dpdk libdpdk-dev dpdk-dev dpdk-doc libpcap-dev libssl-dev openssl \
	iproute2 iputils-ping tcpdump tshark python3 python3-scapy python3-cryptography \
	strongswan-charon strongswan-swanctl strongswan-pki libcharon-extra-plugins \
	libstrongswan-extra-plugins netcat-openbsd procps psmisc kmod nftables \
	ethtool curl util-linux systemd

.PHONY: all deps build test unit-test integration-test demo bench bench-report lint fmt clean install

# The system python (Debian's scapy is importable only from it); the benches' report and its
# test use the standard library only.
PYTHON := /usr/bin/python3

all: build

# Installs the packages that are missing, once. A policy-rc.d keeps strongSwan's service from
# starting (tests start their own charons); tshark is preseeded so the install asks nothing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }; \
	  echo 'tshark wireshark-common/install-setuid boolean false' | debconf-set-selections; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup)"; exit 1; }

build: deps
	$(CARGO) build --release --workspace

# The Rust tests, then the benchmark report's (benches/render_results.py on made-up results;
# no root, no DPDK).
unit-test: deps
	$(CARGO) test --release --workspace
	$(PYTHON) benches/test_render_results.py

# Interop and namespace tests: need root. Every script runs, even after one fails; each fails
# loudly (never skips) when it cannot run. The closing line counts them.
integration-test: build
	@pass=0; fail=0; failed=""; \
	for t in tests/integration/[0-9]*.sh; do \
	  echo "=== $$t"; start=$$(date +%s); \
	  if bash "$$t"; then pass=$$((pass+1)); r=PASS; else fail=$$((fail+1)); failed="$$failed $$t"; r=FAIL; fi; \
	  echo "=== $$t: $$r ($$(( $$(date +%s) - start )) s)"; \
	done; \
	echo "integration: $$pass passed, $$fail failed"; \
	[ -z "$$failed" ] || { echo "failed:$$failed"; exit 1; }

# Both suites run even when the first fails; the target fails if either did.
test: build
	@rc=0; $(MAKE) --no-print-directory unit-test || rc=1; \
	$(MAKE) --no-print-directory integration-test || rc=1; \
	exit $$rc

demo: build
	bash scripts/demo.sh

# Every benchmark (benches/run-all.sh: each runs even after one fails), then benches/RESULTS.md
# and its plots from their results, even when some failed; the target fails if any did.
bench: build
	@rc=0; CARGO=$(CARGO) bash benches/run-all.sh || rc=1; \
	$(MAKE) --no-print-directory bench-report || rc=1; \
	exit $$rc

# Only renders benches/RESULTS.md and benches/plots/ from the latest results of each benchmark.
bench-report: deps
	$(PYTHON) benches/render_results.py

# The binaries, the systemd units (deploy/systemd) and the docs; DESTDIR and PREFIX as usual.
# The configuration is the operator's: copy an example to /etc/ipsec-gateway/gateway.toml.
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/systemd/system \
	  $(DESTDIR)/etc/ipsec-gateway $(DESTDIR)$(PREFIX)/share/doc/ipsec-gateway/examples
	install -m 0755 target/release/ipsec-dataplane target/release/ipsec-control $(DESTDIR)$(PREFIX)/sbin/
	install -m 0755 target/release/ipsec-ctl target/release/ipsec-dpctl $(DESTDIR)$(PREFIX)/bin/
	for u in deploy/systemd/*.service; do \
	  sed 's|/usr/local/|$(PREFIX)/|g' $$u > $(DESTDIR)/etc/systemd/system/$$(basename $$u); \
	  chmod 0644 $(DESTDIR)/etc/systemd/system/$$(basename $$u); \
	done
	install -m 0644 README.md $(DESTDIR)$(PREFIX)/share/doc/ipsec-gateway/
	install -m 0644 examples/*.toml $(DESTDIR)$(PREFIX)/share/doc/ipsec-gateway/examples/
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
	@[ -e $(DESTDIR)/etc/ipsec-gateway/gateway.toml ] || \
	  echo "now write /etc/ipsec-gateway/gateway.toml (examples in $(PREFIX)/share/doc/ipsec-gateway/examples), then: systemctl enable --now ipsec-dataplane ipsec-control"

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
