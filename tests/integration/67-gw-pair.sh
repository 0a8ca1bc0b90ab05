#!/bin/bash
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
source "$TOOLS/ike_lab.sh"
need_root
need_cmd ip ethtool ping tcpdump pki openssl
need_dataplane
[ -x "$CTL_BIN" ] || fail "ipsec-control not found at $CTL_BIN (run 'make build')"
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
    veth hA ha0 "$MAC_HA" gw1 dp-in "$MAC_DP_IN"
    veth gw1 dp-out "$MAC_DP_OUT" wan w1 02:00:00:00:98:01
    veth gw2 dp-out 02:00:00:00:99:02 wan w2 02:00:00:00:98:02
    veth gw2 dp-in 02:00:00:00:02:fe hB hb0 "$MAC_HB"
    local g
    for g in gw1 gw2; do
        quiet_link "$g" dp-in
        quiet_link "$g" dp-out
    done
    ip -n "$(ns wan)" link add br0 type bridge forward_delay 0 stp_state 0 mcast_snooping 0 ||
        fail "cannot create the bridge"
    nsx wan sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
    nsx wan sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$(ns wan)" link set br0 up
    ip -n "$(ns wan)" link set w1 master br0
    ip -n "$(ns wan)" link set w2 master br0
    host_link hA ha0
    ip -n "$(ns hA)" addr add 10.10.1.1/24 dev ha0
    ip -n "$(ns hA)" route add 10.10.2.0/24 via 10.10.1.254
    host_link hB hb0
    ip -n "$(ns hB)" addr add 10.10.2.1/24 dev hb0
    ip -n "$(ns hB)" route add 10.10.1.0/24 via 10.10.2.254
    log "topology up (prefix $PFX, work $WORK)"
}

# gw_config NAME OUTSIDE INSIDE PEER LOCAL_LAN REMOTE_LAN: DIR/NAME.toml.
gw_config() {
    local name=$1 out=$2 in=$3 peer=$4 llan=$5 rlan=$6 d=$LOGDIR
    cat >"$d/$name.toml" <<EOF
hostname = "$name"
domain = "example.net"
[dataplane]
eal = ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "$PFX-$name"]
lcores = { main = 0, workers = [1] }
channel = "$d/$name-dp.sock"
[[interface]]
name = "inside"
role = "inside"
device = "net_af_packet0,iface=dp-in,framecnt=4096,blocksz=4096,framesz=2048"
address = ["$in/24"]
[[interface]]
name = "outside"
role = "outside"
device = "net_af_packet1,iface=dp-out,framecnt=4096,blocksz=4096,framesz=2048"
address = ["$out/24"]
crypto_map = "vpn"
[transform_set.gcm]
esp = ["esp-gcm", "256"]
[access_list]
101 = [ { action = "permit", protocol = "ip", source = "$llan", destination = "$rlan" } ]
[isakmp]
identity = "hostname"
[[isakmp.policy]]
priority = 10
encryption = "aes 256"
hash = "sha256"
authentication = "rsa-sig"
group = 14
lifetime = 86400
[trustpoint.LAB]
ca_certificates = ["$PKI/ca.pem"]
certificate = "$PKI/$name.pem"
private_key = "$PKI/$name.key"
revocation_check = "crl"
crl_file = "$PKI/ca.crl"
[ctl]
socket = "$d/$name-ctl.sock"
[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "$peer"
transform_set = "gcm"
match_address = "101"
pfs = "group14"
lifetime = { seconds = 3600, kilobytes = 4608000 }
EOF
}

# counts: "GW1_ENCAPS GW1_DECAPS GW2_ENCAPS GW2_DECAPS" from both dataplanes.
counts() {
    local g e dc out=""
    for g in gw1 gw2; do
        dp_counters "$LOGDIR/$g-dp.sock" "$LOGDIR/$g-counters.json"
        read -r e dc < <("$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))
print(sum(s.get("encaps", 0) for s in c["sas"]), sum(s.get("decaps", 0) for s in c["sas"]))' "$LOGDIR/$g-counters.json")
        out="$out $e $dc"
    done
    echo $out
}

# same_counts WHEN: gw1's encaps = gw2's decaps and the reverse.
same_counts() {
    local e1 d1 e2 d2
    read -r e1 d1 e2 d2 < <(counts)
    log "$1: gw1 encaps $e1 decaps $d1; gw2 encaps $e2 decaps $d2"
    [ "$e1" = "$d2" ] || fail "$1: gw1 encapsulated $e1 packets but gw2 decapsulated $d2"
    [ "$e2" = "$d1" ] || fail "$1: gw2 encapsulated $e2 packets but gw1 decapsulated $d1"
}

tcp_transfer() { # FROM TO ADDR PORT
    local from=$1 to=$2 addr=$3 port=$4
    start_bg "recv-$port" "$to" "$PY" "$TOOLS/tcp_xfer.py" recv --listen "$addr" --port "$port" --timeout 90
    local rpid=$BG_PID
    wait_log 10 "$LOGDIR/recv-$port.log" '^listening' "$rpid"
    local sent got
    sent=$(nsx "$from" timeout 120 "$PY" "$TOOLS/tcp_xfer.py" send --to "$addr" --port "$port" \
        --bytes "$TCP_BYTES" --timeout 90 2>&1) || fail "TCP transfer $from -> $to ($addr) failed: $sent"
    wait "$rpid" 2>/dev/null || true
    got=$(grep '^bytes=' "$LOGDIR/recv-$port.log" || true)
    [ -n "$got" ] || fail "TCP receiver in $to reported nothing: $(tail -2 "$LOGDIR/recv-$port.log")"
    [ "$sent" = "$got" ] || fail "TCP transfer $from -> $to corrupted: sent '$sent', received '$got'"
    log "TCP $from -> $to: $got"
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
    gw_run gw1 gw1 "$d/gw1.toml" "$d/gw1-dp.sock"
    gw_run gw2 gw2 "$d/gw2.toml" "$d/gw2-dp.sock"
    capture_start wan w1 wan-all
    local capall=$CAP_PID

    log "$src pings $dst first: $starter should initiate"
    local deadline=$((SECONDS + 40))
    until nsx "$src" ping -c 1 -W 1 "$dst" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no ping answer through the tunnel within 40 s"
    done
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
    esp=$(tcpdump -r "$d/wan-ping.pcap" -nn "ip proto 50" 2>/dev/null | wc -l)
    udp=$(tcpdump -r "$d/wan-ping.pcap" -nn "udp port 4500" 2>/dev/null | wc -l)
    log "pings 10/10 each way; on the wan link: $esp ESP frames (IP protocol 50), $udp UDP 4500"
    [ "$esp" = 40 ] || fail "$esp ESP (protocol 50) frames on the wan link for 20 echoes and 20 replies, not 40"
    local from1 from2
    from1=$(tcpdump -r "$d/wan-ping.pcap" -nn "ip proto 50 and src host 10.99.0.1 and dst host 10.99.0.2" 2>/dev/null | wc -l)
    from2=$(tcpdump -r "$d/wan-ping.pcap" -nn "ip proto 50 and src host 10.99.0.2 and dst host 10.99.0.1" 2>/dev/null | wc -l)
    [ "$from1/$from2" = 20/20 ] || fail "ESP frames gw1 -> gw2: $from1, gw2 -> gw1: $from2 (not 20 each)"
    same_counts "after the pings"

    tcp_transfer hA hB 10.10.2.1 5001
    tcp_transfer hB hA 10.10.1.1 5002
    same_counts "after the TCP transfers"
    capture_stop "$capall"
    udp=$(tcpdump -r "$d/wan-all.pcap" -nn "udp port 4500" 2>/dev/null | wc -l)
    [ "$udp" = 0 ] || fail "$udp UDP 4500 frames on the wan link (no NAT here: nothing may float)"
    local ike
    ike=$(tcpdump -r "$d/wan-all.pcap" -nn "udp port 500" 2>/dev/null | wc -l)
    [ "$ike" -ge 9 ] || fail "only $ike IKE messages on UDP 500 (Main Mode 6 + Quick Mode 3 expected)"
    log "whole case on the wan link: $ike IKE messages on UDP 500, no UDP 4500"
    log "PASS $2"
}

case_a-first() { run_case hA a-first; }
case_b-first() { run_case hB b-first; }

make_pki
topology
failed=""
for c in $CASES; do
    if in_case "$c" "case_$c"; then :; else failed="$failed $c"; fi
done
[ -z "$failed" ] || fail "cases failed:$failed"
log "PASS"
