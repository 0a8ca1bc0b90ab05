#!/bin/bash
# shellcheck source-path=SCRIPTDIR
# Demo: the scenario of the reference documents. Our gateway (ipsec-dataplane + ipsec-control)
# and a strongSwan peer (charon, IKEv1) in network namespaces, certificates from a test CA (a
# root and a subordinate CA, CRL checking on). The tunnel comes up on the first ping from the
# LAN behind our gateway, then the demo prints what an IOS engineer would look at:
# `show crypto isakmp sa`, `show crypto ipsec sa` and `show crypto engine connections active`.
#
#   ns hA                  ns gw (ipsec-dataplane + ipsec-control)       ns cs (charon)
#   10.10.1.1/24 -------- [inside 10.10.1.254]  [outside 10.99.0.1] ---- 10.99.0.2
#                                                                        LAN 10.10.2.1
#
# Phase 1: rsa-sig, aes 256, sha256, group 14, identities by hostname (gw.example.net and
# branch.example.net). Phase 2: esp-3des esp-md5-hmac, tunnel mode, 3600 s / 4608000 KB, as in
# the reference. charon runs its userspace ESP (kernel-libipsec), which always uses UDP 4500:
# the tunnel is NAT-T encapsulated. Keys are made at run time and removed at the end.
# Needs root; `make demo` builds everything first. DEMO_KEEP=1 keeps the work directory.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TEST_NAME=demo
[ "${DEMO_KEEP:-0}" = 1 ] && KEEP_WORK=1
# shellcheck source=../tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"
# shellcheck source=../tests/tools/ike_lab.sh
. "$ROOT/tests/tools/ike_lab.sh"
IPSEC_CTL=${IPSEC_CTL:-$ROOT/target/release/ipsec-ctl}
ike_need

# --- namespaces
ike_topology

# --- PKI: root CA, subordinate CA, two gateways, the subordinate CA's (empty) CRL
pki_root root "C=US, O=Demo, CN=Demo Root CA"
pki_sub vpnca root "C=US, O=Demo, CN=Demo VPN CA"
pki_cert gw vpnca 0x10 "C=US, O=Demo, CN=gw.example.net" gw.example.net 10.99.0.1
pki_cert branch vpnca 0x20 "C=US, O=Demo, CN=branch.example.net" branch.example.net 10.99.0.2
pki_crl vpnca "$PKI/vpnca.crl"

# --- our gateway, in IOS terms:
#   hostname gw
#   ip domain-name example.net
#   crypto isakmp identity hostname
#   crypto isakmp policy 10
#    encryption aes 256 / hash sha256 / authentication rsa-sig / group 14 / lifetime 86400
#   crypto pki trustpoint DEMO  (the root and the VPN CA, our certificate, revocation-check crl)
#   crypto ipsec transform-set 3des-md5 esp-3des esp-md5-hmac
#   access-list 101 permit ip 10.10.1.0 0.0.0.255 10.10.2.0 0.0.0.255
#   crypto map vpn 10 ipsec-isakmp
#    set peer 10.99.0.2 / set transform-set 3des-md5 / match address 101
#   interface outside: crypto map vpn
gw_toml "$WORK/gw.toml" channel="$WORK/dataplane.sock" auth=rsa-sig p1="aes256 sha256 14" \
    tp=DEMO cas="root vpnca" crl=vpnca.crl ts=3des-md5 esp="esp-3des esp-md5-hmac"

# --- the strongSwan peer
D=$WORK/charon
charon_up charon cs "$D" auth=pubkey cert=branch cas="root vpnca" crl=vpnca.crl \
    local_id=branch.example.net remote_id=gw.example.net proposals=aes256-sha256-modp2048 \
    child=lan esp=3des-md5
gw_run gw gw "$WORK/gw.toml"

echo
echo "### ping from hA (10.10.1.1) to 10.10.2.1: the first packet starts Main Mode and Quick Mode"
ping_until 30 hA 10.10.2.1 "the tunnel did not come up in 30 s"
nsx hA ping -c 5 -i 0.2 10.10.2.1 || fail "pings lost through the tunnel"

echo
echo "### ipsec-control's log (IOS style)"
grep -E "%CRYPTO|IPSEC\(" "$WORK/gw-control.log" | cut -c1-200
for cmd in "show crypto isakmp sa" "show crypto ipsec sa" "show crypto engine connections active"; do
    echo
    echo "gw#$cmd"
    # shellcheck disable=SC2086 # the command's words
    "$IPSEC_CTL" --socket "$WORK/ctl.sock" $cmd || fail "ipsec-ctl $cmd failed"
done
echo
echo "### strongSwan's view (swanctl --list-sas)"
sw "$D" --list-sas
echo
echo "demo done"
