#!/bin/bash
# The harness of 20-secgw-interop.sh, proven before ipsec-dataplane exists: a second ipsec-secgw
# takes our place in ns gw (net_af_packet on dp-in/dp-out), so two third-party gateways carry
# ping and 10 MiB TCP each way, and the ESP field checks, wire counts and port counters of the
# real test all run. If this passes and 20 fails, the difference is ipsec-dataplane.
set -euo pipefail
export UNDER_TEST=secgw
export CASES=${CASES:-"gcm128:tunnel:4 aes128-sha1:tunnel:6 gcm128:transport:4 des-sha1:tunnel:4"}
exec bash "$(dirname "$0")/20-secgw-interop.sh"
