#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each case
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
#   dataplane  - ipsec-dataplane is killed (SIGKILL); while it is away ipsec-ctl is still
#                answered (the ISAKMP SA shown, the engine "not connected"); it is started
#                again, ipsec-control reconnects and reinstalls every SA pair it holds (log:
#                reinstalled 1 SA pairs), and the pings through the tunnel resume without a
#                new negotiation.
# Pre-shared key, aes128-sha1-modp2048, esp-aes esp-sha-hmac (the defaults of
# tests/tools/ike_lab.sh, which also has the topology). Needs root, the release binaries
# (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=63-restarts
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
CASES=${CASES:-control dataplane}

# up DIR: gateway and charon running, the tunnel up (hA's first ping starts it).
up() {
    local d=$1
    gw_toml "$d/gw.toml"
    charon_up charon cs "$d/charon"
    gw_run gw gw "$d/gw.toml"
    ping_until 30 hA 10.10.2.1 "the tunnel did not come up in 30 s"
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
    local d=$LOGDIR
    up "$d"
    log "killing ipsec-dataplane (pid $GW_DP_PID)"
    kill -KILL "$GW_DP_PID"
    wait "$GW_DP_PID" 2>/dev/null || true
    wait_log 10 "$d/gw-control.log" "lost the dataplane" "$GW_CTL_PID"
    # the operator is still served while the dataplane is away
    local ctl=${IPSEC_CTL:-$TESTS_ROOT/target/release/ipsec-ctl} out
    out=$(timeout 10 "$ctl" --socket "$d/ctl.sock" show crypto isakmp sa 2>&1) ||
        fail "ipsec-ctl not answered while the dataplane is away: $out"
    grep -q "QM_IDLE" <<<"$out" || fail "show crypto isakmp sa lost the ISAKMP SA: $out"
    out=$(timeout 10 "$ctl" --socket "$d/ctl.sock" show crypto engine brief 2>&1) ||
        fail "show crypto engine brief failed while the dataplane is away: $out"
    grep -q "not connected" <<<"$out" || fail "the engine is not shown as not connected: $out"
    rm -f "$d/dp.sock"
    rm -rf /var/run/dpdk/"$PFX"-gw
    mv "$d/gw-dataplane.log" "$d/gw-dataplane.first.log"
    start_bg gw-dataplane gw "$DP_BIN" --config "$d/gw.toml"
    GW_DP_PID=$BG_PID
    wait_for_socket 60 "$d/dp.sock" "$GW_DP_PID"
    wait_log 30 "$d/gw-control.log" "reinstalled 1 SA pairs" "$GW_CTL_PID"
    ping_until 20 hA 10.10.2.1 "no ping through the tunnel after the dataplane restarted"
    nsx hA ping -c 5 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(grep loss "$d/ping.log")"
    [ "$(grep -c "Crypto tunnel is UP" "$d/gw-control.log")" = 1 ] ||
        fail "a new negotiation happened; the reinstalled SAs should have carried the traffic"
    log "PASS dataplane (SAs reinstalled, no new negotiation)"
}

ike_topology
# shellcheck disable=SC2086 # the case names
run_cases $CASES
