#!/bin/bash
# Interop of two third-party ESP implementations on the live test topology, before
# ipsec-dataplane is involved: scapy's ESP plays our side (in ns gw, raw frames on dp-out) and
# DPDK's ipsec-secgw runs on net_af_packet in ns sg.
#   - scapy encrypts ICMP echo requests hA -> hB; secgw decrypts them and they reach hB as
#     plaintext (checked in a capture on hB's link);
#   - hB's kernel answers; secgw encrypts the replies; scapy decrypts and matches them;
#   - esp_check.py and tshark check every ESP packet secgw sent, field by field.
# This proves the harness (topology, secgw on af_packet, config generator, checkers) that
# 20-secgw-interop.sh then uses against ipsec-dataplane.
#
# CASES (env) selects "transform:mode:family" triples; default: every transform both peers
# have, IPv4 tunnel, plus IPv6 tunnel and IPv4 transport for gcm128 and aes128-sha1.
set -euo pipefail
TEST_NAME=10-secgw-scapy
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

DEFAULT_CASES="gcm128:tunnel:4 gcm256:tunnel:4 aes128-sha1:tunnel:4 aes256-sha256:tunnel:4
3des-sha1:tunnel:4 des-sha1:tunnel:4 gcm128:tunnel:6 aes128-sha1:tunnel:6
gcm128:transport:4 aes128-sha1:transport:4"
CASES=${CASES:-$DEFAULT_CASES}
COUNT=${COUNT:-5}

need_cmd tshark tcpdump
"$TESTS_ROOT/scripts/build-secgw.sh" >/dev/null || fail "could not build ipsec-secgw"
topo_up

passed=0
for c in $CASES; do
    IFS=: read -r tf mode fam <<<"$c"
    TEST_NAME="10-secgw-scapy[$tf/$mode/v$fam]"
    dir=$WORK/$tf-$mode-$fam
    "$PY" "$TOOLS/gen_configs.py" --transform "$tf" --mode "$mode" --family "$fam" --out "$dir" \
        >/dev/null || fail "config generation failed"
    if [ "$fam" = 4 ]; then src=$HA4 dst=$HB4; else src=$HA6 dst=$HB6; fi

    capture_start hB hb0 "plain-$tf-$mode-$fam" "icmp or icmp6"
    cap_plain=$CAP_PID
    capture_start gw dp-out "esp-$tf-$mode-$fam" "ip proto 50 or ip6 proto 50"
    cap_esp=$CAP_PID
    path=librte_ipsec
    case $tf in des-*) path=legacy ;; esac
    secgw_start "$dir/secgw.cfg" "$path"

    nsx gw "$PY" "$TOOLS/scapy_peer.py" --keys "$dir/keys.json" --iface dp-out \
        --src-mac "$MAC_DP_OUT" --dst-mac "$MAC_SG_ESP" --src "$src" --dst "$dst" \
        --count "$COUNT" >"$WORK/peer.log" 2>&1 || {
        cat "$WORK/peer.log" >&2
        fail "scapy <-> ipsec-secgw ping through the tunnel failed"
    }

    # secgw's own counters: it forwarded COUNT decrypted packets and sent COUNT ESP packets.
    counts=$(secgw_sent) || fail "no telemetry from ipsec-secgw"
    read -r dec enc _ <<<"$counts"
    [ "$dec" = "$COUNT" ] && [ "$enc" = "$COUNT" ] ||
        fail "ipsec-secgw sent $dec decrypted and $enc ESP packets, expected $COUNT each"
    stop_pid "$SECGW_PID" INT
    capture_stop "$cap_plain"
    capture_stop "$cap_esp"

    # Plaintext at hB: exactly COUNT echo requests hA -> hB, and as many replies.
    if [ "$fam" = 4 ]; then
        req="icmp.type==8 && ip.src==$src && ip.dst==$dst"
    else
        req="icmpv6.type==128 && ipv6.src==$src && ipv6.dst==$dst"
    fi
    n=$(tshark -r "$WORK/plain-$tf-$mode-$fam.pcap" -Y "$req" 2>/dev/null | wc -l)
    [ "$n" = "$COUNT" ] || fail "hB saw $n plaintext echo requests from hA, expected $COUNT"

    # Every ESP frame secgw sent: scapy field checks and tshark ICV check, direction "in".
    # secgw's legacy path (the one with DES) repeats its CBC IV; the checker must catch that,
    # so for it we assert the rejection and its reason, then check everything else.
    allow=()
    if [ "$path" = legacy ]; then
        if "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction in \
            "$WORK/esp-$tf-$mode-$fam.pcap" >"$WORK/check.log" 2>&1; then
            fail "esp_check accepted ipsec-secgw's legacy-path ESP, whose IVs repeat"
        fi
        grep -q 'repeated' "$WORK/check.log" || {
            cat "$WORK/check.log" >&2
            fail "esp_check rejected ipsec-secgw's legacy ESP for another reason than IV reuse"
        }
        allow=(--allow-repeated-iv)
    fi
    "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction in --count "$COUNT" \
        --tshark "${allow[@]}" "$WORK/esp-$tf-$mode-$fam.pcap" >"$WORK/check.log" 2>&1 || {
        cat "$WORK/check.log" >&2
        fail "esp_check rejected ipsec-secgw's ESP"
    }
    # ...and the frames scapy sent, direction "out" (checks the checker on a second producer).
    "$PY" "$TOOLS/esp_check.py" --keys "$dir/keys.json" --direction out --count "$COUNT" \
        --tshark "$WORK/esp-$tf-$mode-$fam.pcap" >"$WORK/check-out.log" 2>&1 || {
        cat "$WORK/check-out.log" >&2
        fail "esp_check rejected scapy's ESP"
    }
    log "PASS: $COUNT pings through scapy <-> ipsec-secgw ($path); ESP checked by scapy and tshark"
    passed=$((passed + 1))
done
TEST_NAME=10-secgw-scapy
log "PASS ($passed cases)"
