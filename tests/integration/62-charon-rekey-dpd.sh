#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each case
# The whole gateway (ipsec-dataplane on af_packet + ipsec-control) against strongSwan's charon
# (IKEv1, kernel-libipsec: ESP always in UDP 4500, encap = yes): issue 3, proof items 6 (rekey
# under load) and 7 (dead peer detection). Pre-shared key, aes128-sha1-modp2048, ESP
# aes128-sha1. Topology and helpers: tests/tools/ike_lab.sh.
#
# Cases (CASES="..." to choose; default both):
#   rekey  Phase 2 lifetime about 30 s: our crypto map cannot go below IOS's 120 s, so charon
#          drives it as initiator (child rekey_time 25 s, life_time 30 s, rand_time 0; our
#          responder takes the shorter lifetime it proposes). hA pings charon's LAN address
#          every 0.1 s for 100 s (1000 echo requests) while the pair is rekeyed about every
#          25 s. Asserts: not one ping lost; at least three rekeys on our side ("rekeyed: SA
#          pair" lines, each with a new inbound and outbound SPI) and as many new CHILD_SAs on
#          charon's; afterwards each side holds exactly one pair, the same SPIs on both sides
#          (our inbound = charon's outbound and the reverse), and none of the SPIs of the
#          replaced pairs is left in our dataplane or in charon.
#   dpd    Our `[isakmp] keepalive = { seconds = 10, retries = 3 }`; charon announces DPD
#          with dpd_delay 3 s. Each side sends R-U-THERE only when it has heard nothing from
#          the other for its interval, and a R-U-THERE it receives counts as hearing, so with
#          equal intervals the two timers race and either side may do all the asking. The
#          phases make each direction happen for certain:
#          1. hA pings for 16 s. charon counts the ESP it receives as hearing from us, so it
#             stays silent, while our daemon counts only IKE: we send R-U-THERE after 10 s
#             and charon must parse it and answer.
#          2. 10 s without traffic. charon's 3 s run out first: it sends R-U-THERE and must
#             parse our R-U-THERE-ACK; the peer is still alive for us and the pair carries
#             pings.
#          Then charon is killed with SIGKILL (no DELETE): ipsec-control's log must declare
#          the peer dead (%CRYPTO-4-IKMP_NO_RESPONSE) within interval + retries x 2 s (16 s)
#          plus 3 s of slack after the kill, and our dataplane must hold no SA at all right
#          after.
# Needs root, the release binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=62-charon-rekey-dpd
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
CASES=${CASES:-rekey dpd}

# up DIR GW_SETTING... -- CHARON_SETTING...: our gateway and charon (pre-shared key, the
# defaults of tests/tools/ike_lab.sh) with a case's settings; charon initiates.
up() {
    local d=$1 gw=()
    shift
    while [ "$1" != -- ]; do gw+=("$1"); shift; done
    shift
    gw_toml "$d/gw.toml" "${gw[@]}"
    charon_up charon cs "$d" "${CHARON_QUICK[@]}" "$@"
    gw_run gw gw "$d/gw.toml"
}

# charon's CHILD_SAs, one line each: "SPI_IN SPI_OUT" (hex, lower case).
charon_pairs() {
    sw "$LOGDIR" --list-sas --raw 2>/dev/null | grep -o "spi-in=[0-9a-f]* spi-out=[0-9a-f]*" |
        sed 's/spi-in=//; s/spi-out=//' || true
}

case_rekey() {
    local d=$LOGDIR ctl=$LOGDIR/gw-control.log
    up "$d" lifetime=3600 -- rekey_time=25s life_time=30s rand_time=0s
    log "charon initiates (child rekey_time 25 s, life_time 30 s)"
    charon_initiate "$d"
    ping_until 10 hA 10.10.2.1
    log "hA pings every 0.1 s for 100 s across the rekeys"
    local rc=0
    nsx hA ping -c 1000 -i 0.1 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || rc=$?
    log "ping: $(grep 'packets transmitted' "$d/ping.log")"
    grep -q "1000 packets transmitted, 1000 received" "$d/ping.log" ||
        fail "pings lost across the rekeys (ping exit $rc): $(grep -A1 'packets transmitted' "$d/ping.log")"
    local ours theirs
    ours=$(grep -c "rekeyed: SA pair" "$ctl" || true)
    theirs=$(grep -cE "CHILD_SA c\{[0-9]+\} established" "$d/charon.log" || true)
    log "rekeys: ours $ours, charon's CHILD_SAs established $theirs (the first one included)"
    [ "$ours" -ge 3 ] || fail "only $ours rekeys on our side in 100 s"
    [ "$theirs" -ge $((ours + 1)) ] || fail "charon established $theirs CHILD_SAs for our $ours rekeys"
    # Every pair, new SPIs each time (ours: inbound/outbound from the "tunnel is UP" lines).
    grep -o "inbound spi 0x[0-9A-F]* outbound spi 0x[0-9A-F]*" "$ctl" |
        awk '{ print tolower(substr($3, 3)), tolower(substr($6, 3)) }' >"$d/pairs.txt"
    local n
    n=$(wc -l <"$d/pairs.txt")
    [ "$n" = $((ours + 1)) ] || fail "$n pairs came up on our side for $ours rekeys"
    [ "$(cut -d' ' -f1 "$d/pairs.txt" | sort -u | wc -l)" = "$n" ] || fail "an inbound SPI was reused"
    [ "$(cut -d' ' -f2 "$d/pairs.txt" | sort -u | wc -l)" = "$n" ] || fail "an outbound SPI was reused"
    # Old pairs gone on both sides: wait for a steady state (no rekey in its 5 s grace period,
    # charon done with its old CHILD_SA), then compare.
    local deadline=$((SECONDS + 15)) sas pairs
    while :; do
        sas=$(dp_sas "$d")
        pairs=$(charon_pairs)
        [ "$sas" = "1 1" ] && [ "$(echo "$pairs" | grep -c .)" = 1 ] && break
        [ "$SECONDS" -lt "$deadline" ] ||
            fail "old SAs not removed: our dataplane holds (in out) $sas, charon holds pairs: $(echo "$pairs" | tr '\n' ';')"
        sleep 0.5
    done
    local last dp_spis
    last=$(tail -1 "$d/pairs.txt")
    dp_spis=$(dp_spis "$d" | sort | tr '\n' ' ')
    local want spi_in spi_out
    read -r spi_in spi_out <<<"$last"
    want=$(printf '%s\n' "$spi_in" "$spi_out" | sort | tr '\n' ' ')
    [ "$dp_spis" = "$want" ] || fail "our dataplane holds SPIs $dp_spis, not the newest pair $last"
    # charon's spi-in is our outbound SPI, its spi-out our inbound SPI
    [ "$pairs" = "$spi_out $spi_in" ] || fail "charon's pair (in out) '$pairs' is not the mirror of our newest pair '$last'"
    log "old SAs removed on both sides; newest pair in/out 0x$spi_in/0x$spi_out on both sides"
}

case_dpd() {
    local d=$LOGDIR ctl=$LOGDIR/gw-control.log
    up "$d" keepalive="10 3" -- dpd_delay=3s
    log "charon initiates (it announces DPD; dpd_delay 3 s)"
    charon_initiate "$d"
    grep -q "received DPD vendor ID" "$d/charon.log" || fail "charon did not see our DPD vendor ID"
    ping_until 10 hA 10.10.2.1
    local ours='parsed INFORMATIONAL_V1 request [0-9]+ \[ HASH N\(DPD\) \]'
    local acks='parsed INFORMATIONAL_V1 (request|response) [0-9]+ \[ HASH N\(DPD_ACK\) \]'
    log "1. hA pings for 16 s: charon hears our ESP and stays silent, we ask after 10 s"
    nsx hA ping -c 80 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    grep -qE "$ours" "$d/charon.log" || fail "charon received no R-U-THERE from us in 16 s of traffic"
    grep -q "IKMP_NO_RESPONSE" "$ctl" && fail "our daemon declared a live peer dead"
    local acked_before
    acked_before=$(grep -cE "$acks" "$d/charon.log" || true)
    log "2. 10 s without traffic: charon asks after 3 s, we must answer"
    sleep 10
    local acked
    acked=$(grep -cE "$acks" "$d/charon.log" || true)
    [ "$acked" -gt "$acked_before" ] || fail "charon received no R-U-THERE-ACK from us in 10 s idle (its R-U-THERE: $(grep -c 'generating INFORMATIONAL_V1 request [0-9]* \[ HASH N(DPD) \]' "$d/charon.log" || true))"
    grep -q "IKMP_NO_RESPONSE" "$ctl" && fail "our daemon declared a live peer dead"
    [ "$(dp_sas "$d")" = "1 1" ] || fail "the pair went away while charon was alive"
    nsx hA ping -c 3 -i 0.2 -W 2 10.10.2.1 >>"$d/ping.log" 2>&1 || fail "pings lost while alive"
    log "DPD both ways: charon parsed $(grep -cE "$ours" "$d/charon.log") R-U-THERE and $acked R-U-THERE-ACK from us"
    log "SIGKILL to charon (pid $CHARON_PID)"
    local t0=$SECONDS
    kill -KILL "$CHARON_PID"
    wait_log 30 "$ctl" "%CRYPTO-4-IKMP_NO_RESPONSE: peer 10\.99\.0\.2 did not answer 3 R-U-THERE: declared dead" "$GW_CTL_PID"
    local took=$((SECONDS - t0))
    log "peer declared dead $took s after the kill"
    [ "$took" -le 19 ] || fail "the dead peer was detected after $took s, more than 10 + 3 x 2 + 3 s"
    local sas
    sas=$(dp_sas "$d")
    [ "$sas" = "0 0" ] || fail "SAs left in our dataplane after the peer was declared dead (in out): $sas"
    grep -q "peer dead (DPD)" "$ctl" || fail "our daemon did not log the SA deletion for DPD"
    grep -E "IKMP_NO_RESPONSE|peer dead" "$ctl" | sed 's/^.*: \(%\|IPSEC\)/  ours:   \1/' >&2
}

ike_topology
# shellcheck disable=SC2086 # the case names
run_cases -v $CASES
