#!/bin/bash
# Helpers of the IKE end-to-end tests (tests/integration/60-67) and of scripts/demo.sh, sourced
# after tests/integration/lib.sh (they use its fail, log, ns, nsx, ns_add, veth, quiet_link,
# host_link, start_bg, stop_pid, wait_for, wait_log, wait_for_socket, dp_counters, in_case and
# LOGDIR/WORK):
#
# - topology: the hA - gw - cs triangle (ike_topology) and the pieces the other layouts are
#   built from (gw_links, lan_host, peer_link, wan_bridge);
# - a throwaway PKI made with strongSwan's `pki`: root CA, subordinate CAs, end-entity
#   certificates with FQDN/IP subjectAltNames, CRLs (pki_root, pki_sub, pki_cert, pki_crl);
# - our gateway: its TOML from KEY=VALUE settings (gw_toml), ipsec-dataplane + ipsec-control in
#   a namespace (gw_run);
# - strongSwan's charon: strongswan.conf and swanctl.conf from KEY=VALUE settings, run in a
#   namespace with its own /run and vici socket (charon_conf, charon_swanctl, charon_start,
#   charon_up, charon_initiate, sw);
# - traffic and counts: ping_until, tcp_transfer, dp_sums, dp_sas, dp_spis, charon_count,
#   counts_mark/counts_since, pcap_count;
# - run_cases: a script's cases, each in its own in_case.
#
# The triangle (ike_topology):
#
#   ns hA                 ns gw (ipsec-dataplane + ipsec-control)     ns cs (charon)
#   ha0 ---------------- dp-in [inside 10.10.1.254]                   10.10.2.1 on lo (its LAN)
#   10.10.1.1/24          dp-out [outside 10.99.0.1] ---------------- cs0 10.99.0.2/24
#
# The defaults of gw_toml and charon_swanctl are the two ends of that triangle: pre-shared key
# (identities: the addresses), aes128-sha1-modp2048 (`aes sha 14`), ESP aes128-sha1
# (`esp-aes esp-sha-hmac`), 10.10.1.0/24 <-> 10.10.2.0/24, charon with `encap = yes`
# (kernel-libipsec's ESP is always in UDP 4500; encap fakes NAT-D, so both sides float).
#
# All keys are test keys made at run time and kept in the work directory only.

CHARON=${CHARON:-/usr/lib/ipsec/charon}
CTL_BIN=${IPSEC_CONTROL:-$TESTS_ROOT/target/release/ipsec-control}

# gw_need: root, the tools for the PKI, ipsec-control, ipsec-dataplane and ipsec-dpctl.
gw_need() {
    need_root
    need_cmd ip ethtool ping pki openssl
    [ -x "$CTL_BIN" ] || fail "ipsec-control not found at $CTL_BIN (run 'make build')"
    need_dataplane
}

# ike_need: gw_need and charon with its kernel-libipsec plugin and swanctl.
ike_need() {
    gw_need
    need_cmd swanctl
    [ -x "$CHARON" ] || fail "no $CHARON (strongswan-charon; run 'make deps')"
    [ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] ||
        fail "charon's kernel-libipsec plugin not found (libcharon-extra-plugins; run 'make deps')"
}

# _kv MAP KEY=VALUE...: set entries of the caller's associative array MAP, whose keys are the
# settings it knows (with their defaults); an unknown key is an error.
_kv() {
    local -n _map=$1
    shift
    local a
    for a in "$@"; do
        [[ $a == *=* ]] || fail "expected KEY=VALUE, not '$a'"
        [[ -v "_map[${a%%=*}]" ]] || fail "unknown setting '${a%%=*}' (known: ${!_map[*]})"
        _map[${a%%=*}]=${a#*=}
    done
}

# --- topology ---------------------------------------------------------------------------------
# gw_links GW OUT_NS OUT_IF OUT_PEER_MAC [HOST HOST_IF HOST_MAC IN_MAC OUT_MAC]: a gateway of
# ours in namespace GW: dp-in (IN_MAC, default MAC_DP_IN) toward HOST_IF (HOST_MAC) in HOST
# (default hA, ha0, MAC_HA), dp-out (OUT_MAC, default MAC_DP_OUT) toward OUT_IF (OUT_PEER_MAC)
# in OUT_NS. dp-in and dp-out carry no kernel stack (the dataplane owns them); HOST's link has
# no offloads and MTU 1400 (lib.sh's host_link).
gw_links() {
    local g=$1 on=$2 oif=$3 omac=$4 h=${5:-hA} hif=${6:-ha0} hmac=${7:-$MAC_HA}
    local inmac=${8:-$MAC_DP_IN} outmac=${9:-$MAC_DP_OUT}
    veth "$h" "$hif" "$hmac" "$g" dp-in "$inmac"
    veth "$g" dp-out "$outmac" "$on" "$oif" "$omac"
    quiet_link "$g" dp-in
    quiet_link "$g" dp-out
    host_link "$h" "$hif"
}

# lan_host NS IF CIDR NET VIA: an end host's address, and its route to NET via its gateway.
lan_host() {
    ip -n "$(ns "$1")" addr add "$3" dev "$2"
    ip -n "$(ns "$1")" route add "$4" via "$5"
}

# peer_link NS IF: a kernel-owned link facing our dataplane: no offloads (af_packet would see
# partial checksums and GSO frames) and no IPv6.
peer_link() {
    nsx "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    nsx "$1" sysctl -qw "net.ipv6.conf.$2.disable_ipv6=1"
}

# wan_bridge NS IF...: one L2 segment, bridge br0 in NS (no STP delays, no netfilter on
# bridged frames, no IPv6), with IF... as its ports.
wan_bridge() {
    local n=$1 i
    shift
    ip -n "$(ns "$n")" link add br0 type bridge forward_delay 0 stp_state 0 mcast_snooping 0 ||
        fail "cannot create the bridge"
    nsx "$n" sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null || true
    nsx "$n" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip -n "$(ns "$n")" link set br0 up
    for i in "$@"; do ip -n "$(ns "$n")" link set "$i" master br0; done
}

# ike_topology: the triangle above.
ike_topology() {
    local n
    for n in hA gw cs; do ns_add "$n"; done
    gw_links gw cs cs0 02:00:00:00:99:02
    lan_host hA ha0 10.10.1.1/24 10.10.2.0/24 10.10.1.254
    peer_link cs cs0
    ip -n "$(ns cs)" addr add 10.99.0.2/24 dev cs0
    # charon's LAN: libipsec routes the remote LAN with a local address of local_ts as source
    ip -n "$(ns cs)" addr add 10.10.2.1/24 dev lo
    log "topology up (prefix $PFX, work $WORK)"
}

# --- PKI ------------------------------------------------------------------------------------
# Files are $PKI/NAME.{key,pem}; PKI defaults to $WORK/pki.
PKI=${PKI:-$WORK/pki}
_pk() { pki "$@" 2>>"$PKI/pki.err"; }

# pki_root NAME DN: a self-signed root CA.
pki_root() {
    mkdir -p "$PKI"
    _pk --gen --type rsa --size 2048 --outform pem >"$PKI/$1.key" || fail "pki --gen ($1)"
    _pk --self --ca --lifetime 30 --in "$PKI/$1.key" --type rsa --dn "$2" --outform pem \
        >"$PKI/$1.pem" || fail "pki --self ($1)"
}

# pki_sub NAME ISSUER DN [SERIAL]: a subordinate CA issued by ISSUER (it may sign CRLs).
pki_sub() {
    local sopt=()
    [ -z "${4:-}" ] || sopt=(--serial "$4")
    _pk --gen --type rsa --size 2048 --outform pem >"$PKI/$1.key" || fail "pki --gen ($1)"
    _pk --pub --in "$PKI/$1.key" --type rsa |
        _pk --issue --ca --lifetime 30 --cacert "$PKI/$2.pem" --cakey "$PKI/$2.key" "${sopt[@]}" \
            --dn "$3" --flag crlSign --outform pem >"$PKI/$1.pem" || fail "pki --issue --ca ($1)"
}

# pki_cert NAME ISSUER SERIAL DN [PKI_VALIDITY_OPTION... --] SAN...: an end-entity key and
# certificate issued by ISSUER, valid 30 days unless options such as --not-before/--not-after
# (ended by --) say otherwise. SERIAL is hex (pki's --serial).
pki_cert() {
    local name=$1 ca=$2 serial=$3 dn=$4 s
    shift 4
    local opt=() san=()
    if [[ ${1:-} == --* ]]; then
        while [ $# -gt 0 ] && [ "$1" != -- ]; do opt+=("$1"); shift; done
        [ $# -gt 0 ] && shift
    fi
    [ ${#opt[@]} -gt 0 ] || opt=(--lifetime 30)
    for s in "$@"; do san+=(--san "$s"); done
    _pk --gen --type rsa --size 2048 --outform pem >"$PKI/$name.key" || fail "pki --gen ($name)"
    _pk --pub --in "$PKI/$name.key" --type rsa |
        _pk --issue "${opt[@]}" --cacert "$PKI/$ca.pem" --cakey "$PKI/$ca.key" \
            --serial "$serial" --dn "$dn" "${san[@]}" --flag serverAuth --flag clientAuth \
            --outform pem >"$PKI/$name.pem" || fail "pki --issue ($name)"
}

# pki_crl ISSUER OUT [CERT...]: ISSUER's CRL (DER, valid 7 days) revoking the named
# certificates (key compromise); checks that it lists each one's serial.
pki_crl() {
    local ca=$1 out=$2 c serial
    shift 2
    local revoked=()
    for c in "$@"; do revoked+=(--reason key-compromise --cert "$PKI/$c.pem"); done
    _pk --signcrl --cacert "$PKI/$ca.pem" --cakey "$PKI/$ca.key" --lifetime 7 "${revoked[@]}" \
        --outform der >"$out" || fail "pki --signcrl ($ca)"
    openssl crl -inform der -in "$out" -noout -text >"$out.txt" 2>&1 || true
    for c in "$@"; do
        serial=$(openssl x509 -in "$PKI/$c.pem" -noout -serial) || fail "openssl x509 -serial ($c)"
        grep -q "Serial Number: ${serial#serial=}\$" "$out.txt" ||
            fail "$ca's CRL does not list $c's serial ${serial#serial=} ($out.txt)"
    done
}

# --- our gateway ----------------------------------------------------------------------------
# gw_toml OUT KEY=VALUE...: our gateway's TOML (both processes read it). Settings (default):
#   hostname (gw), domain (example.net), prefix: the EAL file prefix ($PFX-HOSTNAME)
#   channel (DIR/dp.sock), ctl (DIR/ctl.sock): the sockets; DIR is OUT's directory
#   inside (10.10.1.254/24), outside (10.99.0.1/24), route ("" or "PREFIX NEXT_HOP")
#   ts (ts): the transform set's name; esp ("esp-aes esp-sha-hmac"): its words
#   acl (101), src (10.10.1.0/24), dst (10.10.2.0/24): the crypto ACL's one permit entry
#   auth (pre-share | rsa-sig); p1 ("aes sha 14"): encryption, hash and group of the one
#     isakmp policy (aes128/aes192/aes256 are written "aes N"); p1_lifetime (86400)
#   identity (address with pre-share, hostname with rsa-sig)
#   keepalive ("" or "SECONDS RETRIES": DPD), nat_keepalive ("" or SECONDS),
#   dh_precompute ("" or N: DH key pairs precomputed per group and use)
#   rx_mode ("" or polling | adaptive: [dataplane] rx_mode, how the worker waits when idle)
#   psk (gw-charon-psk): with pre-share, the key for the peer's address
#   tp (LAB), cas ("root sub"), cert (gw), crl (sub.crl): with rsa-sig, the trustpoint: its CA
#     certificates, our certificate and key, its CRL file (revocation_check crl), from $PKI
#   peer (10.99.0.2), lifetime (3600 s, 4608000 KB), pfs ("" or e.g. group19): the static
#     crypto map entry vpn 10
#   dynamic ("" or a name): `crypto map vpn 65535 ipsec-isakmp dynamic NAME` instead, NAME's
#     entry 10 with the transform set, ACL, lifetime and pfs; reverse_route ("" or true) there
gw_toml() {
    local out=$1 dir
    shift
    dir=$(dirname "$out")
    local -A o=([hostname]=gw [domain]=example.net [prefix]="" [channel]="$dir/dp.sock"
        [ctl]="$dir/ctl.sock" [inside]=10.10.1.254/24 [outside]=10.99.0.1/24 [route]=""
        [ts]=ts [esp]="esp-aes esp-sha-hmac" [acl]=101 [src]=10.10.1.0/24 [dst]=10.10.2.0/24
        [auth]=pre-share [p1]="aes sha 14" [p1_lifetime]=86400 [identity]="" [keepalive]=""
        [nat_keepalive]="" [dh_precompute]="" [psk]=gw-charon-psk [tp]=LAB [cas]="root sub" [cert]=gw [crl]=sub.crl
        [peer]=10.99.0.2 [lifetime]=3600 [pfs]="" [dynamic]="" [reverse_route]="" [metrics]="" [rx_mode]="")
    _kv o "$@"
    local enc hash group ident=${o[identity]} w esp="" cas="" a b
    read -r enc hash group <<<"${o[p1]}"
    [[ $enc =~ ^aes([0-9]+)$ ]] && enc="aes ${BASH_REMATCH[1]}"
    if [ -z "$ident" ]; then
        ident=address # ID_IPV4_ADDR with a pre-shared key (IOS's default)
        [ "${o[auth]}" != rsa-sig ] || ident=hostname
    fi
    for w in ${o[esp]}; do esp+="${esp:+, }\"$w\""; done
    for w in ${o[cas]}; do cas+="${cas:+, }\"$PKI/$w.pem\""; done
    local lifetime="lifetime = { seconds = ${o[lifetime]}, kilobytes = 4608000 }"
    {
        cat <<EOF
hostname = "${o[hostname]}"
domain = "${o[domain]}"
[dataplane]
eal = ["--no-huge", "--no-pci", "-m", "512", "--file-prefix", "${o[prefix]:-$PFX-${o[hostname]}}"]
lcores = { main = 0, workers = [1] }
channel = "${o[channel]}"
${o[rx_mode]:+rx_mode = \"${o[rx_mode]}\"}
[[interface]]
name = "inside"
role = "inside"
device = "net_af_packet0,iface=dp-in,framecnt=4096,blocksz=4096,framesz=2048"
address = ["${o[inside]}"]
[[interface]]
name = "outside"
role = "outside"
device = "net_af_packet1,iface=dp-out,framecnt=4096,blocksz=4096,framesz=2048"
address = ["${o[outside]}"]
crypto_map = "vpn"
EOF
        if [ -n "${o[route]}" ]; then
            read -r a b <<<"${o[route]}"
            printf '[[route]]\nprefix = "%s"\nnext_hop = "%s"\n' "$a" "$b"
        fi
        cat <<EOF
[transform_set.${o[ts]}]
esp = [$esp]
[access_list]
${o[acl]} = [ { action = "permit", protocol = "ip", source = "${o[src]}", destination = "${o[dst]}" } ]
[isakmp]
identity = "$ident"
EOF
        if [ -n "${o[keepalive]}" ]; then
            read -r a b <<<"${o[keepalive]}"
            echo "keepalive = { seconds = $a, retries = $b }"
        fi
        [ -z "${o[nat_keepalive]}" ] || echo "nat_keepalive = ${o[nat_keepalive]}"
        [ -z "${o[dh_precompute]}" ] || echo "dh_precompute = ${o[dh_precompute]}"
        cat <<EOF
[[isakmp.policy]]
priority = 10
encryption = "$enc"
hash = "$hash"
authentication = "${o[auth]}"
group = $group
lifetime = ${o[p1_lifetime]}
EOF
        if [ "${o[auth]}" = rsa-sig ]; then
            cat <<EOF
[trustpoint.${o[tp]}]
ca_certificates = [$cas]
certificate = "$PKI/${o[cert]}.pem"
private_key = "$PKI/${o[cert]}.key"
revocation_check = "crl"
crl_file = "$PKI/${o[crl]}"
EOF
        else
            printf '[[isakmp.key]]\nkey = "%s"\naddress = "%s"\n' "${o[psk]}" "${o[peer]}"
        fi
        printf '[ctl]\nsocket = "%s"\n' "${o[ctl]}"
        [ -z "${o[metrics]}" ] || printf 'metrics = "%s"\n' "${o[metrics]}"
        if [ -n "${o[dynamic]}" ]; then
            cat <<EOF
[[crypto_map.vpn]]
seq = 65535
type = "ipsec-isakmp"
dynamic = "${o[dynamic]}"
[[dynamic_map.${o[dynamic]}]]
seq = 10
transform_set = ["${o[ts]}"]
match_address = "${o[acl]}"
$lifetime
EOF
            [ -z "${o[reverse_route]}" ] || echo "reverse_route = ${o[reverse_route]}"
        else
            cat <<EOF
[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "${o[peer]}"
transform_set = "${o[ts]}"
match_address = "${o[acl]}"
$lifetime
EOF
        fi
        [ -z "${o[pfs]}" ] || echo "pfs = \"${o[pfs]}\""
    } >"$out"
}

# gw_run NAME NS TOML: ipsec-control --check and ipsec-dataplane --check, then ipsec-dataplane
# and ipsec-control in NS, both reading TOML (whose [dataplane].channel they meet on); logs
# NAME-dataplane.log and NAME-control.log. Sets GW_DP_PID and GW_CTL_PID. RUST_LOG for
# control: CTL_RUST_LOG (default info).
gw_run() {
    local name=$1 n=$2 toml=$3 out=${LOGDIR:-$WORK} sock
    sock=$(sed -n 's/^channel = "\(.*\)"$/\1/p' "$toml")
    [ -n "$sock" ] || fail "no [dataplane] channel in $toml"
    "$CTL_BIN" --check "$toml" >"$out/$name-ctl-check.log" 2>&1 ||
        fail "ipsec-control --check $toml: $(cat "$out/$name-ctl-check.log")"
    "$DP_BIN" --check "$toml" >"$out/$name-dp-check.log" 2>&1 ||
        fail "ipsec-dataplane --check $toml: $(cat "$out/$name-dp-check.log")"
    start_bg "$name-dataplane" "$n" "$DP_BIN" --config "$toml"
    GW_DP_PID=$BG_PID
    wait_for_socket 60 "$sock" "$GW_DP_PID"
    start_bg "$name-control" "$n" env RUST_LOG="${CTL_RUST_LOG:-info}" "$CTL_BIN" --config "$toml"
    GW_CTL_PID=$BG_PID
    wait_log 30 "$out/$name-control.log" "connected to the dataplane" "$GW_CTL_PID"
    log "$name: ipsec-dataplane (pid $GW_DP_PID) and ipsec-control (pid $GW_CTL_PID) running in $n"
}

# --- charon ---------------------------------------------------------------------------------
# charon_conf DIR KEY=VALUE...: DIR/strongswan.conf for a charon whose vici socket is
# DIR/charon.vici and whose log is DIR/charon.log. Settings (default): tries (5),
# timeout (4 s), base (1.8): retransmit_tries/_timeout/_base (charon's own timeout and base);
# threads (12) worker threads instead of charon's 16. Not fewer than 9: with kernel-libipsec,
# kernel-netlink, socket-default and vici, 8 or fewer threads are all taken by the plugins'
# long-running jobs and charon never answers on vici (swanctl hangs).
charon_conf() {
    local d=$1
    shift
    local -A o=([tries]=5 [timeout]=4 [base]=1.8 [threads]=12)
    _kv o "$@"
    [ "${o[threads]}" -ge 9 ] || fail "charon needs at least 9 threads (vici hangs with ${o[threads]})"
    mkdir -p "$d/run" "$d/swanctl"/{x509,x509ca,x509crl,private}
    rm -f "$d/charon.vici"
    cat >"$d/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 pkcs8 x509 constraints pubkey aes des sha1 sha2 md5 hmac gcm kernel-libipsec kernel-netlink socket-default vici
  threads = ${o[threads]}
  retransmit_tries = ${o[tries]}
  retransmit_timeout = ${o[timeout]}
  retransmit_base = ${o[base]}
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
}

# What 60-62 give charon: quick retransmissions (2, 3, 4.5 s: it gives up within 10 s).
# shellcheck disable=SC2034 # used by the scripts
CHARON_QUICK=(tries=3 timeout=2 base=1.5)

# charon_swanctl DIR KEY=VALUE...: DIR/swanctl/swanctl.conf, one IKEv1 connection with one
# child, keyingtries 1, no fragmentation, started by nobody (swanctl --initiate or an
# acquire). Settings (default):
#   conn (gw), child (c): their names
#   local (10.99.0.2), remote (10.99.0.1): the addresses; local_id, remote_id: the identities
#     (default, with psk: the addresses; with pubkey they must be given)
#   auth (psk | pubkey), psk (gw-charon-psk)
#   cert: with pubkey, charon's certificate and key ($PKI/CERT.{pem,key}); cas ("root sub"):
#     the CA certificates it trusts; crl ("" or a CRL file in $PKI)
#   proposals (aes128-sha1-modp2048), esp (aes128-sha1): IKE and ESP proposals
#   encap (yes): fake NAT-D, so that both sides float to 4500
#   local_ts (10.10.2.0/24), remote_ts (10.10.1.0/24)
#   send_cert, dpd_delay (connection); rekey_time, life_time, rand_time (child): "" = charon's
#   more_children (""): further children, "NAME=LOCAL_TS ...", each like the first otherwise
charon_swanctl() {
    local d=$1
    shift
    local -A o=([conn]=gw [child]=c [local]=10.99.0.2 [remote]=10.99.0.1 [local_id]=""
        [remote_id]="" [auth]=psk [psk]=gw-charon-psk [cert]="" [cas]="root sub" [crl]=""
        [proposals]=aes128-sha1-modp2048 [esp]=aes128-sha1 [encap]=yes [local_ts]=10.10.2.0/24
        [remote_ts]=10.10.1.0/24 [send_cert]="" [dpd_delay]="" [rekey_time]="" [life_time]=""
        [rand_time]="" [more_children]="")
    _kv o "$@"
    local S=$d/swanctl lid=${o[local_id]} rid=${o[remote_id]} certs="" secrets="" k c
    if [ "${o[auth]}" = psk ]; then
        lid=${lid:-${o[local]}} rid=${rid:-${o[remote]}}
        secrets="secrets { ike-gw { id-a = $lid
                   id-b = $rid
                   secret = \"${o[psk]}\" } }"
    else
        if [ -z "${o[cert]}" ] || [ -z "$lid" ] || [ -z "$rid" ]; then
            fail "charon_swanctl: auth=pubkey needs cert, local_id and remote_id"
        fi
        cp "$PKI/${o[cert]}.pem" "$S/x509/peer.pem"
        cp "$PKI/${o[cert]}.key" "$S/private/peer.key"
        for c in ${o[cas]}; do cp "$PKI/$c.pem" "$S/x509ca/"; done
        [ -z "${o[crl]}" ] || cp "$PKI/${o[crl]}" "$S/x509crl/"
        certs="
            certs = peer.pem"
    fi
    local conn_extra="" child_extra=""
    for k in send_cert dpd_delay; do
        [ -z "${o[$k]}" ] || conn_extra+="
    $k = ${o[$k]}"
    done
    for k in rekey_time life_time rand_time; do
        [ -z "${o[$k]}" ] || child_extra+="
                   $k = ${o[$k]}"
    done
    local more=""
    for c in ${o[more_children]}; do
        more+="
               ${c%%=*} { local_ts = ${c#*=}
                   remote_ts = ${o[remote_ts]}
                   esp_proposals = ${o[esp]}$child_extra
                   start_action = none }"
    done
    cat >"$S/swanctl.conf" <<EOF
connections {
  ${o[conn]} {
    version = 1
    local_addrs = ${o[local]}
    remote_addrs = ${o[remote]}
    proposals = ${o[proposals]}
    encap = ${o[encap]}
    keyingtries = 1
    send_certreq = yes
    fragmentation = no$conn_extra
    local { auth = ${o[auth]}$certs
            id = $lid }
    remote { auth = ${o[auth]}
             id = $rid }
    children { ${o[child]} { local_ts = ${o[local_ts]}
                   remote_ts = ${o[remote_ts]}
                   esp_proposals = ${o[esp]}$child_extra
                   start_action = none }$more }
  }
}
$secrets
EOF
}

# charon_start NAME NS DIR: charon in namespace NS (private /run, so that its pidfile does not
# collide with other charons'), then `swanctl --load-all` of DIR/swanctl/swanctl.conf, which
# must have loaded charon's certificate and key when it has them. Log NAME.log (charon's own:
# DIR/charon.log). Sets BG_PID and CHARON_PID.
charon_start() {
    local name=$1 n=$2 d=$3 S=$3/swanctl
    start_bg "$name" "$n" sh -c "mount --bind '$d/run' /run && STRONGSWAN_CONF='$d/strongswan.conf' exec $CHARON"
    CHARON_PID=$BG_PID
    wait_for 30 "$name's vici socket" test -S "$d/charon.vici"
    timeout 60 env STRONGSWAN_CONF="$d/strongswan.conf" swanctl --load-all \
        --file "$S/swanctl.conf" --uri "unix://$d/charon.vici" >"$d/load.log" 2>&1 ||
        fail "$name: swanctl --load-all failed or hung (exit $?): $(tail -3 "$d/load.log")"
    if [ -e "$S/x509/peer.pem" ]; then
        grep -q "loaded certificate from '$S/x509/peer.pem'" "$d/load.log" ||
            fail "$name: swanctl did not load charon's certificate: $(cat "$d/load.log")"
        grep -q "loaded RSA key from '$S/private/peer.key'" "$d/load.log" ||
            fail "$name: swanctl did not load charon's key: $(cat "$d/load.log")"
    fi
    BG_PID=$CHARON_PID
}

# charon_up NAME NS DIR KEY=VALUE...: charon_conf (tries, timeout, base, threads),
# charon_swanctl (every other setting) and charon_start, all in DIR.
charon_up() {
    local name=$1 n=$2 d=$3 a
    shift 3
    local conf=() sw=()
    for a in "$@"; do
        case ${a%%=*} in
        tries | timeout | base | threads) conf+=("$a") ;;
        *) sw+=("$a") ;;
        esac
    done
    charon_conf "$d" "${conf[@]}"
    charon_swanctl "$d" "${sw[@]}"
    charon_start "$name" "$n" "$d"
}

# sw DIR ARGS...: swanctl against the charon of DIR.
sw() {
    local d=$1
    shift
    STRONGSWAN_CONF="$d/strongswan.conf" swanctl "$@" --uri "unix://$d/charon.vici"
}

# charon_initiate DIR [TIMEOUT]: the charon of DIR initiates (connection gw, child c; swanctl's
# --timeout TIMEOUT, default 30 s) and our gateway (gw_run gw, logs in DIR) reports the tunnel
# up within 10 s.
charon_initiate() {
    local d=$1
    sw "$d" --initiate --ike gw --child c --timeout "${2:-30}" >"$d/initiate.log" 2>&1 ||
        fail "charon could not bring the tunnel up: $(tail -5 "$d/initiate.log")"
    wait_log 10 "$d/gw-control.log" "Crypto tunnel is UP" "$GW_CTL_PID"
}

# --- traffic and counts ---------------------------------------------------------------------
# ping_until SECONDS NS ADDR [MESSAGE]: NS pings ADDR until one answer comes back; fails with
# MESSAGE after SECONDS.
ping_until() {
    local deadline=$((SECONDS + $1))
    until nsx "$2" ping -c 1 -W 1 "$3" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "${4:-no ping answer through the tunnel within $1 s}"
    done
}

# tcp_transfer FROM_NS TO_NS TO_ADDR PORT BYTES [TIMEOUT]: a TCP transfer through the tunnel
# (tests/tools/tcp_xfer.py, TIMEOUT s, default 60), with the SHA-256 of the bytes sent and of
# the bytes received compared, and BYTES sent.
tcp_transfer() {
    local from=$1 to=$2 addr=$3 port=$4 bytes=$5 t=${6:-60}
    start_bg "recv-$port" "$to" "$PY" "$TOOLS/tcp_xfer.py" recv --listen "$addr" --port "$port" --timeout "$t"
    local rpid=$BG_PID
    wait_log 10 "$LOGDIR/recv-$port.log" '^listening' "$rpid"
    local sent got
    sent=$(nsx "$from" timeout $((t + 30)) "$PY" "$TOOLS/tcp_xfer.py" send --to "$addr" --port "$port" \
        --bytes "$bytes" --timeout "$t" 2>&1) || fail "TCP transfer $from -> $to ($addr) failed: $sent"
    wait "$rpid" 2>/dev/null || true
    got=$(grep '^bytes=' "$LOGDIR/recv-$port.log" || true)
    [ -n "$got" ] || fail "TCP receiver in $to reported nothing: $(tail -2 "$LOGDIR/recv-$port.log")"
    [ "$sent" = "$got" ] || fail "TCP transfer $from -> $to corrupted: sent '$sent', received '$got'"
    [ "$sent" = "bytes=$bytes ${sent#* }" ] || fail "TCP transfer $from -> $to sent '$sent', not $bytes bytes"
    log "TCP $from -> $to: $got"
}

# dp_sums SOCK FILE: sets DP_SUMS=(ENCAPS DECAPS), summed over the SAs of the dataplane of SOCK
# (ipsec-dpctl counters --json, kept in FILE).
dp_sums() {
    dp_counters "$1" "$2"
    read -r -a DP_SUMS < <("$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))
print(sum(s.get("encaps", 0) for s in c["sas"]), sum(s.get("decaps", 0) for s in c["sas"]))' "$2")
    [ "${#DP_SUMS[@]}" = 2 ] || fail "cannot sum the SA counters of $2"
}

# dp_sas_json SOCK FILE: ipsec-dpctl sas --json into FILE.
dp_sas_json() {
    "$DPCTL_BIN" --socket "$1" sas --json >"$2" 2>"${LOGDIR:-$WORK}/dpctl.log" ||
        fail "ipsec-dpctl sas --json failed: $(tail -3 "${LOGDIR:-$WORK}/dpctl.log")"
}

# dp_sas DIR: prints "INBOUND OUTBOUND", the SAs in the dataplane of DIR/dp.sock (the dump is
# kept in DIR/sas.json).
dp_sas() {
    dp_sas_json "$1/dp.sock" "$1/sas.json"
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

# dp_spis DIR: the SPIs (hex, lower case, no 0x) of the SAs in the dataplane of DIR/dp.sock,
# one a line.
dp_spis() {
    dp_sas_json "$1/dp.sock" "$1/sas.json"
    "$PY" - "$1/sas.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for s in (j["sas"] if isinstance(j, dict) else j):
    v = s["spi"]
    print("%08x" % (int(v, 16) if isinstance(v, str) else v))
EOF
}

# charon_count DIR in|out: the packets the CHILD_SAs of DIR's charon received or sent.
charon_count() {
    sw "$1" --list-sas --raw 2>/dev/null | grep -o "packets-$2=[0-9]*" | awk -F= '{ s += $2 } END { print s + 0 }'
}

# counts_mark DIR / counts_since DIR [N]: both ends of one tunnel counted, our dataplane (of
# DIR/dp.sock: encaps and decaps over its SAs) and the charon of DIR (packets in and out).
# counts_since sets COUNTS=(ENCAPS DECAPS IN OUT) and DELTA, what each moved by since
# counts_mark, logs DELTA and, given N, fails unless each moved by exactly N.
_counts() {
    dp_sums "$1/dp.sock" "$1/counters.json"
    COUNTS=("${DP_SUMS[@]}" "$(charon_count "$1" in)" "$(charon_count "$1" out)")
}
counts_mark() {
    _counts "$1"
    _COUNTS0=("${COUNTS[@]}")
}
counts_since() {
    local i
    _counts "$1"
    DELTA=()
    for i in 0 1 2 3; do DELTA+=($((COUNTS[i] - _COUNTS0[i]))); done
    local what="ours: encaps +${DELTA[0]} decaps +${DELTA[1]}; charon: in +${DELTA[2]} out +${DELTA[3]}"
    log "$what"
    [ -z "${2:-}" ] || [ "${DELTA[*]}" = "$2 $2 $2 $2" ] || fail "counts are not $2 each way on both sides ($what)"
}

# pcap_count FILE FILTER: the frames in a capture that match a tcpdump filter.
pcap_count() {
    tcpdump -r "$1" -nn "$2" 2>/dev/null | wc -l
}

# --- cases ----------------------------------------------------------------------------------
# run_cases [-v] NAME...: each case_NAME in its own in_case (lib.sh), then `fail` naming the
# cases that failed, or log PASS. With -v, a "PASS NAME" or "FAIL NAME" line after each case.
run_cases() {
    local each=0 c failed=""
    [ "${1:-}" != -v ] || { each=1 && shift; }
    for c in "$@"; do declare -F "case_$c" >/dev/null || fail "unknown case '$c'"; done
    for c in "$@"; do
        if in_case "$c" "case_$c"; then
            [ "$each" = 0 ] || log "PASS $c"
        else
            failed="$failed $c"
            [ "$each" = 0 ] || log "FAIL $c"
        fi
    done
    [ -z "$failed" ] || fail "cases failed:$failed"
    log "PASS"
}
