#!/bin/bash
# The whole gateway against strongSwan: ipsec-dataplane (DPDK, af_packet) + ipsec-control
# (IKEv1 daemon) on one side, charon (IKEv1, kernel-libipsec: userspace ESP, always in UDP
# 4500) on the other, with traffic through the tunnel.
#
#   ns hA                 ns gw (ipsec-dataplane + ipsec-control)     ns cs (charon)
#   ha0 ---------------- dp-in [inside 10.10.1.254]                   10.10.2.1 on lo (its LAN)
#   10.10.1.1/24          dp-out [outside 10.99.0.1] ---------------- cs0 10.99.0.2/24
#
# Cases (CASES="acquire responder rekey" to choose):
#   acquire   - hA pings 10.10.2.1: the dataplane raises an Acquire, our daemon runs Main
#               Mode (NAT-T float: charon's encap=yes fakes NAT-D) and Quick Mode as
#               initiator, pushes the SAs, and the pings get through. Both sides count the
#               same packets: 10 echo requests out (our encaps = charon's inbound packets)
#               and 10 replies back (charon's outbound = our decaps).
#   responder - charon initiates (swanctl --initiate): our daemon answers Main and Quick Mode,
#               installs the SAs; then the pings get through.
#   rekey     - SA lifetime 120 s (IOS's minimum; soft at 90 %): our daemon rekeys
#               make-before-break while hA pings every 0.5 s; not one ping is lost across the
#               rekey, and the new SPIs carry the traffic.
# Pre-shared key, aes128-sha1-modp2048 for phase 1, esp-aes esp-sha-hmac for phase 2.
# Needs root, the release binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=60-charon-tunnel
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
need_root
need_cmd ip ethtool ping swanctl
DP_BIN=${IPSEC_DATAPLANE:-$TESTS_ROOT/target/release/ipsec-dataplane}
DPCTL_BIN=${IPSEC_DPCTL:-$TESTS_ROOT/target/release/ipsec-dpctl}
CTL_BIN=${IPSEC_CONTROL:-$TESTS_ROOT/target/release/ipsec-control}
CHARON=/usr/lib/ipsec/charon
[ -x "$CHARON" ] || fail "no $CHARON (strongswan-charon; run 'make deps')"
[ -x "$CTL_BIN" ] || fail "ipsec-control not found at $CTL_BIN (run 'make build')"
CASES=${CASES:-acquire responder rekey}
PSK=gw-charon-psk

topology() {
    local n
    for n in hA gw cs; do ns_add "$n"; done
    veth hA ha0 "$MAC_HA" gw dp-in "$MAC_DP_IN"
    veth gw dp-out "$MAC_DP_OUT" cs cs0 02:00:00:00:99:02
    quiet_link gw dp-in
    quiet_link gw dp-out
    host_link hA ha0
    ip -n "$(ns hA)" addr add 10.10.1.1/24 dev ha0
    ip -n "$(ns hA)" route add 10.10.2.0/24 via 10.10.1.254
    nsx cs ethtool -K cs0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$(ns cs)" addr add 10.99.0.2/24 dev cs0
    # charon's LAN: libipsec routes the remote LAN with a local address of local_ts as source
    ip -n "$(ns cs)" addr add 10.10.2.1/24 dev lo
}

# gw_config DIR SECONDS: the gateway's configuration (both processes read it).
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
lifetime = { seconds = $2, kilobytes = 4608000 }
EOF
}

charon_start() {
    local d=$1
    mkdir -p "$d/run"
    cat >"$d/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 x509 pubkey aes sha1 sha2 hmac kernel-libipsec kernel-netlink socket-default vici
  retransmit_tries = 3
  plugins { vici { socket = unix://$d/charon.vici } }
  filelog { log { path = $d/charon.log
                  time_format = %T
                  default = 1
                  ike = 2
                  chd = 2
                  knl = 1
                  flush_line = yes } }
  syslog { daemon { default = -1 } }
}
swanctl { load = pem pkcs1 x509 pubkey openssl random }
EOF
    cat >"$d/swanctl.conf" <<EOF
connections {
  gw {
    version = 1
    local_addrs = 10.99.0.2
    remote_addrs = 10.99.0.1
    proposals = aes128-sha1-modp2048
    encap = yes
    local { auth = psk
            id = 10.99.0.2 }
    remote { auth = psk
             id = 10.99.0.1 }
    children { c { local_ts = 10.10.2.0/24
                   remote_ts = 10.10.1.0/24
                   esp_proposals = aes128-sha1
                                  start_action = none } }
  }
}
secrets { ike-gw { id-a = 10.99.0.2
                   id-b = 10.99.0.1
                   secret = "$PSK" } }
EOF
    start_bg charon cs sh -c "mount --bind '$d/run' /run && STRONGSWAN_CONF='$d/strongswan.conf' exec $CHARON"
    wait_for 10 "charon's vici socket" test -S "$d/charon.vici"
    sw "$d" --load-all --file "$d/swanctl.conf" >"$d/load.log" 2>&1 || fail "swanctl --load-all: $(tail -3 "$d/load.log")"
}

sw() {
    local d=$1
    shift
    STRONGSWAN_CONF="$d/strongswan.conf" swanctl "$@" --uri "unix://$d/charon.vici"
}

gw_start() {
    local d=$1
    "$CTL_BIN" --check "$d/gw.toml" >"$d/ctl-check.log" 2>&1 || fail "ipsec-control --check: $(cat "$d/ctl-check.log")"
    dp_start "$d/gw.toml" "$d/dp.sock"
    start_bg control gw env RUST_LOG=info "$CTL_BIN" --config "$d/gw.toml"
    CTL_PID=$BG_PID
    wait_log 10 "$d/control.log" "connected to the dataplane" "$CTL_PID"
}

# ping_until SECONDS: hA pings 10.10.2.1 until one answer comes back.
ping_until() {
    local deadline=$((SECONDS + $1))
    until nsx hA ping -c 1 -W 1 10.10.2.1 >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no ping answer through the tunnel within $1 s"
    done
}

# Per-SA packet counts: ours from ipsec-dpctl (encaps of the outbound SA, decaps of the
# inbound SA), charon's from swanctl --list-sas (bytes/packets per direction of its CHILD_SA).
our_count() { # DIR(encaps|decaps)
    dp_counters "$LOGDIR/dp.sock" "$LOGDIR/counters.json"
    "$PY" - "$LOGDIR/counters.json" "$1" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
want = sys.argv[2]
print(sum(sa.get(want, 0) for sa in c["sas"]))
EOF
}
charon_count() { # in|out
    sw "$LOGDIR" --list-sas --raw 2>/dev/null | grep -o "packets-$1=[0-9]*" | awk -F= '{ s += $2 } END { print s + 0 }'
}

case_acquire() {
    local d=$LOGDIR
    gw_config "$d" 3600
    charon_start "$d"
    gw_start "$d"
    log "hA pings 10.10.2.1: Acquire -> Main Mode + Quick Mode toward charon"
    ping_until 30
    wait_log 5 "$d/charon.log" "CHILD_SA c\{[0-9]+\} established"
    grep -q "IKE_SA gw\[[0-9]*\] established" "$d/charon.log" || fail "charon has no IKE SA"
    grep -q "%CRYPTO-5-IKMP_SA_UP" "$d/control.log" || fail "our daemon did not log phase 1 up"
    grep -q "Crypto tunnel is UP" "$d/control.log" || fail "our daemon did not log the tunnel up"
    grep -q "NAT-T" "$d/control.log" || fail "phase 1 did not detect NAT (charon's encap=yes)"
    local e0 d0 ci0 co0
    e0=$(our_count encaps) d0=$(our_count decaps) ci0=$(charon_count in) co0=$(charon_count out)
    nsx hA ping -c 10 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    local e1 d1 ci1 co1
    e1=$(our_count encaps) d1=$(our_count decaps) ci1=$(charon_count in) co1=$(charon_count out)
    log "ours: encaps +$((e1 - e0)) decaps +$((d1 - d0)); charon: in +$((ci1 - ci0)) out +$((co1 - co0))"
    [ $((e1 - e0)) = 10 ] || fail "our encaps moved by $((e1 - e0)), not 10"
    [ $((d1 - d0)) = 10 ] || fail "our decaps moved by $((d1 - d0)), not 10"
    [ $((ci1 - ci0)) = 10 ] || fail "charon's inbound packets moved by $((ci1 - ci0)), not 10"
    [ $((co1 - co0)) = 10 ] || fail "charon's outbound packets moved by $((co1 - co0)), not 10"
    log "PASS acquire"
}

case_responder() {
    local d=$LOGDIR
    gw_config "$d" 3600
    charon_start "$d"
    gw_start "$d"
    # let the dataplane learn charon's MAC first (charon's kernel ARPs for us when it sends)
    log "charon initiates"
    sw "$d" --initiate --ike gw --child c --timeout 20 >"$d/initiate.log" 2>&1 ||
        fail "charon could not bring the tunnel up: $(tail -5 "$d/initiate.log")"
    wait_log 10 "$d/control.log" "Crypto tunnel is UP" "$CTL_PID"
    ping_until 10
    nsx hA ping -c 5 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    log "PASS responder"
}

case_rekey() {
    local d=$LOGDIR
    gw_config "$d" 120
    charon_start "$d"
    gw_start "$d"
    ping_until 30
    local spi0
    spi0=$(grep -o "outbound spi 0x[0-9A-F]*" "$d/control.log" | head -1)
    log "tunnel up ($spi0); pinging every 0.5 s across the soft lifetime (108 s)"
    nsx hA ping -c 250 -i 0.5 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || true
    grep -q "rekeyed: SA pair" "$d/control.log" || fail "no rekey happened"
    local spi1
    spi1=$(grep -o "outbound spi 0x[0-9A-F]*" "$d/control.log" | tail -1)
    [ "$spi0" != "$spi1" ] || fail "the outbound SPI did not change"
    grep -q " 0% packet loss" "$d/ping.log" || fail "packets lost across the rekey: $(grep loss "$d/ping.log")"
    log "PASS rekey ($spi0 -> $spi1, $(grep -o '[0-9]* received' "$d/ping.log"))"
}

# One topology; each case runs its own dataplane, control and charon (stopped when it ends).
topology
failed=""
for c in $CASES; do
    if in_case "$c" "case_$c"; then :; else failed="$failed $c"; fi
done
[ -z "$failed" ] || fail "cases failed:$failed"
log "PASS"
