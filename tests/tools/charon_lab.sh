#!/bin/bash
# Shared pieces of the gateway-against-charon tests (61-charon-proposals.sh,
# 62-charon-rekey-dpd.sh): the three-namespace topology of 60-charon-tunnel.sh, a test PKI with
# a root CA, a subordinate CA and a CRL, the gateway's TOML and charon's swanctl.conf built
# from a few variables, and the assertions both scripts make. Source it after
# tests/integration/lib.sh (it uses ns_add, veth, start_bg, wait_log, wait_for, dp_start, fail).
#
#   ns hA                 ns gw (ipsec-dataplane + ipsec-control)     ns cs (charon)
#   ha0 ---------------- dp-in [inside 10.10.1.254]                   10.10.2.1 on lo (its LAN)
#   10.10.1.1/24          dp-out [outside 10.99.0.1] ---------------- cs0 10.99.0.2/24
#
# charon runs with kernel-libipsec (userspace ESP, always UDP 4500) and `encap = yes` (it fakes
# NAT-D, so both sides float to 4500).

CTL_BIN=${IPSEC_CONTROL:-$TESTS_ROOT/target/release/ipsec-control}
CHARON=/usr/lib/ipsec/charon

cl_need() {
    need_root
    need_cmd ip ethtool ping swanctl pki openssl
    [ -x "$CHARON" ] || fail "no $CHARON (strongswan-charon; run 'make deps')"
    [ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] ||
        fail "charon's kernel-libipsec plugin not found (libcharon-extra-plugins)"
    [ -x "$CTL_BIN" ] || fail "ipsec-control not found at $CTL_BIN (run 'make build')"
    need_dataplane
}

cl_topology() {
    local n
    for n in hA gw cs; do ns_add "$n"; done
    veth hA ha0 "$MAC_HA" gw dp-in "$MAC_DP_IN"
    veth gw dp-out "$MAC_DP_OUT" cs cs0 02:00:00:00:99:02
    quiet_link gw dp-in
    quiet_link gw dp-out
    host_link hA ha0
    ip -n "$(ns hA)" addr add 10.10.1.1/24 dev ha0
    ip -n "$(ns hA)" route add 10.10.2.0/24 via 10.10.1.254
    nsx cs ethtool -K cs0 tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    ip -n "$(ns cs)" addr add 10.99.0.2/24 dev cs0
    # charon's LAN: libipsec routes the remote LAN with a local address of local_ts as source
    ip -n "$(ns cs)" addr add 10.10.2.1/24 dev lo
    log "topology up (prefix $PFX, work $WORK)"
}

# cl_pki DIR: throwaway test PKI in DIR (strongSwan's pki):
#   root.pem       Interop Root CA (self-signed)
#   sub.pem        Interop Sub CA, issued by the root (CA:TRUE); issues every end certificate
#   gw.pem         ours: CN/dNSName gw.example.net, iPAddress 10.99.0.1, serial 0x10
#   charon.pem     charon.example.net, 10.99.0.2, serial 0x20
#   charon-revoked.pem   same names, serial 0x21, listed in sub.crl (key compromise)
#   charon-expired.pem   same names, serial 0x22, valid 2020-01-01 .. 2021-01-01 only
#   rogue-ca.pem, charon-rogue.pem   a CA we do not trust and a charon.example.net cert from it
#   sub.crl        the Sub CA's CRL (DER, valid 7 days), revoking serial 0x21
cl_pki() {
    local P=$1
    mkdir -p "$P"
    pk() { pki "$@" 2>>"$P/pki.err"; }
    pk --gen --type rsa --size 2048 --outform pem >"$P/root.key" || fail "pki --gen (root)"
    pk --self --ca --lifetime 30 --in "$P/root.key" --type rsa \
        --dn "C=CH, O=Interop, CN=Interop Root CA" --outform pem >"$P/root.pem" || fail "pki --self (root)"
    pk --gen --type rsa --size 2048 --outform pem >"$P/sub.key" || fail "pki --gen (sub)"
    pk --pub --in "$P/sub.key" --type rsa |
        pk --issue --ca --lifetime 30 --cacert "$P/root.pem" --cakey "$P/root.key" --serial 2 \
            --dn "C=CH, O=Interop, CN=Interop Sub CA" --flag crlSign --outform pem >"$P/sub.pem" ||
        fail "pki --issue (sub CA)"
    pk --gen --type rsa --size 2048 --outform pem >"$P/rogue-ca.key" || fail "pki --gen (rogue)"
    pk --self --ca --lifetime 30 --in "$P/rogue-ca.key" --type rsa --dn "C=CH, O=Rogue, CN=Rogue CA" \
        --outform pem >"$P/rogue-ca.pem" || fail "pki --self (rogue CA)"
    # issue NAME CA SERIAL DN [pki validity options] -- SAN...
    issue() {
        local name=$1 ca=$2 serial=$3 dn=$4
        shift 4
        local opt=() san=()
        while [ $# -gt 0 ] && [ "$1" != -- ]; do opt+=("$1"); shift; done
        [ $# -gt 0 ] && shift
        for s in "$@"; do san+=(--san "$s"); done
        [ ${#opt[@]} -gt 0 ] || opt=(--lifetime 30)
        pk --gen --type rsa --size 2048 --outform pem >"$P/$name.key" || fail "pki --gen ($name)"
        pk --pub --in "$P/$name.key" --type rsa |
            pk --issue "${opt[@]}" --cacert "$P/$ca.pem" --cakey "$P/$ca.key" --serial "$serial" \
                --dn "$dn" "${san[@]}" --flag serverAuth --flag clientAuth --outform pem \
                >"$P/$name.pem" || fail "pki --issue ($name)"
    }
    issue gw sub 10 "C=CH, O=Interop, CN=gw.example.net" -- gw.example.net 10.99.0.1
    issue charon sub 20 "C=CH, O=Interop, CN=charon.example.net" -- charon.example.net 10.99.0.2
    issue charon-revoked sub 21 "C=CH, O=Interop, CN=charon.example.net" -- charon.example.net 10.99.0.2
    issue charon-expired sub 22 "C=CH, O=Interop, CN=charon.example.net" \
        --not-before "01.01.20 00:00:00" --not-after "01.01.21 00:00:00" -- charon.example.net 10.99.0.2
    issue charon-rogue rogue-ca 30 "C=CH, O=Interop, CN=charon.example.net" -- charon.example.net 10.99.0.2
    pk --signcrl --cacert "$P/sub.pem" --cakey "$P/sub.key" --lifetime 7 \
        --reason key-compromise --cert "$P/charon-revoked.pem" --outform der >"$P/sub.crl" ||
        fail "pki --signcrl"
    # the PKI is what the cases assume it is
    openssl verify -CAfile "$P/root.pem" -untrusted "$P/sub.pem" "$P/gw.pem" "$P/charon.pem" \
        >"$P/verify.log" 2>&1 || fail "openssl verify of the test chain: $(cat "$P/verify.log")"
    openssl crl -inform der -in "$P/sub.crl" -noout -text >"$P/sub.crl.txt" 2>&1 || true
    grep -q "Serial Number: 21" "$P/sub.crl.txt" || fail "the Sub CA's CRL does not list serial 21"
    openssl x509 -in "$P/charon-expired.pem" -noout -enddate | grep -q "2021 GMT" ||
        fail "charon-expired.pem is not expired: $(openssl x509 -in "$P/charon-expired.pem" -noout -dates)"
    openssl x509 -in "$P/sub.pem" -noout -issuer | grep -q "Interop Root CA" || fail "sub.pem not issued by the root"
    openssl x509 -in "$P/charon.pem" -noout -issuer | grep -q "Interop Sub CA" || fail "charon.pem not issued by the Sub CA"
    log "PKI: root CA -> Sub CA -> gw, charon (+ revoked, expired); rogue CA; Sub CA CRL revoking 0x21"
}

# cl_gw_config DIR: the gateway's TOML (both processes read it), from:
#   GW_AUTH      pre-share (key GW_PSK, identity address) | rsa-sig (trustpoint from the
#                PKI in GW_PKI, identity hostname: gw.example.net)
#   GW_P1        "ENCRYPTION HASH GROUP" of the one isakmp policy, e.g. "aes sha 14"
#   GW_ESP       the transform set's esp words, TOML array body, e.g. '"esp-gcm", "128"'
#   GW_PFS       "" or e.g. group19
#   GW_LIFETIME  SA lifetime in seconds (IOS range 120-86400)
#   GW_DPD       "" or "SECONDS RETRIES" ([isakmp] keepalive)
cl_gw_config() {
    local d=$1 enc hash group ident=hostname
    [ "${GW_AUTH:-rsa-sig}" = rsa-sig ] || ident=address # ID_IPV4_ADDR with a pre-shared key
    read -r enc hash group <<<"${GW_P1:-aes sha 14}"
    [ "$enc" = "aes256" ] && enc="aes 256"
    {
        cat <<EOF
hostname = "gw"
domain = "example.net"
[dataplane]
eal = ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "$PFX-gw"]
lcores = { main = 0, workers = [1] }
channel = "$d/dp.sock"
[[interface]]
name = "inside"
role = "inside"
device = "net_af_packet0,iface=dp-in,framecnt=4096,blocksz=4096,framesz=2048"
address = ["10.10.1.254/24"]
[[interface]]
name = "outside"
role = "outside"
device = "net_af_packet1,iface=dp-out,framecnt=4096,blocksz=4096,framesz=2048"
address = ["10.99.0.1/24"]
crypto_map = "vpn"
[transform_set.ts]
esp = [${GW_ESP:-\"esp-aes\", \"esp-sha-hmac\"}]
[access_list]
101 = [ { action = "permit", protocol = "ip", source = "10.10.1.0/24", destination = "10.10.2.0/24" } ]
[isakmp]
identity = "$ident"
EOF
        if [ -n "${GW_DPD:-}" ]; then
            local s r
            read -r s r <<<"$GW_DPD"
            echo "keepalive = { seconds = $s, retries = $r }"
        fi
        cat <<EOF
[[isakmp.policy]]
priority = 10
encryption = "$enc"
hash = "$hash"
authentication = "${GW_AUTH:-rsa-sig}"
group = $group
lifetime = 86400
EOF
        if [ "${GW_AUTH:-rsa-sig}" = pre-share ]; then
            printf '[[isakmp.key]]\nkey = "%s"\naddress = "10.99.0.2"\n' "${GW_PSK:-gw-charon-psk}"
        else
            cat <<EOF
[trustpoint.interop]
ca_certificates = ["$GW_PKI/root.pem", "$GW_PKI/sub.pem"]
certificate = "$GW_PKI/gw.pem"
private_key = "$GW_PKI/gw.key"
revocation_check = "crl"
crl_file = "$GW_PKI/sub.crl"
EOF
        fi
        cat <<EOF
[ctl]
socket = "$d/ctl.sock"
[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "10.99.0.2"
transform_set = "ts"
match_address = "101"
lifetime = { seconds = ${GW_LIFETIME:-3600}, kilobytes = 4608000 }
EOF
        [ -z "${GW_PFS:-}" ] || echo "pfs = \"$GW_PFS\""
    } >"$d/gw.toml"
}

# cl_charon_start DIR: charon in ns cs, configured from:
#   CH_AUTH       psk | pubkey (certificate CH_CERT from GW_PKI, identity CH_ID)
#   CH_PROPOSALS  IKE proposals (default aes128-sha1-modp2048)
#   CH_ESP        ESP proposals (default aes128-sha1)
#   CH_CHILD      extra lines in the child section (rekey_time, life_time, ...)
#   CH_CONN       extra lines in the connection section (dpd_delay, ...)
#   CH_TRIES      retransmit_tries (default 3)
cl_charon_start() {
    local d=$1 S=$1/swanctl
    mkdir -p "$d/run" "$S"/{x509,x509ca,private,x509crl}
    cat >"$d/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 pkcs8 x509 constraints pubkey aes des sha1 sha2 md5 hmac gcm kernel-libipsec kernel-netlink socket-default vici
  retransmit_tries = ${CH_TRIES:-3}
  retransmit_timeout = 2
  retransmit_base = 1.5
  plugins { vici { socket = unix://$d/charon.vici } }
  filelog { log { path = $d/charon.log
                  time_format = %T
                  default = 1
                  ike = 2
                  chd = 2
                  cfg = 2
                  knl = 1
                  flush_line = yes } }
  syslog { daemon { default = -1 } }
}
swanctl { load = pem pkcs1 pkcs8 x509 pubkey openssl random }
EOF
    local local_auth remote_auth secrets=""
    if [ "${CH_AUTH:-pubkey}" = psk ]; then
        local_auth="auth = psk
            id = 10.99.0.2"
        remote_auth="auth = psk
             id = 10.99.0.1"
        secrets="secrets { ike-gw { id-a = 10.99.0.2
                   id-b = 10.99.0.1
                   secret = \"${GW_PSK:-gw-charon-psk}\" } }"
    else
        cp "$GW_PKI/${CH_CERT:-charon}.pem" "$S/x509/charon.pem"
        cp "$GW_PKI/${CH_CERT:-charon}.key" "$S/private/charon.key"
        cp "$GW_PKI/root.pem" "$GW_PKI/sub.pem" "$S/x509ca/" # to check our certificate
        local_auth="auth = pubkey
            certs = charon.pem
            id = ${CH_ID:-fqdn:charon.example.net}"
        remote_auth="auth = pubkey
             id = fqdn:gw.example.net"
    fi
    cat >"$S/swanctl.conf" <<EOF
connections {
  gw {
    version = 1
    local_addrs = 10.99.0.2
    remote_addrs = 10.99.0.1
    proposals = ${CH_PROPOSALS:-aes128-sha1-modp2048}
    encap = yes
    keyingtries = 1
    send_certreq = yes
    fragmentation = no
    ${CH_CONN:-}
    local { $local_auth }
    remote { $remote_auth }
    children { c { local_ts = 10.10.2.0/24
                   remote_ts = 10.10.1.0/24
                   esp_proposals = ${CH_ESP:-aes128-sha1}
                   ${CH_CHILD:-}
                   start_action = none } }
  }
}
$secrets
EOF
    start_bg charon cs sh -c "mount --bind '$d/run' /run && STRONGSWAN_CONF='$d/strongswan.conf' exec $CHARON"
    CHARON_PID=$BG_PID
    wait_for 10 "charon's vici socket" test -S "$d/charon.vici"
    sw "$d" --load-all --file "$S/swanctl.conf" >"$d/load.log" 2>&1 || fail "swanctl --load-all: $(tail -3 "$d/load.log")"
    if [ "${CH_AUTH:-pubkey}" = pubkey ]; then
        grep -q "loaded certificate from '$S/x509/charon.pem'" "$d/load.log" ||
            fail "swanctl did not load charon's certificate: $(cat "$d/load.log")"
        grep -q "loaded RSA key from '$S/private/charon.key'" "$d/load.log" ||
            fail "swanctl did not load charon's key: $(cat "$d/load.log")"
    fi
}

sw() {
    local d=$1
    shift
    STRONGSWAN_CONF="$d/strongswan.conf" swanctl "$@" --uri "unix://$d/charon.vici"
}

# cl_gw_start DIR: --check, then ipsec-dataplane and ipsec-control (RUST_LOG, default info).
cl_gw_start() {
    local d=$1
    "$CTL_BIN" --check "$d/gw.toml" >"$d/ctl-check.log" 2>&1 || fail "ipsec-control --check: $(cat "$d/ctl-check.log")"
    dp_start "$d/gw.toml" "$d/dp.sock"
    start_bg control gw env RUST_LOG="${CTL_LOG:-info}" "$CTL_BIN" --config "$d/gw.toml"
    CTL_PID=$BG_PID
    wait_log 10 "$d/control.log" "connected to the dataplane" "$CTL_PID"
}

# cl_ping_until SECONDS: hA pings 10.10.2.1 until one answer comes back.
cl_ping_until() {
    local deadline=$((SECONDS + $1))
    until nsx hA ping -c 1 -W 1 10.10.2.1 >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "no ping answer through the tunnel within $1 s"
    done
}

# cl_dp_sas DIR: prints "INBOUND OUTBOUND" SA counts from ipsec-dpctl sas --json (also kept in
# DIR/sas.json).
cl_dp_sas() {
    "$DPCTL_BIN" --socket "$1/dp.sock" sas --json >"$1/sas.json" 2>"$1/dpctl.log" ||
        fail "ipsec-dpctl sas --json failed: $(tail -3 "$1/dpctl.log")"
    "$PY" - "$1/sas.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
sas = j["sas"] if isinstance(j, dict) else j
d = [str(s.get("direction")).lower() for s in sas]
i, o = sum(x.startswith("in") for x in d), sum(x.startswith("out") for x in d)
if i + o != len(d):
    sys.exit("SAs without a known direction: %r" % d)
print(i, o)
EOF
}

# cl_dp_spis DIR: the SPIs (hex, lower case, no 0x) of the SAs in the dataplane, one a line.
cl_dp_spis() {
    "$DPCTL_BIN" --socket "$1/dp.sock" sas --json >"$1/sas.json" 2>"$1/dpctl.log" ||
        fail "ipsec-dpctl sas --json failed: $(tail -3 "$1/dpctl.log")"
    "$PY" - "$1/sas.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for s in (j["sas"] if isinstance(j, dict) else j):
    v = s["spi"]
    print("%08x" % (int(v, 16) if isinstance(v, str) else v))
EOF
}

# cl_charon_children DIR: prints the number of CHILD_SAs charon holds (installed).
cl_charon_children() {
    sw "$1" --list-sas --raw 2>/dev/null | grep -o "state=INSTALLED" | wc -l
}

# cl_tcp_transfer FROM_NS TO_NS TO_ADDR PORT BYTES: a TCP transfer through the tunnel, with the
# SHA-256 of the bytes sent and of the bytes received compared.
cl_tcp_transfer() {
    local from=$1 to=$2 addr=$3 port=$4 bytes=$5
    start_bg "recv-$port" "$to" "$PY" "$TOOLS/tcp_xfer.py" recv --listen "$addr" --port "$port" --timeout 60
    local rpid=$BG_PID
    wait_log 10 "$LOGDIR/recv-$port.log" '^listening' "$rpid"
    local sent got
    sent=$(nsx "$from" timeout 90 "$PY" "$TOOLS/tcp_xfer.py" send --to "$addr" --port "$port" \
        --bytes "$bytes" --timeout 60 2>&1) || fail "TCP transfer $from -> $to ($addr) failed: $sent"
    wait "$rpid" 2>/dev/null || true
    got=$(grep '^bytes=' "$LOGDIR/recv-$port.log" || true)
    [ -n "$got" ] || fail "TCP receiver in $to reported nothing: $(tail -2 "$LOGDIR/recv-$port.log")"
    [ "$sent" = "$got" ] || fail "TCP transfer $from -> $to corrupted: sent '$sent', received '$got'"
    [ "$sent" = "bytes=$bytes ${sent#* }" ] || fail "TCP transfer $from -> $to sent '$sent', not $bytes bytes"
    log "TCP $from -> $to: $got"
}
