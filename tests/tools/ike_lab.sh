#!/bin/bash
# Helpers for the IKE end-to-end tests (65-hub-spokes.sh, 66-charon-nat.sh, 67-gw-pair.sh),
# sourced after tests/integration/lib.sh (they use its fail, log, nsx, start_bg, wait_for,
# wait_log and LOGDIR/WORK):
#
# - a throwaway PKI made with strongSwan's `pki`: root CA, subordinate CAs, end-entity
#   certificates with FQDN/IP subjectAltNames, CRLs (pki_root, pki_sub, pki_cert, pki_crl);
# - strongSwan's charon in one of our namespaces, with its own strongswan.conf, vici socket and
#   private /run (charon_conf, charon_start, sw);
# - our gateway (ipsec-dataplane + ipsec-control, one TOML) in a namespace (gw_run).
#
# All keys are test keys made at run time and kept in the work directory only.

CHARON=${CHARON:-/usr/lib/ipsec/charon}
CTL_BIN=${IPSEC_CONTROL:-$TESTS_ROOT/target/release/ipsec-control}

need_ike_lab() {
    need_cmd pki swanctl openssl
    [ -x "$CHARON" ] || fail "no $CHARON (strongswan-charon; run 'make deps')"
    [ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] ||
        fail "charon's kernel-libipsec plugin not found (libcharon-extra-plugins; run 'make deps')"
    [ -x "$CTL_BIN" ] || fail "ipsec-control not found at $CTL_BIN (run 'make build')"
    need_dataplane
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

# pki_sub NAME ISSUER DN: a subordinate CA issued by ISSUER.
pki_sub() {
    _pk --gen --type rsa --size 2048 --outform pem >"$PKI/$1.key" || fail "pki --gen ($1)"
    _pk --pub --in "$PKI/$1.key" --type rsa |
        _pk --issue --ca --lifetime 30 --cacert "$PKI/$2.pem" --cakey "$PKI/$2.key" \
            --dn "$3" --flag crlSign --outform pem >"$PKI/$1.pem" || fail "pki --issue --ca ($1)"
}

# pki_cert NAME ISSUER SERIAL DN SAN...: an end-entity key and certificate issued by ISSUER.
pki_cert() {
    local name=$1 ca=$2 serial=$3 dn=$4 s
    shift 4
    local san=()
    for s in "$@"; do san+=(--san "$s"); done
    _pk --gen --type rsa --size 2048 --outform pem >"$PKI/$name.key" || fail "pki --gen ($name)"
    _pk --pub --in "$PKI/$name.key" --type rsa |
        _pk --issue --lifetime 30 --cacert "$PKI/$ca.pem" --cakey "$PKI/$ca.key" \
            --serial "$serial" --dn "$dn" "${san[@]}" --flag serverAuth --flag clientAuth \
            --outform pem >"$PKI/$name.pem" || fail "pki --issue ($name)"
}

# pki_crl ISSUER OUT [CERT...]: ISSUER's CRL (DER) revoking the named certificates.
pki_crl() {
    local ca=$1 out=$2 c
    shift 2
    local revoked=()
    for c in "$@"; do revoked+=(--reason key-compromise --cert "$PKI/$c.pem"); done
    _pk --signcrl --cacert "$PKI/$ca.pem" --cakey "$PKI/$ca.key" --lifetime 7 "${revoked[@]}" \
        --outform der >"$out" || fail "pki --signcrl ($ca)"
}

# --- charon ---------------------------------------------------------------------------------
# charon_conf DIR [EXTRA_PLUGINS]: DIR/strongswan.conf for a charon whose vici socket is
# DIR/charon.vici and whose log is DIR/charon.log; CHARON_THREADS (default 12) worker threads
# instead of charon's 16. Not fewer than 9: with kernel-libipsec, kernel-netlink,
# socket-default and vici, 8 or fewer threads are all taken by the plugins' long-running jobs
# and charon never answers on vici (swanctl hangs). CHARON_RETRANSMIT_TRIES (default 5) and
# CHARON_RETRANSMIT_TIMEOUT (default 4 s, charon's own) tune its retransmissions.
charon_conf() {
    local d=$1
    mkdir -p "$d/run" "$d/swanctl"/{x509,x509ca,x509crl,private}
    rm -f "$d/charon.vici"
    cat >"$d/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 pkcs8 x509 constraints pubkey aes sha1 sha2 hmac kernel-libipsec kernel-netlink socket-default vici
  threads = ${CHARON_THREADS:-12}
  retransmit_tries = ${CHARON_RETRANSMIT_TRIES:-5}
  retransmit_timeout = ${CHARON_RETRANSMIT_TIMEOUT:-4}
  plugins { vici { socket = unix://$d/charon.vici } }
  filelog { log { path = $d/charon.log
                  time_format = %T
                  default = 1
                  ike = 2
                  chd = 2
                  cfg = 1
                  knl = 1
                  flush_line = yes } }
  syslog { daemon { default = -1 } }
}
swanctl { load = pem pkcs1 pkcs8 x509 pubkey openssl random }
EOF
}

# charon_start NAME NS DIR: charon in namespace NS (private /run, so that its pidfile does not
# collide with other charons), then `swanctl --load-all` of DIR/swanctl/swanctl.conf. Sets
# BG_PID.
charon_start() {
    local name=$1 n=$2 d=$3 pid
    start_bg "$name" "$n" sh -c "mount --bind '$d/run' /run && STRONGSWAN_CONF='$d/strongswan.conf' exec $CHARON"
    pid=$BG_PID
    wait_for 30 "$name's vici socket" test -S "$d/charon.vici"
    timeout 60 env STRONGSWAN_CONF="$d/strongswan.conf" swanctl --load-all \
        --file "$d/swanctl/swanctl.conf" --uri "unix://$d/charon.vici" >"$d/load.log" 2>&1 ||
        fail "$name: swanctl --load-all failed or hung (exit $?): $(tail -3 "$d/load.log")"
    BG_PID=$pid
}

# sw DIR ARGS...: swanctl against the charon of DIR.
sw() {
    local d=$1
    shift
    STRONGSWAN_CONF="$d/strongswan.conf" swanctl "$@" --uri "unix://$d/charon.vici"
}

# --- our gateway ----------------------------------------------------------------------------
# gw_run NAME NS TOML: ipsec-control --check, then ipsec-dataplane and ipsec-control in NS,
# both reading TOML; logs NAME-dataplane.log and NAME-control.log. The channel socket is the
# TOML's [dataplane].channel, passed as SOCK. Sets GW_DP_PID and GW_CTL_PID.
# RUST_LOG for control: CTL_RUST_LOG (default info).
gw_run() {
    local name=$1 n=$2 toml=$3 sock=$4
    local out=${LOGDIR:-$WORK}
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
