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
for b in "${benches[@]}"; do
    bench_begin "criterion-$b" "benches/criterion.sh $b${*:+ -- $*}"
    "$CARGO" bench -p benches --bench "$b" -- "$@" 2>&1 | tee "$OUT/criterion-$b.log"
    /usr/bin/python3 "$ROOT/benches/render_results.py" --criterion "$TARGET/criterion" \
        --results "$OUT" criterion-snapshot --bench "$b" --since "$BENCH_STARTED" \
        --out "$OUT/criterion-$b.json"
    bench_record "$OUT/criterion-$b.json"
done
