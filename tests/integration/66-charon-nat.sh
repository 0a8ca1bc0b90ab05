#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each case
# NAT traversal through a real NAT (issue 3, proof item 4): our gateway (ipsec-dataplane on
# af_packet + ipsec-control) and strongSwan's charon (IKEv1, kernel-libipsec) behind a
# namespace that masquerades with nftables. charon runs WITHOUT `encap = yes`: nothing is
# faked, NAT-D finds the NAT, both sides float to 4500 and ESP goes in UDP (RFC 3947/3948).
#
#   ns hA              ns gw (ours)                    ns nat (nftables masquerade)     ns cs (charon)
#   ha0 ------------- dp-in  [inside 10.10.1.254]                                      lo 10.10.2.1/24
#   10.10.1.1/24      dp-out [outside 10.99.0.1] ---- n-out 10.99.0.2  n-in ---------- cs0 192.168.77.2/24 (masquerade)
#                                                     (masquerade)     192.168.77.1        192.168.77.3/24 (ports)
#                                                                                          (default via .1)
#
# Pre-shared key, aes128-sha1-modp2048, esp-aes esp-sha-hmac (tests/tools/ike_lab.sh's defaults).
# Our crypto map's peer is the NAT's public address 10.99.0.2 (pre-shared key for it);
# charon's ID is its private address (each case has its own, so that the NAT's conntrack
# entries of one case never serve the next). Nothing is forwarded inbound through the
# NAT, so charon starts the tunnel (swanctl --initiate).
#
# A second chain of namespaces puts OUR gateway behind a NAT instead (case gw-behind-nat):
#
#   ns hX              ns gwx (ours)                          ns natx (masquerade)             ns csx (charon)
#   ha0 ------------- dp-in  [inside 10.10.1.254]                                             lo 10.10.2.1/24
#   10.10.1.1/24      dp-out [outside 192.168.88.2] -------- n-in 192.168.88.1  n-out ------- cs0 10.99.1.3/24
#                     route 10.99.1.0/24 via 192.168.88.1                       10.99.1.2
#
# Cases (CASES="masquerade ports gw-behind-nat" to choose):
#   masquerade    - charon behind `masquerade` (the NAT keeps the source ports 500/4500 where
#                   it can); charon initiates.
#   ports         - charon behind `masquerade to :40000-49999`: the NAT also rewrites the
#                   ports, so charon's port 500 and, after the float, its port 4500 reach us
#                   as two different high ports, and we must answer (and send ESP) to the
#                   translated 4500 port; charon initiates.
#   gw-behind-nat - our gateway behind `masquerade`, charon on the public side: hA's ping
#                   makes our dataplane raise an Acquire and we initiate through the NAT; we
#                   find the NAT is ours (NAT-D), float to 4500 and, idle, send NAT
#                   keepalives (`nat_keepalive = 5`: one-byte 0xFF UDP 4500 datagrams,
#                   RFC 3948 2.3) that keep the NAT's mapping open; charon sees its peer
#                   behind a NAT. Checked on the NAT's public link (n-out in ns natx).
# The first two cases prove:
#   - NAT-D detected it: our phase 1 up line ends with `NAT-T`, and charon logs that it is
#     behind a NAT;
#   - both sides floated: charon sends from its port 4500 to our 4500, our phase 1 SA is with
#     the NAT's address and the port the NAT gave charon's 4500 (4500 itself, or 40000-49999
#     for `ports`), and on the NAT's outside link (tcpdump in ns nat on n-out) IKE uses UDP 500
#     only before the float, then UDP 4500 from our side;
#   - ESP goes in UDP 4500 and never as IP protocol 50 on that link; hA pings charon's LAN 10
#     times and charon pings hA 5 times, with no loss, and the counts are exact everywhere:
#     15 ESP-in-UDP frames each way on the wire, our outbound SA encapsulated 15 and our
#     inbound SA decapsulated 15 (ipsec-dpctl counters --json), charon counted 15 in and 15
#     out (swanctl --list-sas).
# Needs root, nftables (nft), tcpdump, the release binaries (make build) and strongSwan.
set -euo pipefail
TEST_NAME=66-charon-nat
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
need_cmd tcpdump nft
CASES=${CASES:-masquerade ports gw-behind-nat}

# nat_ns NS IN_IF IN_CIDR OUT_IF OUT_CIDR: a router namespace between two links.
nat_ns() {
    local n=$1 ifc
    for ifc in "$2" "$4"; do peer_link "$n" "$ifc"; done
    ip -n "$(ns "$n")" addr add "$3" dev "$2"
    ip -n "$(ns "$n")" addr add "$5" dev "$4"
    nsx "$n" sysctl -qw net.ipv4.ip_forward=1
}

# nat_rules NS MODE: the NAT's nftables ruleset, masquerading on n-out; MODE ports also maps
# UDP source ports to 40000-49999. (Each case has its own charon address, so that the NAT's
# conntrack entries of an earlier case never apply to it.)
nat_rules() {
    local rules='oifname "n-out" masquerade'
    [ "$2" = ports ] && rules='oifname "n-out" meta l4proto udp masquerade to :40000-49999
        oifname "n-out" masquerade'
    nsx "$1" nft -f - <<EOF || fail "nft refused the NAT ruleset"
flush ruleset
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        $rules
    }
}
EOF
    nsx "$1" nft list ruleset >"${LOGDIR:-$WORK}/nft-ruleset-$1.txt"
}

# charon behind the NAT
topology() {
    local n
    for n in hA gw nat cs; do ns_add "$n"; done
    gw_links gw nat n-out 02:00:00:00:99:02
    veth nat n-in 02:00:00:00:77:01 cs cs0 02:00:00:00:77:02
    lan_host hA ha0 10.10.1.1/24 10.10.2.0/24 10.10.1.254
    nat_ns nat n-in 192.168.77.1/24 n-out 10.99.0.2/24
    peer_link cs cs0
    ip -n "$(ns cs)" addr add 192.168.77.2/24 dev cs0
    ip -n "$(ns cs)" addr add 192.168.77.3/24 dev cs0
    ip -n "$(ns cs)" route add default via 192.168.77.1
    # charon's LAN: libipsec routes the remote LAN with a local address of local_ts as source
    ip -n "$(ns cs)" addr add 10.10.2.1/24 dev lo
    log "topology up (prefix $PFX, work $WORK)"
}

# wire_esp PCAP ADDR: "FROM TO PROTO50": the ESP-in-UDP frames of a capture (UDP 4500 with a
# non-zero SPI: not the non-ESP marker of IKE, not a keepalive) from and to ADDR, and the frames
# of IP protocol 50.
wire_esp() {
    local f="udp[4:2] > 12 and udp[8:4] != 0"
    echo "$(pcap_count "$1" "src host $2 and udp src port 4500 and $f")" \
        "$(pcap_count "$1" "dst host $2 and udp dst port 4500 and $f")" "$(pcap_count "$1" "ip proto 50")"
}

run_case() {
    local mode=$1 d=$LOGDIR cs_addr=192.168.77.2
    [ "$mode" = ports ] && cs_addr=192.168.77.3
    nat_rules nat "$mode"
    gw_toml "$d/gw.toml"
    gw_run gw gw "$d/gw.toml"
    local ctl=$d/gw-control.log
    charon_up charon cs "$d" local="$cs_addr" encap=no
    capture_start nat n-out nat-out
    local cap=$CAP_PID pcap=$d/nat-out.pcap

    log "charon initiates from behind the NAT ($mode)"
    charon_initiate "$d"
    # NAT-D: detected on both sides; the float: both at 4500 (as the NAT maps it)
    local up port
    up=$(grep "%CRYPTO-5-IKMP_SA_UP" "$ctl" | head -1)
    [ -n "$up" ] || fail "no phase 1 up line in $ctl"
    [[ $up == *", NAT-T" ]] || fail "our phase 1 up line does not end with NAT-T: $up"
    port=$(sed -n 's/.* with 10\.99\.0\.2:\([0-9]*\) is up: .*/\1/p' <<<"$up")
    [ -n "$port" ] || fail "our phase 1 SA is not with the NAT's address 10.99.0.2: $up"
    if [ "$mode" = ports ]; then
        if [ "$port" -lt 40000 ] || [ "$port" -gt 49999 ]; then
            fail "our phase 1 SA is with port $port, not the NAT's translation of 4500 (40000-49999)"
        fi
    else
        [ "$port" = 4500 ] || fail "our phase 1 SA is with port $port, not 4500"
    fi
    grep -qE "local host is behind NAT" "$d/charon.log" || fail "charon did not detect that it is behind a NAT"
    grep -qF "sending packet: from ${cs_addr}[4500] to 10.99.0.1[4500]" "$d/charon.log" ||
        fail "charon did not float to 4500"
    grep -q "CHILD_SA c{[0-9]*} established" "$d/charon.log" || fail "charon did not establish its CHILD_SA"
    log "phase 1: ${up##*IKMP_SA_UP: }"

    # traffic, counted: 10 echoes hA -> charon's LAN, 5 echoes charon's LAN -> hA
    nsx hA ping -c 2 -i 0.3 -W 1 10.10.1.254 >/dev/null 2>&1 || true # we learn hA
    counts_mark "$d"
    nsx hA ping -c 10 -i 0.2 -W 3 10.10.2.1 >"$d/ping-hA.log" 2>&1 || fail "hA's pings lost: $(tail -2 "$d/ping-hA.log")"
    nsx cs ping -c 5 -i 0.2 -W 3 10.10.1.1 >"$d/ping-cs.log" 2>&1 || fail "charon's pings lost: $(tail -2 "$d/ping-cs.log")"
    sleep 1
    capture_stop "$cap"
    counts_since "$d" 15

    # the wire, on the NAT's outside link
    local esp_out esp_in proto50 ike500_ours ike4500_ours
    read -r esp_out esp_in proto50 <<<"$(wire_esp "$pcap" 10.99.0.1)"
    ike500_ours=$(pcap_count "$pcap" "src host 10.99.0.1 and udp src port 500")
    ike4500_ours=$(pcap_count "$pcap" "src host 10.99.0.1 and udp src port 4500 and udp[8:4] = 0")
    log "on the NAT's outside link: ESP-in-UDP $esp_out from us, $esp_in to us; IP proto 50: $proto50; our IKE: $ike500_ours on 500, $ike4500_ours on 4500"
    [ "$proto50" = 0 ] || fail "$proto50 frames of IP protocol 50 on the NAT's outside link"
    [ "$esp_out" = 15 ] || fail "$esp_out ESP-in-UDP frames from us on the wire, not 15"
    [ "$esp_in" = 15 ] || fail "$esp_in ESP-in-UDP frames to us on the wire, not 15"
    [ "$ike500_ours" = 2 ] || fail "we sent $ike500_ours IKE messages on port 500, not 2 (MM2 and MM4, before the float)"
    [ "$ike4500_ours" -ge 2 ] || fail "we sent $ike4500_ours IKE messages on port 4500 (MM6 and QM2 at least)"
    # every frame from us after the float goes to the NAT's mapping of charon's 4500
    local wrong
    wrong=$(pcap_count "$pcap" "src host 10.99.0.1 and udp src port 4500 and not udp dst port $port")
    [ "$wrong" = 0 ] || fail "$wrong frames from our port 4500 to another port than $port"
    if [ "$mode" = ports ]; then
        local hi
        hi=$(pcap_count "$pcap" "src host 10.99.0.2 and (udp src port 500 or udp src port 4500)")
        [ "$hi" = 0 ] || fail "$hi frames left the NAT with charon's own port 500/4500 (no port translation)"
    fi
    log "PASS $mode"
}

case_masquerade() { run_case masquerade; }
case_ports() { run_case ports; }

# --- our gateway behind the NAT ---------------------------------------------------------------
topology_x() {
    local n
    for n in hX gwx natx csx; do ns_add "$n"; done
    gw_links gwx natx n-in 02:00:00:00:88:01 hX
    veth natx n-out 02:00:00:00:99:12 csx cs0 02:00:00:00:99:13
    lan_host hX ha0 10.10.1.1/24 10.10.2.0/24 10.10.1.254
    nat_ns natx n-in 192.168.88.1/24 n-out 10.99.1.2/24
    nat_rules natx masquerade
    peer_link csx cs0
    ip -n "$(ns csx)" addr add 10.99.1.3/24 dev cs0
    ip -n "$(ns csx)" addr add 10.10.2.1/24 dev lo
}

case_gw-behind-nat() {
    local d=$LOGDIR
    gw_toml "$d/gw.toml" prefix="$PFX-gwx" outside=192.168.88.2/24 route="10.99.1.0/24 192.168.88.1" \
        nat_keepalive=5 peer=10.99.1.3
    gw_run gw gwx "$d/gw.toml"
    local ctl=$d/gw-control.log
    charon_up charon csx "$d" local=10.99.1.3 remote=10.99.1.2 remote_id=192.168.88.2 encap=no
    capture_start natx n-out natx-out
    local cap=$CAP_PID pcap=$d/natx-out.pcap

    log "hX pings charon's LAN: Acquire, we initiate through our NAT"
    ping_until 40 hX 10.10.2.1
    wait_log 10 "$ctl" "Crypto tunnel is UP" "$GW_CTL_PID"
    grep -q "IPSEC(sa_request)" "$ctl" || fail "our gateway did not start the tunnel"
    local up
    up=$(grep "%CRYPTO-5-IKMP_SA_UP" "$ctl" | head -1)
    [[ $up == *" with 10.99.1.3:4500 is up: "*", NAT-T" ]] ||
        fail "our phase 1 is not floated to 10.99.1.3:4500 with NAT-T: $up"
    grep -q "remote host is behind NAT" "$d/charon.log" || fail "charon did not see us behind a NAT"
    log "phase 1: ${up##*IKMP_SA_UP: }"

    counts_mark "$d"
    nsx hX ping -c 10 -i 0.2 -W 3 10.10.2.1 >"$d/ping-hX.log" 2>&1 || fail "hX's pings lost: $(tail -2 "$d/ping-hX.log")"
    nsx csx ping -c 5 -i 0.2 -W 3 10.10.1.1 >"$d/ping-cs.log" 2>&1 || fail "charon's pings lost: $(tail -2 "$d/ping-cs.log")"
    counts_since "$d" 15
    local e1=${COUNTS[0]} d1=${COUNTS[1]}
    # idle for a while: our NAT keepalives (every 5 s) must show on the NAT's public side
    sleep 12
    capture_stop "$cap"
    local ka proto50 esp_out esp_in
    ka=$(pcap_count "$pcap" "src host 10.99.1.2 and udp src port 4500 and udp dst port 4500 and udp[4:2] = 9 and udp[8:1] = 0xff")
    read -r esp_out esp_in proto50 <<<"$(wire_esp "$pcap" 10.99.1.2)"
    log "on the NAT's public link: $ka NAT keepalives from us, ESP-in-UDP $esp_out from us and $esp_in to us (our SA pair: $e1 encaps, $d1 decaps), $proto50 of IP protocol 50"
    [ "$proto50" = 0 ] || fail "$proto50 frames of IP protocol 50 on the NAT's public link"
    # everything our SA pair ever carried crossed this link, in UDP 4500
    [ "$esp_out/$esp_in" = "$e1/$d1" ] ||
        fail "ESP-in-UDP frames on the NAT's public link ($esp_out out, $esp_in in) differ from our SA counters ($e1 encaps, $d1 decaps)"
    [ "$ka" -ge 2 ] || fail "$ka NAT keepalives from us in 12+ idle seconds (nat_keepalive = 5)"
    log "PASS gw-behind-nat"
}

topology
topology_x
# shellcheck disable=SC2086 # the case names
run_cases $CASES
