#!/bin/bash
# IKEv1 Main Mode with RSA signatures (certificates): strongSwan's charon (initiator, ns A,
# 10.99.0.1, swanctl `auth = pubkey`, `version = 1`) against our responder (ns B, 10.99.0.2:
# the #[ignore]d test ike::tests::charon_initiator_interop with IKE_INTEROP_AUTH=rsa-sig, i.e.
# the gateway's own credentials, control::credentials::GatewayCredentials, over a trustpoint
# loaded from the files made here: CA certificate, our certificate and key, the CA's CRL,
# `revocation-check crl`, `crypto isakmp identity hostname`).
#
# The PKI is made here with strongSwan's `pki`: a root CA, our certificate (CN and dNSName
# gw.example.net, iPAddress 10.99.0.2, serial 0x10), charon's certificate (charon.example.net,
# 10.99.0.1, serial 0x20), a second certificate for charon with the same names (serial 0x21)
# that the CA's CRL revokes, and a rogue CA with a certificate for charon.example.net and one
# for gw.example.net. All are throwaway test keys, kept in the work directory only.
#
# Cases (charon always floats to 4500, encap = yes; aes128-sha1-modp2048). In every case our
# CERT_REQ (MM4) names our CA, charon logs it and answers with its certificate, which reaches
# our responder:
#   valid        valid certificates, FQDN identities on both sides (ID_FQDN): phase 1
#                established on both sides (charon verifies our certificate and signature,
#                we verify its chain, CRL, identity and signature), charon's CERT_REQ (its
#                MM5) naming our CA is answered with our certificate from that CA, then Quick
#                Mode: charon installs the CHILD_SA (kernel-libipsec) and its ESP keys equal
#                ours.
#   cert-select  as valid, but our gateway holds a second trustpoint first (the rogue CA and
#                a gw.example.net certificate from it): charon's CERT_REQ must make us send,
#                and sign with, the certificate from the CA it trusts.
#   revoked      charon's certificate is in the CRL (revocation-check crl): we refuse with
#                %CRYPTO-5-IKMP_INVAL_CERT naming the revocation; charon does not establish.
#   id-mismatch  charon claims `*.example.net`, an ID its (valid) certificate does not hold
#                (charon itself signs only for IDs that match one of its certificates in its
#                own eyes, and a wildcard does): refused with a line saying the identity does
#                not match the certificate.
#   unknown-ca   charon's certificate comes from a CA we do not trust: refused (unknown CA).
# charon ignores our refusal notification (it is sent in the clear once phase 1 keys exist:
# "ignoring unprotected INFORMATIONAL"), so it gives up after its retransmissions (short
# here: retransmit_tries 2, timeout 1.5 s).
#
# Needs root, strongswan-charon, strongswan-swanctl, strongswan-pki and
# libcharon-extra-plugins (kernel-libipsec). Self-contained (not lib.sh): namespaces and
# processes are removed on exit; the work directory is kept on failure (or with KEEP_WORK=1).
# Usage: 51-charon-rsa-sig.sh [CASE...]   (default: all five, in the order above)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=$(mktemp -d -t ike-rsa.XXXXXX)
W=$BASE
NA=ikrA$$ NB=ikrB$$
PIDS=()
FAILED=0
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    ip netns del "$NA" 2>/dev/null || true
    ip netns del "$NB" 2>/dev/null || true
    if [ "${KEEP_WORK:-0}" = 1 ] || [ "$FAILED" = 1 ]; then
        echo "(work directory kept: $BASE)" >&2
    else
        rm -rf "$BASE"
    fi
}
trap cleanup EXIT
trap 'FAILED=1; exit 130' INT
trap 'FAILED=1; exit 143' TERM
fail() {
    FAILED=1
    echo "FAIL${CASE:+ [$CASE]}: $*" >&2
    for f in "$W/charon.log" "$W/responder.out"; do
        [ -s "$f" ] || continue
        echo "--- last lines of $f" >&2
        tail -n 25 "$f" >&2
    done
    exit 1
}

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces)"
for c in pki swanctl openssl ip cargo; do
    command -v "$c" >/dev/null || fail "command '$c' not found (strongswan-pki, strongswan-swanctl, openssl, iproute2, cargo)"
done
[ -x /usr/lib/ipsec/charon ] || fail "/usr/lib/ipsec/charon not found (strongswan-charon)"
[ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] ||
    fail "charon's kernel-libipsec plugin not found (libcharon-extra-plugins)"

# Build the test binary first (outside the namespaces).
cd "$ROOT"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$(cargo test -p control --lib --no-run --message-format=json 2>"$BASE/build.err" |
    sed -n 's/.*"executable":"\([^"]*control-[^"]*\)".*/\1/p' | tail -1) || true
[ -x "$BIN" ] || { tail -n 20 "$BASE/build.err" >&2; fail "no control test binary (build failed)"; }

# --- PKI (throwaway keys) -------------------------------------------------------------------
P=$BASE/pki
mkdir -p "$P"
pk() { pki "$@" 2>>"$P/pki.err"; }
CA_DN="C=CH, O=Interop, CN=Interop Root CA"
ROGUE_DN="C=CH, O=Rogue, CN=Rogue CA"
GW_DN="C=CH, O=Interop, CN=gw.example.net"
CH_DN="C=CH, O=Interop, CN=charon.example.net"
pk --gen --type rsa --size 2048 --outform pem >"$P/ca.key" || fail "pki --gen (CA)"
pk --self --ca --lifetime 30 --in "$P/ca.key" --type rsa --dn "$CA_DN" --outform pem >"$P/ca.pem" ||
    fail "pki --self (CA)"
pk --gen --type rsa --size 2048 --outform pem >"$P/rogue-ca.key" || fail "pki --gen (rogue CA)"
pk --self --ca --lifetime 30 --in "$P/rogue-ca.key" --type rsa --dn "$ROGUE_DN" --outform pem \
    >"$P/rogue-ca.pem" || fail "pki --self (rogue CA)"
# issue NAME CA SERIAL DN SAN...: a key and a certificate NAME.{key,pem} issued by CA.
issue() {
    local name=$1 ca=$2 serial=$3 dn=$4
    shift 4
    local san=()
    for s in "$@"; do san+=(--san "$s"); done
    pk --gen --type rsa --size 2048 --outform pem >"$P/$name.key" || fail "pki --gen ($name)"
    pk --pub --in "$P/$name.key" --type rsa |
        pk --issue --lifetime 30 --cacert "$P/$ca.pem" --cakey "$P/$ca.key" --serial "$serial" \
            --dn "$dn" "${san[@]}" --flag serverAuth --flag clientAuth --outform pem \
            >"$P/$name.pem" || fail "pki --issue ($name)"
}
issue gw ca 10 "$GW_DN" gw.example.net 10.99.0.2
issue gw-rogue rogue-ca 11 "$GW_DN" gw.example.net 10.99.0.2
issue charon ca 20 "$CH_DN" charon.example.net 10.99.0.1
issue charon-revoked ca 21 "$CH_DN" charon.example.net 10.99.0.1
issue charon-rogue rogue-ca 30 "$CH_DN" charon.example.net 10.99.0.1
pk --signcrl --cacert "$P/ca.pem" --cakey "$P/ca.key" --lifetime 7 \
    --reason key-compromise --cert "$P/charon-revoked.pem" --outform der >"$P/ca.crl" ||
    fail "pki --signcrl"
openssl crl -inform der -in "$P/ca.crl" -noout -text >"$P/ca.crl.txt" 2>&1 || true
grep -q "Serial Number: 21" "$P/ca.crl.txt" || fail "the CRL does not list serial 21 ($P/ca.crl.txt)"

# --- topology ---------------------------------------------------------------------------------
ip netns add "$NA"
ip netns add "$NB"
ip link add vA$$ type veth peer name vB$$
ip link set vA$$ netns "$NA"
ip link set vB$$ netns "$NB"
ip -n "$NA" addr add 10.99.0.1/24 dev vA$$
ip -n "$NB" addr add 10.99.0.2/24 dev vB$$
for n in "$NA" "$NB"; do ip -n "$n" link set lo up; done
ip -n "$NA" link set vA$$ up
ip -n "$NB" link set vB$$ up
# The inner LANs of the child SA: libipsec's route needs a local address in local_ts.
ip -n "$NA" addr add 10.10.1.1/24 dev lo
ip -n "$NB" addr add 10.10.2.1/24 dev lo

# run_case CASE CERT ID EXPECT [REASON_REGEX]: charon with certificate CERT (name in $P)
# claiming ID; EXPECT is "established" or "refused" (our line must match REASON_REGEX).
run_case() {
    CASE=$1
    local cert=$2 cid=$3 expect=$4 reason=${5:-}
    W=$BASE/$CASE
    local S=$W/swanctl
    mkdir -p "$W/run" "$S"/{x509,x509ca,private,x509crl,x509ocsp,x509aa,x509ac,pubkey,rsa,ecdsa,bliss,pkcs8,pkcs12}
    cp "$P/$cert.pem" "$S/x509/charon.pem"
    cp "$P/$cert.key" "$S/private/charon.key"
    cp "$P/ca.pem" "$S/x509ca/ca.pem" # to check our certificate
    cat >"$W/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 pkcs8 x509 constraints pubkey aes sha1 sha2 hmac kernel-libipsec kernel-netlink socket-default vici
  retransmit_tries = 2
  retransmit_timeout = 1.5
  retransmit_base = 1.5
  plugins { vici { socket = unix://$W/charon.vici } }
  filelog { log { path = $W/charon.log
                  time_format = %T
                  default = 1
                  ike = 4
                  chd = 4
                  cfg = 2
                  knl = 2
                  enc = 2
                  flush_line = yes } }
  syslog { daemon { default = -1 } }
}
swanctl { load = pem pkcs1 pkcs8 x509 pubkey openssl random }
EOF
    cat >"$S/swanctl.conf" <<EOF
connections {
  rsa {
    version = 1
    aggressive = no
    local_addrs = 10.99.0.1
    remote_addrs = 10.99.0.2
    proposals = aes128-sha1-modp2048
    encap = yes
    keyingtries = 1
    send_certreq = yes
    send_cert = ifasked
    fragmentation = no
    local { auth = pubkey
            certs = charon.pem
            id = $cid }
    remote { auth = pubkey
             id = fqdn:gw.example.net
             cacerts = ca.pem }
    children { c { local_ts = 10.10.1.0/24
                   remote_ts = 10.10.2.0/24
                   esp_proposals = aes128-sha1 } }
  }
}
EOF

    local extra=(IKE_INTEROP_EXPECT_NAT=1)
    [ -z "${EXTRA_TP:-}" ] || extra+=("IKE_INTEROP_EXTRA_TP=$EXTRA_TP")
    if [ "$expect" = established ]; then
        extra+=(IKE_INTEROP_QUICK_MODE=1 "IKE_INTEROP_PEER_ID=$cid")
    else
        extra+=(IKE_INTEROP_EXPECT_REFUSAL=1)
    fi
    # Our responder, in ns B.
    ip netns exec "$NB" env IKE_INTEROP_ADDR=10.99.0.2 IKE_INTEROP_AUTH=rsa-sig \
        IKE_INTEROP_CA="$P/ca.pem" IKE_INTEROP_CERT="$P/gw.pem" IKE_INTEROP_KEY="$P/gw.key" \
        IKE_INTEROP_CRL="$P/ca.crl" IKE_INTEROP_REVOCATION=crl \
        IKE_INTEROP_IDENTITY=hostname IKE_INTEROP_FQDN=gw.example.net "${extra[@]}" \
        RUST_BACKTRACE=1 "$BIN" --ignored --exact ike::tests::charon_initiator_interop --nocapture \
        >"$W/responder.out" 2>&1 &
    local resp=$!
    PIDS+=("$resp")

    # charon in ns A with a private /run (its pidfile path is fixed).
    ip netns exec "$NA" sh -c "mount --bind '$W/run' /run && STRONGSWAN_CONF='$W/strongswan.conf' exec /usr/lib/ipsec/charon" \
        >"$W/charon.stdout" 2>&1 &
    local charon=$!
    PIDS+=("$charon")
    for _ in $(seq 50); do [ -S "$W/charon.vici" ] && break; sleep 0.1; done
    [ -S "$W/charon.vici" ] || fail "charon did not start"
    sw() { STRONGSWAN_CONF="$W/strongswan.conf" swanctl "$@" --uri "unix://$W/charon.vici"; }
    sw --load-all --file "$S/swanctl.conf" >"$W/load.out" 2>&1 || fail "swanctl --load-all: $(cat "$W/load.out")"
    grep -q "loaded certificate from '$S/x509/charon.pem'" "$W/load.out" || fail "swanctl did not load charon's certificate"
    grep -q "loaded RSA key from '$S/private/charon.key'" "$W/load.out" || fail "swanctl did not load charon's key"
    local rc=0
    sw --initiate --ike rsa --child c --timeout 20 >"$W/initiate.out" 2>&1 || rc=$?
    wait "$resp" || fail "our responder failed (see $W/responder.out)"
    sw --list-sas >"$W/list-sas.out" 2>&1 || true

    # Both sides: CERT_REQ naming the CA, answered by charon's certificate.
    grep -qF "OUR CERT_REQ names CN=Interop Root CA,O=Interop,C=CH" "$W/responder.out" ||
        fail "our responder does not name our CA in its CERT_REQ"
    grep -qE "received cert request for [\"']$CA_DN[\"']" "$W/charon.log" ||
        fail "charon did not receive our CERT_REQ naming '$CA_DN'"
    grep -qF "sending end entity cert \"$CH_DN\"" "$W/charon.log" ||
        fail "charon did not send its certificate"
    grep -qE "^PEER SENT CERT subject CN=charon.example.net,O=Interop,C=CH issuer " "$W/responder.out" ||
        fail "our responder did not receive charon's certificate"

    if [ "$expect" = established ]; then
        [ "$rc" = 0 ] || fail "swanctl --initiate failed ($rc): $(tail -n 3 "$W/initiate.out")"
        grep -q "ESTABLISHED: Phase1Sa" "$W/responder.out" || fail "our responder did not establish phase 1"
        grep -qF "PEER ID $cid" "$W/responder.out" || fail "our responder did not authenticate charon as $cid"
        grep -qE "PEER CERT subject CN=charon.example.net,O=Interop,C=CH issuer CN=Interop Root CA,O=Interop,C=CH serial 20$" \
            "$W/responder.out" || fail "our responder did not keep charon's certificate (serial 20)"
        # charon's CERT_REQ (in its MM5) names the CA it trusts, and we answer with the
        # certificate that CA issued, even when another trustpoint comes first (cert-select).
        grep -qF "CERT_REQ from peer names CN=Interop Root CA,O=Interop,C=CH" "$W/responder.out" ||
            fail "our responder did not see charon's CERT_REQ naming our CA"
        grep -qE "^OUR CERT sent: subject CN=gw.example.net,O=Interop,C=CH issuer CN=Interop Root CA,O=Interop,C=CH serial 10$" \
            "$W/responder.out" || fail "we did not send the certificate issued by the CA charon asked for"
        grep -qF "received end entity cert \"$GW_DN\"" "$W/charon.log" || fail "charon did not receive our certificate"
        grep -qE "authentication of 'gw.example.net' with RSA.* successful" "$W/charon.log" ||
            fail "charon did not verify our RSA signature"
        grep -qE "IKE_SA rsa\[[0-9]+\] established between 10.99.0.1\[charon.example.net\]\.\.\.10.99.0.2\[gw.example.net\]" \
            "$W/charon.log" || fail "charon did not establish the IKE SA with FQDN identities"
        grep -q "CHILD_SA c{[0-9]*} established" "$W/charon.log" || fail "charon did not establish the CHILD_SA"
        grep -qi "unable to install\|failed to install\|installing.*failed" "$W/charon.log" &&
            fail "charon could not install the CHILD_SA"
        grep -q "INSTALLED, TUNNEL-in-UDP" "$W/list-sas.out" || fail "swanctl --list-sas shows no installed CHILD_SA"
        grep -q "CHILD ESTABLISHED" "$W/responder.out" || fail "our responder did not complete Quick Mode"
        # KEYMAT: charon's initiator keys (its outbound) are our inbound ones, and the reverse.
        ck() { awk -v L="$1" '
            index($0, L " => ") { s = substr($0, index($0, "=> ") + 3); split(s, a, " "); n = a[1]; on = 1; next }
            on && n > 0 { for (i = 4; i < 20 && i <= NF && n > 0; i++) { printf "%s", tolower($i); n-- } next }
            on { exit }' "$W/charon.log"; }
        local ours want
        ours=$(grep -o "CHILD KEYS .*" "$W/responder.out")
        want="CHILD KEYS in_enc=$(ck "encryption initiator key") in_auth=$(ck "integrity initiator key")"
        want="$want out_enc=$(ck "encryption responder key") out_auth=$(ck "integrity responder key")"
        [ "$ours" = "$want" ] || fail "ESP keys differ from charon's: ours '$ours', charon's '$want'"
        echo "[$CASE] ESP keys identical to charon's (both directions)"
        grep -E "^(PEER (ID|CERT)|OUR CERT|CERT_REQ|OUR CERT_REQ|CHILD ESTABLISHED)" "$W/responder.out" | sed "s/^/[$CASE] ours:   /"
        grep -E "cert request|end entity cert|authentication of|IKE_SA rsa.*established|CHILD_SA c.*established" "$W/charon.log" |
            cut -c1-180 | sed "s/^/[$CASE] charon: /"
    else
        grep -q "ESTABLISHED: Phase1Sa" "$W/responder.out" && fail "our responder established phase 1"
        grep -qE "IKE_SA rsa\[[0-9]+\] established" "$W/charon.log" && fail "charon established the IKE SA"
        [ "$rc" = 0 ] && fail "swanctl --initiate succeeded"
        grep -E "^REFUSED: " "$W/responder.out" | grep -qE -- "$reason" ||
            fail "our refusal does not match '$reason': $(grep -E '^REFUSED' "$W/responder.out" || echo none)"
        grep -E "^REFUSED: |^WARN |^PEER SENT CERT" "$W/responder.out" | cut -c1-250 | sed "s/^/[$CASE] ours:   /"
        grep -E "cert request|end entity cert|error notify|INVALID|giving up|establishing .* failed" "$W/charon.log" |
            cut -c1-180 | sed "s/^/[$CASE] charon: /"
    fi
    kill "$charon" 2>/dev/null || true
    wait "$charon" 2>/dev/null || true
    echo "PASS: $CASE"
    CASE=
}

CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=(valid cert-select revoked id-mismatch unknown-ca)
for c in "${CASES[@]}"; do
    case $c in
    valid) run_case valid charon fqdn:charon.example.net established ;;
    cert-select)
        EXTRA_TP="$P/rogue-ca.pem:$P/gw-rogue.pem:$P/gw-rogue.key" \
            run_case cert-select charon fqdn:charon.example.net established ;;
    revoked)
        run_case revoked charon-revoked fqdn:charon.example.net refused \
            '^REFUSED: %CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.1 is bad: certificate revoked \(serial 21, CN=charon\.example\.net' ;;
    id-mismatch)
        run_case id-mismatch charon "fqdn:*.example.net" refused \
            '^REFUSED: ISAKMP:\(0\):peer 10\.99\.0\.1 ID payload is not acceptable: peer identity \*\.example\.net \(ID_FQDN\) does not match the certificate \(subject CN=charon\.example\.net,O=Interop,C=CH, altnames DNS:charon\.example\.net IP:10\.99\.0\.1\)' ;;
    unknown-ca)
        run_case unknown-ca charon-rogue fqdn:charon.example.net refused \
            '^REFUSED: %CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.1 is bad: certificate issued by an unknown CA \(CN=Rogue CA,O=Rogue,C=CH\)' ;;
    *) fail "unknown case '$c' (valid, cert-select, revoked, id-mismatch, unknown-ca)" ;;
    esac
done
echo "PASS (Main Mode rsa-sig with charon: ${CASES[*]})"
