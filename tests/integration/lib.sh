#!/bin/bash
# Shared helpers for the integration tests: namespace topology, process and cleanup tracking,
# waiting with timeouts, and `fail` with a reason. Source it; do not run it (when run directly
# it builds the topology once, checks it, tears it down and checks that nothing is left).
#
# Topology (each namespace name carries a per-run prefix, so parallel runs do not collide):
#
#   ns hA                ns gw (ipsec-dataplane)           ns sg (ipsec-secgw)            ns hB
#   ha0 --------------- dp-in   [inside]                   sg-clr [port 0] ----------- hb0
#   10.10.1.1/24                dp-out [outside] --------- sg-esp [port 1]             10.10.2.1/24
#   2001:db8:1::1/64            (10.99.0.1 in the config)  10.99.0.2 (kernel: ARP/ND)  2001:db8:2::1/64
#
# - dp-in, dp-out and sg-clr carry no kernel addresses (IPv6 disabled there too): the DPDK
#   processes own those links through net_af_packet, and a kernel stack would add noise.
# - sg-esp holds 10.99.0.2 and 2001:db8:99::2 in the kernel of ns sg only so that the kernel
#   answers ARP and neighbour solicitations for ipsec-secgw, which does neither. An ESP sink
#   (raw socket, protocol 50) keeps that kernel from answering our ESP with ICMP unreachable.
# - hA and hB have static neighbour entries for their gateways (ipsec-secgw does no ARP; on
#   our side it keeps ARP out of the ESP interop tests), checksum/segmentation offloads off
#   (af_packet would otherwise see partial checksums and 64 KB GSO frames) and MTU 1400, so
#   that every inner packet fits the 1500-byte outside link after ESP overhead.
set -euo pipefail

TESTS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TOOLS=$TESTS_ROOT/tests/tools
PY=/usr/bin/python3 # Debian's scapy is importable only from the system python
PFX=${PFX:-ipt$$}
WORK=${WORK:-$(mktemp -d -t "ipsec-it.XXXXXX")}

# Fixed MACs, so that configs and scapy frames can name them.
MAC_HA=02:00:00:00:01:01
MAC_DP_IN=02:00:00:00:01:fe
MAC_DP_OUT=02:00:00:00:99:01
MAC_SG_ESP=02:00:00:00:99:02
MAC_SG_CLR=02:00:00:00:02:fe
MAC_HB=02:00:00:00:02:01

HA4=10.10.1.1 HB4=10.10.2.1 GWIN4=10.10.1.254 SGIN4=10.10.2.254 GW4=10.99.0.1 SG4=10.99.0.2
HA6=2001:db8:1::1 HB6=2001:db8:2::1 GWIN6=2001:db8:1::254 SGIN6=2001:db8:2::254
GW6=2001:db8:99::1 SG6=2001:db8:99::2

_PIDS=()
_NAMESPACES=()
# capture pid -> its pcap file (capture_start, capture_stop)
declare -A _CAP_FILES=()
_CLEANUPS=()

log() { printf '[%s %s] %s\n' "$(date -u +%T)" "${TEST_NAME:-lib}" "$*" >&2; }

# fail REASON...: print why, the tail of every log we own, and exit 1 (cleanup runs from the trap).
fail() {
    printf '\nFAIL %s: %s\n' "${TEST_NAME:-lib}" "$*" >&2
    if [ "${FAIL_SHOW_LOGS:-1}" = 1 ] && [ -d "${LOGDIR:-$WORK}" ]; then
        for f in "${LOGDIR:-$WORK}"/*.log; do
            [ -s "$f" ] || continue
            printf -- '--- last lines of %s\n' "$f" >&2
            tail -n 15 "$f" >&2
        done
    fi
    exit 1
}

ns() { echo "$PFX-$1"; }
# nsx NS CMD...: run a command inside one of our namespaces.
nsx() {
    local n=$1
    shift
    ip netns exec "$(ns "$n")" "$@"
}

# on_cleanup CMD: run CMD (a string, eval'd) at cleanup, before processes are killed.
on_cleanup() { _CLEANUPS+=("$1"); }

# stop_started: stop every process started with start_bg (in this shell or subshell), by pid:
# SIGTERM, then SIGKILL after 3 s.
stop_started() {
    local - p
    set +e # runs from EXIT traps: a failed kill of a process already gone must not stop it
    for p in "${_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    for p in "${_PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    _PIDS=()
}

# in_case NAME FUNCTION ARGS...: run one test case in a subshell with its own log directory
# ($WORK/NAME) and its own processes, stopped when it ends however it ends. A `fail` inside
# ends only that case. Returns the case's status.
in_case() {
    local name=$1
    shift
    (
        LOGDIR=$WORK/$name
        mkdir -p "$LOGDIR"
        _PIDS=()
        _CLEANUPS=()
        trap 'stop_started' EXIT
        "$@"
    )
}

cleanup() {
    local rc=$?
    set +e
    for c in "${_CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1; done
    stop_started
    for n in "${_NAMESPACES[@]}"; do ip netns del "$n" 2>/dev/null; done
    # EAL runtime directories of the DPDK processes we ran (their file prefixes start with ours).
    rm -rf /var/run/dpdk/"$PFX"-* 2>/dev/null
    if [ "$rc" = 0 ] && [ "${KEEP_WORK:-0}" != 1 ]; then
        rm -rf "$WORK"
    else
        echo "(work directory kept: $WORK)" >&2
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_root() { [ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"; }
need_cmd() {
    local c
    for c in "$@"; do command -v "$c" >/dev/null || fail "command '$c' not found (run 'make deps')"; done
}

# wait_for SECONDS WHAT CMD...: poll CMD every 0.2 s until it succeeds; fail after SECONDS.
wait_for() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for $what"
        sleep 0.2
    done
}

# wait_log SECONDS FILE REGEX [PID]: wait until FILE matches REGEX; fail early if PID dies.
wait_log() {
    local secs=$1 file=$2 re=$3 pid=${4:-}
    local deadline=$((SECONDS + secs))
    until grep -qE "$re" "$file" 2>/dev/null; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            fail "process $pid exited before '$re' appeared in $file"
        fi
        [ "$SECONDS" -lt "$deadline" ] || fail "timed out after ${secs}s waiting for '$re' in $file"
        sleep 0.2
    done
}

# start_bg NAME NS CMD...: run CMD in namespace NS in the background, output in $WORK/NAME.log.
# Sets BG_PID. The process is stopped at cleanup.
start_bg() {
    local name=$1 n=$2
    shift 2
    ip netns exec "$(ns "$n")" "$@" >"${LOGDIR:-$WORK}/$name.log" 2>&1 &
    BG_PID=$!
    _PIDS+=("$BG_PID")
}

# stop_pid PID [SIGNAL]: stop one process we started and wait for it (its exit status is ignored).
stop_pid() {
    local p=$1 sig=${2:-INT}
    kill -"$sig" "$p" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

ns_add() {
    local n
    n=$(ns "$1")
    ip netns add "$n" || fail "cannot create namespace $n"
    _NAMESPACES+=("$n")
    ip -n "$n" link set lo up
}

# veth NS1 IF1 MAC1 NS2 IF2 MAC2: a veth pair between two of our namespaces.
veth() {
    ip link add "$2" address "$3" netns "$(ns "$1")" type veth peer name "$5" address "$6" netns "$(ns "$4")" ||
        fail "cannot create veth $2<->$5"
    ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$4")" link set "$5" up
}

# quiet_link NS IF: no kernel IP stack on a link that a DPDK process owns.
quiet_link() {
    nsx "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
    nsx "$1" ethtool -K "$2" gro off >/dev/null 2>&1 || true
}

# host_link NS IF: an end host's link: no offloads that would hand af_packet partial checksums
# or GSO super-frames, and an MTU that leaves room for ESP overhead on the outside link.
host_link() {
    nsx "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 ||
        fail "ethtool -K $2 failed in $1"
    ip -n "$(ns "$1")" link set "$2" mtu 1400
    nsx "$1" sysctl -qw "net.ipv6.conf.$2.accept_ra=0"
}

# topo_up: the four namespaces above, dual stack.
topo_up() {
    need_root
    need_cmd ip ethtool
    local n
    for n in hA gw sg hB; do ns_add "$n"; done
    veth hA ha0 "$MAC_HA" gw dp-in "$MAC_DP_IN"
    veth gw dp-out "$MAC_DP_OUT" sg sg-esp "$MAC_SG_ESP"
    veth sg sg-clr "$MAC_SG_CLR" hB hb0 "$MAC_HB"
    quiet_link gw dp-in
    quiet_link gw dp-out
    quiet_link sg sg-clr
    nsx sg ethtool -K sg-esp gro off >/dev/null 2>&1 || true

    host_link hA ha0
    ip -n "$(ns hA)" addr add "$HA4/24" dev ha0
    ip -n "$(ns hA)" addr add "$HA6/64" dev ha0 nodad
    ip -n "$(ns hA)" route add 10.10.2.0/24 via "$GWIN4"
    ip -n "$(ns hA)" route add 2001:db8:2::/64 via "$GWIN6"
    ip -n "$(ns hA)" neigh replace "$GWIN4" lladdr "$MAC_DP_IN" dev ha0 nud permanent
    ip -n "$(ns hA)" neigh replace "$GWIN6" lladdr "$MAC_DP_IN" dev ha0 nud permanent

    host_link hB hb0
    ip -n "$(ns hB)" addr add "$HB4/24" dev hb0
    ip -n "$(ns hB)" addr add "$HB6/64" dev hb0 nodad
    ip -n "$(ns hB)" route add 10.10.1.0/24 via "$SGIN4"
    ip -n "$(ns hB)" route add 2001:db8:1::/64 via "$SGIN6"
    ip -n "$(ns hB)" neigh replace "$SGIN4" lladdr "$MAC_SG_CLR" dev hb0 nud permanent
    ip -n "$(ns hB)" neigh replace "$SGIN6" lladdr "$MAC_SG_CLR" dev hb0 nud permanent

    # ARP/ND answers for ipsec-secgw's outside address, and an ESP sink so that this kernel
    # does not answer ESP (for secgw, not for it) with ICMP protocol unreachable.
    nsx sg sysctl -qw net.ipv6.conf.sg-esp.accept_ra=0
    ip -n "$(ns sg)" addr add "$SG4/24" dev sg-esp
    ip -n "$(ns sg)" addr add "$SG6/64" dev sg-esp nodad
    start_bg esp-sink sg "$PY" "$TOOLS/esp_sink.py"
    wait_log 10 "$WORK/esp-sink.log" '^ready' "$BG_PID"
    log "topology up (prefix $PFX, work $WORK)"
}

# secgw_run NAME NS IF0 IF1 LCORE CFG [legacy]: run ipsec-secgw in namespace NS on af_packet,
# port 0 (protected side) on IF0 and port 1 (ESP side) on IF1, on one lcore. Its EAL file prefix
# is $PFX-NAME (which names its telemetry socket) and its log $LOGDIR/NAME.log. Sets BG_PID.
# By default it runs its librte_ipsec path (-l); "legacy" selects its own ESP code instead, the
# only one of the two with DES-CBC (librte_ipsec 22.11 has no DES). SECGW_CRYPTODEV overrides
# the crypto PMD (default crypto_aesni_mb0).
secgw_run() {
    local name=$1 n=$2 if0=$3 if1=$4 lc=$5 cfg=$6 path=${7:-librte_ipsec}
    local cdev=${SECGW_CRYPTODEV:-crypto_aesni_mb0} bin libipsec=-l
    [ "$path" = legacy ] && libipsec=
    bin=$("$TESTS_ROOT/scripts/build-secgw.sh") || fail "could not build ipsec-secgw"
    # -P: promiscuous. -u 0x2: port 1 unprotected. --no-huge: no hugepages on these machines.
    # shellcheck disable=SC2086
    # Larger af_packet rings than the default 512 frames: under a TCP burst on 2 shared cores
    # the kernel would otherwise drop frames that no counter reports.
    local ring=framecnt=4096,blocksz=4096,framesz=2048
    start_bg "$name" "$n" "$bin" -l "$lc" --no-huge -m 512 --no-pci --file-prefix "$PFX-$name" \
        --log-level=user1,7 \
        --vdev "net_af_packet0,iface=$if0,$ring" --vdev "net_af_packet1,iface=$if1,$ring" \
        --vdev "$cdev" \
        -- -p 0x3 -P -u 0x2 $libipsec -s 8192 --config="(0,0,$lc),(1,0,$lc)" -f "$cfg"
    wait_log 30 "${LOGDIR:-$WORK}/$name.log" 'entering main loop' "$BG_PID"
    log "ipsec-secgw '$name' running in $n (pid $BG_PID, $path, $cdev)"
}

# secgw_start CFG [legacy]: the peer ipsec-secgw in ns sg (port 0 = sg-clr toward hB, port 1 =
# sg-esp toward us), on lcore SECGW_LCORE (0 by default, away from ipsec-dataplane's worker,
# lcore 1 in the generated configs). Sets SECGW_PID and SECGW_PREFIX.
secgw_start() {
    secgw_run secgw sg sg-clr sg-esp "${SECGW_LCORE:-0}" "$1" "${2:-librte_ipsec}"
    SECGW_PID=$BG_PID
    SECGW_PREFIX=$PFX-secgw
}

# secgw_sent [PREFIX]: prints "CLEAR ESP MISSED RECEIVED": the packets an ipsec-secgw (the peer
# by default) sent on port 0 (decrypted, toward its LAN) and on port 1 (encrypted, toward the
# other gateway), the packets its port 1 reported lost (imissed; 22.11's af_packet PMD leaves it
# 0) and the frames its port 1 received (ESP plus a few ARP/ND frames), from its ethdev
# counters over DPDK telemetry. It sends nothing else on either port (no ARP, no
# ICMP), so these are its decap and encap counts. (Its own /examples/ipsec-secgw/stats commands
# are not registered in 22.11: telemetry refuses the '-' in their names.)
secgw_sent() {
    local p0 p1
    p0=$(secgw_telemetry /ethdev/stats,0 "${1:-}") || return 1
    p1=$(secgw_telemetry /ethdev/stats,1 "${1:-}") || return 1
    printf '%s\n%s\n' "$p0" "$p1" >"${LOGDIR:-$WORK}/ethdev-stats-${1:-peer}.json"
    "$PY" -c 'import json, sys; s = [json.loads(a)["/ethdev/stats"] for a in sys.argv[1:]]
print(s[0]["opackets"], s[1]["opackets"], s[1]["imissed"], s[1]["ipackets"])' "$p0" "$p1"
}

# secgw_telemetry CMD [PREFIX]: one DPDK telemetry query against a running ipsec-secgw (the
# peer by default), JSON on stdout.
secgw_telemetry() {
    "$PY" "$TOOLS/dpdk_telemetry.py" "/var/run/dpdk/${2:-$SECGW_PREFIX}/dpdk_telemetry.v2" "$1"
}

# capture_start NS IF NAME [FILTER]: tcpdump into $WORK/NAME.pcap; sets CAP_PID.
capture_start() {
    local n=$1 ifc=$2 name=$3 filter=${4:-}
    need_cmd tcpdump
    # shellcheck disable=SC2086
    start_bg "cap-$name" "$n" tcpdump -i "$ifc" -s "${CAP_SNAPLEN:-0}" -B 32768 -U -n \
        -w "${LOGDIR:-$WORK}/$name.pcap" $filter
    CAP_PID=$BG_PID
    _CAP_FILES[$CAP_PID]=${LOGDIR:-$WORK}/$name.pcap
    wait_log 10 "${LOGDIR:-$WORK}/cap-$name.log" 'listening on' "$CAP_PID"
}

# capture_stop PID: stop tcpdump so that its pcap is complete.
# capture_stop PID: stop a capture once it has written what it received. tcpdump drops what
# is still in its kernel buffer when it is interrupted ("10 received by filter", "8
# captured"), so wait until its pcap file has not grown for half a second (at most 10 s).
capture_stop() {
    local pid=$1 f size last=-1 stable=0
    sleep 0.3
    f=${_CAP_FILES[$pid]:-}
    if [ -n "$f" ]; then
        for _ in $(seq 100); do
            size=$(stat -c %s "$f" 2>/dev/null || echo 0)
            if [ "$size" = "$last" ]; then
                stable=$((stable + 1))
                [ "$stable" -ge 5 ] && break
            else
                stable=0
                last=$size
            fi
            sleep 0.1
        done
    fi
    stop_pid "$pid" INT
}

# ipsec-dataplane and ipsec-dpctl, as `make build` leaves them (override with env).
DP_BIN=${IPSEC_DATAPLANE:-$TESTS_ROOT/target/release/ipsec-dataplane}
DPCTL_BIN=${IPSEC_DPCTL:-$TESTS_ROOT/target/release/ipsec-dpctl}

need_dataplane() {
    [ -x "$DP_BIN" ] || fail "ipsec-dataplane not found at $DP_BIN (run 'make build')"
    [ -x "$DPCTL_BIN" ] || fail "ipsec-dpctl not found at $DPCTL_BIN (run 'make build')"
}

# dp_start TOML SOCKET: validate the config with --check, then run ipsec-dataplane in ns gw and
# wait for its channel socket. Sets DP_PID.
dp_start() {
    local toml=$1 sock=$2
    need_dataplane
    "$DP_BIN" --check "$toml" >"${LOGDIR:-$WORK}/dp-check.log" 2>&1 ||
        fail "ipsec-dataplane --check refused the generated config $toml"
    start_bg dataplane gw "$DP_BIN" --config "$toml"
    DP_PID=$BG_PID
    wait_for_socket 30 "$sock" "$DP_PID"
    log "ipsec-dataplane running (pid $DP_PID)"
}

wait_for_socket() {
    local secs=$1 sock=$2 pid=$3
    local deadline=$((SECONDS + secs))
    until [ -S "$sock" ]; do
        kill -0 "$pid" 2>/dev/null || fail "ipsec-dataplane exited before creating its channel $sock"
        [ "$SECONDS" -lt "$deadline" ] || fail "ipsec-dataplane did not create $sock within ${secs}s"
        sleep 0.2
    done
}

# warm_neighbours FAMILY: let ipsec-dataplane resolve its neighbours on both sides (hA, and
# ipsec-secgw's outside address, which the kernel of ns sg answers for) before a test counts
# packets: a packet that finds no neighbour is dropped while resolution is requested. hA pings
# the peer's outside address, which matches no crypto ACL (bypass); the result does not matter.
warm_neighbours() {
    # hA pings our inside address (we learn hA from its ARP request / NS), then the peer's
    # outside address through us (bypass traffic: we resolve the peer). The second needs a
    # route on hA toward the outside network.
    # hA's static entry for our inside address is dropped for the first ping, so that hA
    # asks (ARP / NS) and we learn it, then put back.
    if [ "$1" = 6 ]; then
        ip -n "$(ns hA)" -6 route replace 2001:db8:99::/64 via "$GWIN6" 2>/dev/null || true
        ip -n "$(ns hA)" neigh del "$GWIN6" dev ha0 2>/dev/null || true
        nsx hA ping -6 -c 2 -i 0.3 -W 1 "$GWIN6" >/dev/null 2>&1 || true
        ip -n "$(ns hA)" neigh replace "$GWIN6" lladdr "$MAC_DP_IN" dev ha0 nud permanent
        nsx hA ping -6 -c 3 -i 0.3 -W 1 "$SG6" >/dev/null 2>&1 || true
    else
        ip -n "$(ns hA)" route replace 10.99.0.0/24 via "$GWIN4" 2>/dev/null || true
        ip -n "$(ns hA)" neigh del "$GWIN4" dev ha0 2>/dev/null || true
        nsx hA ping -c 2 -i 0.3 -W 1 "$GWIN4" >/dev/null 2>&1 || true
        ip -n "$(ns hA)" neigh replace "$GWIN4" lladdr "$MAC_DP_IN" dev ha0 nud permanent
        nsx hA ping -c 3 -i 0.3 -W 1 "$SG4" >/dev/null 2>&1 || true
    fi
}

# dp_counters SOCKET OUTFILE: ipsec-dpctl's counters as JSON into OUTFILE.
dp_counters() {
    "$DPCTL_BIN" --socket "$1" counters --json >"$2" 2>"${LOGDIR:-$WORK}/dpctl.log" ||
        fail "ipsec-dpctl --socket $1 counters --json failed: $(tail -3 "${LOGDIR:-$WORK}/dpctl.log")"
}

# When run directly: a self-check of the helpers (topology up, basic L2 reachability between
# the kernel-owned ends, cleanup leaves no namespace behind).
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    TEST_NAME=lib-selfcheck
    topo_up
    for n in hA gw sg hB; do ip netns list | grep -q "^$(ns "$n")\b" || fail "namespace $n missing"; done
    # sg-esp answers ARP for 10.99.0.2: prove it from ns gw with a throwaway address on dp-out.
    ip -n "$(ns gw)" addr add 10.99.0.9/24 dev dp-out
    nsx gw ping -c 1 -W 2 "$SG4" >/dev/null || fail "no ARP/ICMP answer from the kernel on sg-esp"
    ip -n "$(ns gw)" addr del 10.99.0.9/24 dev dp-out
    log "PASS"
fi
