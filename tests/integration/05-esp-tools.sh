#!/bin/bash
# The ESP checkers must be able to fail: esp_gen.py's packets pass esp_check.py and tshark for
# every transform (plus ESN and NAT-T), and each hostile case is rejected for its own reason.
# No namespaces, no DPDK; runs in a few seconds.
set -euo pipefail
TEST_NAME=05-esp-tools
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
need_cmd tshark
"$PY" "$TOOLS/selftest_esp_tools.py" "$WORK" || fail "ESP tool self-test failed"
log PASS
