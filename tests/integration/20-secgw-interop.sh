#!/bin/bash
# ipsec-dataplane against DPDK's ipsec-secgw, live, on the namespace topology of lib.sh:
#   hA -- [ipsec-dataplane, ns gw] == ESP == [ipsec-secgw, ns sg] -- hB
# For each transform both have x {tunnel IPv4, tunnel IPv6, transport IPv4}:
#   1. ping hA -> hB (the replies come back through both gateways);
#   2. a TCP transfer of TCP_BYTES (10 MiB) each way, SHA-256 compared at both ends;
#   3. the first ESP packets of each direction (full capture on dp-out) checked field by field
#      by esp_check.py (scapy) and tshark: ours strictly, secgw's too (its legacy DES path is
#      known to repeat IVs, so IV reuse is tolerated for secgw's packets there only);
#   4. packet counts agree: our per-SA encaps/decaps (ipsec-dpctl counters --json), the ESP
#      packets per SPI in a header capture on dp-out, and ipsec-secgw's port counters.
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

need_cmd tshark tcpdump ping
need_dataplane
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

    local path=librte_ipsec allow=()
    case $tf in des-*) path=legacy allow=(--allow-repeated-iv) ;; esac

    CAP_SNAPLEN=0 capture_start gw dp-out full "-c $FULL_PKTS ip proto 50 or ip6 proto 50"
    local cap_full=$CAP_PID
    CAP_SNAPLEN=128 capture_start gw dp-out hdr "ip proto 50 or ip6 proto 50"
    local cap_hdr=$CAP_PID
    secgw_start "$dir/secgw.cfg" "$path"
    dp_start "$dir/dataplane.toml" "$sock"

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

    dp_counters "$sock" "$LOGDIR/counters.json"
    local counts
    counts=$(secgw_sent) || fail "no telemetry from ipsec-secgw"
    local sg_dec sg_enc
    read -r sg_dec sg_enc <<<"$counts"
    stop_pid "$DP_PID" INT
    grep -q 'panicked' "$LOGDIR/dataplane.log" && fail "ipsec-dataplane panicked (see dataplane.log)"
    stop_pid "$SECGW_PID" INT
    capture_stop "$cap_full"
    capture_stop "$cap_hdr"

    # Field-by-field checks of the first packets in each direction.
    "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction out --first-seq 1 --tshark \
        "$LOGDIR/full.pcap" >"$LOGDIR/check-out.log" 2>&1 || {
        cat "$LOGDIR/check-out.log" >&2
        fail "esp_check rejected ipsec-dataplane's ESP"
    }
    "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction in --tshark "${allow[@]}" \
        "$LOGDIR/full.pcap" >"$LOGDIR/check-in.log" 2>&1 || {
        cat "$LOGDIR/check-in.log" >&2
        fail "esp_check rejected ipsec-secgw's ESP"
    }

    # Counts: ours, the wire, secgw.
    local ours our_enc our_dec
    ours=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" sa "$spi_out") ||
        fail "per-SA counters for our outbound SA (spi $spi_out) missing in ipsec-dpctl output"
    our_enc=${ours%% *}
    ours=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" sa "$spi_in") ||
        fail "per-SA counters for our inbound SA (spi $spi_in) missing in ipsec-dpctl output"
    our_dec=${ours##* }
    local wire wire_out wire_in
    wire=$("$PY" "$TOOLS/pcap_esp_count.py" "$LOGDIR/hdr.pcap") ||
        fail "ESP sequence numbers on the wire do not increase: $wire"
    wire_out=$(awk -v s="$spi_out" '$1 == s {print $2}' <<<"$wire")
    wire_in=$(awk -v s="$spi_in" '$1 == s {print $2}' <<<"$wire")
    local dropped
    dropped=$(grep -o '[0-9]* packets dropped by kernel' "$LOGDIR/cap-hdr.log" | cut -d' ' -f1)
    log "counts: ours encaps=$our_enc decaps=$our_dec; wire out=${wire_out:-0} in=${wire_in:-0}" \
        "(capture dropped ${dropped:-?}); secgw decrypted=$sg_dec encrypted=$sg_enc"
    [ "$our_enc" = "$sg_dec" ] ||
        fail "we encapsulated $our_enc packets but ipsec-secgw decrypted and forwarded $sg_dec"
    [ "$our_dec" = "$sg_enc" ] ||
        fail "ipsec-secgw encrypted $sg_enc packets but we decapsulated $our_dec"
    if [ "${dropped:-1}" = 0 ]; then
        [ "${wire_out:-0}" = "$our_enc" ] ||
            fail "the wire carried ${wire_out:-0} ESP packets under our SPI, we counted $our_enc"
        [ "${wire_in:-0}" = "$sg_enc" ] ||
            fail "the wire carried ${wire_in:-0} ESP packets under secgw's SPI, it counted $sg_enc"
    fi
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
