#!/bin/bash
# `make bench`: every benchmark in turn, in one session on this machine. Each runs even when
# an earlier one failed (its previous results then stay in benches/results/, and
# benches/results/NAME.failed, with the time, command and exit status, makes RESULTS.md say
# so); a success removes NAME.failed. Exits non-zero when any failed. The Makefile renders
# benches/RESULTS.md afterwards (benches/render_results.py).
#
# throughput.sh runs before crypto-ceiling.sh, which sets the dataplane's encap rate from it.
# Needs root (DPDK) and `make build`.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
RUNS=(
    "criterion-esp|benches/criterion.sh esp"
    "criterion-crypto|benches/criterion.sh crypto"
    "criterion-scale|benches/criterion.sh scale"
    "throughput|benches/throughput.sh 5"
    "crypto-ceiling|benches/crypto-ceiling.sh"
    "ike-setup|benches/ike-setup.sh"
    "sa-install|benches/sa-install.sh 3"
    "trafficgen|benches/trafficgen.sh"
)
mkdir -p benches/results
failed=()
for r in "${RUNS[@]}"; do
    name=${r%%|*} cmd=${r#*|}
    echo "=== $cmd"
    start=$(date +%s)
    # shellcheck disable=SC2086 # the command's words
    bash $cmd
    rc=$?
    if [ "$rc" = 0 ]; then
        rm -f "benches/results/$name.failed"
        r=PASS
    else
        failed+=("$name")
        printf '{"command": "%s", "finished": "%s", "exit": %d}\n' \
            "$cmd" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$rc" >"benches/results/$name.failed"
        r="FAIL (exit $rc)"
    fi
    echo "=== $cmd: $r ($(($(date +%s) - start)) s)"
done
echo "bench: ${#RUNS[@]} run, ${#failed[@]} failed${failed[*]:+: ${failed[*]}}"
[ ${#failed[@]} = 0 ]
