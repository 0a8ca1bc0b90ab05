#!/bin/bash
# What the benchmarks share. Sourced; defines what follows and nothing else.
# - Every benchmark script: bench_begin and bench_record, which put the command, the time, the
#   machine and the load average of a run into its JSON in benches/results/
#   (benches/render_results.py turns those into benches/RESULTS.md).
# - The net_pcap/net_null benchmarks (benches/throughput.sh, benches/sa-install.sh): the test
#   keys of their one static esp-gcm 128 tunnel and the gateway configuration around it.

# bench_begin NAME COMMAND: notes the start of a benchmark run for bench_record: its name, the
# command line that reproduces it (with the settings it ran with), the UTC time and the load
# average.
bench_begin() {
    BENCH_NAME=$1
    BENCH_COMMAND=$2
    BENCH_STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    BENCH_LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
}

# bench_record FILE: adds a "run" object to the JSON object in FILE: what bench_begin noted,
# the end time and the load average now, the machine (CPU model and crypto features, online
# CPUs, memory, kernel, OS, rustc) and the commit of the tree ("+dirty" when tracked files
# differ from it).
bench_record() {
    local file=$1 root
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    [ -n "${BENCH_NAME:-}" ] || { echo "bench_record: no bench_begin before it" >&2; return 1; }
    /usr/bin/python3 - "$file" "$root" "$BENCH_NAME" "$BENCH_COMMAND" "$BENCH_STARTED" \
        "$BENCH_LOAD_START" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, os, platform, subprocess, sys
path, root, name, command, started, load_start, finished, load_end = sys.argv[1:9]

def field(path, key, sep):
    try:
        for line in open(path):
            k, _, v = line.partition(sep)
            if k.strip() == key:
                return v.strip().strip('"')
    except OSError:
        pass
    return None

def output(*cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None

mem = field("/proc/meminfo", "MemTotal", ":")
# The CPU features the crypto backends choose their code by.
flags = (field("/proc/cpuinfo", "flags", ":") or "").split()
crypto_flags = [f for f in ("aes", "vaes", "vpclmulqdq", "sha_ni", "avx2", "avx512f") if f in flags]
commit = output("git", "-C", root, "rev-parse", "--short=12", "HEAD")
if commit and output("git", "-C", root, "status", "--porcelain", "--untracked-files=no"):
    commit += "+dirty"
run = {
    "bench": name,
    "command": command,
    "started": started,
    "finished": finished,
    "load_start": load_start,
    "load_end": load_end,
    "commit": commit,
    "machine": {
        "cpu_model": field("/proc/cpuinfo", "model name", ":"),
        "cpu_flags": crypto_flags,
        "cpus": os.cpu_count(),
        "memory_kib": int(mem.split()[0]) if mem else None,
        "kernel": platform.release(),
        "os": field("/etc/os-release", "PRETTY_NAME", "="),
        "rustc": output(os.environ.get("RUSTC", "rustc"), "--version"),
    },
}
with open(path) as f:
    data = json.load(f)
if not isinstance(data, dict):
    sys.exit("bench_record: %s does not hold a JSON object" % path)
data["run"] = run
with open(path + ".tmp", "w") as f:
    json.dump(data, f, indent=1)
    f.write("\n")
os.replace(path + ".tmp", path)
PY
}

# The keys are made up for the benchmarks (cipher key then the 4-byte salt, RFC 4106) and
# written only into the benchmarks' temporary files.
GCM_OUT=0102030405060708090a0b0c0d0e0f10a1a2a3a4
GCM_IN=4142434445464748494a4b4c4d4e4f50b1b2b3b4

# bench_gateway_toml OUT PREFIX CHANNEL INSIDE_DEVICE OUTSIDE_DEVICE [EXTRA_TOML]: the
# ipsec-dataplane configuration of the benchmarks: one worker (lcore 1, main on 0), inside
# 10.10.1.254/24 and outside 10.99.0.1/24 on the given DPDK devices, the peer 10.99.0.2 (static
# ARP) behind which 10.10.2.0/24 lies, and crypto map vpn 10: ipsec-manual, esp-gcm 128, SPIs
# 5 out and 105 in, replay window off (a replayed pcap repeats its sequence numbers) and the
# longest lifetimes (the default 4608000 KB would expire within seconds). EXTRA_TOML is
# appended (more routes or ARP entries).
bench_gateway_toml() {
    local out=$1 prefix=$2 channel=$3 inside=$4 outside=$5 extra=${6:-}
    cat >"$out" <<EOF
hostname = "bench"
[dataplane]
eal = ["--no-huge", "--no-pci", "-m", "1024", "--file-prefix", "$prefix", "--log-level", "*:error"]
lcores = { main = 0, workers = [1] }
mbufs = 16384
channel = "$channel"
[[interface]]
name = "inside"
role = "inside"
device = "$inside"
address = ["10.10.1.254/24"]
[[interface]]
name = "outside"
role = "outside"
device = "$outside"
address = ["10.99.0.1/24"]
crypto_map = "vpn"
[[route]]
prefix = "10.10.2.0/24"
next_hop = "10.99.0.2"
[[arp]]
address = "10.99.0.2"
mac = "02:00:00:00:00:02"
[transform_set.gcm128]
esp = ["esp-gcm", "128"]
[access_list]
101 = [ { action = "permit", protocol = "ip", source = "10.10.1.0/24", destination = "10.10.2.0/24" } ]
[[crypto_map.vpn]]
seq = 10
type = "ipsec-manual"
peer = "10.99.0.2"
transform_set = "gcm128"
match_address = "101"
replay_window = "disable"
lifetime = { seconds = 86400, kilobytes = 4294967295 }
session_key.inbound = { spi = 105, cipher = "$GCM_IN" }
session_key.outbound = { spi = 5, cipher = "$GCM_OUT" }
$extra
EOF
}

# bench_heap_on_hugepages PAGES: prepares to run ipsec-dataplane as
# deploy/systemd/ipsec-dataplane.service does, with its heap (SAs, key schedules, SPD) on
# 2 MB pages: with thousands of tunnels, 4 kB pages add a TLB miss to every packet's cache
# misses, and the scale figures would measure the page size rather than the gateway. Makes
# sure PAGES hugepages are free (raising vm.nr_hugepages; bench_heap_restore puts it back)
# and sets BENCH_HEAP_ENV to the environment to start the processes with (`env
# "$BENCH_HEAP_ENV" ...`). The EAL itself runs with --no-huge in these benchmarks, so the
# pages are the heap's alone. Says so when fewer could be had (glibc then falls back to 4 kB
# pages, and the gateway's %DATAPLANE-5-HEAP line says which it got).
bench_heap_on_hugepages() {
    local want=$1 free
    BENCH_HP_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
    free=$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)
    if [ "$free" -lt "$want" ]; then
        echo $((BENCH_HP_BEFORE + want - free)) >/proc/sys/vm/nr_hugepages || true
        free=$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)
    fi
    [ "$free" -ge "$want" ] ||
        echo "warning: $free of $want hugepages free for the heap; the rest of it on 4 kB pages" >&2
    BENCH_HEAP_ENV=GLIBC_TUNABLES=glibc.malloc.hugetlb=2
}

# bench_heap_restore: vm.nr_hugepages as it was before bench_heap_on_hugepages.
bench_heap_restore() {
    [ -z "${BENCH_HP_BEFORE:-}" ] || echo "$BENCH_HP_BEFORE" >/proc/sys/vm/nr_hugepages || true
}
