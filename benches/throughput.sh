#!/bin/bash
# Throughput of ipsec-dataplane against DPDK's ipsec-secgw, on the same devices, traffic and
# core, in the same run (issue 2, "Benchmarks").
#
# Devices: the input port is net_pcap replaying a pcap forever (infinite_rx=1); the output
# port is net_null with no-rx=1 (a sink). One worker lcore (lcore 1) does all the packet work
# for both gateways; ours also has its main lcore on lcore 0 (management only), secgw runs on
# lcore 1 alone. Transform: esp-gcm 128, tunnel mode, IPv4. Both directions:
#   encap: plaintext UDP (256 flows) in on port 0, ESP out on port 1;
#   decap: ESP (256 packets, sequence numbers 1..256 replayed) in on port 1, plaintext out
#          on port 0. The replay window is off in both gateways (the pcap replays the same
#          sequence numbers; secgw's default window is 0 as well).
# Packet sizes are inner IP packet sizes, 64 and 1420 bytes. The rate is the output port's
# opackets (DPDK telemetry, the same query for both processes) over MEASURE seconds, after
# WARMUP seconds. For ours, the worker's cycles per packet over the same seconds come with it
# (ipsec-dpctl counters): all of them, and the pipeline's part, without the ports' rx and tx
# bursts (net_pcap's rx copies every replayed packet into a fresh mbuf, which a NIC's DMA
# does not; benches/crypto-ceiling.sh sets the pipeline's part against crypto-perf's cycles
# per operation). The two gateways run alternately ROUNDS times (default 3) and each one's
# best round counts: on a shared machine other work only ever takes rate away, and
# alternating spreads it over both.
#
# Output: a markdown table on stdout and benches/results/throughput.json (with the command,
# time, machine and load average of the run: benches/lib.sh's bench_record).
# Needs root. Usage: [ROUNDS=N] benches/throughput.sh [MEASURE_SECONDS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEASURE=${1:-5}
ROUNDS=${ROUNDS:-3}
WARMUP=2
PY=/usr/bin/python3
BIN=${IPSEC_DATAPLANE:-$ROOT/target/release/ipsec-dataplane}
DPCTL=${IPSEC_DPCTL:-$ROOT/target/release/ipsec-dpctl}
[ "$(id -u)" = 0 ] || { echo "benches/throughput.sh needs root (DPDK)" >&2; exit 1; }
for b in "$BIN" "$DPCTL"; do [ -x "$b" ] || { echo "no $b: run 'make build' first" >&2; exit 1; }; done
SECGW=$("$ROOT/scripts/build-secgw.sh") || { echo "could not build ipsec-secgw" >&2; exit 1; }
W=$(mktemp -d /tmp/ipgw-tput.XXXXXX)
PIDS=()
# stop PID: SIGINT, then SIGKILL if it is still there (secgw ignores SIGINT before its loop).
stop() {
    kill -INT "$1" 2>/dev/null || return 0
    for _ in $(seq 30); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() { for p in "${PIDS[@]}"; do stop "$p"; done; [ -n "${KEEP:-}" ] || rm -rf "$W"; }
trap cleanup EXIT

# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
colon() { echo "$1" | sed 's/../&:/g; s/:$//'; }

# --- traffic
cat >"$W/gen.py" <<EOF
import sys
from scapy.all import Ether, IP, UDP, Raw, wrpcap
from scapy.layers.ipsec import SecurityAssociation, ESP
size, kind, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sa = SecurityAssociation(ESP, spi=105, crypt_algo="AES-GCM", crypt_key=bytes.fromhex("$GCM_IN"),
                         tunnel_header=IP(src="10.99.0.2", dst="10.99.0.1"))
pkts = []
for i in range(256):
    if kind == "plain":
        ip = IP(src="10.10.1.%d" % (1 + i % 200), dst="10.10.2.%d" % (1 + i % 100)) / UDP(sport=1024 + i, dport=9)
    else:
        ip = IP(src="10.10.2.%d" % (1 + i % 100), dst="10.10.1.1") / UDP(sport=1024 + i, dport=9)
    ip = ip / Raw(b"x" * (size - len(ip)))
    if kind == "plain":
        pkts.append(Ether(dst="02:00:00:00:00:01", src="02:00:00:00:00:aa") / ip)
    else:
        pkts.append(Ether(dst="02:00:00:00:00:02", src="02:00:00:00:00:bb") / sa.encrypt(ip, seq_num=i + 1))
wrpcap(out, pkts)
EOF
for s in 64 1420; do
    "$PY" "$W/gen.py" "$s" plain "$W/plain$s.pcap"
    "$PY" "$W/gen.py" "$s" esp "$W/esp$s.pcap"
done

# --- configurations
ours_cfg() { # DIR SIZE -> path
    local dir=$1 size=$2 in0 in1
    if [ "$dir" = encap ]; then
        in0="net_pcap0,rx_pcap=$W/plain$size.pcap,infinite_rx=1,tx_pcap=/dev/null"; in1="net_null1,no-rx=1"
    else
        in0="net_null0,no-rx=1"; in1="net_pcap1,rx_pcap=$W/esp$size.pcap,infinite_rx=1,tx_pcap=/dev/null"
    fi
    bench_gateway_toml "$W/ours-$dir$size.toml" "tput-ours-$$" "$W/dp.sock" "$in0" "$in1" \
        "$(printf '[[arp]]\naddress = "10.10.1.1"\nmac = "02:00:00:00:00:03"')"
    echo "$W/ours-$dir$size.toml"
}

secgw_cfg() {
    cat >"$W/secgw.cfg" <<EOF
sp ipv4 out esp protect 5 pri 1 dst 10.10.2.0/24 sport 0:65535 dport 0:65535
sp ipv4 in esp protect 105 pri 1 src 10.10.2.0/24 dst 10.10.1.0/24 sport 0:65535 dport 0:65535
sa out 5 aead_algo aes-128-gcm aead_key $(colon $GCM_OUT) mode ipv4-tunnel src 10.99.0.1 dst 10.99.0.2 type cpu-crypto
sa in 105 aead_algo aes-128-gcm aead_key $(colon $GCM_IN) mode ipv4-tunnel src 10.99.0.2 dst 10.99.0.1 type cpu-crypto
rt ipv4 dst 10.99.0.2/32 port 1
rt ipv4 dst 10.10.1.0/24 port 0
EOF
    echo "$W/secgw.cfg"
}

# telemetry_opackets PREFIX PORT
telemetry_opackets() {
    local out
    for _ in 1 2 3 4 5; do
        if out=$("$PY" "$ROOT/tests/tools/dpdk_telemetry.py" "/var/run/dpdk/$1/dpdk_telemetry.v2" "/ethdev/stats,$2" 2>/dev/null); then
            echo "$out" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["/ethdev/stats"]["opackets"])'
            return
        fi
        sleep 0.5
    done
    echo "telemetry of $1 unreachable" >&2
    exit 1
}

# rate PREFIX PORT [DPCTL_SOCKET] -> packets per second over MEASURE seconds; with our
# dataplane's channel socket, also the worker's cycles per packet over the same seconds, whole
# and the pipeline's part (ipsec-dpctl counters: busy_cycles and pipeline_cycles of lcore 1,
# over the packets it took in): "PPS CYCLES PIPELINE_CYCLES".
rate() {
    local a b ca cb
    sleep "$WARMUP"
    [ -z "${3:-}" ] || ca=$("$DPCTL" --socket "$3" counters --json)
    a=$(telemetry_opackets "$1" "$2")
    sleep "$MEASURE"
    b=$(telemetry_opackets "$1" "$2")
    [ -z "${3:-}" ] || cb=$("$DPCTL" --socket "$3" counters --json)
    if [ -z "${3:-}" ]; then
        echo $(( (b - a) / MEASURE ))
    else
        echo "$(( (b - a) / MEASURE )) $("$PY" -c '
import json, sys
a, b = (next(l for l in json.loads(j)["lcores"] if l["lcore"] == 1) for j in sys.argv[1:3])
n = (b["rx"] + b["handoff_in"]) - (a["rx"] + a["handoff_in"])
print(" ".join(str((b[k] - a[k]) // n if n else 0) for k in ("busy_cycles", "pipeline_cycles")))
' "$ca" "$cb")"
    fi
}

run_ours() { # DIR SIZE
    local cfg out=1
    cfg=$(ours_cfg "$1" "$2")
    [ "$1" = decap ] && out=0
    "$BIN" --config "$cfg" >"$W/ours.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 50); do [ -S "$W/dp.sock" ] && break; sleep 0.2; done
    [ -S "$W/dp.sock" ] || { cat "$W/ours.log" >&2; echo "ipsec-dataplane did not start" >&2; exit 1; }
    rate "tput-ours-$$" "$out" "$W/dp.sock"
    stop "$pid"
    rm -f "$W/dp.sock"
}

run_secgw() { # DIR SIZE
    local dir=$1 size=$2 p0 p1 out=1 cfg
    cfg=$(secgw_cfg)
    if [ "$dir" = encap ]; then
        p0="net_pcap0,rx_pcap=$W/plain$size.pcap,infinite_rx=1,tx_pcap=/dev/null"; p1="net_null1,no-rx=1"
    else
        p0="net_null0,no-rx=1"; p1="net_pcap1,rx_pcap=$W/esp$size.pcap,infinite_rx=1,tx_pcap=/dev/null"; out=0
    fi
    "$SECGW" -l 1 --no-huge -m 1024 --no-pci --file-prefix "tput-secgw-$$" --log-level user1,7 \
        --vdev "$p0" --vdev "$p1" --vdev crypto_aesni_gcm0 \
        -- -p 0x3 -P -u 0x2 -l -s 16384 --config='(0,0,1),(1,0,1)' -f "$cfg" >"$W/secgw.log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 100); do grep -q 'entering main loop' "$W/secgw.log" 2>/dev/null && break; sleep 0.2; done
    grep -q 'entering main loop' "$W/secgw.log" || { tail -20 "$W/secgw.log" >&2; echo "ipsec-secgw did not start" >&2; exit 1; }
    rate "tput-secgw-$$" "$out"
    stop "$pid"
}

bench_begin throughput "${IPSEC_DATAPLANE:+IPSEC_DATAPLANE=$IPSEC_DATAPLANE }ROUNDS=$ROUNDS benches/throughput.sh $MEASURE"
mkdir -p "$ROOT/benches/results"
rows="$W/rows.jsonl"
: >"$rows"
printf '| direction | size | ipsec-dataplane Mpps | Gbps | cycles per packet (pipeline) | ipsec-secgw Mpps | Gbps | ratio |\n|---|---|---|---|---|---|---|---|\n'
for dir in encap decap; do
    for size in 64 1420; do
        o=0 s=0 oc=0 op=0
        for _ in $(seq "$ROUNDS"); do
            # the cycles of our best round go with its rate
            read -r r c p <<<"$(run_ours "$dir" "$size")"
            [ "$r" -gt "$o" ] && { o=$r oc=$c op=$p; }
            r=$(run_secgw "$dir" "$size"); [ "$r" -gt "$s" ] && s=$r
        done
        "$PY" - "$dir" "$size" "$o" "$s" "$rows" "$oc" "$op" <<'EOF'
import json, sys
d, size, o, s, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
cycles, pipeline = int(sys.argv[6]), int(sys.argv[7])
g = lambda pps: pps * size * 8 / 1e9
ratio = o / s if s else None
print("| %s | %d | %.2f | %.1f | %d (%d) | %.2f | %.1f | %s |" % (d, size, o / 1e6, g(o), cycles, pipeline, s / 1e6, g(s), "%.2f" % ratio if ratio else "-"))
with open(path, "a") as f:
    f.write(json.dumps({"direction": d, "size": size, "ours_pps": o, "secgw_pps": s, "ratio": ratio,
                        "ours_cycles_per_packet": cycles,
                        "ours_pipeline_cycles_per_packet": pipeline}) + "\n")
EOF
    done
done
json="$ROOT/benches/results/throughput.json"
"$PY" - "$rows" "$MEASURE" "$ROUNDS" >"$json.tmp" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
json.dump({"bench": "throughput", "measure_seconds": int(sys.argv[2]), "rounds": int(sys.argv[3]),
           "rows": rows}, sys.stdout, indent=1)
EOF
mv "$json.tmp" "$json"
bench_record "$json"
