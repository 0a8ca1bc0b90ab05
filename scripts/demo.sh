#!/bin/bash
# Demo: ipsec-dataplane with the static SAs of examples/secgw-peer.toml, facing DPDK's
# ipsec-secgw as the peer gateway, in network namespaces:
#
#   hA 10.10.1.1 -- [ipsec-dataplane, ns gw] == ESP == [ipsec-secgw, ns sg] -- hB 10.10.2.1
#                                                                               10.10.2.129
# 10.10.2.0/25 goes through the AES-GCM-128 SA pair (SPI 5/105), 10.10.2.128/25 through the
# AES-CBC-128 + HMAC-SHA1 pair (SPI 6/106). ipsec-secgw's configuration is derived from the
# same TOML (scripts/secgw-from-toml.py). The demo pings through both tunnels, prints our
# per-SA counters (ipsec-dpctl counters) and ipsec-secgw's port counters, and cleans up.
# Needs root; `make demo` builds everything first.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=demo
# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"

EXAMPLE=${DEMO_CONFIG:-$ROOT/examples/secgw-peer.toml}
need_cmd ping
need_dataplane
"$ROOT/scripts/build-secgw.sh" >/dev/null || fail "could not build ipsec-secgw"
topo_up
ip -n "$(ns hB)" addr add 10.10.2.129/24 dev hb0

# The example as is, except for the channel path and EAL file prefix, so that the demo cannot
# collide with a dataplane already running on this machine.
SOCK=$WORK/dataplane.sock
sed -e "s|^channel = .*|channel = \"$SOCK\"|" \
    -e "s|\"--file-prefix\", \"[^\"]*\"|\"--file-prefix\", \"$PFX-gw\"|" "$EXAMPLE" >"$WORK/demo.toml"
"$PY" "$ROOT/scripts/secgw-from-toml.py" "$WORK/demo.toml" "$MAC_HB" "$MAC_DP_OUT" \
    >"$WORK/secgw.cfg" || fail "cannot derive ipsec-secgw's config from $EXAMPLE"

secgw_start "$WORK/secgw.cfg"
dp_start "$WORK/demo.toml" "$SOCK"

echo
for dst in 10.10.2.1 10.10.2.129; do
    echo "### ping from hA (10.10.1.1) to $dst through the tunnel"
    # The first packet may wait for ARP toward ipsec-secgw.
    nsx hA ping -c 1 -W 2 "$dst" >/dev/null 2>&1 || true
    nsx hA ping -c 5 -i 0.3 -W 2 "$dst" || fail "no replies from $dst through the tunnel"
    echo
done

echo "### ipsec-dataplane: ipsec-dpctl counters"
"$DPCTL_BIN" --socket "$SOCK" counters || fail "ipsec-dpctl counters failed"
echo
echo "### ipsec-secgw: packets it sent (port 0 = decrypted toward hB, port 1 = ESP toward us)"
read -r p0 p1 _ <<<"$(secgw_sent)" || fail "no telemetry from ipsec-secgw"
echo "port 0: $p0   port 1: $p1"
echo
log "demo finished; cleaning up"
