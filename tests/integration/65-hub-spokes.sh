#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each case
# A hub and many spokes (issue 3, proof item 9): one gateway of ours (ipsec-dataplane on
# af_packet + ipsec-control) with a dynamic crypto map, against NSPOKES (default 20) strongSwan
# charons (IKEv1, rsa-sig, kernel-libipsec), each in its own namespace, all on one L2 segment
# (a Linux bridge in ns wan) with the hub's outside port.
#
#   ns hA                 ns hub (ours)                      ns wan              ns sN (charon N)
#   ha0 ---------------- dp-in  [inside 10.10.0.254/16]                          lo 10.128.N.1/24
#   10.10.0.1/16          dp-out [outside 10.99.0.1/16] ---- w-hub ]            (its LAN)
#                                                            br0   ] wN ------- s0 10.99.0.(10+N)/16
#                                                                  ] ...  (one veth per spoke)
#
# One extra spoke namespace (N = NSPOKES + 1) holds the spoke whose certificate is revoked.
# Each charon runs with 12 worker threads (tests/tools/ike_lab.sh says why not fewer).
#
# PKI (strongSwan's pki, throwaway keys): a root CA, a subordinate CA that issues the hub's
# certificate (hub.example.net) and every spoke's (spokeN.example.net, FQDN identities), and
# the subordinate CA's CRL, which revokes one extra spoke's certificate. The hub trusts both
# CAs (trustpoint with ca_certificates = [root, sub]), revocation_check = "crl" with crl_file =
# the subordinate's CRL, isakmp identity hostname; `crypto map vpn 65535 ipsec-isakmp dynamic
# DYN` with reverse_route; DYN accepts proxies inside 10.10.0.0/16 <-> 10.128.0.0/9. No
# static entry names any spoke: every spoke is accepted through the dynamic map only.
# charon floats to 4500 (encap = yes fakes NAT-D: its userspace ESP is always in UDP).
#
# One case, "hub" (CASES=hub), in steps:
#   1. all NSPOKES spokes run `swanctl --initiate` at the same moment; every one succeeds, the
#      hub logs one %CRYPTO-5-IKMP_SA_UP (rsa-sig, the spoke's FQDN) and one `Crypto tunnel is
#      UP` per spoke with the spoke's own proxies (10.10.0.0/16 <-> 10.128.N.0/24), each with
#      a route injected (RRI); the time from the initiations to the last tunnel up is
#      reported (not asserted: machines are shared);
#   2. the hub's dataplane holds exactly one inbound and one outbound SA per spoke
#      (ipsec-dpctl sas --json), and every charon logs its CHILD_SA established;
#   3. traffic through each tunnel: hA pings every spoke's LAN address (3 echoes) and every
#      spoke pings hA (2 echoes); no loss, and the counts are exact on both sides: per spoke,
#      the hub's outbound SA encapsulated 5 packets and its inbound SA decapsulated 5 (ipsec-
#      dpctl counters --json), and charon counts 5 in and 5 out (swanctl --list-sas);
#   4. CRL checking is live: the spoke whose certificate the CRL revokes is refused
#      (%CRYPTO-5-IKMP_INVAL_CERT ... revoked) and nothing reaches the dataplane (still
#      exactly 2 x NSPOKES SAs).
# Needs root, the release binaries (make build) and strongSwan (make deps).
set -euo pipefail
TEST_NAME=65-hub-spokes
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=../tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
ike_need
NSPOKES=${NSPOKES:-20}
CASES=${CASES:-hub}
if [ "$NSPOKES" -lt 1 ] || [ "$NSPOKES" -gt 200 ]; then fail "NSPOKES must be 1..200"; fi
REVOKED=$((NSPOKES + 1)) # the spoke whose certificate is revoked

spoke_addr() { echo "10.99.$(((10 + $1) / 250)).$(((10 + $1) % 250))"; }
spoke_lan() { echo "10.128.$1"; }
hexb() { printf '%02x:%02x' $(($1 / 256)) $(($1 % 256)); }

make_pki() {
    log "PKI: root CA, subordinate CA, hub and $REVOKED spoke certificates (one revoked)"
    pki_root root "C=CH, O=Hub Lab, CN=Hub Lab Root CA"
    pki_sub sub root "C=CH, O=Hub Lab, CN=Hub Lab Spokes CA"
    pki_cert hub sub 10 "C=CH, O=Hub Lab, CN=hub.example.net" hub.example.net 10.99.0.1
    local i
    for i in $(seq "$REVOKED"); do
        pki_cert "spoke$i" sub $((1000 + i)) "C=CH, O=Hub Lab, CN=spoke$i.example.net" \
            "spoke$i.example.net" "$(spoke_addr "$i")"
    done
    pki_crl sub "$PKI/sub.crl" "spoke$REVOKED" # checks that it lists spoke$REVOKED's serial
}

topology() {
    local i n
    for n in hA hub wan; do ns_add "$n"; done
    gw_links hub wan w-hub 02:00:00:00:98:01
    lan_host hA ha0 10.10.0.1/16 10.128.0.0/9 10.10.0.254
    wan_bridge wan w-hub
    for i in $(seq "$REVOKED"); do
        ns_add "s$i"
        veth "s$i" s0 "02:00:00:a1:$(hexb "$i")" wan "w$i" "02:00:00:a2:$(hexb "$i")"
        ip -n "$(ns wan)" link set "w$i" master br0
        peer_link "s$i" s0
        ip -n "$(ns "s$i")" addr add "$(spoke_addr "$i")/16" dev s0
        # its LAN: libipsec routes the hub LAN with a local address of local_ts as source
        ip -n "$(ns "s$i")" addr add "$(spoke_lan "$i").1/24" dev lo
    done
    log "topology up: hub, hA and $REVOKED spoke namespaces on one bridge (prefix $PFX, work $WORK)"
}

# spoke_setup I: charon I (its directory s$I, certificate and swanctl.conf); starts it.
spoke_setup() {
    charon_up "charon-s$1" "s$1" "$LOGDIR/s$1" conn=hub local="$(spoke_addr "$1")" \
        local_ts="$(spoke_lan "$1").0/24" remote_ts=10.10.0.0/16 auth=pubkey cert="spoke$1" \
        local_id="fqdn:spoke$1.example.net" remote_id=fqdn:hub.example.net send_cert=always
}

case_hub() {
    local d=$LOGDIR i
    # isakmp identity hostname (hub.example.net), rsa-sig, trustpoint with both CAs and the CRL;
    # `crypto map vpn 65535 ipsec-isakmp dynamic DYN`, DYN with reverse_route
    gw_toml "$d/hub.toml" hostname=hub inside=10.10.0.254/16 outside=10.99.0.1/16 acl=150 \
        src=10.10.0.0/16 dst=10.128.0.0/9 auth=rsa-sig cert=hub dynamic=DYN reverse_route=true
    gw_run hub hub "$d/hub.toml"
    local ctl=$d/hub-control.log
    log "starting $REVOKED charons"
    for i in $(seq "$REVOKED"); do spoke_setup "$i"; done

    # 1. every spoke initiates at once
    log "all $NSPOKES spokes initiate at once"
    local t0 t_all pids=() now up=0
    t0=$(date +%s.%N)
    for i in $(seq "$NSPOKES"); do
        sw "$d/s$i" --initiate --ike hub --child c --timeout 120 >"$d/s$i/initiate.log" 2>&1 &
        pids+=($!)
    done
    local deadline=$((SECONDS + 150))
    while :; do
        up=$(grep -c "Crypto tunnel is UP" "$ctl" || true)
        [ "$up" -lt "$NSPOKES" ] || break
        if [ "$SECONDS" -ge "$deadline" ]; then
            for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
            fail "only $up of $NSPOKES tunnels up after 150 s"
        fi
        sleep 0.05
    done
    now=$(date +%s.%N)
    t_all=$(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.2f", b - a }')
    local rc bad=""
    for i in $(seq "$NSPOKES"); do
        rc=0
        wait "${pids[$((i - 1))]}" || rc=$?
        [ "$rc" = 0 ] || bad="$bad s$i(rc $rc)"
    done
    [ -z "$bad" ] || fail "swanctl --initiate failed on:$bad (see $d/sN/initiate.log)"
    log "all $NSPOKES tunnels up ${t_all} s after the initiations"
    echo "$t_all" >"$d/all-up-seconds"

    # the hub's log: one phase 1 and one tunnel per spoke, with its own identity and proxies
    local n
    n=$(grep -c "%CRYPTO-5-IKMP_SA_UP" "$ctl" || true)
    [ "$n" = "$NSPOKES" ] || fail "$n phase 1 SAs up on the hub, not $NSPOKES"
    n=$(grep -c "Crypto tunnel is UP" "$ctl" || true)
    [ "$n" = "$NSPOKES" ] || fail "$n tunnels up on the hub, not $NSPOKES"
    for i in $(seq "$NSPOKES"); do
        local a
        a=$(spoke_addr "$i")
        grep -qE "IKMP_SA_UP: ISAKMP SA \(conn-id [0-9]+\) with ${a//./\\.}:4500 is up: aes sha1 rsa-sig group 14 .*peer spoke$i\.example\.net, NAT-T$" "$ctl" ||
            fail "no phase 1 (rsa-sig, spoke$i.example.net, NAT-T) with spoke $i ($a) in $ctl"
        grep -qE "Crypto tunnel is UP\. Peer ${a//./\\.} crypto map vpn 65535 proxy 10\.10\.0\.0/16 <-> $(spoke_lan "$i" | sed 's/\./\\./g')\.0/24 " "$ctl" ||
            fail "no tunnel with spoke $i ($a, proxy 10.10.0.0/16 <-> $(spoke_lan "$i").0/24) in $ctl"
        grep -qE "CRYPTO-6-RRI: route to $(spoke_lan "$i" | sed 's/\./\\./g')\.0/24 via tunnel to ${a//./\\.} added" "$ctl" ||
            fail "no reverse route for spoke $i's LAN in $ctl"
        grep -qE "CHILD_SA c\{[0-9]+\} established" "$d/s$i/charon.log" || fail "charon $i did not establish its CHILD_SA"
    done

    # 2. the dataplane: one inbound and one outbound SA per spoke
    dp_sas_json "$d/dp.sock" "$d/sas.json"
    "$PY" - "$d/sas.json" "$NSPOKES" <<'EOF' || fail "the hub's SAs are not one pair per spoke (see $d/sas.json)"
import json, sys
sas = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
pairs = {}
for sa in sas:
    pairs.setdefault(sa["remote"], []).append(sa["direction"])
want = {"10.99.%d.%d" % ((10 + i) // 250, (10 + i) % 250) for i in range(1, n + 1)}
ok = len(sas) == 2 * n and set(pairs) == want and all(sorted(v) == ["Inbound", "Outbound"] for v in pairs.values())
print("%d SAs, %d peers" % (len(sas), len(pairs)))
sys.exit(0 if ok else 1)
EOF
    log "the hub's dataplane holds $((2 * NSPOKES)) SAs: one pair per spoke"

    # 3. traffic through each tunnel. hA first ARPs the hub (the dataplane learns hA).
    nsx hA ping -c 2 -i 0.3 -W 2 10.10.0.254 >/dev/null 2>&1 || true
    local lost=""
    for i in $(seq "$NSPOKES"); do
        nsx hA ping -c 3 -i 0.2 -W 3 "$(spoke_lan "$i").1" >"$d/s$i/ping-from-hA.log" 2>&1 || lost="$lost s$i"
    done
    [ -z "$lost" ] || fail "hA's pings lost toward:$lost"
    for i in $(seq "$NSPOKES"); do
        nsx "s$i" ping -c 2 -i 0.2 -W 3 10.10.0.1 >"$d/s$i/ping-to-hA.log" 2>&1 || lost="$lost s$i"
    done
    [ -z "$lost" ] || fail "pings to hA lost from:$lost"
    log "traffic: hA -> every spoke LAN 3/3, every spoke -> hA 2/2"
    sleep 1 # charon's counters
    dp_counters "$d/dp.sock" "$d/counters.json"
    "$PY" - "$d/counters.json" >"$d/hub-counts.txt" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
per = {}
for sa in c["sas"]:
    e = per.setdefault(sa["remote"], [0, 0])
    if sa["direction"] == "Outbound":
        e[0] += sa["encaps"]
    else:
        e[1] += sa["decaps"]
for r, (e, d) in per.items():
    print(r, e, d)
EOF
    local bad_counts="" e dc ci co
    for i in $(seq "$NSPOKES"); do
        read -r e dc < <(awk -v a="$(spoke_addr "$i")" '$1 == a { print $2, $3 }' "$d/hub-counts.txt")
        ci=$(charon_count "$d/s$i" in) co=$(charon_count "$d/s$i" out)
        [ "${e:-}/${dc:-}/$ci/$co" = "5/5/5/5" ] || bad_counts="$bad_counts s$i(hub encaps ${e:-?} decaps ${dc:-?}, charon in $ci out $co)"
    done
    [ -z "$bad_counts" ] || fail "counts are not 5 each way:$bad_counts"
    log "per spoke: the hub encapsulated 5 and decapsulated 5, charon counted 5 in and 5 out"

    # 4. the revoked spoke is refused by CRL, and nothing reaches the dataplane
    local r=$REVOKED
    rc=0
    sw "$d/s$r" --initiate --ike hub --child c --timeout 10 >"$d/s$r/initiate.log" 2>&1 || rc=$?
    [ "$rc" != 0 ] || fail "the spoke with the revoked certificate got its tunnel"
    wait_log 20 "$ctl" "IKMP_INVAL_CERT: Certificate received from $(spoke_addr "$r" | sed 's/\./\\./g').* certificate revoked \(serial "
    grep -q "IKMP_SA_UP.*spoke$r\.example\.net" "$ctl" && fail "the hub established phase 1 with the revoked spoke"
    dp_sas_json "$d/dp.sock" "$d/sas-after.json"
    n=$("$PY" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$d/sas-after.json")
    [ "$n" = $((2 * NSPOKES)) ] || fail "the dataplane holds $n SAs after the refusal, not $((2 * NSPOKES))"
    log "$(grep -o 'IKMP_INVAL_CERT.*' "$ctl" | head -1 | cut -c1-160)"

    # 5. what the operator sees of the PKI is what was checked: the sub CA's CRL with the
    #    revoked spoke's serial, and the hub's certificate with the key usage it carries
    local ctlbin=${IPSEC_CTL:-$TESTS_ROOT/target/release/ipsec-ctl} crls certs serial usage
    crls=$("$ctlbin" --socket "$d/ctl.sock" show crypto pki crls) || fail "show crypto pki crls failed: $crls"
    serial=$(openssl x509 -in "$PKI/spoke$r.pem" -noout -serial | cut -d= -f2 | sed 's/^0*//')
    grep -qiE "Serial Number: 0x0*$serial +Revocation Date" <<<"$crls" ||
        fail "show crypto pki crls does not list the revoked serial $serial: $crls"
    certs=$("$ctlbin" --socket "$d/ctl.sock" show crypto pki certificates) || fail "show crypto pki certificates failed"
    usage=$(openssl x509 -in "$PKI/hub.pem" -noout -ext keyUsage 2>/dev/null | tail -n +2)
    case $usage in
    *"Digital Signature"*"Key Encipherment"* | "") usage="General Purpose" ;;
    *"Digital Signature"*) usage=Signature ;;
    *) usage=Encryption ;;
    esac
    # our own certificate's block (the first line is "Certificate", the CAs' "CA Certificate")
    awk '/^Certificate$/ { on = 1 } on && /^$/ { exit } on' <<<"$certs" | grep -qE "Certificate Usage: $usage$" ||
        fail "the hub's certificate is not shown with Certificate Usage $usage: $certs"
    log "show crypto pki crls lists the revoked serial 0x$serial; our certificate: Key Usage $usage"
    log "PASS hub ($NSPOKES spokes all up in ${t_all} s; traffic through each; revoked spoke refused)"
}

make_pki
topology
# shellcheck disable=SC2086 # the case names
run_cases $CASES
