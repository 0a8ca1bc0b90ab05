#!/bin/bash
# The operator's view (issue 4) on a live tunnel: ipsec-ctl against our gateway
# (ipsec-dataplane + ipsec-control) with strongSwan charon as the peer, the topology of
# 60-charon-tunnel.sh:
#
#   ns hA                 ns gw (ipsec-dataplane + ipsec-control)     ns cs (charon)
#   ha0 ---------------- dp-in [inside 10.10.1.254]                   10.10.2.1 on lo (its LAN)
#   10.10.1.1/24          dp-out [outside 10.99.0.1] ---------------- cs0 10.99.0.2/24
#
# One run, in order:
#   show      - the tunnel comes up from a ping; after 10 more pings `sh cr ipsec sa` shows
#               `#pkts encaps: N` / `#pkts decaps: N` equal to charon's packets-in/-out
#               (`swanctl --list-sas --raw`) and to ipsec-dpctl's, with charon's SPIs crossed
#               (our inbound = charon's spi-out), `Tunnel UDP-Encaps` and the map's lifetime;
#               `sh cr isa sa` shows QM_IDLE for 10.99.0.2; `sh cr en conn ac` lists the IKE
#               SA and both IPsec SAs with their conn-ids and the same counts; --json parses
#               and agrees; metrics are served on [ctl] metrics.
#   errors    - `sh c` exits non-zero with `% Ambiguous command`, `sh cr foo` with
#               `% Invalid input`; a user who is not root (uid/gid 65534) is refused; a
#               malformed frame gets `% Malformed request` and the daemon keeps serving.
#   debug     - `ipsec-ctl debug crypto isakmp` (RUST_LOG=info for the daemon) receives the
#               debug-level ISAKMP lines of the next exchange, which stderr does not show.
#   clear     - `clear crypto sa peer 10.99.0.2` sends DELETE: charon logs it and deletes
#               its CHILD_SA, our dataplane holds no SA, `sh cr ipsec sa` shows nothing; the
#               next ping brings the tunnel back (new SPIs) through the same ISAKMP SA.
#   stop      - SIGTERM: the ctl socket file is removed.
# Pre-shared key, aes128-sha1-modp2048 for phase 1, esp-aes esp-sha-hmac for phase 2.
# Needs root, the release binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=70-ctl
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
need_cmd setpriv curl
IPSEC_CTL=${IPSEC_CTL:-$TESTS_ROOT/target/release/ipsec-ctl}
[ -x "$IPSEC_CTL" ] || fail "ipsec-ctl not found at $IPSEC_CTL (run 'make build')"
PEER=10.99.0.2
LOGDIR=$WORK
METRICS_PORT=$((20000 + $$ % 20000))

SOCK() { echo "$LOGDIR/run/ctl.sock"; }
# ctl ARGS...: one ipsec-ctl command (stdout), failing the test on a non-zero exit.
ctl() {
    local out rc=0
    out=$("$IPSEC_CTL" --socket "$(SOCK)" "$@" 2>&1) || rc=$?
    [ "$rc" = 0 ] || fail "ipsec-ctl $* exited $rc: $out"
    printf '%s\n' "$out"
}

# charon's first CHILD_SA's spi-in / spi-out.
charon_spi() { sw "$LOGDIR" --list-sas --raw 2>/dev/null | grep -o "spi-$1=[0-9a-fA-F]*" | head -1 | cut -d= -f2; }
# ipsec-dpctl's totals over our SAs.
dp_total() {
    dp_counters "$LOGDIR/dp.sock" "$LOGDIR/counters.json"
    "$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); print(sum(s.get(sys.argv[2],0) for s in c["sas"]), len(c["sas"]))' "$LOGDIR/counters.json" "$1"
}
# field TEXT REGEX: the first number after REGEX in TEXT.
field() { grep -oE "$2 *[0-9]+" <<<"$1" | head -1 | grep -oE '[0-9]+$'; }
hex_up() { printf '%s' "$1" | tr 'a-f' 'A-F' | sed 's/^0X//; s/^0*//'; }

case_show() {
    log "hA pings 10.10.2.1: the tunnel comes up"
    ping_until 30 hA 10.10.2.1
    wait_log 5 "$LOGDIR/charon.log" "CHILD_SA c\{[0-9]+\} established"
    nsx hA ping -c 10 -i 0.2 -W 2 10.10.2.1 >"$LOGDIR/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$LOGDIR/ping.log")"
    sleep 0.5
    local sa ci co enc dec
    sa=$(ctl show crypto ipsec sa)
    printf '%s\n' "$sa" >"$LOGDIR/show-ipsec-sa.txt"
    ci=$(charon_count "$LOGDIR" in) co=$(charon_count "$LOGDIR" out)
    enc=$(field "$sa" '#pkts encaps:') dec=$(field "$sa" '#pkts decaps:')
    log "sh cr ipsec sa: encaps $enc decaps $dec; charon: in $ci out $co"
    [ -n "$enc" ] && [ "$enc" -ge 10 ] || fail "#pkts encaps ($enc) below the 10 pings: $sa"
    [ "$enc" = "$ci" ] || fail "#pkts encaps: $enc, charon's packets-in: $ci"
    [ "$dec" = "$co" ] || fail "#pkts decaps: $dec, charon's packets-out: $co"
    [ "$(field "$sa" '#pkts encrypt:')" = "$enc" ] || fail "#pkts encrypt differs from encaps"
    [ "$(field "$sa" '#pkts verify:')" = "$dec" ] || fail "#pkts verify differs from decaps"
    local dpe dpd
    read -r dpe _ <<<"$(dp_total encaps)"
    read -r dpd _ <<<"$(dp_total decaps)"
    [ "$dpe" = "$enc" ] && [ "$dpd" = "$dec" ] || fail "ipsec-dpctl says encaps $dpe decaps $dpd"
    # SPIs: our inbound SA is charon's outbound one and vice versa
    local c_in c_out our_in our_out
    c_in=$(hex_up "$(charon_spi in)") c_out=$(hex_up "$(charon_spi out)")
    our_in=$(grep -A1 'inbound esp sas:' <<<"$sa" | grep -oE 'spi: 0x[0-9A-F]+' | head -1 | sed 's/spi: 0x//; s/^0*//')
    our_out=$(grep -oE 'current outbound spi: 0x[0-9A-F]+' <<<"$sa" | sed 's/.*0x//; s/^0*//')
    log "SPIs: ours in $our_in out $our_out; charon's in $c_in out $c_out"
    [ -n "$our_in" ] && [ "$our_in" = "$c_out" ] || fail "our inbound SPI $our_in is not charon's spi-out $c_out"
    [ -n "$our_out" ] && [ "$our_out" = "$c_in" ] || fail "our outbound SPI $our_out is not charon's spi-in $c_in"
    local want
    for want in "interface: outside" "Crypto map tag: vpn, local addr 10.99.0.1" \
        "local  ident (addr/mask/prot/port): (10.10.1.0/255.255.255.0/0/0)" \
        "remote ident (addr/mask/prot/port): (10.10.2.0/255.255.255.0/0/0)" \
        "current_peer $PEER port 4500" "PERMIT, flags={origin_is_acl,}" \
        "in use settings ={Tunnel UDP-Encaps, }" "transform: esp-aes 128 esp-sha-hmac ," \
        "path mtu 1500" "replay detection support: Y" "Status: ACTIVE"; do
        grep -qF -- "$want" <<<"$sa" || fail "'$want' not in sh cr ipsec sa:
$sa"
    done
    grep -qE 'remaining key lifetime \(k/sec\): \((4608000|46079[0-9]{2})/3[0-9]{3}\)' <<<"$sa" ||
        fail "no remaining k/sec lifetime near (4608000/3600): $sa"
    # abbreviated, and filtered by peer and map
    local by_peer by_map other
    by_peer=$(ctl sh cr ipsec sa peer $PEER)
    by_map=$(ctl sh cr ips sa map vpn)
    other=$(ctl sh cr ipsec sa peer 10.99.0.77)
    [ "$by_peer" = "$by_map" ] && grep -qF "current_peer $PEER" <<<"$by_peer" || fail "peer and map filters differ"
    [ -z "$(tr -d '[:space:]' <<<"$other")" ] || fail "a filter on another peer shows SAs: $other"
    log "PASS show crypto ipsec sa (encaps $enc = charon in, decaps $dec = charon out, SPIs crossed)"

    local isa
    isa=$(ctl sh cr isa sa)
    printf '%s\n' "$isa" >"$LOGDIR/show-isakmp-sa.txt"
    # we initiated: dst is charon (the responder)
    grep -qE "^$PEER +10\.99\.0\.1 +QM_IDLE +[0-9]+ +0 ACTIVE" <<<"$isa" || fail "no QM_IDLE row for $PEER: $isa"
    local p1conn detail
    p1conn=$(grep -E "QM_IDLE" <<<"$isa" | awk '{ print $4 }')
    detail=$(ctl sh cr isa sa detail)
    grep -qE "^$p1conn +10\.99\.0\.1 +$PEER .* N$" <<<"$detail" || fail "isakmp sa detail: no NAT-T capability: $detail"
    log "PASS show crypto isakmp sa (QM_IDLE, conn-id $p1conn)"

    local en conn_in conn_out
    en=$(ctl sh cr en conn ac)
    printf '%s\n' "$en" >"$LOGDIR/show-engine.txt"
    conn_in=$(grep -A4 'inbound esp sas:' <<<"$sa" | grep -oE 'conn id: [0-9]+' | grep -oE '[0-9]+')
    conn_out=$(grep -A4 'outbound esp sas:' <<<"$sa" | grep -oE 'conn id: [0-9]+' | grep -oE '[0-9]+')
    grep -qE "^ *$p1conn +outside +10\.99\.0\.1 +set +HMAC_SHA\+AES_128_CB +0 +0$" <<<"$en" || fail "no IKE SA row $p1conn: $en"
    grep -qE "^ *$conn_in +outside +10\.99\.0\.1 +set +HMAC_SHA\+AES_128_CB +0 +$dec$" <<<"$en" || fail "no inbound row $conn_in with Decrypt $dec: $en"
    grep -qE "^ *$conn_out +outside +10\.99\.0\.1 +set +HMAC_SHA\+AES_128_CB +$enc +0$" <<<"$en" || fail "no outbound row $conn_out with Encrypt $enc: $en"
    [ "$(grep -cE '^ *[0-9]+ +outside' <<<"$en")" = 3 ] || fail "not exactly 3 connections: $en"
    log "PASS show crypto engine connections active (IKE $p1conn, in $conn_in, out $conn_out)"

    # --json parses and agrees
    "$IPSEC_CTL" --socket "$(SOCK)" --json show crypto ipsec sa >"$LOGDIR/ipsec-sa.json" || fail "--json show crypto ipsec sa failed"
    "$PY" - "$LOGDIR/ipsec-sa.json" "$enc" "$dec" "$PEER" <<'EOF' || fail "--json output does not agree: $(cat "$LOGDIR/ipsec-sa.json")"
import json, sys
v = json.load(open(sys.argv[1]))
assert len(v) == 1, v
f = v[0]
assert f["pkts_encaps"] == int(sys.argv[2]) and f["pkts_decaps"] == int(sys.argv[3]), f
assert f["current_peer"] == sys.argv[4] and f["crypto_map"] == "vpn"
assert f["inbound_esp"][0]["udp_encapsulated"] is True
assert f["current_outbound_spi"] == f["outbound_esp"][0]["spi"]
EOF
    local js
    for js in "show crypto isakmp sa" "show crypto engine connections active" "show crypto map" \
        "show crypto isakmp policy" "show crypto ipsec transform-set" "show crypto engine configuration" \
        "show crypto engine accelerator statistics"; do
        # shellcheck disable=SC2086
        "$IPSEC_CTL" --socket "$(SOCK)" --json $js | "$PY" -c 'import json,sys; json.load(sys.stdin)' ||
            fail "--json $js does not parse"
    done
    local map pol
    map=$(ctl sh cr map) pol=$(ctl sh cr isa policy)
    grep -qF "Current peer: $PEER" <<<"$map" || fail "sh cr map: no current peer: $map"
    grep -q "Default protection suite" <<<"$pol" || fail "sh cr isa policy: no default suite: $pol"
    log "PASS --json (ipsec sa counts agree; 7 other show commands parse)"
    # the engine as the dataplane reports it: its version (Hello), the library its SAs use,
    # and what a packet costs on the worker (cycles while it had packets / packets in)
    local conf acc cpp
    conf=$(ctl show crypto engine configuration) acc=$(ctl show crypto engine accelerator statistics)
    grep -qE "crypto engine version: +ipsec-dataplane [0-9]+\.[0-9]+" <<<"$conf" ||
        fail "engine configuration: no dataplane version: $conf"
    grep -qE "^ +esp-aes 128 esp-sha-hmac +rustcrypto$" <<<"$conf" ||
        fail "engine configuration: not the backend the SAs use: $conf"
    cpp=$(grep -oE "cycles per packet: [0-9]+" <<<"$acc" | head -1 | grep -oE "[0-9]+$" || true)
    [ -n "$cpp" ] && [ "$cpp" -gt 0 ] || fail "accelerator statistics: no cycles per packet: $acc"
    # and its split: the pipeline's part, and the ports' part, adding up to it
    local split
    split=$(grep -oE "cycles per packet: $cpp \(pipeline [0-9]+, ports [0-9]+\)" <<<"$acc" | head -1 || true)
    [ -n "$split" ] || fail "accelerator statistics: cycles per packet not split into pipeline and ports: $acc"
    local pipe ports
    pipe=$(grep -oE "pipeline [0-9]+" <<<"$split" | grep -oE "[0-9]+") ports=$(grep -oE "ports [0-9]+" <<<"$split" | grep -oE "[0-9]+")
    [ "$pipe" -gt 0 ] && [ $((pipe + ports)) = "$cpp" ] || fail "accelerator statistics: pipeline $pipe + ports $ports != $cpp"
    local sleeps
    sleeps=$(grep -oE "idle sleeps: [0-9]+" <<<"$acc" | head -1 | grep -oE "[0-9]+$" || true)
    [ -n "$sleeps" ] && [ "$sleeps" -gt 0 ] || fail "accelerator statistics: rx_mode adaptive, but no idle sleeps: $acc"
    log "PASS engine: $(grep -E 'engine version' <<<"$conf" | xargs), esp-aes esp-sha-hmac on rustcrypto, $split, $sleeps idle sleeps"

    local m
    m=$(nsx gw curl -s --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics") || fail "no metrics on 127.0.0.1:$METRICS_PORT"
    grep -qE "^ipsec_sa_packets_total\{spi=\"0x0*$our_out\",direction=\"outbound\".*\} $enc$" <<<"$m" ||
        fail "metrics lack the outbound SA's $enc packets: $(grep ipsec_sa_packets_total <<<"$m")"
    grep -qE '^ipsec_ike_sas\{state="QM_IDLE"\} 1$' <<<"$m" || fail "metrics: no QM_IDLE IKE SA: $(grep ipsec_ike <<<"$m")"
    grep -qE '^ipsec_lcore_idle_sleeps_total\{lcore="1",worker="0"\} [1-9][0-9]*$' <<<"$m" ||
        fail "metrics: no idle sleeps of the adaptive worker: $(grep ipsec_lcore_idle <<<"$m")"
    log "PASS metrics served on [ctl] metrics (in ns gw): the outbound SA's packets, the QM_IDLE IKE SA"
}

case_errors() {
    local out rc
    # `sh c` is not ambiguous here (crypto is the only show keyword starting with c): it
    # is incomplete; `sh cr i` (isakmp / ipsec) is the ambiguous one
    rc=0 out=$("$IPSEC_CTL" --socket "$(SOCK)" sh c 2>&1) || rc=$?
    [ "$rc" != 0 ] && grep -qE "% (Ambiguous|Incomplete) command" <<<"$out" || fail "sh c: exit $rc, $out"
    rc=0 out=$("$IPSEC_CTL" --socket "$(SOCK)" sh cr i sa 2>&1) || rc=$?
    [ "$rc" != 0 ] && grep -q "% Ambiguous command" <<<"$out" || fail "sh cr i sa: exit $rc, $out"
    rc=0 out=$("$IPSEC_CTL" --socket "$(SOCK)" sh cr foo 2>&1) || rc=$?
    [ "$rc" != 0 ] && grep -q "% Invalid input" <<<"$out" || fail "sh cr foo: exit $rc, $out"
    log "PASS sh c (Incomplete), sh cr i sa (Ambiguous), sh cr foo (Invalid input) exit non-zero"
    # a user that is not root: the directory lets it reach the socket; the daemon refuses it
    chmod 0755 "$LOGDIR" "$LOGDIR/run"
    chmod 0666 "$(SOCK)"
    rc=0 out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$IPSEC_CTL" --socket "$(SOCK)" sh cr isa sa 2>&1) || rc=$?
    chmod 0600 "$(SOCK)"
    [ "$rc" != 0 ] && grep -q "Access denied" <<<"$out" || fail "uid 65534 was not refused: exit $rc, $out"
    log "PASS a non-root user is refused (exit $rc: $(head -1 <<<"$out"))"
    # malformed frames: bad JSON, then a frame too large; each gets an error; the daemon serves on
    "$PY" - "$(SOCK)" <<'EOF' || fail "malformed frames were not answered with an error"
import json, socket, struct, sys
def frames(s):
    buf = b""
    while True:
        while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
            n = struct.unpack(">I", buf[:4])[0]
            yield json.loads(buf[4:4 + n])
            buf = buf[4 + n:]
        d = s.recv(65536)
        if not d:
            return
        buf += d
for payload in (b"{this is not json", struct.pack(">I", 1 << 30)):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(sys.argv[1])
    it = frames(s)
    assert next(it)["type"] == "hello"
    s.sendall(struct.pack(">I", len(payload)) + payload if payload.startswith(b"{") else payload)
    reply = next(it)
    assert reply["type"] == "reply" and reply["exit_code"] != 0, reply
    assert "Malformed request" in reply["output"], reply
    print(reply["output"].strip())
    s.close()
EOF
    kill -0 "$CTL_PID" || fail "ipsec-control died after the malformed frames"
    out=$(ctl sh cr isa sa)
    grep -q QM_IDLE <<<"$out" || fail "the daemon does not serve after the malformed frames: $out"
    log "PASS malformed requests get '% Malformed request' and the daemon keeps serving"
}

case_debug() {
    "$IPSEC_CTL" --socket "$(SOCK)" debug crypto isakmp >"$LOGDIR/debug-isakmp.log" 2>&1 &
    local dbg=$!
    _PIDS+=("$dbg")
    wait_log 5 "$LOGDIR/debug-isakmp.log" "debugging is on"
    sleep 0.3
    # a new phase 1 from charon's side: debug lines of Main Mode and Quick Mode
    sw "$LOGDIR" --initiate --ike gw --child c --timeout 20 >"$LOGDIR/initiate.log" 2>&1 || fail "charon could not initiate: $(tail -3 "$LOGDIR/initiate.log")"
    wait_log 10 "$LOGDIR/debug-isakmp.log" "Crypto tunnel is UP"
    stop_pid "$dbg" TERM
    local n
    n=$(grep -cE "ISAKMP" "$LOGDIR/debug-isakmp.log" || true)
    grep -qE "^\*[A-Z][a-z]{2} [ 0-9]{2} [0-9:.]+: " "$LOGDIR/debug-isakmp.log" || fail "debug lines without the IOS timestamp"
    # the debug-level lines reached the session, not stderr (RUST_LOG=info)
    local l
    # debug-level lines of Main Mode (processing ... payload, state changes), with the conn-id
    l=$(grep -E "ISAKMP:\([0-9]+\): ?(processing|Old State)" "$LOGDIR/debug-isakmp.log" | head -1 | sed 's/^\*[^:]*:[^:]*:[^:]*: //' || true)
    [ -n "$l" ] || fail "no debug-level ISAKMP line in the session: $(head "$LOGDIR/debug-isakmp.log")"
    ! grep -qF -- "$l" "$LOGDIR/gw-control.log" || fail "debug line '$l' also went to stderr at RUST_LOG=info"
    log "PASS debug crypto isakmp: $n ISAKMP lines in the session, debug ones not on stderr ('$l')"
    # charon's own initiation made a second CHILD_SA pair; clear them all before the next case
    ctl clear crypto sa >/dev/null
    sleep 1
}

case_clear() {
    ping_until 20 hA 10.10.2.1
    local sa0 spi0
    sa0=$(ctl sh cr ipsec sa)
    spi0=$(grep -oE 'current outbound spi: 0x[0-9A-F]+' <<<"$sa0" | head -1)
    local dels0
    dels0=$(grep -cE "received DELETE for ESP CHILD_SA|closing CHILD_SA" "$LOGDIR/charon.log" || true)
    log "clear crypto sa peer $PEER ($spi0)"
    ctl clear crypto sa peer "$PEER" >/dev/null
    local deadline=$((SECONDS + 10))
    until [ "$(grep -cE "received DELETE for ESP CHILD_SA|closing CHILD_SA" "$LOGDIR/charon.log" || true)" -gt "$dels0" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "charon logged no DELETE / CHILD_SA closing"
        sleep 0.2
    done
    wait_for 10 "charon's CHILD_SA to go" sh -c "! STRONGSWAN_CONF='$LOGDIR/strongswan.conf' swanctl --list-sas --raw --uri 'unix://$LOGDIR/charon.vici' | grep -q 'spi-in='"
    local n
    read -r _ n <<<"$(dp_total encaps)"
    [ "$n" = 0 ] || fail "our dataplane still holds $n SAs"
    local left isa
    left=$(ctl sh cr ipsec sa) isa=$(ctl sh cr isa sa)
    [ -z "$(tr -d '[:space:]' <<<"$left")" ] || fail "sh cr ipsec sa still shows SAs: $left"
    grep -q QM_IDLE <<<"$isa" || fail "the ISAKMP SA went too (clear crypto sa keeps it): $isa"
    log "PASS clear crypto sa peer: DELETE in charon's log, no CHILD_SA there, no SA in our dataplane"
    ping_until 20 hA 10.10.2.1
    local spi1 sa1
    sa1=$(ctl sh cr ipsec sa)
    spi1=$(grep -oE 'current outbound spi: 0x[0-9A-F]+' <<<"$sa1" | head -1)
    [ -n "$spi1" ] && [ "$spi1" != "$spi0" ] || fail "no new SA after the ping ($spi0 -> $spi1)"
    log "PASS the next ping brings the tunnel back ($spi0 -> $spi1)"
}

case_stop() {
    stop_pid "$CTL_PID" TERM
    [ ! -e "$(SOCK)" ] || fail "the ctl socket $(SOCK) is still there after SIGTERM"
    log "PASS the ctl socket goes away with the daemon"
}

ike_topology
ip -n "$(ns gw)" link set lo up # the metrics endpoint listens on 127.0.0.1 in ns gw
mkdir -p "$LOGDIR/run"
# rx_mode adaptive: this gateway's worker sleeps when idle (every other test's polls); the
# traffic below must pass all the same, and the sleeps show in the statistics
gw_toml "$LOGDIR/gw.toml" ctl="$LOGDIR/run/ctl.sock" metrics="127.0.0.1:$METRICS_PORT" p1="aes sha 14" \
    rx_mode=adaptive
charon_up charon cs "$LOGDIR" tries=3
# the heap on hugepages, as the systemd unit starts it (GLIBC_TUNABLES): 32 pages of 2 MB
# free for it, given back afterwards; the dataplane must say where its SA memory landed
HP=/proc/sys/vm/nr_hugepages
HP_BEFORE=$(cat "$HP")
on_cleanup "echo $HP_BEFORE >$HP"
echo $((HP_BEFORE + 32)) >"$HP"
GLIBC_TUNABLES=glibc.malloc.hugetlb=2 gw_run gw gw "$LOGDIR/gw.toml"
grep -q "%DATAPLANE-6-HEAP: SA memory on 2048 kB pages" "$LOGDIR/gw-dataplane.log" ||
    fail "the dataplane's SA memory is not on hugepages: $(grep HEAP "$LOGDIR/gw-dataplane.log"; grep -i hugepages_ /proc/meminfo | xargs)"
log "PASS SA memory on 2 MB pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=2, $(grep HugePages_Free /proc/meminfo | xargs))"
CTL_PID=$GW_CTL_PID
wait_for 10 "the ctl socket" test -S "$(SOCK)"
for c in show errors debug clear stop; do
    "case_$c"
done
log "PASS"
