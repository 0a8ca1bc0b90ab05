#!/bin/bash
# The whole gateway (ipsec-dataplane on af_packet + ipsec-control) against strongSwan's charon
# (IKEv1, kernel-libipsec: ESP always in UDP 4500, encap = yes), authenticated by certificates
# from a test PKI with a root CA and a subordinate CA, CRL checking on: issue 3, proof items 3
# (proposals) and 5 (refusals). Topology and helpers: tests/tools/charon_lab.sh.
#
# Our gateway: `crypto isakmp identity hostname` (gw.example.net), one rsa-sig isakmp policy,
# trustpoint with the root and the Sub CA, our certificate from the Sub CA,
# `revocation-check crl` with the Sub CA's CRL (crl_file). charon: certificate from the Sub CA
# (charon.example.net), trusts the root and the Sub CA.
#
# Cases (CASES="..." to choose; default all). Proposals: the tunnel comes up, 10 pings pass and
# each side counts exactly those packets (our per-SA encaps/decaps = charon's packets in/out),
# our control.log names the negotiated phase 1 suite and transform set, and charon's
# `swanctl --list-sas` the same algorithms:
#   gcm           aes128-sha1-modp2048, ESP aes128gcm16 (our `esp-gcm 128`); we initiate
#                 (hA's ping -> Acquire).
#   3des-md5      3des-md5-modp1024, ESP 3des-md5 (IOS: encryption 3des, hash md5, group 2;
#                 esp-3des esp-md5-hmac); charon initiates.
#   pfs           aes256-sha256-ecp256, ESP aes256-sha256 with PFS group 19 (our
#                 `pfs = "group19"`, charon `esp_proposals = aes256-sha256-ecp256`); we initiate.
#   pfs-resp      the same, charon initiates (our responder checks and answers its KE).
# Refusals (charon initiates with keyingtries 1; it must not establish, our control.log has the
# refusal line, and ipsec-dpctl shows no SA at all in the dataplane):
#   revoked       charon's certificate is in the Sub CA's CRL: %CRYPTO-5-IKMP_INVAL_CERT ...
#                 certificate revoked (serial 21 ...).
#   expired       charon's certificate expired in 2021: %CRYPTO-5-IKMP_INVAL_CERT ...
#                 certificate expired.
#   unknown-ca    charon's certificate comes from a CA we do not trust: ... unknown CA.
#   id-mismatch   charon claims ID_FQDN *.example.net, which its certificate does not hold:
#                 ID payload is not acceptable ... does not match the certificate.
#   no-proposal   charon offers only aes256-sha512-modp4096: phase 1 SA policy not acceptable,
#                 and charon receives NO_PROPOSAL_CHOSEN.
# Needs root, the release binaries (make build) and strongSwan with pki (make deps).
set -euo pipefail
TEST_NAME=61-charon-proposals
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$TESTS_ROOT/tests/tools/charon_lab.sh"
cl_need
CASES=${CASES:-gcm 3des-md5 pfs pfs-resp revoked expired unknown-ca id-mismatch no-proposal}

# Per-SA packet counts: ours from ipsec-dpctl (encaps of the outbound SA, decaps of the
# inbound SA), charon's from swanctl --list-sas --raw.
our_count() { # encaps|decaps
    dp_counters "$LOGDIR/dp.sock" "$LOGDIR/counters.json"
    "$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))
print(sum(sa.get(sys.argv[2], 0) for sa in c["sas"]))' "$LOGDIR/counters.json" "$1"
}
charon_count() { # in|out
    sw "$LOGDIR" --list-sas --raw 2>/dev/null | grep -o "packets-$1=[0-9]*" | awk -F= '{ s += $2 } END { print s + 0 }'
}

# proposal_case WHO OURS_P1_RE OURS_TS_RE CHARON_IKE CHARON_ESP: bring the tunnel up (WHO:
# us = hA's ping triggers our initiator, charon = swanctl --initiate), then check both sides.
proposal_case() {
    local who=$1 p1_re=$2 ts_re=$3 ch_ike=$4 ch_esp=$5 d=$LOGDIR
    cl_gw_config "$d"
    cl_charon_start "$d"
    cl_gw_start "$d"
    if [ "$who" = us ]; then
        log "hA pings 10.10.2.1: Acquire -> Main Mode (rsa-sig) + Quick Mode toward charon"
        cl_ping_until 40
        wait_log 10 "$d/charon.log" "CHILD_SA c\{[0-9]+\} established"
    else
        log "charon initiates"
        sw "$d" --initiate --ike gw --child c --timeout 30 >"$d/initiate.log" 2>&1 ||
            fail "charon could not bring the tunnel up: $(tail -5 "$d/initiate.log")"
        wait_log 10 "$d/control.log" "Crypto tunnel is UP" "$CTL_PID"
        cl_ping_until 10
    fi
    # certificates: charon authenticated us, we authenticated charon through the Sub CA, CRL
    grep -qE "IKE_SA gw\[[0-9]+\] established between 10.99.0.2\[charon.example.net\]\.\.\.10.99.0.1\[gw.example.net\]" \
        "$d/charon.log" || fail "charon has no IKE SA with FQDN identities"
    grep -qE "authentication of 'gw.example.net' with RSA.* successful" "$d/charon.log" ||
        fail "charon did not verify our RSA signature"
    grep -qE "%CRYPTO-5-IKMP_SA_UP: .* $p1_re .*peer charon.example.net, NAT-T" "$d/control.log" ||
        fail "our phase 1 line does not show '$p1_re' with peer charon.example.net: $(grep IKMP_SA_UP "$d/control.log")"
    grep -qE "Crypto tunnel is UP.*proxy 10.10.1.0/24 <-> 10.10.2.0/24.*\($ts_re, ts\)" "$d/control.log" ||
        fail "our tunnel line does not show '$ts_re': $(grep 'tunnel is UP' "$d/control.log")"
    sw "$d" --list-sas >"$d/list-sas.txt" 2>&1 || true
    grep -qF "$ch_ike" "$d/list-sas.txt" || fail "charon's IKE SA is not $ch_ike: $(cat "$d/list-sas.txt")"
    grep -qE "INSTALLED, TUNNEL-in-UDP, ESP:$ch_esp\$" "$d/list-sas.txt" ||
        fail "charon's CHILD_SA is not ESP:$ch_esp in UDP: $(cat "$d/list-sas.txt")"
    local sas
    sas=$(cl_dp_sas "$d")
    [ "$sas" = "1 1" ] || fail "the dataplane should hold one SA each way (inbound outbound: $sas)"
    local e0 d0 ci0 co0 e1 d1 ci1 co1
    e0=$(our_count encaps) d0=$(our_count decaps) ci0=$(charon_count in) co0=$(charon_count out)
    nsx hA ping -c 10 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    e1=$(our_count encaps) d1=$(our_count decaps) ci1=$(charon_count in) co1=$(charon_count out)
    log "ours: encaps +$((e1 - e0)) decaps +$((d1 - d0)); charon: in +$((ci1 - ci0)) out +$((co1 - co0))"
    [ $((e1 - e0)) = 10 ] && [ $((d1 - d0)) = 10 ] && [ $((ci1 - ci0)) = 10 ] && [ $((co1 - co0)) = 10 ] ||
        fail "10 pings each way were not counted exactly on both sides"
    grep IKMP_SA_UP "$d/control.log" | sed 's/^.*%CRYPTO/  ours:   %CRYPTO/' >&2
    grep "tunnel is UP" "$d/control.log" | sed 's/^.*Crypto tunnel/  ours:   Crypto tunnel/' >&2
    grep -E "IKEv1|PRF_|ESP:" "$d/list-sas.txt" | sed 's/^ */  charon: /' >&2
}

# refusal_case OUR_RE [CHARON_RE]: charon initiates and must be refused with OUR_RE logged by
# our daemon (and CHARON_RE in charon's log when given); nothing reaches our dataplane.
refusal_case() {
    local our_re=$1 ch_re=${2:-} d=$LOGDIR
    cl_gw_config "$d"
    CH_TRIES=2 cl_charon_start "$d"
    cl_gw_start "$d"
    log "charon initiates (expected to be refused)"
    local rc=0
    sw "$d" --initiate --ike gw --child c --timeout 30 >"$d/initiate.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "swanctl --initiate succeeded"
    wait_log 10 "$d/control.log" "$our_re" "$CTL_PID"
    [ -z "$ch_re" ] || wait_log 10 "$d/charon.log" "$ch_re"
    grep -qE "IKE_SA gw\[[0-9]+\] established" "$d/charon.log" && fail "charon established the IKE SA"
    grep -q "IKMP_SA_UP" "$d/control.log" && fail "our daemon established phase 1"
    sw "$d" --list-sas >"$d/list-sas.txt" 2>&1 || true
    grep -q "ESTABLISHED\|INSTALLED" "$d/list-sas.txt" && fail "charon holds an SA: $(cat "$d/list-sas.txt")"
    local sas
    sas=$(cl_dp_sas "$d")
    [ "$sas" = "0 0" ] || fail "the dataplane holds SAs (inbound outbound: $sas): $(cat "$d/sas.json")"
    grep -E "$our_re" "$d/control.log" | head -1 | sed 's/^.*: \(%\|ISAKMP\)/  ours:   \1/' >&2
    grep -E "error notify|giving up|establishing .* failed|${ch_re:-^$}" "$d/charon.log" | head -3 |
        cut -c1-170 | sed 's/^/  charon: /' >&2
    log "dataplane SAs (inbound outbound): $sas"
}

case_gcm() {
    GW_P1="aes sha 14" GW_ESP='"esp-gcm", "128"' CH_PROPOSALS=aes128-sha1-modp2048 CH_ESP=aes128gcm16 \
        proposal_case us "aes sha1 rsa-sig group 14" "esp-gcm 128" \
        "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048" "AES_GCM_16-128"
}
case_3des-md5() {
    GW_P1="3des md5 2" GW_ESP='"esp-3des", "esp-md5-hmac"' CH_PROPOSALS=3des-md5-modp1024 CH_ESP=3des-md5 \
        proposal_case charon "3des md5 rsa-sig group 2" "esp-3des esp-md5-hmac" \
        "3DES_CBC/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024" "3DES_CBC/HMAC_MD5_96"
}
pfs_case() {
    GW_P1="aes256 sha256 19" GW_ESP='"esp-aes", "256", "esp-sha256-hmac"' GW_PFS=group19 \
        CH_PROPOSALS=aes256-sha256-ecp256 CH_ESP=aes256-sha256-ecp256 \
        proposal_case "$1" "aes 256 sha256 rsa-sig group 19" "esp-aes 256 esp-sha256-hmac" \
        "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256" "AES_CBC-256/HMAC_SHA2_256_128/ECP_256"
}
case_pfs() { pfs_case us; }
case_pfs-resp() { pfs_case charon; }

case_revoked() {
    CH_CERT=charon-revoked refusal_case \
        '%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.2 is bad: certificate revoked \(serial 21, CN=charon\.example\.net'
}
case_expired() {
    CH_CERT=charon-expired refusal_case \
        '%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.2 is bad: certificate expired \(CN=charon\.example\.net'
}
case_unknown-ca() {
    CH_CERT=charon-rogue refusal_case \
        '%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.2 is bad: certificate issued by an unknown CA \(CN=Rogue CA'
}
case_id-mismatch() {
    CH_ID="fqdn:*.example.net" refusal_case \
        'peer 10\.99\.0\.2 ID payload is not acceptable: peer identity \*\.example\.net \(ID_FQDN\) does not match the certificate'
}
case_no-proposal() {
    CH_PROPOSALS=aes256-sha512-modp4096 refusal_case \
        'phase 1 SA policy not acceptable! \(local 10\.99\.0\.1.* remote 10\.99\.0\.2' \
        'received NO_PROPOSAL_CHOSEN error notify'
}

cl_topology
GW_PKI=$WORK/pki
cl_pki "$GW_PKI"
GW_AUTH=rsa-sig
failed=""
for c in $CASES; do
    declare -F "case_$c" >/dev/null || fail "unknown case '$c'"
    if in_case "$c" "case_$c"; then log "PASS $c"; else failed="$failed $c"; log "FAIL $c"; fi
done
[ -z "$failed" ] || fail "cases failed:$failed"
log "PASS"
