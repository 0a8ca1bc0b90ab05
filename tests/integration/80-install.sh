#!/bin/bash
# `make install` (issue 4, "Running as a bare-metal service"): the binaries, the systemd units
# and the docs land where they should, into a scratch DESTDIR; systemd-analyze accepts both
# units (syntax, dependencies, hardening options, executables present); the installed
# ipsec-control and ipsec-dataplane validate an installed example with --check, as the units'
# ExecStartPre lines do; and the units keep the two processes independent (no Requires= or
# BindsTo= between them, Restart=on-failure on both). Needs root only for nothing; runs anywhere
# systemd-analyze does.
set -euo pipefail
TEST_NAME=80-install
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_cmd systemd-analyze make
D=$WORK/root
make -C "$TESTS_ROOT" --no-print-directory install DESTDIR="$D" >"$WORK/install.log" 2>&1 ||
    fail "make install failed: $(tail -5 "$WORK/install.log")"
for f in usr/local/sbin/ipsec-dataplane usr/local/sbin/ipsec-control usr/local/bin/ipsec-ctl \
    usr/local/bin/ipsec-dpctl etc/systemd/system/ipsec-dataplane.service \
    etc/systemd/system/ipsec-control.service usr/local/share/doc/ipsec-gateway/README.md \
    usr/local/share/doc/ipsec-gateway/examples/secgw-peer.toml; do
    [ -e "$D/$f" ] || fail "make install did not install /$f"
done
[ -x "$D/usr/local/sbin/ipsec-control" ] || fail "ipsec-control is not executable"
# The units as installed, with their paths pointed into DESTDIR, so that systemd-analyze can
# check the executables too.
mkdir -p "$WORK/units"
for u in "$D"/etc/systemd/system/*.service; do
    sed "s|/usr/local/|$D/usr/local/|g; s|/etc/ipsec-gateway/|$D/etc/ipsec-gateway/|g" "$u" \
        >"$WORK/units/$(basename "$u")"
done
(cd "$WORK/units" && systemd-analyze verify ipsec-dataplane.service ipsec-control.service) \
    >"$WORK/verify.log" 2>&1 || fail "systemd-analyze verify: $(cat "$WORK/verify.log")"
for u in ipsec-dataplane ipsec-control; do
    f=$D/etc/systemd/system/$u.service
    grep -q '^Restart=on-failure' "$f" || fail "$u.service does not restart on failure"
    ! grep -qE '^(Requires|BindsTo|PartOf)=.*ipsec-' "$f" || fail "$u.service ties its fate to the other unit"
    grep -q "^ExecStartPre=/usr/local/sbin/$u --check /etc/ipsec-gateway/gateway.toml" "$f" ||
        fail "$u.service does not validate its configuration first"
done
# What ExecStartPre runs, on an installed example.
ex=$D/usr/local/share/doc/ipsec-gateway/examples/secgw-peer.toml
"$D/usr/local/sbin/ipsec-dataplane" --check "$ex" >"$WORK/check-dp.log" 2>&1 ||
    fail "installed ipsec-dataplane --check: $(cat "$WORK/check-dp.log")"
"$D/usr/local/sbin/ipsec-control" --check "$ex" >"$WORK/check-ctl.log" 2>&1 ||
    fail "installed ipsec-control --check: $(cat "$WORK/check-ctl.log")"
printf 'hostname = "x"\n[[interface]]\nname = "o"\n' >"$WORK/bad.toml"
if "$D/usr/local/sbin/ipsec-control" --check "$WORK/bad.toml" >"$WORK/check-bad.log" 2>&1; then
    fail "ipsec-control --check accepted a broken file"
fi
grep -q "bad.toml:[0-9]" "$WORK/check-bad.log" || fail "the refusal does not name FILE:LINE: $(cat "$WORK/check-bad.log")"
log "PASS"
