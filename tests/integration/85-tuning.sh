#!/bin/bash
# tuning/: the host checker, the host preparation plan and the lcore layout.
# - tuning/check --json on this host: valid JSON with every item, each verdict equal to what
#   this test reads from /proc and /sys itself, exit 1 when something is not tuned; and on a
#   fabricated, fully tuned host (sysfs + procfs copies): every item OK, exit 0.
# - tuning/prepare-host --dry-run: the plan names the hugepage write, the mount, the IRQ
#   move and the kernel command line, and changes nothing on this host.
# - tuning/layout on the real /sys and on a fabricated 2-node, SMT host with the NIC on
#   node 1: workers on node 1, one thread per core, siblings and core 0 left out.
# No namespaces, no DPDK, no root needed for the dry run.
set -euo pipefail
TEST_NAME=85-tuning
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_cmd python3
T=$TESTS_ROOT/tuning
CONF=$TESTS_ROOT/examples/secgw-peer.toml

# jq-free JSON access: json FILE EXPR (EXPR is Python over `d`).
json() { python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# --- tuning/check on this host ------------------------------------------------------------
rc=0
"$T/check" --json --config "$CONF" >"$WORK/check.json" 2>"$WORK/check.err" || rc=$?
python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$WORK/check.json" ||
    fail "tuning/check --json did not print JSON: $(head -c 300 "$WORK/check.json") $(cat "$WORK/check.err")"
ids=$(json "$WORK/check.json" '" ".join(i["id"] for i in d["items"])')
for want in workers hugepages mbufs hugetlbfs isolcpus nohz_full rcu_nocbs governor irq_affinity \
    irqbalance nic_numa nic_driver iommu vfio thp cstates turbo; do
    [[ " $ids " == *" $want "* ]] || fail "tuning/check: item $want missing (got: $ids)"
done
[ "$(json "$WORK/check.json" 'd["worker_lcores"]')" = "[1]" ] ||
    fail "tuning/check read workers $(json "$WORK/check.json" 'd["worker_lcores"]') from $CONF, which says [1]"
status() { json "$WORK/check.json" "next(i['status'] for i in d['items'] if i['id'] == '$1')"; }

# The verdicts, against what this host really has (read here, independently).
free_huge=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
# secgw-peer.toml runs EAL with --no-huge: hugepages are not tuned for a NIC whatever the host has.
[ "$(status hugepages)" = not-tuned ] || fail "hugepages: the config says --no-huge, check says $(status hugepages)"
if awk '$3 == "hugetlbfs" { f = 1 } END { exit !f }' /proc/mounts; then want=ok; else want=not-tuned; fi
[ "$(status hugetlbfs)" = "$want" ] || fail "hugetlbfs: expected $want, check says $(status hugetlbfs)"
isolated=$(cat /sys/devices/system/cpu/isolated)
if python3 -B -c 'import sys; sys.path.insert(0, sys.argv[2]); import cpulist; sys.exit(1 not in cpulist.parse(sys.argv[1]))' \
    "$isolated" "$T/lib"; then want=ok; else want=not-tuned; fi
[ "$(status isolcpus)" = "$want" ] || fail "isolcpus: isolated='$isolated', expected $want, check says $(status isolcpus)"
if [ -e /sys/devices/system/cpu/cpu1/cpufreq/scaling_governor ]; then
    [ "$(cat /sys/devices/system/cpu/cpu1/cpufreq/scaling_governor)" = performance ] && want=ok || want=not-tuned
else
    want=n/a
fi
[ "$(status governor)" = "$want" ] || fail "governor: expected $want, check says $(status governor)"
if pgrep -x irqbalance >/dev/null; then want=not-tuned; else want=ok; fi
[ "$(status irqbalance)" = "$want" ] || fail "irqbalance: expected $want, check says $(status irqbalance)"
# Counted here from /proc/irq: IRQs delivered to CPU 1 now (effective affinity; the allowed
# mask where there is none), and IRQs whose allowed mask is not exactly the housekeeping CPUs
# (every online CPU but 1), which prepare-host would move.
read -r on_worker to_move < <(python3 -B - "$T/lib" <<'PY'
import glob, os, sys
sys.path.insert(0, sys.argv[1])
import cpulist
online = set(cpulist.parse(open("/sys/devices/system/cpu/online").read()))
housekeeping = online - {1}
on_worker = to_move = 0
for d in glob.glob("/proc/irq/[0-9]*"):
    allowed = set(cpulist.parse(open(f"{d}/smp_affinity_list").read()))
    eff = ""
    if os.path.exists(f"{d}/effective_affinity_list"):
        eff = open(f"{d}/effective_affinity_list").read().strip()
    delivered = set(cpulist.parse(eff)) if eff else allowed
    on_worker += 1 in delivered
    to_move += allowed != housekeeping
print(on_worker, to_move)
PY
)
[ "$on_worker" -gt 0 ] && want=not-tuned || want=ok
[ "$(status irq_affinity)" = "$want" ] || fail "irq_affinity: $on_worker IRQs delivered to CPU 1, check says $(status irq_affinity)"
# The example config has only virtual devices: the NIC items do not apply.
if [ "$(status nic_numa)" != n/a ] || [ "$(status nic_driver)" != n/a ]; then
    fail "nic_numa/nic_driver should be n/a for virtual devices: $(status nic_numa)/$(status nic_driver)"
fi
thp=$(grep -o '\[[a-z]*\]' /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null || echo none)
case $thp in "[always]") want=not-tuned ;; none) want=n/a ;; *) want=ok ;; esac
[ "$(status thp)" = "$want" ] || fail "thp: enabled $thp, expected $want, check says $(status thp)"
# secgw-peer.toml: 2 ports, 1 worker, 16384 mbufs >= 2 x 1 x 2048 descriptors + 1024 punt.
[ "$(status mbufs)" = ok ] || fail "mbufs: 16384 for 2 ports and 1 worker is enough, check says $(status mbufs)"
n_not=$(json "$WORK/check.json" 'len(d["not_tuned"])')
if [ "$n_not" = 0 ] || [ "$rc" != 1 ]; then
    fail "tuning/check: $n_not items not tuned but exit status $rc (want 1 when any is not tuned)"
fi
log "check on this host: exit $rc, not tuned: $(json "$WORK/check.json" '" ".join(d["not_tuned"])'), free hugepages $free_huge"

# The human report says the same and never crashes.
"$T/check" --config "$CONF" >"$WORK/check.txt" 2>&1 && fail "tuning/check (text) exited 0 on this host"
grep -q '^NOT TUNED  hugepages' "$WORK/check.txt" || fail "text report lacks the hugepages line: $(head -5 "$WORK/check.txt")"
grep -q 'why: ' "$WORK/check.txt" || fail "text report lacks the reasons"
# A bad config is refused with exit 2 and the reason.
printf '[dataplane\n' >"$WORK/bad.toml"
rc=0
"$T/check" --config "$WORK/bad.toml" >/dev/null 2>"$WORK/bad.err" || rc=$?
if [ "$rc" != 2 ] || ! grep -q 'bad.toml' "$WORK/bad.err"; then
    fail "a broken config: exit $rc, '$(cat "$WORK/bad.err")' (want 2 and the file named)"
fi

# --- a fabricated host: 2 NUMA nodes, 4 cores each, 2 threads per core --------------------
# node 0: CPUs 0-3 and siblings 8-11; node 1: CPUs 4-7 and siblings 12-15 (cpu c + 8 is c's
# sibling). NICs 0000:81:00.0/.1 on node 1, 0000:02:00.0 on node 0, 0000:05:00.0 unknown (-1).
FS=$WORK/fakesys
PF=$WORK/fakeproc
mk() { mkdir -p "$(dirname "$1")" && printf '%s\n' "$2" >"$1"; }
mk "$FS/devices/system/cpu/online" 0-15
mk "$FS/devices/system/node/node0/cpulist" 0-3,8-11
mk "$FS/devices/system/node/node1/cpulist" 4-7,12-15
for c in $(seq 0 15); do
    core=$((c % 8))
    mk "$FS/devices/system/cpu/cpu$c/topology/thread_siblings_list" "$core,$((core + 8))"
done
for n in 0 1; do
    mk "$FS/devices/system/node/node$n/hugepages/hugepages-2048kB/nr_hugepages" 0
    mk "$FS/devices/system/node/node$n/hugepages/hugepages-2048kB/free_hugepages" 0
done
for d in 0000:81:00.0:1 0000:81:00.1:1 0000:02:00.0:0 0000:05:00.0:-1; do
    mk "$FS/bus/pci/devices/${d%:*}/numa_node" "${d##*:}"
done

layout_json() { "$T/layout" --sysfs "$FS" --json "$@"; }
layout_json 0000:81:00.0 0000:81:00.1 >"$WORK/l1.json" || fail "layout on the fake host failed"
[ "$(json "$WORK/l1.json" 'd["node"]')" = 1 ] || fail "NIC on node 1, layout chose node $(json "$WORK/l1.json" 'd["node"]')"
[ "$(json "$WORK/l1.json" 'd["main_lcore"]')" = 4 ] || fail "main lcore: want 4, got $(json "$WORK/l1.json" 'd["main_lcore"]')"
[ "$(json "$WORK/l1.json" 'd["worker_lcores"]')" = "[5, 6, 7]" ] ||
    fail "workers: want [5, 6, 7] (one thread per core of node 1), got $(json "$WORK/l1.json" 'd["worker_lcores"]')"
[ "$(json "$WORK/l1.json" 'd["idle_siblings"]')" = "[13, 14, 15]" ] ||
    fail "idle siblings: want [13, 14, 15], got $(json "$WORK/l1.json" 'd["idle_siblings"]')"
[ "$(json "$WORK/l1.json" 'd["socket_mem"].split(",")[0]')" = 0 ] ||
    fail "--socket-mem must give node 0 nothing: $(json "$WORK/l1.json" 'd["socket_mem"]')"
[ "$(json "$WORK/l1.json" '" ".join(d["eal"][:4])')" = "-a 0000:81:00.0 -a 0000:81:00.1" ] ||
    fail "eal must allow both ports: $(json "$WORK/l1.json" 'd["eal"]')"
[ "$(json "$WORK/l1.json" '" ".join(d["prepare_host"])')" = \
    "tuning/prepare-host --workers 5-7 --isolate 5-7,13-15 --hugepages $(json "$WORK/l1.json" 'd["hugepages_2m"]') --hugepage-size 2M --nodes 1" ] ||
    fail "prepare-host line: $(json "$WORK/l1.json" '" ".join(d["prepare_host"])')"
# The text output is a [dataplane] section that TOML reads back to the same lcores.
"$T/layout" --sysfs "$FS" 81:00.0 81:00.1 >"$WORK/l1.toml"
python3 -c '
import sys, tomllib
d = tomllib.load(open(sys.argv[1], "rb"))["dataplane"]
assert d["lcores"] == {"main": 4, "workers": [5, 6, 7]}, d
assert d["eal"][:2] == ["-a", "0000:81:00.0"], d
assert d["mbufs"] >= 2 * 3 * 2048, d' "$WORK/l1.toml" || fail "layout's TOML does not read back: $(cat "$WORK/l1.toml")"
# A NIC on node 0: core 0 (CPUs 0 and 8) stays with the kernel.
layout_json 0000:02:00.0 --workers 2 >"$WORK/l0.json" || fail "layout for node 0 failed"
[ "$(json "$WORK/l0.json" '(d["node"], d["main_lcore"], d["worker_lcores"])')" = "(0, 1, [2, 3])" ] ||
    fail "node 0 layout: want (0, 1, [2, 3]), got $(json "$WORK/l0.json" '(d["node"], d["main_lcore"], d["worker_lcores"])')"
# Refusals, each with its reason.
"$T/layout" --sysfs "$FS" 0000:05:00.0 2>"$WORK/e1" && fail "layout accepted a NIC with no NUMA node on a 2-node host"
grep -q 'numa_node is -1' "$WORK/e1" || fail "no reason for the unknown node: $(cat "$WORK/e1")"
"$T/layout" --sysfs "$FS" 0000:81:00.0 --workers 4 2>"$WORK/e2" && fail "layout accepted 4 workers on 3 free cores"
grep -q 'only 3 free' "$WORK/e2" || fail "no reason for too many workers: $(cat "$WORK/e2")"
"$T/layout" --sysfs "$FS" 0000:99:00.0 2>/dev/null && fail "layout accepted a device that is not there"

# The same fabricated host, tuned: tuning/check must say OK (exit 0), so it can pass too.
for n in 0 1; do
    mk "$FS/devices/system/node/node$n/hugepages/hugepages-2048kB/nr_hugepages" 512
    mk "$FS/devices/system/node/node$n/hugepages/hugepages-2048kB/free_hugepages" 512
done
mk "$FS/devices/system/cpu/isolated" 5-7,13-15
mk "$FS/devices/system/cpu/nohz_full" 5-7,13-15
for c in 5 6 7; do mk "$FS/devices/system/cpu/cpu$c/cpufreq/scaling_governor" performance; done
for d in 0000:81:00.0 0000:81:00.1; do
    mkdir -p "$FS/bus/pci/drivers/vfio-pci" && ln -sfn ../../../bus/pci/drivers/vfio-pci "$FS/bus/pci/devices/$d/driver"
done
mkdir -p "$FS/kernel/iommu_groups/0" "$FS/class/iommu/dmar0" "$FS/module/vfio_pci"
mk "$FS/kernel/mm/transparent_hugepage/enabled" "always [madvise] never"
mk "$PF/cmdline" "ro isolcpus=managed_irq,domain,5-7,13-15 nohz_full=5-7,13-15 rcu_nocbs=5-7,13-15 intel_iommu=on iommu=pt"
mk "$PF/mounts" "nodev /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0"
for irq in 24 25 130; do mk "$PF/irq/$irq/smp_affinity_list" 0-3,8-11; done
mk "$PF/irq/default_smp_affinity" f0f
sed -e 's|^eal = .*|eal = ["-a", "0000:81:00.0", "-a", "0000:81:00.1", "--socket-mem", "0,1024"]|' \
    -e 's|^lcores = .*|lcores = { main = 4, workers = [5, 6, 7] }|' -e 's|^mbufs = .*|mbufs = 32767|' \
    "$CONF" >"$WORK/tuned.toml"
if ! grep -q 'workers = \[5, 6, 7\]' "$WORK/tuned.toml" || ! grep -q '^mbufs = 32767' "$WORK/tuned.toml"; then
    fail "could not derive a config with workers 5-7 and 32767 mbufs from $CONF"
fi
rc=0
"$T/check" --json --config "$WORK/tuned.toml" --sysfs "$FS" --procfs "$PF" >"$WORK/tuned.json" || rc=$?
[ "$rc" = 0 ] || fail "tuning/check on the tuned fake host: exit $rc, not tuned: $(json "$WORK/tuned.json" 'd["not_tuned"]')"
# ... and each item flips when its setting is undone (16383 mbufs < 2 x 3 x 2048 + 3 x 2 x 1024
# handoff + 3 x 1024 punt = 21504).
mk "$PF/irq/130/smp_affinity_list" 0-15
mk "$FS/devices/system/cpu/cpu6/cpufreq/scaling_governor" powersave
sed -i 's|^mbufs = 32767|mbufs = 16383|' "$WORK/tuned.toml"
ln -sfn ../../../bus/pci/drivers/ixgbe "$FS/bus/pci/devices/0000:81:00.1/driver"
rc=0
"$T/check" --json --config "$WORK/tuned.toml" --sysfs "$FS" --procfs "$PF" >"$WORK/untuned.json" || rc=$?
if [ "$rc" != 1 ] || [ "$(json "$WORK/untuned.json" '" ".join(d["not_tuned"])')" != "mbufs governor irq_affinity nic_driver" ]; then
    fail "after undoing mbufs, governor, one IRQ and one driver: exit $rc, not tuned: $(json "$WORK/untuned.json" 'd["not_tuned"]')"
fi

# --- tuning/layout on this host's real /sys ---------------------------------------------
"$T/layout" --ports 2 --json >"$WORK/lreal.json" || fail "layout --ports 2 on this host failed"
ncpu=$(nproc --all)
main=$(json "$WORK/lreal.json" 'd["main_lcore"]')
workers=$(json "$WORK/lreal.json" '" ".join(map(str, d["worker_lcores"]))')
[ -n "$workers" ] || fail "no workers on this host"
for w in $workers; do
    if [ "$w" -ge "$ncpu" ] || [ "$w" = 0 ] || [ "$w" = "$main" ]; then
        fail "worker $w: must be an online CPU other than 0 and the main lcore ($main) on this ${ncpu}-CPU host"
    fi
    sib=$(cat "/sys/devices/system/cpu/cpu$w/topology/thread_siblings_list")
    for o in $workers $main; do
        [ "$o" = "$w" ] && continue
        python3 -B -c 'import sys; sys.path.insert(0, sys.argv[3]); import cpulist; sys.exit(int(sys.argv[2]) in cpulist.parse(sys.argv[1]))' \
            "$sib" "$o" "$T/lib" || fail "worker $w shares a core with lcore $o (siblings $sib)"
    done
done
log "layout on this host: main $main, workers $workers"

# --- tuning/prepare-host --dry-run on this host ---------------------------------------------
before_hp=$(cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages)
before_aff=$(cat /proc/irq/default_smp_affinity)
"$T/prepare-host" --dry-run --config "$CONF" --hugepages 64 >"$WORK/plan.txt" 2>&1 ||
    fail "prepare-host --dry-run failed: $(cat "$WORK/plan.txt")"
for want in 'workers 1, isolated 1, housekeeping 0' \
    'would: node 0: .* -> 64 2M pages' \
    'isolcpus=managed_irq,domain,1 nohz_full=1 rcu_nocbs=1 irqaffinity=0' \
    'dry run complete'; do
    grep -qE -- "$want" "$WORK/plan.txt" || fail "prepare-host plan lacks '$want':
$(cat "$WORK/plan.txt")"
done
if [ "$to_move" -gt 0 ]; then
    grep -qE "would: move $to_move IRQs to CPUs " "$WORK/plan.txt" || fail "the plan should move $to_move IRQs:
$(grep IRQs "$WORK/plan.txt")"
fi
if [ "$(cat /sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages)" != "$before_hp" ] ||
    [ "$(cat /proc/irq/default_smp_affinity)" != "$before_aff" ]; then
    fail "--dry-run changed the host"
fi
"$T/prepare-host" --dry-run --workers 0-$((ncpu - 1)) >"$WORK/plan2.txt" 2>&1 &&
    fail "prepare-host accepted every CPU as a worker"
grep -q 'no CPU left for housekeeping' "$WORK/plan2.txt" || fail "no reason given: $(cat "$WORK/plan2.txt")"
"$T/prepare-host" --dry-run --workers 1 --hugepage-size 3M >"$WORK/plan3.txt" 2>&1 && fail "prepare-host accepted 3M pages"
"$T/prepare-host" --dry-run --workers 1-x >"$WORK/plan4.txt" 2>&1 && fail "prepare-host accepted the CPU list 1-x"
grep -q "bad CPU list '1-x'" "$WORK/plan4.txt" || fail "no reason for a bad CPU list: $(cat "$WORK/plan4.txt")"
log PASS
