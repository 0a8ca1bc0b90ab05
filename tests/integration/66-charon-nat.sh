#!/bin/bash
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
source "$TOOLS/ike_lab.sh"
need_root
need_cmd ip ethtool ping tcpdump nft
need_ike_lab
CASES=${CASES:-masquerade ports gw-behind-nat}
PSK=nat-t-psk-for-the-test

topology() {
    local n
    for n in hA gw nat cs; do ns_add "$n"; done
    veth hA ha0 "$MAC_HA" gw dp-in "$MAC_DP_IN"
    veth gw dp-out "$MAC_DP_OUT" nat n-out 02:00:00:00:99:02
    veth nat n-in 02:00:00:00:77:01 cs cs0 02:00:00:00:77:02
    quiet_link gw dp-in
    quiet_link gw dp-out
    host_link hA ha0
    ip -n "$(ns hA)" addr add 10.10.1.1/24 dev ha0
    ip -n "$(ns hA)" route add 10.10.2.0/24 via 10.10.1.254
    local ifc
    for ifc in n-out n-in; do
        nsx nat ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
        nsx nat sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
    done
    ip -n "$(ns nat)" addr add 10.99.0.2/24 dev n-out
    ip -n "$(ns nat)" addr add 192.168.77.1/24 dev n-in
    nsx nat sysctl -qw net.ipv4.ip_forward=1
    nsx cs ethtool -K cs0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    nsx cs sysctl -qw net.ipv6.conf.cs0.disable_ipv6=1
    ip -n "$(ns cs)" addr add 192.168.77.2/24 dev cs0
    ip -n "$(ns cs)" addr add 192.168.77.3/24 dev cs0
    ip -n "$(ns cs)" route add default via 192.168.77.1
    # charon's LAN: libipsec routes the remote LAN with a local address of local_ts as source
    ip -n "$(ns cs)" addr add 10.10.2.1/24 dev lo
    log "topology up (prefix $PFX, work $WORK)"
}

# nat_rules MODE: the NAT's nftables ruleset. (Each case has its own charon address, so that
# the NAT's conntrack entries of an earlier case never apply to it.)
nat_rules() {
    local rules='oifname "n-out" masquerade'
    [ "$1" = ports ] && rules='oifname "n-out" meta l4proto udp masquerade to :40000-49999
        oifname "n-out" masquerade'
    nsx nat nft -f - <<EOF || fail "nft refused the NAT ruleset"
flush ruleset
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        $rules
    }
}
EOF
    nsx nat nft list ruleset >"$LOGDIR/nft-ruleset.txt"
}

gw_config() {
    cat >"$1/gw.toml" <<EOF
hostname = "gw"
domain = "example.net"
[dataplane]
eal = ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "$PFX-gw"]
lcores = { main = 0, workers = [1] }
channel = "$1/dp.sock"
[[interface]]
name = "inside"
role = "inside"
device = "net_af_packet0,iface=dp-in,framecnt=4096,blocksz=4096,framesz=2048"
address = ["10.10.1.254/24"]
[[interface]]
name = "outside"
role = "outside"
device = "net_af_packet1,iface=dp-out,framecnt=4096,blocksz=4096,framesz=2048"
address = ["10.99.0.1/24"]
crypto_map = "vpn"
[transform_set.aes-sha]
esp = ["esp-aes", "esp-sha-hmac"]
[access_list]
101 = [ { action = "permit", protocol = "ip", source = "10.10.1.0/24", destination = "10.10.2.0/24" } ]
[isakmp]
[[isakmp.policy]]
priority = 10
encryption = "aes"
hash = "sha"
authentication = "pre-share"
group = 14
lifetime = 86400
[[isakmp.key]]
key = "$PSK"
address = "10.99.0.2"
[ctl]
socket = "$1/ctl.sock"
[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "10.99.0.2"
transform_set = "aes-sha"
match_address = "101"
lifetime = { seconds = 3600, kilobytes = 4608000 }
EOF
}

charon_setup() {
    local d=$1
    charon_conf "$d"
    cat >"$d/swanctl/swanctl.conf" <<EOF
connections {
  gw {
    version = 1
    local_addrs = $CS_ADDR
    remote_addrs = 10.99.0.1
    proposals = aes128-sha1-modp2048
    keyingtries = 1
    fragmentation = no
    local { auth = psk
            id = $CS_ADDR }
    remote { auth = psk
             id = 10.99.0.1 }
    children { c { local_ts = 10.10.2.0/24
                   remote_ts = 10.10.1.0/24
                   esp_proposals = aes128-sha1
                   start_action = none } }
  }
}
secrets { ike-gw { id-a = $CS_ADDR
                   id-b = 10.99.0.1
                   secret = "$PSK" } }
EOF
    charon_start charon cs "$d"
}

charon_count() { # in|out
    sw "$LOGDIR" --list-sas --raw 2>/dev/null | grep -o "packets-$1=[0-9]*" | awk -F= '{ s += $2 } END { print s + 0 }'
}

# pcap_count FILTER: frames in the NAT's outside capture that match a tcpdump filter.
pcap_count() {
    tcpdump -r "$LOGDIR/nat-out.pcap" -nn "$1" 2>/dev/null | wc -l
}

run_case() {
    local mode=$1 d=$LOGDIR
    CS_ADDR=192.168.77.2
    [ "$mode" = ports ] && CS_ADDR=192.168.77.3
    nat_rules "$mode"
    gw_config "$d"
    gw_run gw gw "$d/gw.toml" "$d/dp.sock"
    local ctl=$d/gw-control.log
    charon_setup "$d"
    capture_start nat n-out nat-out
    local cap=$CAP_PID

    log "charon initiates from behind the NAT ($mode)"
    sw "$d" --initiate --ike gw --child c --timeout 30 >"$d/initiate.log" 2>&1 ||
        fail "charon could not bring the tunnel up: $(tail -5 "$d/initiate.log")"
    wait_log 10 "$ctl" "Crypto tunnel is UP" "$GW_CTL_PID"
    # NAT-D: detected on both sides; the float: both at 4500 (as the NAT maps it)
    local up port
    up=$(grep "%CRYPTO-5-IKMP_SA_UP" "$ctl" | head -1)
    [ -n "$up" ] || fail "no phase 1 up line in $ctl"
    [[ $up == *", NAT-T" ]] || fail "our phase 1 up line does not end with NAT-T: $up"
    port=$(sed -n 's/.* with 10\.99\.0\.2:\([0-9]*\) is up: .*/\1/p' <<<"$up")
    [ -n "$port" ] || fail "our phase 1 SA is not with the NAT's address 10.99.0.2: $up"
    if [ "$mode" = ports ]; then
        [ "$port" -ge 40000 ] && [ "$port" -le 49999 ] ||
            fail "our phase 1 SA is with port $port, not the NAT's translation of 4500 (40000-49999)"
    else
        [ "$port" = 4500 ] || fail "our phase 1 SA is with port $port, not 4500"
    fi
    grep -qE "local host is behind NAT" "$d/charon.log" || fail "charon did not detect that it is behind a NAT"
    grep -qF "sending packet: from $CS_ADDR[4500] to 10.99.0.1[4500]" "$d/charon.log" ||
        fail "charon did not float to 4500"
    grep -q "CHILD_SA c{[0-9]*} established" "$d/charon.log" || fail "charon did not establish its CHILD_SA"
    log "phase 1: $(sed 's/.*IKMP_SA_UP: //' <<<"$up")"

    # traffic, counted: 10 echoes hA -> charon's LAN, 5 echoes charon's LAN -> hA
    nsx hA ping -c 2 -i 0.3 -W 1 10.10.1.254 >/dev/null 2>&1 || true # we learn hA
    local e0 d0 ci0 co0
    dp_counters "$d/dp.sock" "$d/counters0.json"
    read -r e0 d0 < <(dp_sum "$d/counters0.json")
    ci0=$(charon_count in) co0=$(charon_count out)
    nsx hA ping -c 10 -i 0.2 -W 3 10.10.2.1 >"$d/ping-hA.log" 2>&1 || fail "hA's pings lost: $(tail -2 "$d/ping-hA.log")"
    nsx cs ping -c 5 -i 0.2 -W 3 10.10.1.1 >"$d/ping-cs.log" 2>&1 || fail "charon's pings lost: $(tail -2 "$d/ping-cs.log")"
    sleep 1
    capture_stop "$cap"
    local e1 d1 ci1 co1
    dp_counters "$d/dp.sock" "$d/counters1.json"
    read -r e1 d1 < <(dp_sum "$d/counters1.json")
    ci1=$(charon_count in) co1=$(charon_count out)
    log "ours: encaps +$((e1 - e0)) decaps +$((d1 - d0)); charon: in +$((ci1 - ci0)) out +$((co1 - co0))"
    [ "$((e1 - e0))/$((d1 - d0))/$((ci1 - ci0))/$((co1 - co0))" = 15/15/15/15 ] ||
        fail "counts are not 15 each way on both sides"

    # the wire, on the NAT's outside link
    local esp_out esp_in proto50 ike500_ours ike4500_ours
    # ESP in UDP: port 4500 and a non-zero SPI (not the non-ESP marker of IKE, not a keepalive)
    esp_out=$(pcap_count "src host 10.99.0.1 and udp src port 4500 and udp[4:2] > 12 and udp[8:4] != 0")
    esp_in=$(pcap_count "dst host 10.99.0.1 and udp dst port 4500 and udp[4:2] > 12 and udp[8:4] != 0")
    proto50=$(pcap_count "ip proto 50")
    ike500_ours=$(pcap_count "src host 10.99.0.1 and udp src port 500")
    ike4500_ours=$(pcap_count "src host 10.99.0.1 and udp src port 4500 and udp[8:4] = 0")
    log "on the NAT's outside link: ESP-in-UDP $esp_out from us, $esp_in to us; IP proto 50: $proto50; our IKE: $ike500_ours on 500, $ike4500_ours on 4500"
    [ "$proto50" = 0 ] || fail "$proto50 frames of IP protocol 50 on the NAT's outside link"
    [ "$esp_out" = 15 ] || fail "$esp_out ESP-in-UDP frames from us on the wire, not 15"
    [ "$esp_in" = 15 ] || fail "$esp_in ESP-in-UDP frames to us on the wire, not 15"
    [ "$ike500_ours" = 2 ] || fail "we sent $ike500_ours IKE messages on port 500, not 2 (MM2 and MM4, before the float)"
    [ "$ike4500_ours" -ge 2 ] || fail "we sent $ike4500_ours IKE messages on port 4500 (MM6 and QM2 at least)"
    # every frame from us after the float goes to the NAT's mapping of charon's 4500
    local wrong
    wrong=$(pcap_count "src host 10.99.0.1 and udp src port 4500 and not udp dst port $port")
    [ "$wrong" = 0 ] || fail "$wrong frames from our port 4500 to another port than $port"
    if [ "$mode" = ports ]; then
        local hi
        hi=$(pcap_count "src host 10.99.0.2 and (udp src port 500 or udp src port 4500)")
        [ "$hi" = 0 ] || fail "$hi frames left the NAT with charon's own port 500/4500 (no port translation)"
    fi
    log "PASS $mode"
}

# dp_sum FILE: "ENCAPS DECAPS" summed over the SAs of an ipsec-dpctl counters dump.
dp_sum() {
    "$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))
print(sum(s.get("encaps", 0) for s in c["sas"]), sum(s.get("decaps", 0) for s in c["sas"]))' "$1"
}

case_masquerade() { run_case masquerade; }
case_ports() { run_case ports; }

# --- our gateway behind the NAT ---------------------------------------------------------------
topology_x() {
    local n ifc
    for n in hX gwx natx csx; do ns_add "$n"; done
    veth hX ha0 "$MAC_HA" gwx dp-in "$MAC_DP_IN"
    veth gwx dp-out "$MAC_DP_OUT" natx n-in 02:00:00:00:88:01
    veth natx n-out 02:00:00:00:99:12 csx cs0 02:00:00:00:99:13
    quiet_link gwx dp-in
    quiet_link gwx dp-out
    host_link hX ha0
    ip -n "$(ns hX)" addr add 10.10.1.1/24 dev ha0
    ip -n "$(ns hX)" route add 10.10.2.0/24 via 10.10.1.254
    for ifc in n-out n-in; do
        nsx natx ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
        nsx natx sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1"
    done
    ip -n "$(ns natx)" addr add 192.168.88.1/24 dev n-in
    ip -n "$(ns natx)" addr add 10.99.1.2/24 dev n-out
    nsx natx sysctl -qw net.ipv4.ip_forward=1
    nsx natx nft -f - <<EOF || fail "nft refused the NAT ruleset"
table ip nat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "n-out" masquerade
    }
}
EOF
    nsx csx ethtool -K cs0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    nsx csx sysctl -qw net.ipv6.conf.cs0.disable_ipv6=1
    ip -n "$(ns csx)" addr add 10.99.1.3/24 dev cs0
    ip -n "$(ns csx)" addr add 10.10.2.1/24 dev lo
}

gwx_config() {
    cat >"$1/gw.toml" <<EOF
hostname = "gw"
domain = "example.net"
[dataplane]
eal = ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "$PFX-gwx"]
lcores = { main = 0, workers = [1] }
channel = "$1/dp.sock"
[[interface]]
name = "inside"
role = "inside"
device = "net_af_packet0,iface=dp-in,framecnt=4096,blocksz=4096,framesz=2048"
address = ["10.10.1.254/24"]
[[interface]]
name = "outside"
role = "outside"
device = "net_af_packet1,iface=dp-out,framecnt=4096,blocksz=4096,framesz=2048"
address = ["192.168.88.2/24"]
crypto_map = "vpn"
[[route]]
prefix = "10.99.1.0/24"
next_hop = "192.168.88.1"
[transform_set.aes-sha]
esp = ["esp-aes", "esp-sha-hmac"]
[access_list]
101 = [ { action = "permit", protocol = "ip", source = "10.10.1.0/24", destination = "10.10.2.0/24" } ]
[isakmp]
nat_keepalive = 5
[[isakmp.policy]]
priority = 10
encryption = "aes"
hash = "sha"
authentication = "pre-share"
group = 14
lifetime = 86400
[[isakmp.key]]
key = "$PSK"
address = "10.99.1.3"
[ctl]
socket = "$1/ctl.sock"
[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "10.99.1.3"
transform_set = "aes-sha"
match_address = "101"
lifetime = { seconds = 3600, kilobytes = 4608000 }
EOF
}

case_gw-behind-nat() {
    local d=$LOGDIR
    gwx_config "$d"
    gw_run gw gwx "$d/gw.toml" "$d/dp.sock"
    local ctl=$d/gw-control.log
    charon_conf "$d"
    cat >"$d/swanctl/swanctl.conf" <<EOF
connections {
  gw {
    version = 1
    local_addrs = 10.99.1.3
    remote_addrs = 10.99.1.2
    proposals = aes128-sha1-modp2048
    fragmentation = no
    local { auth = psk
            id = 10.99.1.3 }
    remote { auth = psk
             id = 192.168.88.2 }
    children { c { local_ts = 10.10.2.0/24
                   remote_ts = 10.10.1.0/24
                   esp_proposals = aes128-sha1
                   start_action = none } }
  }
}
secrets { ike-gw { id-a = 10.99.1.3
                   id-b = 192.168.88.2
                   secret = "$PSK" } }
EOF
    charon_start charon csx "$d"
    capture_start natx n-out natx-out
    local cap=$CAP_PID

    log "hX pings charon's LAN: Acquire, we initiate through our NAT"
    local deadline=$((SECONDS + 40))
    until nsx hX ping -c 1 -W 1 10.10.2.1 >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no ping answer through the tunnel within 40 s"
    done
    wait_log 10 "$ctl" "Crypto tunnel is UP" "$GW_CTL_PID"
    grep -q "IPSEC(sa_request)" "$ctl" || fail "our gateway did not start the tunnel"
    local up
    up=$(grep "%CRYPTO-5-IKMP_SA_UP" "$ctl" | head -1)
    [[ $up == *" with 10.99.1.3:4500 is up: "*", NAT-T" ]] ||
        fail "our phase 1 is not floated to 10.99.1.3:4500 with NAT-T: $up"
    grep -q "remote host is behind NAT" "$d/charon.log" || fail "charon did not see us behind a NAT"
    log "phase 1: $(sed 's/.*IKMP_SA_UP: //' <<<"$up")"

    local e0 d0 ci0 co0 e1 d1 ci1 co1
    dp_counters "$d/dp.sock" "$d/counters0.json"
    read -r e0 d0 < <(dp_sum "$d/counters0.json")
    ci0=$(charon_count in) co0=$(charon_count out)
    nsx hX ping -c 10 -i 0.2 -W 3 10.10.2.1 >"$d/ping-hX.log" 2>&1 || fail "hX's pings lost: $(tail -2 "$d/ping-hX.log")"
    nsx csx ping -c 5 -i 0.2 -W 3 10.10.1.1 >"$d/ping-cs.log" 2>&1 || fail "charon's pings lost: $(tail -2 "$d/ping-cs.log")"
    dp_counters "$d/dp.sock" "$d/counters1.json"
    read -r e1 d1 < <(dp_sum "$d/counters1.json")
    ci1=$(charon_count in) co1=$(charon_count out)
    log "ours: encaps +$((e1 - e0)) decaps +$((d1 - d0)); charon: in +$((ci1 - ci0)) out +$((co1 - co0))"
    [ "$((e1 - e0))/$((d1 - d0))/$((ci1 - ci0))/$((co1 - co0))" = 15/15/15/15 ] ||
        fail "counts are not 15 each way on both sides"
    # idle for a while: our NAT keepalives (every 5 s) must show on the NAT's public side
    sleep 12
    capture_stop "$cap"
    local ka proto50 esp_out esp_in
    ka=$(tcpdump -r "$d/natx-out.pcap" -nn "src host 10.99.1.2 and udp src port 4500 and udp dst port 4500 and udp[4:2] = 9 and udp[8:1] = 0xff" 2>/dev/null | wc -l)
    proto50=$(tcpdump -r "$d/natx-out.pcap" -nn "ip proto 50" 2>/dev/null | wc -l)
    esp_out=$(tcpdump -r "$d/natx-out.pcap" -nn "src host 10.99.1.2 and udp src port 4500 and udp[4:2] > 12 and udp[8:4] != 0" 2>/dev/null | wc -l)
    esp_in=$(tcpdump -r "$d/natx-out.pcap" -nn "dst host 10.99.1.2 and udp dst port 4500 and udp[4:2] > 12 and udp[8:4] != 0" 2>/dev/null | wc -l)
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
failed=""
for c in $CASES; do
    if in_case "$c" "case_$c"; then :; else failed="$failed $c"; fi
done
[ -z "$failed" ] || fail "cases failed:$failed"
log "PASS"
