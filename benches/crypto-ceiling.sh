#!/bin/bash
# The crypto ceiling of one core (issue 5, "Side by side"): AES-128-GCM encryption alone, no
# packet I/O, on the worker lcore of the throughput runs (lcore 1), in one run:
#   - DPDK's dpdk-test-crypto-perf with crypto_aesni_gcm (intel-ipsec-mb through the
#     cryptodev API, burst 32): what a DPDK dataplane could at best get from its crypto;
#   - target/release/raw-aead: this project's default AES-GCM backend (EspCipher::seal on
#     ESP packets of the same inner sizes): the raw cost of our own crypto.
# Each runs ROUNDS times (default 3), alternately, and its best round counts (on a shared
# machine other work only ever takes rate away). When benches/results/throughput.json (from
# benches/throughput.sh, same session) exists, the dataplane's encap rate is set beside both:
# the share of the crypto ceiling that is left after packet I/O, ESP and SA handling. Beside
# it, crypto-perf's cycles per operation over the dataplane worker's pipeline cycles per
# packet (throughput.sh reads them from the worker's counters): the same comparison without
# the ports' rx and tx bursts, since net_pcap's rx copies every replayed packet, which
# crypto-perf (no I/O) and a NIC's DMA do not.
#
# Output: a markdown table on stdout and benches/results/crypto-ceiling.json (with the
# command, time, machine and load average of the run, and the time of the throughput run it
# quotes).
# Needs root (DPDK). Usage: [ROUNDS=N] [OPS=N] benches/crypto-ceiling.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROUNDS=${ROUNDS:-3}
OPS=${OPS:-5000000}
RAW=${RAW_AEAD:-$ROOT/target/release/raw-aead}
CPERF=$(command -v dpdk-test-crypto-perf) || { echo "no dpdk-test-crypto-perf (package dpdk; make deps)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "benches/crypto-ceiling.sh needs root (DPDK)" >&2; exit 1; }
[ -x "$RAW" ] || { echo "no $RAW: run 'make build' first" >&2; exit 1; }
OUT=$ROOT/benches/results
mkdir -p "$OUT"
W=$(mktemp -d /tmp/ipgw-ceiling.XXXXXX)
trap 'rm -rf "$W"' EXIT
# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"
bench_begin crypto-ceiling "${RAW_AEAD:+RAW_AEAD=$RAW_AEAD }ROUNDS=$ROUNDS OPS=$OPS benches/crypto-ceiling.sh"

for r in $(seq "$ROUNDS"); do
    # crypto-perf: its worker on lcore 1, the main lcore on 0
    "$CPERF" -l 0,1 --no-huge --no-pci -m 512 --file-prefix "ceiling$$" --log-level=error \
        --vdev crypto_aesni_gcm0 -- --ptest throughput --devtype crypto_aesni_gcm \
        --optype aead --aead-algo aes-gcm --aead-op encrypt --aead-key-sz 16 \
        --aead-iv-sz 12 --aead-aad-sz 8 --digest-sz 16 --total-ops "$OPS" --burst-sz 32 \
        --buffer-sz 64,1420 --silent >"$W/cperf.$r" 2>&1 ||
        { echo "dpdk-test-crypto-perf failed: $(tail -3 "$W/cperf.$r")" >&2; exit 1; }
    taskset -c 1 "$RAW" --seconds 2 --sizes 64,1420 >"$W/raw.$r"
done

python3 - "$W" "$ROUNDS" "$OUT" "$OPS" <<'PY'
import glob, json, os, re, sys
w, rounds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cperf, raw = {}, {}
for f in glob.glob(w + "/cperf.*"):
    for line in open(f):
        # lcore, buf size, burst, enqueued, dequeued, failed enq, failed deq, MOps, Gbps, cycles
        m = re.match(r"\s+\d+\s+(\d+)\s+32\s+\d+\s+\d+\s+\d+\s+\d+\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", line)
        if m:
            size, mops = int(m.group(1)), float(m.group(2))
            if mops > cperf.get(size, {}).get("mops", 0):
                cperf[size] = {"mops": mops, "gbps": float(m.group(3)), "cycles_per_op": float(m.group(4))}
for f in glob.glob(w + "/raw.*"):
    for line in open(f):
        r = json.loads(line)
        if r["mops"] > raw.get(r["size"], {}).get("mops", 0):
            raw[r["size"]] = r
if set(cperf) != {64, 1420} or set(raw) != {64, 1420}:
    sys.exit("missing figures: crypto-perf %r, raw-aead %r" % (sorted(cperf), sorted(raw)))
dp, pipe, tput = {}, {}, None
tp = os.path.join(out, "throughput.json")
if os.path.exists(tp):
    tput = json.load(open(tp))
    # a list of rows before benches/lib.sh's bench_record, {"rows": [...], "run": {...}} since
    for row in tput["rows"] if isinstance(tput, dict) else tput:
        if row.get("direction") == "encap":
            dp[int(row["size"])] = row["ours_pps"] / 1e6
            # the worker's cycles per packet in the pipeline, the ports' bursts left out
            # (throughput.sh since 2026-12-03)
            if row.get("ours_pipeline_cycles_per_packet"):
                pipe[int(row["size"])] = row["ours_pipeline_cycles_per_packet"]
rows = []
print("| size | crypto-perf aesni_gcm Mops | cycles/op | raw-aead (%s) Mops | raw-aead / crypto-perf | dataplane encap Mpps | encap / raw-aead | pipeline cycles/packet | crypto-perf cycles / pipeline cycles |" % raw[64]["backend"])
print("|---|---|---|---|---|---|---|---|---|")
for s in (64, 1420):
    d, p = dp.get(s), pipe.get(s)
    share = cperf[s]["cycles_per_op"] / p if p else None
    rows.append({"size": s, "crypto_perf": cperf[s], "raw_aead": raw[s], "dataplane_encap_mpps": d,
                 "raw_over_cperf": raw[s]["mops"] / cperf[s]["mops"],
                 "encap_over_raw": (d / raw[s]["mops"]) if d else None,
                 "dataplane_pipeline_cycles": p, "cperf_cycles_over_pipeline": share})
    print("| %d | %.2f (%.1f Gbps) | %.0f | %.2f (%.1f Gbps) | %.2f | %s | %s | %s | %s |" % (
        s, cperf[s]["mops"], cperf[s]["gbps"], cperf[s]["cycles_per_op"], raw[s]["mops"],
        raw[s]["gbps"], raw[s]["mops"] / cperf[s]["mops"], "%.2f" % d if d else "-",
        "%.2f" % (d / raw[s]["mops"]) if d else "-", p or "-", "%.2f" % share if share else "-"))
ceiling = {"bench": "crypto-ceiling", "rounds": rounds, "ops": int(sys.argv[4]), "rows": rows}
if isinstance(tput, dict) and "run" in tput:
    ceiling["throughput_run"] = {k: tput["run"][k] for k in ("started", "finished")}
json.dump(ceiling, open(os.path.join(out, "crypto-ceiling.json"), "w"), indent=1)
PY
bench_record "$OUT/crypto-ceiling.json"
