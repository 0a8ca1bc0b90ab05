#!/bin/bash
# IKEv1 Main Mode interop: strongSwan's charon (initiator, ns A, 10.99.0.1) against our
# responder (control::ike, the #[ignore]d test ike::tests::charon_initiator_interop, ns B,
# 10.99.0.2), pre-shared key, aes128-sha1-modp2048, twice: plain (encap = no), then with
# charon faking NAT-D (encap = yes) so that it floats to 4500 for MM5 (non-ESP marker). Passes
# when both sides report phase 1 established (charon: "IKE_SA ... established"). Quick Mode is not ours yet: charon's QM1 is
# ignored. Needs root, strongswan-charon and strongswan-swanctl. Self-contained (not lib.sh).
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
fail() { FAILED=1; echo "FAIL: $*" >&2; tail -30 "$W/charon.log" "$W/responder.out" >&2 || true; exit 1; }

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

run_case() {
    ENCAP=$1 EXPECT_NAT=$2
    W=$BASE/encap-$ENCAP; mkdir -p "$W/run"
cat > "$W/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 x509 pubkey aes sha1 sha2 hmac kernel-netlink socket-default vici
  retransmit_tries = 2
  plugins { vici { socket = unix://$W/charon.vici } }
  filelog { log { path = $W/charon.log
                  time_format = %T
                  default = 1
                  ike = 4
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
ip netns exec "$NB" env IKE_INTEROP_ADDR=10.99.0.2 ${EXPECT_NAT:+IKE_INTEROP_EXPECT_NAT=1} IKE_INTEROP_PSK="$PSK" RUST_BACKTRACE=1 \
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
grep -E "established|ESTABLISHED" "$W/charon.log" "$W/responder.out" | cut -c1-200
    kill "${PIDS[-1]}" 2>/dev/null || true; sleep 0.5
    echo "PASS: encap=$ENCAP"
}

run_case no ""
run_case yes 1
echo "PASS (Main Mode with charon; work dir $BASE)"
