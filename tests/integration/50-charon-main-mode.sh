#!/bin/bash
# IKEv1 Main Mode interop: strongSwan's charon (initiator, ns A, 10.99.0.1) against our
# responder (control::ike, the #[ignore]d test ike::tests::charon_initiator_interop, ns B,
# 10.99.0.2), pre-shared key, aes128-sha1-modp2048, twice: plain (encap = no), then with
# charon faking NAT-D (encap = yes) so that it floats to 4500 for MM5 (non-ESP marker). Passes
# when both sides report phase 1 established (charon: "IKE_SA ... established"). With
# encap = yes our responder also answers charon's Quick Mode (control::ike::quick_mode;
# IKE_INTEROP_QUICK_MODE=1) and charon must report the CHILD_SA established and installed:
# charon loads kernel-libipsec there (this kernel has no ESP; libipsec needs ESP-in-UDP).
# With encap = no charon's QM1 is ignored. Needs root, strongswan-charon, strongswan-swanctl
# and libcharon-extra-plugins (kernel-libipsec). Self-contained (not lib.sh).
# Usage: 50-charon-main-mode.sh   (KEEP_WORK=1 keeps the work directory)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=$(mktemp -d -t ike-mm.XXXXXX); W=$BASE
NA=ikmA$$ NB=ikmB$$
PSK=interop-secret
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    sleep 0.5
    ip netns del "$NA" 2>/dev/null || true
    ip netns del "$NB" 2>/dev/null || true
    [ "${KEEP_WORK:-0}" = 1 ] || [ "${FAILED:-0}" = 1 ] || rm -rf "$BASE"
}
trap cleanup EXIT
fail() { FAILED=1; echo "FAIL: $*" >&2; tail -n 30 "$W/charon.log" "$W/responder.out" >&2 || true; exit 1; }

# Build the test binary first (outside the namespaces).
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$(cargo test -p control --lib --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*control-[^"]*\)".*/\1/p' | tail -1)
[ -x "$BIN" ] || fail "no control test binary"

ip netns add "$NA"; ip netns add "$NB"
ip link add vA$$ type veth peer name vB$$
ip link set vA$$ netns "$NA"; ip link set vB$$ netns "$NB"
ip -n "$NA" addr add 10.99.0.1/24 dev vA$$; ip -n "$NB" addr add 10.99.0.2/24 dev vB$$
for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
ip -n "$NA" link set vA$$ up; ip -n "$NB" link set vB$$ up
# The inner LANs of the child SA: libipsec's route needs a local address in local_ts.
ip -n "$NA" addr add 10.10.1.1/24 dev lo; ip -n "$NB" addr add 10.10.2.1/24 dev lo

run_case() {
    ENCAP=$1 EXPECT_NAT=$2 QM=$3
    W=$BASE/encap-$ENCAP; mkdir -p "$W/run"
    LIBIPSEC=${QM:+kernel-libipsec}
cat > "$W/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 x509 pubkey aes sha1 sha2 hmac $LIBIPSEC kernel-netlink socket-default vici
  retransmit_tries = 2
  plugins { vici { socket = unix://$W/charon.vici } }
  filelog { log { path = $W/charon.log
                  time_format = %T
                  default = 1
                  ike = 4
                  chd = 4
                  knl = 2
                  enc = 2
                  flush_line = yes } }
  syslog { daemon { default = -1 } }
}
swanctl { load = pem pkcs1 x509 pubkey openssl random }
EOF
cat > "$W/swanctl.conf" <<EOF
connections {
  mm {
    version = 1
    aggressive = no
    local_addrs = 10.99.0.1
    remote_addrs = 10.99.0.2
    proposals = aes128-sha1-modp2048
    encap = $ENCAP
    keyingtries = 1
    local { auth = psk
            id = 10.99.0.1 }
    remote { auth = psk
             id = 10.99.0.2 }
    children { c { local_ts = 10.10.1.0/24
                   remote_ts = 10.10.2.0/24
                   esp_proposals = aes128-sha1 } }
  }
}
secrets { ike-mm { id-a = 10.99.0.1
                   id-b = 10.99.0.2
                   secret = "$PSK" } }
EOF

# Our responder, in ns B.
ip netns exec "$NB" env IKE_INTEROP_ADDR=10.99.0.2 ${EXPECT_NAT:+IKE_INTEROP_EXPECT_NAT=1} ${QM:+IKE_INTEROP_QUICK_MODE=1} IKE_INTEROP_PSK="$PSK" RUST_BACKTRACE=1 \
    "$BIN" --ignored --exact ike::tests::charon_initiator_interop --nocapture \
    > "$W/responder.out" 2>&1 &
RESP=$!
PIDS+=($RESP)

# charon in ns A with a private /run (its pidfile path is fixed).
ip netns exec "$NA" sh -c "mount --bind '$W/run' /run && STRONGSWAN_CONF='$W/strongswan.conf' exec /usr/lib/ipsec/charon" \
    > "$W/charon.stdout" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$W/charon.vici" ] && break; sleep 0.1; done
[ -S "$W/charon.vici" ] || fail "charon did not start"
sw() { STRONGSWAN_CONF="$W/strongswan.conf" swanctl "$@" --uri "unix://$W/charon.vici"; }
sw --load-all --file "$W/swanctl.conf" > "$W/load.out" 2>&1 || fail "swanctl --load-all"
sw --initiate --ike mm --child c --timeout 10 > "$W/initiate.out" 2>&1 || true

wait "$RESP" || fail "our responder did not establish phase 1"
grep -q "IKE_SA mm\[[0-9]*\] established" "$W/charon.log" || fail "charon did not establish the IKE SA"
if [ -n "$QM" ]; then
    grep -q "CHILD_SA c{[0-9]*} established" "$W/charon.log" || fail "charon did not establish the CHILD_SA"
    grep -qi "unable to install\|failed to install\|installing.*failed" "$W/charon.log" && fail "charon could not install the CHILD_SA"
    grep -q "CHILD ESTABLISHED" "$W/responder.out" || fail "our responder did not complete Quick Mode"
    # KEYMAT: charon's initiator keys (its outbound) are our inbound ones, and the reverse.
    ck() { awk -v L="$1" '
        index($0, L " => ") { s = substr($0, index($0, "=> ") + 3); split(s, a, " "); n = a[1]; on = 1; next }
        on && n > 0 { for (i = 4; i < 20 && i <= NF && n > 0; i++) { printf "%s", tolower($i); n-- } next }
        on { exit }' "$W/charon.log"; }
    ours=$(grep -o "CHILD KEYS .*" "$W/responder.out")
    want="CHILD KEYS in_enc=$(ck "encryption initiator key") in_auth=$(ck "integrity initiator key")"
    want="$want out_enc=$(ck "encryption responder key") out_auth=$(ck "integrity responder key")"
    [ "$ours" = "$want" ] || fail "ESP keys differ from charon's: ours '$ours', charon's '$want'"
    echo "ESP keys identical to charon's (both directions)"
fi
grep -E "established|ESTABLISHED" "$W/charon.log" "$W/responder.out" | cut -c1-200
    kill "${PIDS[-1]}" 2>/dev/null || true; sleep 0.5
    echo "PASS: encap=$ENCAP"
}

run_case no "" ""
run_case yes 1 1
echo "PASS (Main Mode with charon, and Quick Mode over NAT-T; work dir $BASE)"
