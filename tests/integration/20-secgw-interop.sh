#!/bin/bash
# ipsec-dataplane against DPDK's ipsec-secgw, live, on the namespace topology of lib.sh:
#   hA -- [ipsec-dataplane, ns gw] == ESP == [ipsec-secgw, ns sg] -- hB
# For each transform both have x {tunnel IPv4, tunnel IPv6, transport IPv4}:
#   1. ping hA -> hB (the replies come back through both gateways);
#   2. a TCP transfer of TCP_BYTES (10 MiB) each way, SHA-256 compared at both ends;
#   3. the first ESP packets of each direction (full captures where they arrive) checked field by field
#      by esp_check.py (scapy) and tshark: ours strictly, secgw's too (its legacy DES path is
#      known to repeat IVs, so IV reuse is tolerated for secgw's packets there only);
#   4. packet counts agree: our per-SA encaps/decaps (ipsec-dpctl counters --json), the ESP
#      packets per SPI in header captures, and ipsec-secgw's port counters; packets a receiving
#      port missed (af_packet ring full, "imissed") are accounted for, not ignored.
# UNDER_TEST=secgw puts a second ipsec-secgw in our place (see 12-secgw-pair.sh): the same
# checks then prove the harness itself, with our counters replaced by that secgw's.
# Every case runs even if an earlier one failed; the summary lists each case's verdict and the
# script fails if any case failed. CASES (env) restricts the cases: "transform:mode:family".
set -euo pipefail
TEST_NAME=20-secgw-interop
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

TRANSFORMS="gcm128 gcm256 aes128-sha1 aes256-sha256 3des-sha1 des-sha1"
if [ -z "${CASES:-}" ]; then
    CASES=""
    for tf in $TRANSFORMS; do CASES+=" $tf:tunnel:4 $tf:tunnel:6 $tf:transport:4"; done
fi
TCP_BYTES=${TCP_BYTES:-10485760}
PINGS=${PINGS:-3}
FULL_PKTS=${FULL_PKTS:-200} # packets captured in full for the field-by-field check

UNDER_TEST=${UNDER_TEST:-ipsec-dataplane}
need_cmd tshark tcpdump ping
[ "$UNDER_TEST" = secgw ] || need_dataplane
"$TESTS_ROOT/scripts/build-secgw.sh" >/dev/null || fail "could not build ipsec-secgw"
topo_up

# tcp_transfer FROM_NS TO_NS TO_ADDR PORT: TCP_BYTES from one host to the other, hashes compared.
tcp_transfer() {
    local from=$1 to=$2 addr=$3 port=$4
    start_bg "recv-$port" "$to" "$PY" "$TOOLS/tcp_xfer.py" recv --listen "$addr" --port "$port" \
        --timeout 60
    local rpid=$BG_PID
    wait_log 10 "$LOGDIR/recv-$port.log" '^listening' "$rpid"
    local sent
    sent=$(nsx "$from" timeout 90 "$PY" "$TOOLS/tcp_xfer.py" send --to "$addr" --port "$port" \
        --bytes "$TCP_BYTES" --timeout 60 2>&1) ||
        fail "TCP transfer $from -> $to ($addr) failed: $sent"
    wait "$rpid" 2>/dev/null || true
    local got
    got=$(grep '^bytes=' "$LOGDIR/recv-$port.log" || true)
    [ -n "$got" ] || fail "TCP receiver in $to reported nothing: $(tail -2 "$LOGDIR/recv-$port.log")"
    [ "$sent" = "$got" ] || fail "TCP transfer $from -> $to corrupted: sent '$sent', received '$got'"
    log "TCP $from -> $to: $got"
}

run_case() {
    local tf=$1 mode=$2 fam=$3
    TEST_NAME="20-secgw-interop[$tf/$mode/v$fam]"
    local dir=$LOGDIR sock=$LOGDIR/dp.sock
    local ids
    ids=$("$PY" "$TOOLS/gen_configs.py" --transform "$tf" --mode "$mode" --family "$fam" \
        --out "$dir" --file-prefix "$PFX-gw" --channel "$sock") || fail "config generation failed"
    local spi_out spi_in
    spi_out=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["out_spi"])' "$ids")
    spi_in=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["in_spi"])' "$ids")
    local src dst ping=(ping)
    if [ "$fam" = 4 ]; then src=$HA4 dst=$HB4; else src=$HA6 dst=$HB6 ping=(ping -6); fi

    local path=librte_ipsec allow=() allow_ours=()
    case $tf in des-*) path=legacy allow=(--allow-repeated-iv) ;; esac
    [ "$UNDER_TEST" = secgw ] && allow_ours=("${allow[@]}")

    # Each direction is captured where it arrives: DPDK's af_packet PMD sends with
    # PACKET_QDISC_BYPASS, so a capture on the sender's own interface does not see its frames.
    local f="ip proto 50 or ip6 proto 50" caps=()
    CAP_SNAPLEN=0 capture_start sg sg-esp full-out "-c $FULL_PKTS $f"
    caps+=("$CAP_PID")
    CAP_SNAPLEN=0 capture_start gw dp-out full-in "-c $FULL_PKTS $f"
    caps+=("$CAP_PID")
    CAP_SNAPLEN=128 capture_start sg sg-esp hdr-out "$f"
    caps+=("$CAP_PID")
    CAP_SNAPLEN=128 capture_start gw dp-out hdr-in "$f"
    caps+=("$CAP_PID")
    secgw_start "$dir/secgw.cfg" "$path"
    local gw_pid
    if [ "$UNDER_TEST" = secgw ]; then
        secgw_run gwsecgw gw dp-in dp-out 1 "$dir/secgw-gw.cfg" "$path"
        gw_pid=$BG_PID
    else
        dp_start "$dir/dataplane.toml" "$sock"
        gw_pid=$DP_PID
    fi

    # The first packets may wait for ARP/ND on the outside: allow a few seconds to converge.
    local ok=0
    for _ in 1 2 3 4 5; do
        if nsx hA "${ping[@]}" -c 1 -W 1 "$dst" >/dev/null 2>&1; then ok=1; break; fi
    done
    [ "$ok" = 1 ] || fail "no ping reply hA -> hB ($dst) through the tunnel"
    nsx hA "${ping[@]}" -c "$PINGS" -i 0.2 -W 2 "$dst" >"$LOGDIR/ping.txt" 2>&1 ||
        fail "ping hA -> hB lost packets: $(tail -2 "$LOGDIR/ping.txt")"
    nsx hB "${ping[@]}" -c "$PINGS" -i 0.2 -W 2 "$src" >>"$LOGDIR/ping.txt" 2>&1 ||
        fail "ping hB -> hA lost packets: $(tail -2 "$LOGDIR/ping.txt")"

    tcp_transfer hA hB "$dst" 5001
    tcp_transfer hB hA "$src" 5002
    sleep 0.5

    local counts our_enc our_dec our_missed
    if [ "$UNDER_TEST" = secgw ]; then
        counts=$(secgw_sent "$PFX-gwsecgw") || fail "no telemetry from the ipsec-secgw in ns gw"
        read -r our_dec our_enc our_missed _ <<<"$counts"
    else
        dp_counters "$sock" "$LOGDIR/counters.json"
        our_missed=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" missed)
    fi
    counts=$(secgw_sent) || fail "no telemetry from ipsec-secgw"
    local sg_dec sg_enc sg_missed sg_rx
    read -r sg_dec sg_enc sg_missed sg_rx <<<"$counts"
    stop_pid "$gw_pid" INT
    if [ "$UNDER_TEST" != secgw ] && grep -q 'panicked' "$LOGDIR/dataplane.log"; then
        fail "ipsec-dataplane panicked (see dataplane.log)"
    fi
    stop_pid "$SECGW_PID" INT
    local p
    for p in "${caps[@]}"; do capture_stop "$p"; done

    # Field-by-field checks of the first packets in each direction.
    "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction out --first-seq 1 --tshark \
        "${allow_ours[@]}" "$LOGDIR/full-out.pcap" >"$LOGDIR/check-out.log" 2>&1 || {
        cat "$LOGDIR/check-out.log" >&2
        fail "esp_check rejected ipsec-dataplane's ESP"
    }
    "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction in --tshark "${allow[@]}" \
        "$LOGDIR/full-in.pcap" >"$LOGDIR/check-in.log" 2>&1 || {
        cat "$LOGDIR/check-in.log" >&2
        fail "esp_check rejected ipsec-secgw's ESP"
    }

    # Counts: ours, the wire, secgw.
    local ours
    if [ "$UNDER_TEST" != secgw ]; then
        ours=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" sa "$spi_out") ||
            fail "per-SA counters for our outbound SA (spi $spi_out) missing in ipsec-dpctl output"
        our_enc=${ours%% *}
        ours=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" sa "$spi_in") ||
            fail "per-SA counters for our inbound SA (spi $spi_in) missing in ipsec-dpctl output"
        our_dec=${ours##* }
    fi
    local wire wire_out wire_in
    wire=$("$PY" "$TOOLS/pcap_esp_count.py" "$LOGDIR/hdr-out.pcap" 2>&1) ||
        fail "our ESP sequence numbers on the wire do not increase: $wire"
    wire_out=$(awk -v s="$spi_out" '$1 == s {print $2}' <<<"$wire")
    wire=$("$PY" "$TOOLS/pcap_esp_count.py" "$LOGDIR/hdr-in.pcap" 2>&1) ||
        fail "ipsec-secgw's ESP sequence numbers on the wire do not increase: $wire"
    wire_in=$(awk -v s="$spi_in" '$1 == s {print $2}' <<<"$wire")
    local dropped
    dropped=$(cat "$LOGDIR/cap-hdr-out.log" "$LOGDIR/cap-hdr-in.log" |
        grep -o '[0-9]* packets dropped by kernel' | awk '{n += $1} END {print n + 0}')
    log "counts: ours encaps=$our_enc decaps=$our_dec missed=$our_missed;" \
        "wire out=${wire_out:-0} in=${wire_in:-0} (capture dropped $dropped);" \
        "secgw decrypted=$sg_dec encrypted=$sg_enc missed=$sg_missed"
    # Senders against the wire (a veth loses nothing; the captures must not have either).
    if [ "$dropped" = 0 ]; then
        [ "${wire_out:-0}" = "$our_enc" ] ||
            fail "the wire carried ${wire_out:-0} ESP packets under our SPI, we counted $our_enc encaps"
        [ "${wire_in:-0}" = "$sg_enc" ] ||
            fail "the wire carried ${wire_in:-0} ESP packets under secgw's SPI, it counted $sg_enc"
    else
        log "captures dropped $dropped packets: wire counts not compared"
    fi
    # Receivers against senders: every packet sent was decapsulated or is counted as missed by
    # the receiving port (af_packet ring overflow under load: TCP retransmits, no one is wrong).
    # ipsec-secgw's af_packet port does not count ring overflow: frames its port never received
    # are logged as lost in the kernel; every frame it did receive must have been decrypted
    # (a refused packet of ours is a failure).
    local sg_got=$((sg_rx < our_enc ? sg_rx : our_enc))
    [ "$sg_dec" -ge "$sg_got" ] ||
        fail "ipsec-secgw received $sg_rx frames, we sent $our_enc ESP packets, it decrypted only $sg_dec"
    [ "$sg_rx" -ge "$our_enc" ] ||
        log "$((our_enc - sg_rx)) of our packets were lost in ipsec-secgw's af_packet ring (uncounted)"
    [ "$((our_dec + our_missed))" = "$sg_enc" ] ||
        fail "ipsec-secgw encrypted $sg_enc packets; we decapsulated $our_dec and missed $our_missed"
    log "PASS"
}

results=()
failed=0
for c in $CASES; do
    IFS=: read -r tf mode fam <<<"$c"
    if in_case "$tf-$mode-$fam" run_case "$tf" "$mode" "$fam"; then
        results+=("PASS $c")
    else
        results+=("FAIL $c")
        failed=$((failed + 1))
    fi
done
TEST_NAME=20-secgw-interop
printf '%s\n' "${results[@]}" >&2
[ "$failed" = 0 ] || fail "$failed of ${#results[@]} interop cases failed (details above)"
log "PASS (${#results[@]} cases)"
