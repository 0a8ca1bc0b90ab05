#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each case
# Both ends ours (issue 3, proof item 10): two gateways, each ipsec-dataplane (af_packet) +
# ipsec-control in its own namespace, bring the tunnel up with certificates and carry
# traffic in plain ESP (IP protocol 50: no NAT between them, so no float to 4500).
#
#   ns hA             ns gw1 (ours)                  ns wan               ns gw2 (ours)                  ns hB
#   ha0 ------------ dp-in  [10.10.1.254]                                 dp-in  [10.10.2.254] --------- hb0
#   10.10.1.1/24     dp-out [10.99.0.1] ---------- w1 ] br0 [ w2 -------- dp-out [10.99.0.2]             10.10.2.1/24
#
# PKI (strongSwan's pki, throwaway keys): a test CA, gw1.example.net and gw2.example.net
# certificates (dNSName and iPAddress), and the CA's CRL (revocation_check = "crl"). Each
# gateway: isakmp identity hostname (ID_FQDN), policy aes 256 / sha256 / rsa-sig / group 14,
# transform set esp-gcm 256 with PFS group 14, a static crypto map toward the other with
# mirror-image ACLs.
#
# Cases (CASES="a-first b-first" to choose); each starts both gateways afresh:
#   a-first - hA pings hB first: gw1's dataplane raises an Acquire, gw1 initiates Main Mode
#             and Quick Mode (rsa-sig, each side verifies the other's certificate against the
#             CA and its CRL), gw2 responds; gw2 starts nothing.
#   b-first - the same with hB pinging hA first: gw2 initiates, gw1 responds.
# Each case then proves, with the tunnel up:
#   - ping both ways (10 echoes each way, no loss), captured on the wan link (tcpdump on w1
#     in ns wan): exactly 40 ESP frames of IP protocol 50 (20 each way), and no UDP 4500 at
#     all (no NAT: IKE stays on port 500, ESP is not UDP-encapsulated);
#   - the counts agree on both gateways: gw1's encapsulations = gw2's decapsulations and the
#     reverse (ipsec-dpctl counters --json), after the pings and after the TCP transfers;
#   - a 10 MiB TCP transfer hA -> hB and another hB -> hA (tests/tools/tcp_xfer.py), with
#     the SHA-256 of the bytes equal at both ends.
# Needs root, the release binaries (make build), strongswan-pki (for the certificates), tcpdump.
set -euo pipefail
TEST_NAME=67-gw-pair
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
gw_need
need_cmd tcpdump
CASES=${CASES:-a-first b-first}
TCP_BYTES=${TCP_BYTES:-$((10 * 1024 * 1024))}
CAP_SNAPLEN=128 # headers are enough; keeps the captures of the TCP transfers small

make_pki() {
    pki_root ca "C=CH, O=Pair Lab, CN=Pair Lab CA"
    pki_cert gw1 ca 11 "C=CH, O=Pair Lab, CN=gw1.example.net" gw1.example.net 10.99.0.1
    pki_cert gw2 ca 12 "C=CH, O=Pair Lab, CN=gw2.example.net" gw2.example.net 10.99.0.2
    pki_crl ca "$PKI/ca.crl"
    log "PKI: a CA, gw1's and gw2's certificates, the CA's CRL"
}

topology() {
    local n
    for n in hA gw1 wan gw2 hB; do ns_add "$n"; done
    gw_links gw1 wan w1 02:00:00:00:98:01
    gw_links gw2 wan w2 02:00:00:00:98:02 hB hb0 "$MAC_HB" 02:00:00:00:02:fe 02:00:00:00:99:02
    wan_bridge wan w1 w2
    lan_host hA ha0 10.10.1.1/24 10.10.2.0/24 10.10.1.254
    lan_host hB hb0 10.10.2.1/24 10.10.1.0/24 10.10.2.254
    log "topology up (prefix $PFX, work $WORK)"
}

# gw_config NAME OUTSIDE INSIDE PEER LOCAL_LAN REMOTE_LAN: DIR/NAME.toml: isakmp identity
# hostname, policy aes 256 / sha256 / rsa-sig / group 14, trustpoint with the CA and its CRL,
# transform set esp-gcm 256, PFS group 14, a static crypto map toward PEER.
gw_config() {
    local name=$1 d=$LOGDIR
    gw_toml "$d/$name.toml" hostname="$name" channel="$d/$name-dp.sock" ctl="$d/$name-ctl.sock" \
        outside="$2/24" inside="$3/24" peer="$4" src="$5" dst="$6" auth=rsa-sig p1="aes256 sha256 14" \
        cas=ca cert="$name" crl=ca.crl ts=gcm esp="esp-gcm 256" pfs=group14
}

# same_counts WHEN: gw1's encaps = gw2's decaps and the reverse.
same_counts() {
    local e1 d1
    dp_sums "$LOGDIR/gw1-dp.sock" "$LOGDIR/gw1-counters.json"
    e1=${DP_SUMS[0]} d1=${DP_SUMS[1]}
    dp_sums "$LOGDIR/gw2-dp.sock" "$LOGDIR/gw2-counters.json"
    local e2=${DP_SUMS[0]} d2=${DP_SUMS[1]}
    log "$1: gw1 encaps $e1 decaps $d1; gw2 encaps $e2 decaps $d2"
    [ "$e1" = "$d2" ] || fail "$1: gw1 encapsulated $e1 packets but gw2 decapsulated $d2"
    [ "$e2" = "$d1" ] || fail "$1: gw2 encapsulated $e2 packets but gw1 decapsulated $d1"
}

# run_case FIRST NAME: FIRST (hA or hB) pings the other side first.
run_case() {
    local first=$1 d=$LOGDIR starter responder src dst
    if [ "$first" = hA ]; then
        starter=gw1 responder=gw2 src=hA dst=10.10.2.1
    else
        starter=gw2 responder=gw1 src=hB dst=10.10.1.1
    fi
    gw_config gw1 10.99.0.1 10.10.1.254 10.99.0.2 10.10.1.0/24 10.10.2.0/24
    gw_config gw2 10.99.0.2 10.10.2.254 10.99.0.1 10.10.2.0/24 10.10.1.0/24
    gw_run gw1 gw1 "$d/gw1.toml"
    gw_run gw2 gw2 "$d/gw2.toml"
    capture_start wan w1 wan-all
    local capall=$CAP_PID

    log "$src pings $dst first: $starter should initiate"
    ping_until 40 "$src" "$dst"
    local g
    for g in gw1 gw2; do
        wait_log 10 "$d/$g-control.log" "Crypto tunnel is UP"
        grep -qE "IKMP_SA_UP: .* aes 256 sha256 rsa-sig group 14 .*peer gw[12]\.example\.net$" "$d/$g-control.log" ||
            fail "$g: no rsa-sig phase 1 with the other gateway's FQDN (or NAT-T detected) in $g-control.log"
    done
    grep -q "IPSEC(sa_request)" "$d/$starter-control.log" || fail "$starter did not start the tunnel"
    grep -q "IPSEC(sa_request)" "$d/$responder-control.log" && fail "$responder started a tunnel too"
    grep -qE "IKMP_SA_UP: .* with 10\.99\.0\.[12]:500 is up" "$d/$starter-control.log" ||
        fail "$starter's phase 1 is not on port 500"
    log "$starter: $(grep -o 'IKMP_SA_UP.*' "$d/$starter-control.log" | head -1)"
    log "$starter: $(grep -o 'Crypto tunnel is UP.*' "$d/$starter-control.log" | head -1)"
    same_counts "after the first ping"

    # pings both ways, ESP on the wire counted
    nsx hA ping -c 2 -i 0.3 -W 1 10.10.1.254 >/dev/null 2>&1 || true
    nsx hB ping -c 2 -i 0.3 -W 1 10.10.2.254 >/dev/null 2>&1 || true
    capture_start wan w1 wan-ping
    local cap=$CAP_PID
    nsx hA ping -c 10 -i 0.2 -W 3 10.10.2.1 >"$d/ping-hA.log" 2>&1 || fail "hA -> hB pings lost: $(tail -2 "$d/ping-hA.log")"
    nsx hB ping -c 10 -i 0.2 -W 3 10.10.1.1 >"$d/ping-hB.log" 2>&1 || fail "hB -> hA pings lost: $(tail -2 "$d/ping-hB.log")"
    capture_stop "$cap"
    local esp udp
    esp=$(pcap_count "$d/wan-ping.pcap" "ip proto 50")
    udp=$(pcap_count "$d/wan-ping.pcap" "udp port 4500")
    log "pings 10/10 each way; on the wan link: $esp ESP frames (IP protocol 50), $udp UDP 4500"
    [ "$esp" = 40 ] || fail "$esp ESP (protocol 50) frames on the wan link for 20 echoes and 20 replies, not 40"
    local from1 from2
    from1=$(pcap_count "$d/wan-ping.pcap" "ip proto 50 and src host 10.99.0.1 and dst host 10.99.0.2")
    from2=$(pcap_count "$d/wan-ping.pcap" "ip proto 50 and src host 10.99.0.2 and dst host 10.99.0.1")
    [ "$from1/$from2" = 20/20 ] || fail "ESP frames gw1 -> gw2: $from1, gw2 -> gw1: $from2 (not 20 each)"
    same_counts "after the pings"

    tcp_transfer hA hB 10.10.2.1 5001 "$TCP_BYTES" 90
    tcp_transfer hB hA 10.10.1.1 5002 "$TCP_BYTES" 90
    same_counts "after the TCP transfers"
    capture_stop "$capall"
    udp=$(pcap_count "$d/wan-all.pcap" "udp port 4500")
    [ "$udp" = 0 ] || fail "$udp UDP 4500 frames on the wan link (no NAT here: nothing may float)"
    local ike
    ike=$(pcap_count "$d/wan-all.pcap" "udp port 500")
    [ "$ike" -ge 9 ] || fail "only $ike IKE messages on UDP 500 (Main Mode 6 + Quick Mode 3 expected)"
    log "whole case on the wan link: $ike IKE messages on UDP 500, no UDP 4500"
    log "PASS $2"
}

case_a-first() { run_case hA a-first; }
case_b-first() { run_case hB b-first; }

make_pki
topology
# shellcheck disable=SC2086 # the case names
run_cases $CASES
