#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each case
# The whole gateway (ipsec-dataplane on af_packet + ipsec-control) against strongSwan's charon
# (IKEv1, kernel-libipsec: ESP always in UDP 4500, encap = yes), authenticated by certificates
# from a test PKI with a root CA and a subordinate CA, CRL checking on: issue 3, proof items 3
# (proposals) and 5 (refusals). Topology and helpers: tests/tools/ike_lab.sh.
#
# Our gateway: `crypto isakmp identity hostname` (gw.example.net), one rsa-sig isakmp policy,
# trustpoint with the root and the Sub CA, our certificate from the Sub CA,
# `revocation-check crl` with the Sub CA's CRL (crl_file). charon: certificate from the Sub CA
# (charon.example.net), trusts the root and the Sub CA.
#
# Cases (CASES="..." to choose; default all). Proposals: the tunnel comes up, 10 pings pass and
# each side counts exactly those packets (our per-SA encaps/decaps = charon's packets in/out),
# ipsec-control's log names the negotiated phase 1 suite and transform set (and the PFS group
# when there is one), and charon's `swanctl --list-sas` the same algorithms:
#   gcm           aes128-sha1-modp2048, ESP aes128gcm16 (our `esp-gcm 128`); we initiate
#                 (hA's ping -> Acquire).
#   3des-md5      3des-md5-modp1024, ESP 3des-md5 (IOS: encryption 3des, hash md5, group 2;
#                 esp-3des esp-md5-hmac); charon initiates.
#   pfs           aes256-sha256-ecp256, ESP aes256-sha256 with PFS group 19 (our
#                 `pfs = "group19"`, charon `esp_proposals = aes256-sha256-ecp256`); we initiate.
#   pfs-resp      the same, charon initiates (our responder checks and answers its KE).
# Refusals (charon initiates with keyingtries 1; it must not establish, ipsec-control's log has
# the refusal line, and ipsec-dpctl shows no SA at all in the dataplane):
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
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
CASES=${CASES:-gcm 3des-md5 pfs pfs-resp revoked expired unknown-ca id-mismatch no-proposal}

# make_pki: the test PKI in $PKI, and the checks that it is what the cases assume:
#   root.pem       Interop Root CA (self-signed)
#   sub.pem        Interop Sub CA, issued by the root (CA:TRUE); issues every end certificate
#   gw.pem         ours: CN/dNSName gw.example.net, iPAddress 10.99.0.1, serial 0x10
#   charon.pem     charon.example.net, 10.99.0.2, serial 0x20
#   charon-revoked.pem   same names, serial 0x21, listed in sub.crl (key compromise)
#   charon-expired.pem   same names, serial 0x22, valid 2020-01-01 .. 2021-01-01 only
#   rogue-ca.pem, charon-rogue.pem   a CA we do not trust and a charon.example.net cert from it
#   sub.crl        the Sub CA's CRL (DER, valid 7 days), revoking serial 0x21
make_pki() {
    local dn="C=CH, O=Interop, CN=charon.example.net" san=(charon.example.net 10.99.0.2)
    pki_root root "C=CH, O=Interop, CN=Interop Root CA"
    pki_sub sub root "C=CH, O=Interop, CN=Interop Sub CA" 2
    pki_root rogue-ca "C=CH, O=Rogue, CN=Rogue CA"
    pki_cert gw sub 10 "C=CH, O=Interop, CN=gw.example.net" gw.example.net 10.99.0.1
    pki_cert charon sub 20 "$dn" "${san[@]}"
    pki_cert charon-revoked sub 21 "$dn" "${san[@]}"
    pki_cert charon-expired sub 22 "$dn" \
        --not-before "01.01.20 00:00:00" --not-after "01.01.21 00:00:00" -- "${san[@]}"
    pki_cert charon-rogue rogue-ca 30 "$dn" "${san[@]}"
    pki_crl sub "$PKI/sub.crl" charon-revoked # checks that it lists serial 21
    openssl verify -CAfile "$PKI/root.pem" -untrusted "$PKI/sub.pem" "$PKI/gw.pem" "$PKI/charon.pem" \
        >"$PKI/verify.log" 2>&1 || fail "openssl verify of the test chain: $(cat "$PKI/verify.log")"
    openssl x509 -in "$PKI/charon-expired.pem" -noout -enddate | grep -q "2021 GMT" ||
        fail "charon-expired.pem is not expired: $(openssl x509 -in "$PKI/charon-expired.pem" -noout -dates)"
    openssl x509 -in "$PKI/sub.pem" -noout -issuer | grep -q "Interop Root CA" || fail "sub.pem not issued by the root"
    openssl x509 -in "$PKI/charon.pem" -noout -issuer | grep -q "Interop Sub CA" || fail "charon.pem not issued by the Sub CA"
    log "PKI: root CA -> Sub CA -> gw, charon (+ revoked, expired); rogue CA; Sub CA CRL revoking 0x21"
}

# up DIR [SETTING...]: our gateway (rsa-sig, trustpoint with the root and the Sub CA, CRL)
# and charon (pubkey), each with the settings of the case: the arrays GW and CH (gw_toml's
# and charon_swanctl's KEY=VALUE), then charon's settings given here.
GW=() CH=()
up() {
    local d=$1
    shift
    gw_toml "$d/gw.toml" auth=rsa-sig tp=interop "${GW[@]}"
    charon_up charon cs "$d" "${CHARON_QUICK[@]}" auth=pubkey cert=charon \
        local_id=fqdn:charon.example.net remote_id=fqdn:gw.example.net "${CH[@]}" "$@"
    gw_run gw gw "$d/gw.toml"
}

# proposal_case WHO OURS_P1_RE OURS_TS_RE CHARON_IKE CHARON_ESP [PFS_GROUP]: bring the tunnel
# up (WHO: us = hA's ping triggers our initiator, charon = swanctl --initiate), then check both
# sides (with PFS_GROUP, our tunnel line must name it).
proposal_case() {
    local who=$1 p1_re=$2 ts_re=$3 ch_ike=$4 ch_esp=$5 d=$LOGDIR ctl=$LOGDIR/gw-control.log
    local pfs_re=""
    [ -z "${6:-}" ] || pfs_re=", PFS group $6"
    up "$d"
    if [ "$who" = us ]; then
        log "hA pings 10.10.2.1: Acquire -> Main Mode (rsa-sig) + Quick Mode toward charon"
        ping_until 40 hA 10.10.2.1
        wait_log 10 "$d/charon.log" "CHILD_SA c\{[0-9]+\} established"
    else
        log "charon initiates"
        charon_initiate "$d"
        ping_until 10 hA 10.10.2.1
    fi
    # certificates: charon authenticated us, we authenticated charon through the Sub CA, CRL
    grep -qE "IKE_SA gw\[[0-9]+\] established between 10.99.0.2\[charon.example.net\]\.\.\.10.99.0.1\[gw.example.net\]" \
        "$d/charon.log" || fail "charon has no IKE SA with FQDN identities"
    grep -qE "authentication of 'gw.example.net' with RSA.* successful" "$d/charon.log" ||
        fail "charon did not verify our RSA signature"
    grep -qE "%CRYPTO-5-IKMP_SA_UP: .* $p1_re .*peer charon.example.net, NAT-T" "$ctl" ||
        fail "our phase 1 line does not show '$p1_re' with peer charon.example.net: $(grep IKMP_SA_UP "$ctl")"
    grep -qE "Crypto tunnel is UP.*proxy 10.10.1.0/24 <-> 10.10.2.0/24.*\($ts_re, ts$pfs_re\)" "$ctl" ||
        fail "our tunnel line does not show '$ts_re, ts$pfs_re': $(grep 'tunnel is UP' "$ctl")"
    sw "$d" --list-sas >"$d/list-sas.txt" 2>&1 || true
    grep -qF "$ch_ike" "$d/list-sas.txt" || fail "charon's IKE SA is not $ch_ike: $(cat "$d/list-sas.txt")"
    grep -qE "INSTALLED, TUNNEL-in-UDP, ESP:$ch_esp\$" "$d/list-sas.txt" ||
        fail "charon's CHILD_SA is not ESP:$ch_esp in UDP: $(cat "$d/list-sas.txt")"
    local sas
    sas=$(dp_sas "$d")
    [ "$sas" = "1 1" ] || fail "the dataplane should hold one SA each way (inbound outbound: $sas)"
    # per-SA packet counts: our encaps/decaps = charon's packets in/out
    counts_mark "$d"
    nsx hA ping -c 10 -i 0.2 -W 2 10.10.2.1 >"$d/ping.log" 2>&1 || fail "pings lost: $(tail -2 "$d/ping.log")"
    counts_since "$d" 10
    grep IKMP_SA_UP "$ctl" | sed 's/^.*%CRYPTO/  ours:   %CRYPTO/' >&2
    grep "tunnel is UP" "$ctl" | sed 's/^.*Crypto tunnel/  ours:   Crypto tunnel/' >&2
    grep -E "IKEv1|PRF_|ESP:" "$d/list-sas.txt" | sed 's/^ */  charon: /' >&2
}

# refusal_case OUR_RE [CHARON_RE]: charon (2 retransmissions) initiates and must be refused
# with OUR_RE logged by our daemon (and CHARON_RE in charon's log when given); nothing reaches
# our dataplane.
refusal_case() {
    local our_re=$1 ch_re=${2:-} d=$LOGDIR ctl=$LOGDIR/gw-control.log
    up "$d" tries=2
    log "charon initiates (expected to be refused)"
    local rc=0
    sw "$d" --initiate --ike gw --child c --timeout 30 >"$d/initiate.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "swanctl --initiate succeeded"
    wait_log 10 "$ctl" "$our_re" "$GW_CTL_PID"
    [ -z "$ch_re" ] || wait_log 10 "$d/charon.log" "$ch_re"
    grep -qE "IKE_SA gw\[[0-9]+\] established" "$d/charon.log" && fail "charon established the IKE SA"
    grep -q "IKMP_SA_UP" "$ctl" && fail "our daemon established phase 1"
    sw "$d" --list-sas >"$d/list-sas.txt" 2>&1 || true
    grep -q "ESTABLISHED\|INSTALLED" "$d/list-sas.txt" && fail "charon holds an SA: $(cat "$d/list-sas.txt")"
    local sas
    sas=$(dp_sas "$d")
    [ "$sas" = "0 0" ] || fail "the dataplane holds SAs (inbound outbound: $sas): $(cat "$d/sas.json")"
    grep -E "$our_re" "$ctl" | head -1 | sed 's/^.*: \(%\|ISAKMP\)/  ours:   \1/' >&2
    grep -E "error notify|giving up|establishing .* failed|${ch_re:-^$}" "$d/charon.log" | head -3 |
        cut -c1-170 | sed 's/^/  charon: /' >&2
    log "dataplane SAs (inbound outbound): $sas"
}

case_gcm() {
    GW=(p1="aes sha 14" esp="esp-gcm 128") CH=(proposals=aes128-sha1-modp2048 esp=aes128gcm16)
    proposal_case us "aes sha1 rsa-sig group 14" "esp-gcm 128" \
        "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048" "AES_GCM_16-128"
}
case_3des-md5() {
    GW=(p1="3des md5 2" esp="esp-3des esp-md5-hmac") CH=(proposals=3des-md5-modp1024 esp=3des-md5)
    proposal_case charon "3des md5 rsa-sig group 2" "esp-3des esp-md5-hmac" \
        "3DES_CBC/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024" "3DES_CBC/HMAC_MD5_96"
}
pfs_case() {
    GW=(p1="aes256 sha256 19" esp="esp-aes 256 esp-sha256-hmac" pfs=group19)
    CH=(proposals=aes256-sha256-ecp256 esp=aes256-sha256-ecp256)
    proposal_case "$1" "aes 256 sha256 rsa-sig group 19" "esp-aes 256 esp-sha256-hmac" \
        "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256" "AES_CBC-256/HMAC_SHA2_256_128/ECP_256" 19
}
case_pfs() { pfs_case us; }
case_pfs-resp() { pfs_case charon; }

case_revoked() {
    CH=(cert=charon-revoked)
    refusal_case \
        '%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.2 is bad: certificate revoked \(serial 21, CN=charon\.example\.net'
}
case_expired() {
    CH=(cert=charon-expired)
    refusal_case \
        '%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.2 is bad: certificate expired \(CN=charon\.example\.net'
}
case_unknown-ca() {
    CH=(cert=charon-rogue)
    refusal_case \
        '%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10\.99\.0\.2 is bad: certificate issued by an unknown CA \(CN=Rogue CA'
}
case_id-mismatch() {
    CH=(local_id="fqdn:*.example.net")
    refusal_case \
        'peer 10\.99\.0\.2 ID payload is not acceptable: peer identity \*\.example\.net \(ID_FQDN\) does not match the certificate'
}
case_no-proposal() {
    CH=(proposals=aes256-sha512-modp4096)
    refusal_case \
        'phase 1 SA policy not acceptable! \(local 10\.99\.0\.1.* remote 10\.99\.0\.2' \
        'received NO_PROPOSAL_CHOSEN error notify'
}

ike_topology
make_pki
# shellcheck disable=SC2086 # the case names
run_cases -v $CASES
