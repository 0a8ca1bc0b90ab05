#!/bin/bash
# Issue 5, "Scale", on the real ipsec-dataplane: SA install rate while traffic flows, and
# throughput by tunnel count.
#
# Devices as in benches/throughput.sh: net_pcap replaying a pcap forever into port 0 (inside),
# net_null sink on port 1 (outside); one worker lcore (1), the main lcore on 0; esp-gcm 128,
# tunnel mode, 64-byte inner IPv4/UDP packets. The rate is port 1's opackets (DPDK
# telemetry).
#
# 1. Install rate: the config's one static tunnel carries the traffic (256 flows). Its rate
#    is measured for MEASURE seconds; then `ipsec-dpctl sa load` installs TUNNELS generated
#    tunnels (two SAs each) plus an SPD of one rule per tunnel, deletes them, ROUNDS times
#    (the last round keeps them), pipelined (WINDOW requests in flight); the rate over that
#    period is the "during" figure, and MEASURE seconds more with the tunnels installed the
#    "after" one. Then LOCKSTEP_TUNNELS tunnels are loaded with one request in flight, as
#    control's link sends them.
# The gateway runs with its heap on 2 MB pages, as deploy/systemd/ipsec-dataplane.service
# runs it (HEAP_PAGES hugepages reserved for the run, given back after).
# 2. Throughput by tunnel count: for each N in COUNTS, a fresh dataplane gets N generated
#    tunnels and their SPD, and a pcap of 4096 packets spread over all N tunnels (tunnel
#    k*N/4096 for packet k) is replayed; the rate is compared with N=4.
#
# Output: markdown on stdout and benches/results/sa-install.json (with the command, time,
# machine and load average of the run: benches/lib.sh's bench_record).
# Needs root. Usage: [TUNNELS=10000] [ROUNDS=3] [WINDOW=64] [COUNTS="4 1000 10000"]
#                    benches/sa-install.sh [MEASURE_SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEASURE=${1:-5}
TUNNELS=${TUNNELS:-10000}
ROUNDS=${ROUNDS:-3}
WINDOW=${WINDOW:-64}
LOCKSTEP_TUNNELS=${LOCKSTEP_TUNNELS:-2000}
COUNTS=${COUNTS:-"4 1000 10000"}
WARMUP=2
PY=/usr/bin/python3
BIN=${IPSEC_DATAPLANE:-$ROOT/target/release/ipsec-dataplane}
DPCTL=${IPSEC_DPCTL:-$ROOT/target/release/ipsec-dpctl}
[ "$(id -u)" = 0 ] || { echo "benches/sa-install.sh needs root (DPDK)" >&2; exit 1; }
for b in "$BIN" "$DPCTL"; do
    [ -x "$b" ] || { echo "no $b: run 'make build' first" >&2; exit 1; }
done
W=$(mktemp -d /tmp/ipgw-sainst.XXXXXX)
PFX="sainst-$$"
DP_PID=
stop() {
    kill -INT "$1" 2>/dev/null || return 0
    for _ in $(seq 50); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() { [ -z "$DP_PID" ] || stop "$DP_PID"; bench_heap_restore; [ -n "${KEEP:-}" ] || rm -rf "$W"; }
trap cleanup EXIT

# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
bench_begin sa-install "${IPSEC_DATAPLANE:+IPSEC_DATAPLANE=$IPSEC_DATAPLANE }${IPSEC_DPCTL:+IPSEC_DPCTL=$IPSEC_DPCTL }TUNNELS=$TUNNELS ROUNDS=$ROUNDS WINDOW=$WINDOW LOCKSTEP_TUNNELS=$LOCKSTEP_TUNNELS COUNTS=\"$COUNTS\" benches/sa-install.sh $MEASURE"
# The gateway's heap on 2 MB pages, as its systemd unit runs it.
bench_heap_on_hugepages "${HEAP_PAGES:-256}"

# --- traffic: "static" to the config's tunnel (10.10.2.0/24), "spread N" to the generated
# tunnels' LANs (172.16.0.0/24 + i, as `ipsec-dpctl sa load` numbers them)
cat >"$W/gen.py" <<'EOF'
import sys
from scapy.all import Ether, IP, UDP, Raw, wrpcap
kind, out = sys.argv[1], sys.argv[2]
pkts = []
count = 256 if kind == "static" else 4096
for k in range(count):
    if kind == "static":
        dst = "10.10.2.%d" % (1 + k % 100)
    else:
        n = int(sys.argv[3])
        t = k * n // count if n >= count else k % n
        a = (172 << 24) + (16 << 16) + (t << 8) + 7
        dst = "%d.%d.%d.%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255)
    ip = IP(src="10.10.1.%d" % (1 + k % 200), dst=dst) / UDP(sport=1024 + k % 1000, dport=9)
    ip = ip / Raw(b"x" * (64 - len(ip)))
    pkts.append(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:aa") / ip)
wrpcap(out, pkts)
EOF

config() { # PCAP -> path
    bench_gateway_toml "$W/dp.toml" "$PFX" "$W/dp.sock" \
        "net_pcap0,rx_pcap=$1,infinite_rx=1,tx_pcap=/dev/null" "net_null1,no-rx=1" \
        "$(printf '[[route]]\nprefix = "198.18.0.0/15"\nnext_hop = "10.99.0.2"')"
    echo "$W/dp.toml"
}

start_dp() { # PCAP
    local cfg
    cfg=$(config "$1")
    rm -f "$W/dp.sock"
    env "$BENCH_HEAP_ENV" "$BIN" --config "$cfg" >"$W/dp.log" 2>&1 &
    DP_PID=$!
    for _ in $(seq 900); do [ -S "$W/dp.sock" ] && break; sleep 0.2; done
    [ -S "$W/dp.sock" ] || { tail -20 "$W/dp.log" >&2; echo "ipsec-dataplane did not start" >&2; exit 1; }
}

stop_dp() { stop "$DP_PID"; DP_PID=; }

opackets() {
    local out
    # DPDK answers telemetry from a thread of its own; on a loaded host it can take a while.
    for _ in $(seq 20); do
        if out=$("$PY" "$ROOT/tests/tools/dpdk_telemetry.py" "/var/run/dpdk/$PFX/dpdk_telemetry.v2" "/ethdev/stats,1" 2>/dev/null); then
            echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["/ethdev/stats"]["opackets"])'
            return
        fi
        sleep 0.5
    done
    echo "telemetry unreachable" >&2
    exit 1
}

now() { date +%s.%N; }
# pps A_COUNT A_TIME B_COUNT B_TIME
pps() { "$PY" -c "import sys; print(int(($3 - $1) / ($4 - $2)))"; }

measure() { # -> packets per second over MEASURE seconds
    local a ta b tb
    a=$(opackets); ta=$(now)
    sleep "$MEASURE"
    b=$(opackets); tb=$(now)
    pps "$a" "$ta" "$b" "$tb"
}

load() { # ARGS... -> the JSON report
    "$DPCTL" --socket "$W/dp.sock" sa load --spd-from-config "$W/dp.toml" --json "$@"
}

# --- 1. install rate while traffic flows
"$PY" "$W/gen.py" static "$W/static.pcap"
start_dp "$W/static.pcap"
sleep "$WARMUP"
before=$(measure)
a=$(opackets); ta=$(now)
pipelined=$(load --count "$TUNNELS" --window "$WINDOW" --rounds "$ROUNDS") ||
    echo "some SA requests were refused (see the table)" >&2
b=$(opackets); tb=$(now)
during=$(pps "$a" "$ta" "$b" "$tb")
after=$(measure)
lockstep=$(load --count "$LOCKSTEP_TUNNELS" --first-sa-id $((TUNNELS + 1)) --window 1 --delete) ||
    echo "some SA requests were refused (see the table)" >&2
load_avg=$(cut -d' ' -f1-3 /proc/loadavg)
stop_dp

# --- 2. throughput by tunnel count, traffic spread over every tunnel
declare -A rate
for n in $COUNTS; do
    "$PY" "$W/gen.py" spread "$W/spread$n.pcap" "$n"
    start_dp "$W/spread$n.pcap"
    load --count "$n" --window "$WINDOW" >"$W/load$n.json" ||
        echo "$n tunnels: some SA requests were refused: $(cat "$W/load$n.json")" >&2
    sleep "$WARMUP"
    rate[$n]=$(measure)
    stop_dp
done

mkdir -p "$ROOT/benches/results"
spread=""
for n in $COUNTS; do spread="$spread$n:${rate[$n]},"; done
"$PY" - "$before" "$during" "$after" "$pipelined" "$lockstep" "$spread" "$load_avg" \
    "$ROOT/benches/results/sa-install.json" <<'EOF'
import json, sys
before, during, after = (int(x) for x in sys.argv[1:4])
pipelined, lockstep = json.loads(sys.argv[4]), json.loads(sys.argv[5])
spread = dict((int(k), int(v)) for k, v in (p.split(":") for p in sys.argv[6].strip(",").split(",")))
load_avg, path = sys.argv[7], sys.argv[8]
print("## SA install rate while traffic flows (load average %s)\n" % load_avg)
print("| window | tunnels | rounds | SAs/s (acked) | last round s | on lcores s | deletes SAs/s | bytes/SA (RSS) | refused |")
print("|---|---|---|---|---|---|---|---|---|")
for r in (pipelined, lockstep):
    print("| %d | %d | %d | %.0f | %.3f | %s | %s | %s | %d |" % (
        r["window"], r["tunnels"], r["rounds"], r["install_sas_per_s"], r["install_s"],
        "%.3f" % r["on_lcores_s"] if r["on_lcores_s"] is not None else "-",
        "%.0f" % r["delete_sas_per_s"] if r["delete_sas_per_s"] else "-",
        r["bytes_per_sa"] if r["bytes_per_sa"] is not None else "-",
        sum(r["errors"].values())))
print("\n| traffic (static tunnel, 64 B) | Mpps | ratio to before |\n|---|---|---|")
for name, v in (("before", before), ("during installation", during), ("after, %d tunnels installed" % pipelined["tunnels"], after)):
    print("| %s | %.2f | %.2f |" % (name, v / 1e6, v / before if before else float("nan")))
ref = spread.get(4) or next(iter(spread.values()))
print("\n## Throughput by tunnel count (64 B, traffic spread over every tunnel)\n")
print("| tunnels | Mpps | ratio to 4 tunnels |\n|---|---|---|")
for n, v in spread.items():
    print("| %d | %.2f | %.3f |" % (n, v / 1e6, v / ref if ref else float("nan")))
with open(path, "w") as f:
    json.dump({"bench": "sa-install", "load_average": load_avg, "before_pps": before,
               "during_pps": during, "after_pps": after, "pipelined": pipelined,
               "lockstep": lockstep, "by_tunnels_pps": spread}, f, indent=1)
EOF
bench_record "$ROOT/benches/results/sa-install.json"
