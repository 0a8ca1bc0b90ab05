#!/bin/bash
# Hostile ESP into ipsec-dataplane's outside port: nothing may come out on the inside, and each
# drop must be counted under its reason. scapy (esp_gen.py) sends, from ns sg on sg-esp (the
# far end of dp-out), under our inbound SA:
#   valid x3, then one each of: replay (seq 1 again), bad ICV, truncated, unknown SPI, inner
#   source outside the SA's selectors, bad padding (ICV valid), the inner packet in clear;
#   then valid x2 (the dataplane is still alive and its window still moves).
# A capture on hA's link must hold exactly the 5 valid packets and none of the others (each
# packet carries a marker naming its case); ipsec-dpctl's counters must show one drop per case
# under the matching reason and 5 decapsulations on the SA.
# Runs for an AEAD and a CBC+HMAC transform (CASES env: "transform:mode:family").
set -euo pipefail
TEST_NAME=30-hostile
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

CASES=${CASES:-"gcm128:tunnel:4 aes128-sha1:tunnel:4 aes256-sha256:tunnel:6"}
HOSTILE="replay bad-icv truncated unknown-spi policy bad-padding plain"
PLAN="valid:3,replay:1,bad-icv:1,truncated:1,unknown-spi:1,policy:1,bad-padding:1,plain:1,valid:2"

need_cmd tcpdump
need_dataplane
topo_up

# drop_count FILE REASON...: the sum of the named drop reasons in ipsec-dpctl's counters.
drop_count() {
    local file=$1
    shift
    "$PY" "$TOOLS/dp_counters.py" "$file" drops | awk -v want=" $* " \
        'index(want, " " $1 " ") { n += $2 } END { print n + 0 }'
}

run_case() {
    local tf=$1 mode=$2 fam=$3
    TEST_NAME="30-hostile[$tf/$mode/v$fam]"
    local dir=$LOGDIR sock=$LOGDIR/dp.sock ids spi_in
    ids=$("$PY" "$TOOLS/gen_configs.py" --transform "$tf" --mode "$mode" --family "$fam" \
        --out "$dir" --file-prefix "$PFX-gw" --channel "$sock") || fail "config generation failed"
    spi_in=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["in_spi"])' "$ids")

    capture_start hA ha0 inside
    local cap=$CAP_PID
    dp_start "$dir/dataplane.toml" "$sock"
    warm_neighbours "$fam"

    nsx sg "$PY" "$TOOLS/esp_gen.py" --keys "$dir/keys.json" --sa in --plan "$PLAN" \
        --iface sg-esp --src-mac "$MAC_SG_ESP" --dst-mac "$MAC_DP_OUT" \
        >"$LOGDIR/gen.log" 2>&1 || fail "esp_gen.py failed: $(tail -3 "$LOGDIR/gen.log")"
    sleep 1.5

    dp_counters "$sock" "$LOGDIR/counters.json"
    stop_pid "$DP_PID" INT
    grep -q 'panicked' "$LOGDIR/dataplane.log" && fail "ipsec-dataplane panicked (see dataplane.log)"
    capture_stop "$cap"

    # What came out on the inside.
    local seen
    seen=$("$PY" "$TOOLS/esp_gen.py" --count-markers "$LOGDIR/inside.pcap")
    log "inside saw: $(tr '\n' ' ' <<<"$seen")"
    local c n
    for c in $HOSTILE; do
        n=$(awk -v c="$c" '$1 == c {print $2}' <<<"$seen")
        [ -z "$n" ] || fail "$n '$c' packet(s) came out on the inside"
    done
    n=$(awk '$1 == "valid" {print $2}' <<<"$seen")
    [ "${n:-0}" = 5 ] || fail "${n:-0} of the 5 valid packets came out on the inside"

    # Drops by reason, and the SA's decapsulations.
    local want
    for want in "replay:replay" "bad-icv:auth-failed" "unknown-spi:unknown-spi" \
        "policy:policy-mismatch" "bad-padding:bad-padding"; do
        n=$(drop_count "$LOGDIR/counters.json" "${want#*:}")
        [ "$n" = 1 ] || fail "case ${want%%:*}: drop counter '${want#*:}' is $n, expected 1"
    done
    n=$(drop_count "$LOGDIR/counters.json" malformed esp-other)
    [ "$n" -ge 1 ] || fail "case truncated: no drop counted as malformed or esp-other"
    n=$(drop_count "$LOGDIR/counters.json" plain-policy-violation policy-discard)
    [ "$n" -ge 1 ] || fail "case plain: no drop counted as plain-policy-violation or policy-discard"
    local sa
    sa=$("$PY" "$TOOLS/dp_counters.py" "$LOGDIR/counters.json" sa "$spi_in") ||
        fail "no per-SA counters for our inbound SA (spi $spi_in)"
    [ "${sa##* }" = 5 ] || fail "inbound SA decapsulated ${sa##* } packets, expected 5"
    log "PASS"
}

failed=0
results=()
for c in $CASES; do
    IFS=: read -r tf mode fam <<<"$c"
    if in_case "hostile-$tf-$mode-$fam" run_case "$tf" "$mode" "$fam"; then
        results+=("PASS $c")
    else
        results+=("FAIL $c")
        failed=$((failed + 1))
    fi
done
TEST_NAME=30-hostile
printf '%s\n' "${results[@]}" >&2
[ "$failed" = 0 ] || fail "$failed of ${#results[@]} hostile-input cases failed (details above)"
log "PASS (${#results[@]} cases)"
