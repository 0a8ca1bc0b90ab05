#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# A changed configuration applied to a running gateway (issue 4): `ipsec-ctl reload` and
# SIGHUP, against strongSwan.
#
#   ns hA                 ns gw (ipsec-dataplane + ipsec-control)     ns cs (charon)
#   ha0 ---------------- dp-in [inside 10.10.1.254]                   10.10.2.1, 10.10.3.1,
#   10.10.1.1/24          dp-out [outside 10.99.0.1] ---------------- 10.10.4.1 on lo
#                                                                     cs0 10.99.0.2/24
#
# charon has three children toward 10.10.1.0/24: c (10.10.2.0/24), c3 (10.10.3.0/24) and c4
# (10.10.4.0/24). Our gateway starts with crypto map vpn 10 (ACL 101: 10.10.1.0/24 ->
# 10.10.2.0/24) and vpn 20 (ACL 102: -> 10.10.3.0/24); pings bring both up.
#  1. The file changes: vpn 20 removed, vpn 5 added (ACL 103: -> 10.10.4.0/24; seq 5 sorts
#     first, so the file now numbers it 0, the number vpn 10's SAs have in the dataplane).
#     `ipsec-ctl reload` while hA pings 10.10.2.1 every 50 ms: not one ping is lost, vpn 10
#     keeps its SPIs, vpn 20's SAs go on both sides (charon got our DELETE: child c3 is gone
#     from `swanctl --list-sas`), and vpn 5 comes up on its first packet (child c4 up, pings
#     answered) under an SA id of its own while vpn 10 still forwards.
#  2. A file that does not validate: `ipsec-ctl reload` exits non-zero with the line and the
#     reason, and nothing changes (vpn 10 and vpn 5 still forward).
#  3. SIGHUP with vpn 5 removed again: c4 deleted at charon, vpn 10's SPIs still the same.
# Pre-shared keys and the other defaults of tests/tools/ike_lab.sh.
# Needs root, the release binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=71-reload
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
IPSEC_CTL=${IPSEC_CTL:-$TESTS_ROOT/target/release/ipsec-ctl}
[ -x "$IPSEC_CTL" ] || fail "ipsec-ctl not found at $IPSEC_CTL (run 'make build')"

D=$WORK
ike_topology
for n in 3 4; do
    ip -n "$(ns cs)" addr add "10.10.$n.1/24" dev lo
    ip -n "$(ns hA)" route add "10.10.$n.0/24" via 10.10.1.254
done

# entry SEQ ACL DST: a crypto map entry toward charon (TOML lines).
entry() {
    printf '[[crypto_map.vpn]]\nseq = %s\ntype = "ipsec-isakmp"\npeer = "10.99.0.2"\n' "$1"
    printf 'transform_set = "ts"\nmatch_address = "%s"\n' "$2"
}
# conf OUT ENTRY...: the gateway's file with vpn 10 (from gw_toml) and the given entries,
# each "SEQ ACL DST".
conf() {
    local out=$1 e seq acl dst acls=""
    shift
    gw_toml "$out.base"
    for e in "$@"; do
        read -r seq acl dst <<<"$e"
        acls+="$acl = [ { action = \"permit\", protocol = \"ip\", source = \"10.10.1.0/24\", destination = \"$dst\" } ]\n"
    done
    # the further ACLs go into the one [access_list] table, after gw_toml's ACL 101 (awk -v
    # turns the \n into newlines)
    awk -v extra="$acls" '{ print } /^101 = / { printf "%s", extra }' "$out.base" >"$out.tmp"
    for e in "$@"; do
        read -r seq acl dst <<<"$e"
        entry "$seq" "$acl" >>"$out.tmp"
    done
    mv "$out.tmp" "$out"
    rm -f "$out.base"
}
conf "$D/v1.toml" "20 102 10.10.3.0/24"
conf "$D/v2.toml" "5 103 10.10.4.0/24"
conf "$D/v3.toml"
grep -q '^102 = ' "$D/v1.toml" || fail "v1.toml has no ACL 102: $(cat "$D/v1.toml")"
cp "$D/v1.toml" "$D/gw.toml"

charon_up charon cs "$D" "${CHARON_QUICK[@]}" more_children="c3=10.10.3.0/24 c4=10.10.4.0/24"
gw_run gw gw "$D/gw.toml"
CTL_SOCK=$D/ctl.sock
wait_for 10 "the ctl socket" test -S "$CTL_SOCK"

ctl() {
    local out rc=0
    out=$("$IPSEC_CTL" --socket "$CTL_SOCK" "$@" 2>&1) || rc=$?
    [ "$rc" = 0 ] || fail "ipsec-ctl $* exited $rc: $out"
    printf '%s\n' "$out"
}
# spis SEQ: "INBOUND OUTBOUND" SPIs of crypto map vpn SEQ (ipsec-ctl --json), or nothing.
spis() {
    ctl --json show crypto ipsec sa >"$D/sa.json"
    "$PY" - "$D/sa.json" "$1" <<'EOF'
import json, sys
for f in json.load(open(sys.argv[1])):
    if f["crypto_map_seq"] == int(sys.argv[2]) and f["inbound_esp"] and f["outbound_esp"]:
        print(" ".join("%08x" % s["spi"] for s in f["inbound_esp"] + f["outbound_esp"]))
EOF
}
# child_up NAME / child_gone NAME: charon has / has no CHILD_SA NAME installed
# (swanctl --list-sas lines like "  c3: #2, reqid 2, INSTALLED, TUNNEL-in-UDP, ...").
child_up() { sw "$D" --list-sas 2>/dev/null | grep -qE "^ +$1: #[0-9]+, reqid [0-9]+, INSTALLED"; }
child_gone() { ! sw "$D" --list-sas 2>/dev/null | grep -qE "^ +$1: #"; }

log "pings bring up vpn 10 and vpn 20"
ping_until 30 hA 10.10.2.1
ping_until 30 hA 10.10.3.1
wait_for 10 "charon's child c3" child_up c3
S10=$(spis 10)
[ -n "$S10" ] || fail "no SAs for vpn 10: $(cat "$D/sa.json")"
[ -n "$(spis 20)" ] || fail "no SAs for vpn 20"
log "vpn 10 SPIs: $S10"

log "1. reload: vpn 20 removed, vpn 5 added, while hA pings 10.10.2.1 every 50 ms"
start_bg pinger hA ping -c 160 -i 0.05 -W 1 10.10.2.1
PING_PID=$BG_PID
sleep 2
cp "$D/v2.toml" "$D/gw.toml"
OUT=$(ctl reload)
log "reload said: $(echo "$OUT" | tr '\n' '|')"
echo "$OUT" | grep -q "crypto map vpn 20: removed; 1 IPsec SA pair(s) deleted, DELETE sent" ||
    fail "reload did not report vpn 20 removed: $OUT"
echo "$OUT" | grep -q "crypto map vpn 5: added: comes up on its first packet" ||
    fail "reload did not report vpn 5 added: $OUT"
! echo "$OUT" | grep -q "vpn 10" || fail "reload touched vpn 10: $OUT"
wait "$PING_PID" || true
grep -q " 0% packet loss" "$D/pinger.log" ||
    fail "pings through vpn 10 lost across the reload: $(tail -2 "$D/pinger.log")"
grep -q "160 received" "$D/pinger.log" || fail "not every ping answered: $(tail -2 "$D/pinger.log")"
[ "$(spis 10)" = "$S10" ] || fail "vpn 10's SAs changed: $S10 -> $(spis 10)"
[ -z "$(spis 20)" ] || fail "vpn 20's SAs are still shown: $(spis 20)"
wait_for 10 "charon to delete child c3 (our DELETE)" child_gone c3
grep -q "%CRYPTO-6-RELOAD: crypto map vpn 20: removed" "$D/gw-control.log" || fail "no RELOAD log line"
grep -q "%SYS-5-CONFIG_I: Configured from" "$D/gw-control.log" || fail "no CONFIG_I log line"
log "vpn 5 comes up on its first packet"
ping_until 30 hA 10.10.4.1
wait_for 10 "charon's child c4" child_up c4
[ -n "$(spis 5)" ] || fail "no SAs for vpn 5"
nsx hA ping -c 5 -i 0.2 -W 2 10.10.2.1 >"$D/ping10.log" 2>&1 || fail "vpn 10 broken after vpn 5 came up"
[ "$(spis 10)" = "$S10" ] || fail "vpn 10's SAs changed when vpn 5 came up"
ctl show crypto map >"$D/map.txt"
grep -q "Crypto Map \"vpn\" 5 ipsec-isakmp" "$D/map.txt" || fail "show crypto map lacks vpn 5: $(cat "$D/map.txt")"
! grep -q "Crypto Map \"vpn\" 20 " "$D/map.txt" || fail "show crypto map still has vpn 20"
S5=$(spis 5)

log "2. a file that does not validate changes nothing"
sed 's/^match_address = "103"/match_address = "999"/' "$D/v2.toml" >"$D/gw.toml"
rc=0
BAD=$("$IPSEC_CTL" --socket "$CTL_SOCK" reload 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "reload of a bad file exited 0: $BAD"
echo "$BAD" | grep -q "^% .*gw.toml.*999" || fail "reload of a bad file did not say where and why: $BAD"
kill -0 "$GW_CTL_PID" || fail "ipsec-control died on a bad file"
[ "$(spis 5)" = "$S5" ] && [ "$(spis 10)" = "$S10" ] || fail "a bad file changed the SAs"
nsx hA ping -c 3 -i 0.2 -W 2 10.10.4.1 >/dev/null 2>&1 || fail "vpn 5 broken by a bad file"

log "3. SIGHUP with vpn 5 removed"
cp "$D/v3.toml" "$D/gw.toml"
kill -HUP "$GW_CTL_PID"
wait_log 10 "$D/gw-control.log" "%CRYPTO-6-RELOAD: crypto map vpn 5: removed" "$GW_CTL_PID"
wait_for 10 "charon to delete child c4" child_gone c4
[ -z "$(spis 5)" ] || fail "vpn 5's SAs still shown after SIGHUP"
[ "$(spis 10)" = "$S10" ] || fail "vpn 10's SAs changed on SIGHUP"
nsx hA ping -c 5 -i 0.2 -W 2 10.10.2.1 >"$D/ping10.log" 2>&1 || fail "vpn 10 broken after SIGHUP"
kill -0 "$GW_CTL_PID" || fail "ipsec-control ended on SIGHUP"
log "PASS"
