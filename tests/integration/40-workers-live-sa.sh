#!/bin/bash
# Two worker lcores, and SAs changed at run time while traffic flows, against ipsec-secgw.
#
# The example configuration (examples/secgw-peer.toml: an esp-gcm 128 pair, SPIs 5/105, for
# 10.10.2.0/25 and an esp-aes + esp-sha-hmac pair, SPIs 6/106, for 10.10.2.128/25) runs with
# workers [1, 2] and two queue pairs per port. With two workers the SAs are spread over both
# (outbound by SA id, inbound by SPI: worker 0 owns the gcm outbound SA and SPI 106, worker 1
# the cbc outbound SA and SPI 105), so every flow crosses a handoff one way or the other.
#
# 1. Pings through both SA pairs. Each worker's encapsulations and decapsulations must equal the
#    sums over the SAs it owns (no SA processed by another lcore), and both workers must have
#    done some.
# 2. While hA pings 10.10.2.1 every 50 ms, the gcm outbound SA is deleted over the channel
#    (ipsec-dpctl sa delete) and installed again (ipsec-dpctl sa add). In between, the packets
#    are dropped and counted (no-sa), none leaves in clear (a capture on the ESP link holds no
#    plaintext from hA), the dataplane stays up, and replies come back after the re-add.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TEST_NAME=40-workers-live-sa
# shellcheck source=lib.sh
. "$ROOT/tests/integration/lib.sh"

need_root
need_cmd ping
need_dataplane
topo_up
ip -n "$(ns hB)" addr add 10.10.2.129/24 dev hb0

SOCK=$WORK/dataplane.sock
RING=framecnt=4096,blocksz=4096,framesz=2048
sed -e "s|^channel = .*|channel = \"$SOCK\"|" \
    -e "s|\"--file-prefix\", \"[^\"]*\"|\"--file-prefix\", \"$PFX-gw\"|" \
    -e "s|^lcores = .*|lcores = { main = 0, workers = [${WORKERS:-1, 2}] }|" \
    -e "s|iface=dp-in\"|iface=dp-in,qpairs=${QPAIRS:-2},$RING\"|" \
    -e "s|iface=dp-out\"|iface=dp-out,qpairs=${QPAIRS:-2},$RING\"|" \
    "$ROOT/examples/secgw-peer.toml" >"$WORK/gw.toml"
grep -q "workers = \[${WORKERS:-1, 2}\]" "$WORK/gw.toml" || fail "could not set the workers in the config"
grep -q "qpairs=${QPAIRS:-2}" "$WORK/gw.toml" || fail "could not set the queue pairs in the config"
"$PY" "$ROOT/scripts/secgw-from-toml.py" "$WORK/gw.toml" "$MAC_HB" "$MAC_DP_OUT" >"$WORK/secgw.cfg" ||
    fail "cannot derive ipsec-secgw's config"

secgw_start "$WORK/secgw.cfg"
dp_start "$WORK/gw.toml" "$SOCK"
warm_neighbours 4
for dst in 10.10.2.1 10.10.2.129; do
    nsx hA ping -c 1 -W 2 "$dst" >/dev/null 2>&1 || true
done

# --- 1. each SA on its owner only
for dst in 10.10.2.1 10.10.2.129; do
    if ! nsx hA ping -c 20 -i 0.05 -W 2 "$dst" >"$WORK/ping-$dst.log" 2>&1; then
        "$DPCTL_BIN" --socket "$SOCK" counters >"$WORK/counters-at-failure.txt" 2>&1 || true
        fail "pings to $dst through the tunnel failed: $(tail -2 "$WORK/ping-$dst.log"); counters: $(grep -E 'lcore|drop' "$WORK/counters-at-failure.txt" | tr '\n' ';')"
    fi
done
dp_counters "$SOCK" "$WORK/counters.json"
"$PY" - "$WORK/counters.json" <<'EOF' || fail "per-lcore counters do not match SA ownership"
import json, sys
c = json.load(open(sys.argv[1]))
owned = {}
for sa in c["sas"]:
    o = owned.setdefault(sa["owner"], {"encaps": 0, "decaps": 0})
    o["encaps"] += sa["encaps"]
    o["decaps"] += sa["decaps"]
lc = {l["worker"]: l for l in c["lcores"]}
assert sorted(lc) == [0, 1], "expected two workers, got %s" % sorted(lc)
for w in (0, 1):
    want = owned.get(w, {"encaps": 0, "decaps": 0})
    got = {"encaps": lc[w]["encaps"], "decaps": lc[w]["decaps"]}
    print("worker %d: owns SAs with %s, processed %s, handoffs in %d out %d"
          % (w, want, got, lc[w]["handoff_in"], lc[w]["handoff_out"]))
    assert got == want, "worker %d processed %s but its SAs account for %s" % (w, got, want)
    assert got["encaps"] > 0 and got["decaps"] > 0, "worker %d did no ESP work" % w
assert sum(l["handoff_in"] for l in lc.values()) > 0, "no handoff at all"
EOF
log "per-lcore ESP work matches SA ownership"

# --- 2. delete and re-add the gcm outbound SA while traffic flows
capture_start sg sg-esp esp-link
cap=$CAP_PID
nsx hA ping -c 120 -i 0.05 -W 1 10.10.2.1 >"$WORK/ping-live.log" 2>&1 &
ping_pid=$!
sleep 1.5
"$DPCTL_BIN" --socket "$SOCK" sa delete --spi 5 --dir out --sa-id 0 >>"$WORK/dpctl.log" 2>&1 ||
    fail "ipsec-dpctl sa delete failed: $(tail -2 "$WORK/dpctl.log")"
sleep 1.5
kill -0 "$DP_PID" 2>/dev/null || fail "ipsec-dataplane died after the SA delete"
"$DPCTL_BIN" --socket "$SOCK" sa add --from-config "$WORK/gw.toml" --map vpn --seq 10 \
    >>"$WORK/dpctl.log" 2>&1 || fail "ipsec-dpctl sa add failed: $(tail -2 "$WORK/dpctl.log")"
wait "$ping_pid" || true
capture_stop "$cap"
kill -0 "$DP_PID" 2>/dev/null || fail "ipsec-dataplane died during the SA changes"

received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$WORK/ping-live.log")
log "live ping: ${received:-0} of 120 replies"
[ "${received:-0}" -gt 20 ] || fail "too few replies around the SA change (${received:-0})"
[ "${received:-0}" -lt 120 ] || fail "every ping was answered while the SA was deleted: the drop did not happen"
dp_counters "$SOCK" "$WORK/counters2.json"
nosa=$("$PY" -c '
import json, sys
c = json.load(open(sys.argv[1]))
print(sum(l["drops"].get("no-sa", 0) for l in c["lcores"]))' "$WORK/counters2.json")
[ "$nosa" -gt 0 ] || fail "no packet counted as no-sa while the SA was gone"
clear=$(tcpdump -r "$WORK/esp-link.pcap" -n 'icmp and src host 10.10.1.1' 2>/dev/null | wc -l)
[ "$clear" = 0 ] || fail "$clear plaintext packet(s) from hA left on the ESP link"
last=$(tail -n 15 "$WORK/ping-live.log" | grep -c 'bytes from' || true)
[ "$last" -gt 0 ] || fail "no replies after the SA was installed again"
log "SA deleted and re-added under traffic: $nosa dropped as no-sa, none in clear, replies resumed"
log "PASS"
