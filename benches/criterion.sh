#!/bin/bash
# The criterion benchmarks of benches/benches/*.rs, one `cargo bench` per bench, recorded for
# benches/render_results.py: for each bench, benches/results/criterion-<bench>.json holds the
# estimates criterion wrote during that run (its <id>/new/estimates.json files, written since
# the run began), the command, the time, the machine and the load average (benches/lib.sh's
# bench_record); criterion-<bench>.log holds the bench's output, and the scale bench's summary
# is in benches/results/scale-summary.json too (the bench writes it).
#
# The benches are compiled first, so the run's time and load average are the measurement's.
# Criterion's own arguments follow `--` (a filter, `--quick`, ...); they are recorded.
# No root needed. Usage: benches/criterion.sh [esp|crypto|scale ...] [-- CRITERION_ARGS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CARGO=${CARGO:-cargo}
OUT=$ROOT/benches/results
# shellcheck source=lib.sh
source "$ROOT/benches/lib.sh"

benches=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    case $1 in
    esp | crypto | scale) benches+=("$1") ;;
    *) echo "unknown bench '$1' (esp, crypto, scale)" >&2; exit 2 ;;
    esac
    shift
done
[ "${1:-}" != -- ] || shift
[ ${#benches[@]} -gt 0 ] || benches=(esp crypto scale)

cd "$ROOT"
# criterion writes under the target directory, wherever cargo puts it
TARGET=$("$CARGO" metadata --format-version 1 --no-deps |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$CARGO" bench -p benches --no-run
mkdir -p "$OUT"

# The scale summary again with the bench's heap on 2 MB pages (GLIBC_TUNABLES, as the
# dataplane's systemd unit runs it), into scale-summary-hugepages.json: the same tunnel
# counts, the TLB taken out of the picture. Root only (it reserves 128 hugepages if fewer are
# free, and gives them back); without root the file is removed and the comparison says so.
scale_on_hugepages() {
    rm -f "$OUT/scale-summary-hugepages.json"
    if [ "$(id -u)" != 0 ]; then
        echo "scale on hugepages: not run (needs root to reserve hugepages)" >&2
        return 0
    fi
    local hp=/proc/sys/vm/nr_hugepages before free
    before=$(cat "$hp")
    free=$(awk '/^HugePages_Free/ { print $2 }' /proc/meminfo)
    [ "$free" -ge 128 ] || echo $((before + 128 - free)) >"$hp"
    GLIBC_TUNABLES=glibc.malloc.hugetlb=2 SCALE_SUMMARY_JSON="$OUT/scale-summary-hugepages.json" \
        "$CARGO" bench -p benches --bench scale -- --exact summary-only-no-benchmark 2>&1 |
        sed 's/^/  [2 MB heap] /' | tee -a "$OUT/criterion-scale.log"
    echo "$before" >"$hp"
}

for b in "${benches[@]}"; do
    bench_begin "criterion-$b" "benches/criterion.sh $b${*:+ -- $*}"
    "$CARGO" bench -p benches --bench "$b" -- "$@" 2>&1 | tee "$OUT/criterion-$b.log"
    if [ "$b" = scale ]; then
        scale_on_hugepages
    fi
    /usr/bin/python3 "$ROOT/benches/render_results.py" --criterion "$TARGET/criterion" \
        --results "$OUT" criterion-snapshot --bench "$b" --since "$BENCH_STARTED" \
        --out "$OUT/criterion-$b.json"
    bench_record "$OUT/criterion-$b.json"
done
