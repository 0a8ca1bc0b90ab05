#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each case
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
# Pre-shared key, aes128-sha1-modp2048 for phase 1, esp-aes esp-sha-hmac for phase 2 (the
# defaults of tests/tools/ike_lab.sh, which also has the topology and the helpers).
# Needs root, the release binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=60-charon-tunnel
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
CASES=${CASES:-acquire responder rekey}

# up DIR SECONDS: charon and our gateway (crypto map lifetime SECONDS) running, both from
# tests/tools/ike_lab.sh's defaults: pre-shared key, identities the addresses (ID_IPV4_ADDR).
up() {
    gw_toml "$1/gw.toml" lifetime="$2"
    charon_up charon cs "$1" "${CHARON_QUICK[@]}"
    gw_run gw gw "$1/gw.toml"
}

case_acquire() {
    local d=$LOGDIR ctl=$LOGDIR/gw-control.log
    up "$d" 3600
    log "hA pings 10.10.2.1: Acquire -> Main Mode + Quick Mode toward charon"
    ping_until 30 hA 10.10.2.1
    wait_log 5 "$d/charon.log" "CHILD_SA c\{[0-9]+\} established"
    grep -q "IKE_SA gw\[[0-9]*\] established" "$d/charon.log" || fail "charon has no IKE SA"
    grep -q "%CRYPTO-5-IKMP_SA_UP" "$ctl" || fail "our daemon did not log phase 1 up"
    grep -q "Crypto tunnel is UP" "$ctl" || fail "our daemon did not log the tunnel up"
    grep -q "NAT-T" "$ctl" || fail "phase 1 did not detect NAT (charon's encap=yes)"
    # per-SA packet counts: our encaps = charon's inbound packets, charon's outbound = our decaps
    counts_mark "$d"
    nsx hA ping -c 10 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    counts_since "$d" 10
    log "PASS acquire"
}

# The UDP datagrams the kernel of ns cs dropped because a socket's receive buffer was full.
cs_rcvbuf_errors() {
    nsx cs cat /proc/net/snmp | awk '/^Udp:/ { if (h) { for (i = 2; i <= NF; i++) if (n[i] == "RcvbufErrors") print $i } else { h = 1; for (i = 2; i <= NF; i++) n[i] = $i } }'
}

case_responder() {
    local d=$LOGDIR
    up "$d" 3600
    log "charon initiates"
    charon_initiate "$d" 20
    ping_until 10 hA 10.10.2.1
    nsx hA ping -c 5 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    # Counts before the transfers. charon's userspace ESP reads its UDP socket more slowly
    # than a TCP burst arrives, so the kernel of ns cs drops some datagrams for a full receive
    # buffer (Udp RcvbufErrors): each one is a packet we encapsulated that charon never saw.
    local rb0
    counts_mark "$d"
    rb0=$(cs_rcvbuf_errors)
    local mib=$((10 * 1024 * 1024))
    tcp_transfer hA cs 10.10.2.1 5001 "$mib"
    tcp_transfer cs hA 10.10.1.1 5002 "$mib"
    # every packet either side sent through the tunnel was received by the other
    counts_since "$d"
    local e=${DELTA[0]} dc=${DELTA[1]} ci=${DELTA[2]} co=${DELTA[3]} rb
    rb=$(($(cs_rcvbuf_errors) - rb0))
    log "2 x 10 MiB: ours encaps +$e decaps +$dc; charon in +$ci out +$co; ns cs UDP receive-buffer drops +$rb"
    [ "$e" -gt 7490 ] || fail "our encaps (+$e) are too few for 10 MiB of TCP"
    [ "$e" = $((ci + rb)) ] ||
        fail "our encaps (+$e) differ from charon's inbound packets (+$ci) plus the drops in ns cs (+$rb)"
    [ "$co" = "$dc" ] || fail "charon's outbound packets (+$co) differ from our decaps (+$dc)"
    log "PASS responder"
}

case_rekey() {
    local d=$LOGDIR ctl=$LOGDIR/gw-control.log
    up "$d" 120
    ping_until 30 hA 10.10.2.1
    local spi0
    spi0=$(grep -o "outbound spi 0x[0-9A-F]*" "$ctl" | head -1)
    log "tunnel up ($spi0); pinging every 0.5 s across the soft lifetime (108 s)"
    nsx hA ping -c 250 -i 0.5 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || true
    grep -q "rekeyed: SA pair" "$ctl" || fail "no rekey happened"
    local spi1
    spi1=$(grep -o "outbound spi 0x[0-9A-F]*" "$ctl" | tail -1)
    [ "$spi0" != "$spi1" ] || fail "the outbound SPI did not change"
    grep -q " 0% packet loss" "$d/ping.log" || fail "packets lost across the rekey: $(grep loss "$d/ping.log")"
    log "PASS rekey ($spi0 -> $spi1, $(grep -o '[0-9]* received' "$d/ping.log"))"
}

# One topology; each case runs its own dataplane, control and charon (stopped when it ends).
ike_topology
# shellcheck disable=SC2086 # the case names
run_cases $CASES
