#!/bin/bash
# The whole gateway against strongSwan: ipsec-dataplane (DPDK, af_packet) + ipsec-control
# (IKEv1 daemon) on one side, charon (IKEv1, kernel-libipsec: userspace ESP, always in UDP
# 4500) on the other, with traffic through the tunnel.
#
#   ns hA                 ns gw (ipsec-dataplane + ipsec-control)     ns cs (charon)
#   ha0 ---------------- dp-in [inside 10.10.1.254]                   10.10.2.1 on lo (its LAN)
#   10.10.1.1/24          dp-out [outside 10.99.0.1] ---------------- cs0 10.99.0.2/24
#
# Cases (CASES="acquire responder rekey" to choose):
#   acquire   - hA pings 10.10.2.1: the dataplane raises an Acquire, our daemon runs Main
#               Mode (NAT-T float: charon's encap=yes fakes NAT-D) and Quick Mode as
#               initiator, pushes the SAs, and the pings get through. Both sides count the
#               same packets: 10 echo requests out (our encaps = charon's inbound packets)
#               and 10 replies back (charon's outbound = our decaps).
#   responder - charon initiates (swanctl --initiate): our daemon answers Main and Quick Mode,
#               installs the SAs; then the pings get through, and 10 MiB of TCP go each way
#               between hA (10.10.1.1) and charon's LAN address (10.10.2.1), with the SHA-256
#               of what was sent equal to that of what was received; the per-SA packet counts
#               of both sides stay equal (our encaps = charon's inbound packets, charon's
#               outbound = our decaps).
#   rekey     - SA lifetime 120 s (IOS's minimum; soft at 90 %): our daemon rekeys
#               make-before-break while hA pings every 0.5 s; not one ping is lost across the
#               rekey, and the new SPIs carry the traffic.
# Pre-shared key, aes128-sha1-modp2048 for phase 1, esp-aes esp-sha-hmac for phase 2.
# Needs root, the release binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=60-charon-tunnel
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$TESTS_ROOT/tests/tools/charon_lab.sh" # topology, configs, charon, TCP transfer
cl_need
CASES=${CASES:-acquire responder rekey}
GW_AUTH=pre-share # identity address (ID_IPV4_ADDR) on both sides
CH_AUTH=psk
GW_P1="aes sha 14" # aes128-sha1-modp2048
GW_ESP='"esp-aes", "esp-sha-hmac"' # charon: aes128-sha1

# gw_config DIR SECONDS / charon_start DIR / gw_start DIR / ping_until SECONDS: the shared
# helpers of tests/tools/charon_lab.sh with this script's settings.
gw_config() { GW_LIFETIME=$2 cl_gw_config "$1"; }
charon_start() { cl_charon_start "$1"; }
gw_start() { cl_gw_start "$1"; }
ping_until() { cl_ping_until "$1"; }

# Per-SA packet counts: ours from ipsec-dpctl (encaps of the outbound SA, decaps of the
# inbound SA), charon's from swanctl --list-sas (bytes/packets per direction of its CHILD_SA).
our_count() { # DIR(encaps|decaps)
    dp_counters "$LOGDIR/dp.sock" "$LOGDIR/counters.json"
    "$PY" - "$LOGDIR/counters.json" "$1" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
want = sys.argv[2]
print(sum(sa.get(want, 0) for sa in c["sas"]))
EOF
}
charon_count() { # in|out
    sw "$LOGDIR" --list-sas --raw 2>/dev/null | grep -o "packets-$1=[0-9]*" | awk -F= '{ s += $2 } END { print s + 0 }'
}

case_acquire() {
    local d=$LOGDIR
    gw_config "$d" 3600
    charon_start "$d"
    gw_start "$d"
    log "hA pings 10.10.2.1: Acquire -> Main Mode + Quick Mode toward charon"
    ping_until 30
    wait_log 5 "$d/charon.log" "CHILD_SA c\{[0-9]+\} established"
    grep -q "IKE_SA gw\[[0-9]*\] established" "$d/charon.log" || fail "charon has no IKE SA"
    grep -q "%CRYPTO-5-IKMP_SA_UP" "$d/control.log" || fail "our daemon did not log phase 1 up"
    grep -q "Crypto tunnel is UP" "$d/control.log" || fail "our daemon did not log the tunnel up"
    grep -q "NAT-T" "$d/control.log" || fail "phase 1 did not detect NAT (charon's encap=yes)"
    local e0 d0 ci0 co0
    e0=$(our_count encaps) d0=$(our_count decaps) ci0=$(charon_count in) co0=$(charon_count out)
    nsx hA ping -c 10 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    local e1 d1 ci1 co1
    e1=$(our_count encaps) d1=$(our_count decaps) ci1=$(charon_count in) co1=$(charon_count out)
    log "ours: encaps +$((e1 - e0)) decaps +$((d1 - d0)); charon: in +$((ci1 - ci0)) out +$((co1 - co0))"
    [ $((e1 - e0)) = 10 ] || fail "our encaps moved by $((e1 - e0)), not 10"
    [ $((d1 - d0)) = 10 ] || fail "our decaps moved by $((d1 - d0)), not 10"
    [ $((ci1 - ci0)) = 10 ] || fail "charon's inbound packets moved by $((ci1 - ci0)), not 10"
    [ $((co1 - co0)) = 10 ] || fail "charon's outbound packets moved by $((co1 - co0)), not 10"
    log "PASS acquire"
}

# The UDP datagrams the kernel of ns cs dropped because a socket's receive buffer was full.
cs_rcvbuf_errors() {
    nsx cs cat /proc/net/snmp | awk '/^Udp:/ { if (h) { for (i = 2; i <= NF; i++) if (n[i] == "RcvbufErrors") print $i } else { h = 1; for (i = 2; i <= NF; i++) n[i] = $i } }'
}

case_responder() {
    local d=$LOGDIR
    gw_config "$d" 3600
    charon_start "$d"
    gw_start "$d"
    # let the dataplane learn charon's MAC first (charon's kernel ARPs for us when it sends)
    log "charon initiates"
    sw "$d" --initiate --ike gw --child c --timeout 20 >"$d/initiate.log" 2>&1 ||
        fail "charon could not bring the tunnel up: $(tail -5 "$d/initiate.log")"
    wait_log 10 "$d/control.log" "Crypto tunnel is UP" "$CTL_PID"
    ping_until 10
    nsx hA ping -c 5 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    # Counts before the transfers. charon's userspace ESP reads its UDP socket more slowly
    # than a TCP burst arrives, so the kernel of ns cs drops some datagrams for a full receive
    # buffer (Udp RcvbufErrors): each one is a packet we encapsulated that charon never saw.
    local e0 dc0 ci0 co0 rb0
    e0=$(our_count encaps) dc0=$(our_count decaps) ci0=$(charon_count in) co0=$(charon_count out)
    rb0=$(cs_rcvbuf_errors)
    local mib=$((10 * 1024 * 1024))
    cl_tcp_transfer hA cs 10.10.2.1 5001 "$mib"
    cl_tcp_transfer cs hA 10.10.1.1 5002 "$mib"
    # every packet either side sent through the tunnel was received by the other
    local e dc ci co rb
    e=$(($(our_count encaps) - e0)) dc=$(($(our_count decaps) - dc0))
    ci=$(($(charon_count in) - ci0)) co=$(($(charon_count out) - co0)) rb=$(($(cs_rcvbuf_errors) - rb0))
    log "2 x 10 MiB: ours encaps +$e decaps +$dc; charon in +$ci out +$co; ns cs UDP receive-buffer drops +$rb"
    [ "$e" -gt 7490 ] || fail "our encaps (+$e) are too few for 10 MiB of TCP"
    [ "$e" = $((ci + rb)) ] ||
        fail "our encaps (+$e) differ from charon's inbound packets (+$ci) plus the drops in ns cs (+$rb)"
    [ "$co" = "$dc" ] || fail "charon's outbound packets (+$co) differ from our decaps (+$dc)"
    log "PASS responder"
}

case_rekey() {
    local d=$LOGDIR
    gw_config "$d" 120
    charon_start "$d"
    gw_start "$d"
    ping_until 30
    local spi0
    spi0=$(grep -o "outbound spi 0x[0-9A-F]*" "$d/control.log" | head -1)
    log "tunnel up ($spi0); pinging every 0.5 s across the soft lifetime (108 s)"
    nsx hA ping -c 250 -i 0.5 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || true
    grep -q "rekeyed: SA pair" "$d/control.log" || fail "no rekey happened"
    local spi1
    spi1=$(grep -o "outbound spi 0x[0-9A-F]*" "$d/control.log" | tail -1)
    [ "$spi0" != "$spi1" ] || fail "the outbound SPI did not change"
    grep -q " 0% packet loss" "$d/ping.log" || fail "packets lost across the rekey: $(grep loss "$d/ping.log")"
    log "PASS rekey ($spi0 -> $spi1, $(grep -o '[0-9]* received' "$d/ping.log"))"
}

# One topology; each case runs its own dataplane, control and charon (stopped when it ends).
cl_topology
failed=""
for c in $CASES; do
    if in_case "$c" "case_$c"; then :; else failed="$failed $c"; fi
done
[ -z "$failed" ] || fail "cases failed:$failed"
log "PASS"
