#!/bin/bash
# The two processes fail and restart independently (DESIGN.md "Control <-> dataplane"; issue 3
# proof item 8), with our gateway (ipsec-dataplane + ipsec-control) against strongSwan's charon
# (kernel-libipsec, ESP in UDP 4500), topology as 60-charon-tunnel.sh:
#
#   ns hA 10.10.1.1 -- [ns gw: ipsec-dataplane + ipsec-control] -- ns cs: charon, LAN 10.10.2.1
#
# Cases (CASES="control dataplane" to choose):
#   control    - hA pings every 0.2 s; ipsec-control is stopped (SIGTERM) and started again
#                while the pings go on. The SAs stay in the dataplane and keep forwarding: not
#                one ping is lost. The new ipsec-control adopts them from the dataplane's dump
#                (log: %CRYPTO-6-RESYNC: adopted 2 SAs).
#   dataplane  - ipsec-dataplane is killed (SIGKILL) and started again; ipsec-control notices,
#                reconnects and reinstalls every SA pair it holds (log: reinstalled 1 SA
#                pairs), and the pings through the tunnel resume without a new negotiation.
# Pre-shared key, aes128-sha1-modp2048, esp-aes esp-sha-hmac. Needs root, the release
# binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=63-restarts
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$TESTS_ROOT/tests/tools/ike_lab.sh"
DP_BIN=${IPSEC_DATAPLANE:-$TESTS_ROOT/target/release/ipsec-dataplane}
DPCTL_BIN=${IPSEC_DPCTL:-$TESTS_ROOT/target/release/ipsec-dpctl}
need_root
need_cmd ip ethtool ping
need_ike_lab
CASES=${CASES:-control dataplane}
PSK=restart-psk

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
ip -n "$(ns cs)" addr add 10.10.2.1/24 dev lo

# gw_config DIR: the gateway's TOML.
gw_config() {
    cat >"$1/gw.toml" <<EOF
hostname = "gw"
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
[[isakmp.policy]]
priority = 10
encryption = "aes"
hash = "sha"
authentication = "pre-share"
group = 14
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
EOF
}

charon_setup() {
    local d=$1/charon
    charon_conf "$d"
    cat >"$d/swanctl/swanctl.conf" <<EOF
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
                   esp_proposals = aes128-sha1 } }
  }
}
secrets { ike-gw { id-a = 10.99.0.2
                   id-b = 10.99.0.1
                   secret = "$PSK" } }
EOF
    charon_start charon cs "$d"
}

# up DIR: gateway and charon running, the tunnel up (hA's first ping starts it).
up() {
    local d=$1 deadline
    gw_config "$d"
    charon_setup "$d"
    gw_run gw gw "$d/gw.toml" "$d/dp.sock"
    deadline=$((SECONDS + 30))
    until nsx hA ping -c 1 -W 1 10.10.2.1 >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "the tunnel did not come up in 30 s"
    done
    grep -q "Crypto tunnel is UP" "$d/gw-control.log" || fail "no tunnel in control's log"
}

case_control() {
    local d=$LOGDIR ping_pid
    up "$d"
    nsx hA ping -c 60 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 &
    ping_pid=$!
    sleep 3
    log "stopping ipsec-control (pid $GW_CTL_PID) while hA pings"
    stop_pid "$GW_CTL_PID" TERM
    sleep 3
    log "starting ipsec-control again"
    mv "$d/gw-control.log" "$d/gw-control.first.log"
    start_bg gw-control gw env RUST_LOG=info "$CTL_BIN" --config "$d/gw.toml"
    GW_CTL_PID=$BG_PID
    wait_log 20 "$d/gw-control.log" "adopted 2 SAs from the dataplane" "$GW_CTL_PID"
    wait "$ping_pid" || true
    grep -q " 0% packet loss" "$d/ping.log" ||
        fail "pings lost across the restart of ipsec-control: $(grep loss "$d/ping.log")"
    dp_counters "$d/dp.sock" "$d/counters.json"
    [ "$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["sas"]))' "$d/counters.json")" = 2 ] ||
        fail "the dataplane does not hold the 2 SAs any more"
    log "PASS control ($(grep -o '[0-9]* received' "$d/ping.log"), SAs adopted)"
}

case_dataplane() {
    local d=$LOGDIR deadline
    up "$d"
    log "killing ipsec-dataplane (pid $GW_DP_PID)"
    kill -KILL "$GW_DP_PID"
    wait "$GW_DP_PID" 2>/dev/null || true
    rm -f "$d/dp.sock"
    rm -rf /var/run/dpdk/"$PFX"-gw
    mv "$d/gw-dataplane.log" "$d/gw-dataplane.first.log"
    start_bg gw-dataplane gw "$DP_BIN" --config "$d/gw.toml"
    GW_DP_PID=$BG_PID
    wait_for_socket 60 "$d/dp.sock" "$GW_DP_PID"
    wait_log 30 "$d/gw-control.log" "reinstalled 1 SA pairs" "$GW_CTL_PID"
    deadline=$((SECONDS + 20))
    until nsx hA ping -c 1 -W 1 10.10.2.1 >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no ping through the tunnel after the dataplane restarted"
    done
    nsx hA ping -c 5 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(grep loss "$d/ping.log")"
    [ "$(grep -c "Crypto tunnel is UP" "$d/gw-control.log")" = 1 ] ||
        fail "a new negotiation happened; the reinstalled SAs should have carried the traffic"
    log "PASS dataplane (SAs reinstalled, no new negotiation)"
}

failed=""
for c in $CASES; do
    if in_case "$c" "case_$c"; then :; else failed="$failed $c"; fi
done
[ -z "$failed" ] || fail "cases failed:$failed"
log "PASS"
