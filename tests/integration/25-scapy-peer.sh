#!/bin/bash
# ipsec-dataplane against scapy's ESP for what ipsec-secgw lacks: des + md5, 64-bit extended
# sequence numbers (crossing 2^32), and UDP encapsulation (RFC 3948, port 4500) with NAT
# keepalives. scapy (esp_gen.py, ns sg, raw frames into dp-out) sends 5 protected ICMP echo
# requests hB -> hA; they must reach hA in clear; hA's replies must leave dp-out as ESP under
# our outbound SA that esp_check.py (scapy) and tshark accept field by field; ipsec-dpctl must
# count 5 decapsulations and 5 encapsulations (and the keepalive as natt-keepalive).
# CASES (env): "transform:mode:family:flags", flags a '+'-list of esn, natt (or "-").
set -euo pipefail
TEST_NAME=25-scapy-peer
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

CASES=${CASES:-"des-md5:tunnel:4:- gcm128:tunnel:4:esn aes128-sha1:tunnel:4:esn
gcm128:tunnel:4:natt aes256-sha256:tunnel:4:natt+esn des-md5:transport:4:-"}

need_cmd tcpdump tshark
need_dataplane
topo_up

run_case() {
    local tf=$1 mode=$2 fam=$3 flags=$4
    TEST_NAME="25-scapy-peer[$tf/$mode/v$fam/$flags]"
    local dir=$LOGDIR sock=$LOGDIR/dp.sock ids spi_in spi_out extra=() plan=valid:5 start=1
    case "+$flags+" in *+esn+*) extra+=(--esn) start=0xfffffffd ;; esac
    case "+$flags+" in *+natt+*) extra+=(--udp-encap) plan=keepalive:1,valid:5 ;; esac
    ids=$("$PY" "$TOOLS/gen_configs.py" --transform "$tf" --mode "$mode" --family "$fam" \
        --out "$dir" --file-prefix "$PFX-gw" --channel "$sock" "${extra[@]}") ||
        fail "config generation failed"
    spi_in=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["in_spi"])' "$ids")
    spi_out=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["out_spi"])' "$ids")

    capture_start hA ha0 inside
    local cap_in=$CAP_PID
    # Captured where it arrives (af_packet TX bypasses the sender's own taps).
    capture_start sg sg-esp outside "ip proto 50 or ip6 proto 50 or udp port 4500"
    local cap_out=$CAP_PID
    dp_start "$dir/dataplane.toml" "$sock"
    warm_neighbours "$fam"

    nsx sg "$PY" "$TOOLS/esp_gen.py" --keys "$dir/keys.json" --sa in --plan "$plan" \
        --start-seq "$start" --iface sg-esp --src-mac "$MAC_SG_ESP" --dst-mac "$MAC_DP_OUT" \
        >"$LOGDIR/gen.log" 2>&1 || fail "esp_gen.py failed: $(tail -3 "$LOGDIR/gen.log")"
    sleep 1.5

    dp_counters "$sock" "$LOGDIR/counters.json"
    stop_pid "$DP_PID" INT
    grep -q 'panicked' "$LOGDIR/dataplane.log" && fail "ipsec-dataplane panicked (see dataplane.log)"
    capture_stop "$cap_in"
    capture_stop "$cap_out"

    local seen n
    seen=$("$PY" "$TOOLS/esp_gen.py" --count-markers "$LOGDIR/inside.pcap")
    n=$(awk '$1 == "valid" {print $2}' <<<"$seen")
    [ "${n:-0}" = 5 ] || fail "${n:-0} of 5 decrypted echo requests reached hA"

    "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction out --count 5 \
        --first-seq 1 --tshark "$LOGDIR/outside.pcap" >"$LOGDIR/check-out.log" 2>&1 || {
        cat "$LOGDIR/check-out.log" >&2
        fail "esp_check rejected ipsec-dataplane's ESP (the echo replies)"
    }

    local sa
    sa=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" sa "$spi_in") ||
        fail "no per-SA counters for our inbound SA (spi $spi_in)"
    [ "${sa##* }" = 5 ] || fail "inbound SA decapsulated ${sa##* } packets, expected 5"
    sa=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" sa "$spi_out") ||
        fail "no per-SA counters for our outbound SA (spi $spi_out)"
    [ "${sa%% *}" = 5 ] || fail "outbound SA encapsulated ${sa%% *} packets, expected 5"
    if [[ "+$flags+" == *+natt+* ]]; then
        n=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" drops |
            awk '$1 == "natt-keepalive" {print $2}')
        [ "${n:-0}" = 1 ] || fail "the NAT keepalive was counted ${n:-0} times as natt-keepalive"
    fi
    log "PASS"
}

failed=0
results=()
for c in $CASES; do
    IFS=: read -r tf mode fam flags <<<"$c"
    if in_case "peer-$tf-$mode-$fam-${flags//+/_}" run_case "$tf" "$mode" "$fam" "$flags"; then
        results+=("PASS $c")
    else
        results+=("FAIL $c")
        failed=$((failed + 1))
    fi
done
TEST_NAME=25-scapy-peer
printf '%s\n' "${results[@]}" >&2
[ "$failed" = 0 ] || fail "$failed of ${#results[@]} scapy-peer cases failed (details above)"
log "PASS (${#results[@]} cases)"
