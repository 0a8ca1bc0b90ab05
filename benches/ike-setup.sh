#!/bin/bash
# shellcheck source-path=SCRIPTDIR disable=SC2031 # lib.sh's in_case sets LOGDIR for each run
# IKE setup rate (issue 5): ipsec-ikeload brings up N tunnels (IKEv1 Main Mode with RSA-2048
# certificates, aes sha group 14; Quick Mode esp-aes esp-sha-hmac with PFS group 14) from N
# addresses against one responder, first ours (ipsec-dataplane + ipsec-control, a hub with a
# dynamic crypto map), then strongSwan's charon (IKEv1, kernel-libipsec, the same
# certificates and proposals), and reports tunnels/s, the times to the first and last phase 2
# SA, and the time until every tunnel carried traffic, for each N in SIZES.
#
#   ns ld-ours (ipsec-ikeload)     ns hub (ours)                         ns hA
#   ld0 10.99.1.1 ... +N-1 ------- dp-out [10.99.0.1/16]  dp-in [10.10.0.254/16] ---- ha0 10.10.0.1
#                                                                             (sink: UDP 5501)
#   ns ld-cs (ipsec-ikeload)       ns cs (charon)
#   ld0 10.99.1.1 ... +N-1 ------- cs0 10.99.0.1/16, 10.10.0.1/16 on lo (its LAN; sink: UDP 5501)
#
# The traffic check is real on both: after its Quick Mode each spoke sends ESP probes (UDP
# from its LAN address to 10.10.0.1:5501, encrypted on its outbound SA) until the sink in the
# responder's LAN has one; a probe arrives only if the responder decrypted it on that
# spoke's SA, checked it against the SA's selectors and routed it. Ours gets plain ESP; charon
# (libipsec: ESP in UDP only, `encap = yes` fakes NAT-D so both sides float to 4500) gets ESP
# in UDP 4500, and its TUN device delivers the probe to the sink's socket on its own lo.
#
# Settings (environment): SIZES ("100 1000"), WINDOW (concurrency window of the spokes, 200),
# THREADS (ipsec-ikeload's workers; default one per core), CHARON_THREADS (32), RESPONDERS
# ("ours charon"), IKELOAD_PKI (the key/certificate cache, /var/tmp/ipsec-ikeload-pki: the
# first run with 1000 spokes makes 1000 RSA-2048 keys, a few minutes on this machine),
# SHARED_KEY=1 (new spoke certificates share one key instead), OUT (benches/results/
# ike-setup.json), DH_WARM (1: see below), HUB_DH_PRECOMPUTE (our hub's [isakmp]
# dh_precompute; 0 turns its pool off), HUB_RX_MODE (our hub's [dataplane] rx_mode, adaptive
# by default: see below). Binaries: IPSEC_CONTROL, IPSEC_DATAPLANE,
# IPSEC_DPCTL, IPSEC_IKELOAD, IPSEC_CTL (default target/release/). Needs root, `make build` (or cargo build --release -p control
# -p dataplane) and strongSwan (make deps).
#
# Work made ahead of need: ipsec-ikeload makes all of its spokes' Diffie-Hellman key pairs
# and the set-up of their RSA keys (a first signature: Montgomery constants, blinding)
# before its timed start (it shares the CPU with the responder under test and is not what
# is measured), for charon's runs as for ours; it says so in its output. Our hub precomputes its own at idle
# priority ([isakmp] dh_precompute, 1024 per group and use by default: 2048 of group 14 here);
# with DH_WARM=1 (default) the load starts once they are all made, as on a hub that was idle
# before the spokes came; DH_WARM=0 starts at once (a hub restarting into the burst, its pool
# filling only when a CPU is idle). charon has no such pool.
#
# Our hub's dataplane worker runs in rx_mode adaptive by default: it polls while traffic
# comes and sleeps when its queues are empty, so both of the machine's cores are there for
# the IKE exchanges, as they are for charon (whose ESP is in its own process). With
# HUB_RX_MODE=polling the worker keeps one of the two cores to itself whatever the load.
#
# The machine is shared: the load average before and after each run is in the JSON (with the
# command, time and machine of the whole: benches/lib.sh's bench_record), and the figures to
# compare are ours and charon's from the same invocation (the ratio).
set -euo pipefail
TEST_NAME=ike-setup
source "$(dirname "${BASH_SOURCE[0]}")/../tests/integration/lib.sh"
# shellcheck source=../tests/tools/ike_lab.sh
source "$TOOLS/ike_lab.sh"
# shellcheck source=lib.sh
source "$TESTS_ROOT/benches/lib.sh"
ike_need
IKELOAD=${IPSEC_IKELOAD:-$TESTS_ROOT/target/release/ipsec-ikeload}
[ -x "$IKELOAD" ] || fail "ipsec-ikeload not found at $IKELOAD (run 'make build')"
CTL=${IPSEC_CTL:-$TESTS_ROOT/target/release/ipsec-ctl}
[ -x "$CTL" ] || fail "ipsec-ctl not found at $CTL (run 'make build')"
DH_WARM=${DH_WARM:-1}
SIZES=${SIZES:-"100 1000"}
WINDOW=${WINDOW:-64}
THREADS=${THREADS:-}
CHARON_THREADS=${CHARON_THREADS:-32}
RESPONDERS=${RESPONDERS:-"ours charon"}
HUB_RX_MODE=${HUB_RX_MODE:-adaptive}
PKI=${IKELOAD_PKI:-/var/tmp/ipsec-ikeload-pki}
OUT=${OUT:-$TESTS_ROOT/benches/results/ike-setup.json}
HUB=10.99.0.1
FIRST=10.99.1.1
SINK=10.10.0.1
MAXN=0
for n in $SIZES; do
    if ! [[ $n =~ ^[0-9]+$ ]] || [ "$n" -lt 1 ] || [ "$n" -gt 20000 ]; then
        fail "SIZES: $n is not 1..20000"
    fi
    [ "$n" -le "$MAXN" ] || MAXN=$n
done

# --- PKI: the CA, hub.example.net (ours and charon use the same), spoke1..spokeMAXN; an empty
# CRL of the CA for our hub's revocation_check = "crl"
log "PKI in $PKI (cached; missing keys are made now)"
"$IKELOAD" pki --dir "$PKI" --spokes "$MAXN" --hub-address "$HUB" ${SHARED_KEY:+--shared-key} >&2 ||
    fail "ipsec-ikeload pki failed"
pki --signcrl --cacert "$PKI/ca.pem" --cakey "$PKI/ca.key" --lifetime 7 --outform der \
    >"$PKI/ca.crl" 2>"$WORK/crl.err" || fail "pki --signcrl: $(cat "$WORK/crl.err")"

# --- ours ------------------------------------------------------------------------------------
ours_topology() {
    ns_add hA
    ns_add hub
    ns_add ld-ours
    veth hA ha0 "$MAC_HA" hub dp-in "$MAC_DP_IN"
    veth hub dp-out "$MAC_DP_OUT" ld-ours ld0 02:00:00:00:77:01
    quiet_link hub dp-in
    quiet_link hub dp-out
    host_link hA ha0
    lan_host hA ha0 "$SINK/16" 10.128.0.0/9 10.10.0.254
    peer_link ld-ours ld0
    add_spoke_addresses ld-ours
}

charon_topology() {
    ns_add cs
    ns_add ld-cs
    veth cs cs0 02:00:00:00:99:02 ld-cs ld0 02:00:00:00:77:03
    peer_link cs cs0
    peer_link ld-cs ld0
    ip -n "$(ns cs)" addr add "$HUB/16" dev cs0
    ip -n "$(ns cs)" addr add "$SINK/16" dev lo # its LAN; the sink listens here
    add_spoke_addresses ld-cs
}

# add_spoke_addresses NS: MAXN consecutive addresses from FIRST on NS's ld0 (one ip -batch).
add_spoke_addresses() {
    "$PY" - "$FIRST" "$MAXN" <<'EOF' >"$WORK/addrs-$1.batch"
import ipaddress, sys
a = ipaddress.IPv4Address(sys.argv[1])
for i in range(int(sys.argv[2])):
    print("addr add %s/16 dev ld0" % (a + i))
EOF
    ip -n "$(ns "$1")" -batch "$WORK/addrs-$1.batch" || fail "cannot add the spokes' addresses in $1"
}

# load NS LABEL N SINK_NS: ipsec-ikeload from NS against HUB; report in $LOGDIR/report.json.
load() {
    local n=$1 label=$2 count=$3 sink_ns=$4
    local t=()
    [ -z "$THREADS" ] || t=(--threads "$THREADS")
    nsx "$n" "$IKELOAD" run --pki "$PKI" --responder "$HUB" --first-address "$FIRST" \
        --spokes "$count" --window "$WINDOW" "${t[@]}" --sink-netns "$(ns "$sink_ns")" \
        --sink "$SINK" --label "$label" --timeout 180 --json "$LOGDIR/report.json" \
        >"$LOGDIR/ikeload.log" 2>&1 || fail "ipsec-ikeload against $label failed: $(tail -5 "$LOGDIR/ikeload.log")"
    cat "$LOGDIR/ikeload.log" >&2
    cp "$LOGDIR/report.json" "$WORK/report-$label-$count.json"
}

# dh_ready DIR: waits until the hub's precomputed Diffie-Hellman key pairs are all made
# (`show crypto engine accelerator statistics`: every group's "ready: N of N").
dh_ready() {
    local d=$1 t0=$SECONDS out
    while :; do
        out=$("$CTL" --socket "$d/ctl.sock" show crypto engine accelerator statistics 2>&1 || true)
        if awk '/ready: [0-9]+ of [0-9]+/ { n++; if ($2 != $4) short++ }
                END { exit !(n > 0 && short == 0) }' <<<"$out"; then
            break
        fi
        [ $((SECONDS - t0)) -lt 120 ] || fail "the hub's DH key pairs were not all made in 120 s: $out"
        sleep 0.2
    done
    log "ours: DH key pairs all precomputed $((SECONDS - t0)) s after the hub connected to its dataplane: $(grep -E '^DH group|ready:' <<<"$out" | xargs)"
}

run_ours() {
    local count=$1 d=$LOGDIR
    # `crypto map vpn 65535 ipsec-isakmp dynamic DYN`: the spokes' LANs (10.128.0.0/9 in /24s)
    # to ours, PFS group 14, rsa-sig with CRL checking, identity hostname
    gw_toml "$d/hub.toml" hostname=hub inside=10.10.0.254/16 outside="$HUB/16" acl=150 \
        src=10.10.0.0/16 dst=10.128.0.0/9 auth=rsa-sig tp=LOAD cas=ca cert=hub crl=ca.crl \
        dynamic=DYN reverse_route=true pfs=group14 dh_precompute="${HUB_DH_PRECOMPUTE:-}" \
        rx_mode="$HUB_RX_MODE"
    gw_run hub hub "$d/hub.toml"
    [ "$DH_WARM" = 0 ] || [ "${HUB_DH_PRECOMPUTE:-}" = 0 ] || dh_ready "$d"
    # the dataplane learns hA (the sink) before the first probe needs it
    nsx hA ping -c 2 -i 0.3 -W 2 10.10.0.254 >/dev/null 2>&1 || true
    load ld-ours ipsec-control "$count" hA
    local up
    up=$(grep -c "Crypto tunnel is UP" "$d/hub-control.log" || true)
    log "ours, $count spokes: the hub logged $up tunnels up"
    "$CTL" --socket "$d/ctl.sock" show crypto engine accelerator statistics >"$d/accelerator.txt" 2>&1 || true
    log "ours, $count spokes: the hub's DH key pairs: $(grep -A2 '^DH group' "$d/accelerator.txt" | xargs)"
}

# --- charon ----------------------------------------------------------------------------------
# charon_hub DIR: strongswan.conf (CHARON_THREADS workers, a hash table sized for thousands
# of IKE SAs, logging of errors only: the log of 1000 exchanges at charon's test level would
# cost more than the exchanges) and swanctl.conf: one IKEv1 responder connection for any
# spoke whose certificate the CA issued, proxies 10.10.0.0/16 <-> within 10.128.0.0/9,
# aes128-sha1-modp2048 for both phases (PFS), encap = yes.
charon_hub() {
    local d=$1
    mkdir -p "$d/run" "$d/swanctl"/{x509,x509ca,x509crl,private}
    rm -f "$d/charon.vici"
    cat >"$d/strongswan.conf" <<EOF
charon {
  load = random nonce openssl pem pkcs1 pkcs8 x509 constraints pubkey aes sha1 sha2 hmac kernel-libipsec kernel-netlink socket-default vici
  threads = $CHARON_THREADS
  ikesa_table_size = 4096
  ikesa_table_segments = 16
  plugins { vici { socket = unix://$d/charon.vici } }
  filelog { log { path = $d/charon.log
                  time_format = %T
                  default = 0
                  flush_line = yes } }
  syslog { daemon { default = -1 } }
}
swanctl { load = pem pkcs1 pkcs8 x509 pubkey openssl random }
EOF
    cp "$PKI/hub.pem" "$d/swanctl/x509/peer.pem"
    cp "$PKI/hub.key" "$d/swanctl/private/peer.key"
    cp "$PKI/ca.pem" "$d/swanctl/x509ca/"
    cat >"$d/swanctl/swanctl.conf" <<EOF
connections {
  hub {
    version = 1
    local_addrs = $HUB
    remote_addrs = %any
    proposals = aes128-sha1-modp2048
    encap = yes
    send_certreq = yes
    send_cert = always
    fragmentation = no
    local { auth = pubkey
            certs = peer.pem
            id = fqdn:hub.example.net }
    remote { auth = pubkey
             id = %any }
    children { c { local_ts = 10.10.0.0/16
                   remote_ts = 10.128.0.0/9
                   esp_proposals = aes128-sha1-modp2048
                   start_action = none } }
  }
}
EOF
}

run_charon() {
    local count=$1 d=$LOGDIR
    charon_hub "$d"
    charon_start charon cs "$d"
    load ld-cs charon "$count" cs
    local up
    up=$(sw "$d" --list-sas 2>/dev/null | grep -c "INSTALLED, TUNNEL" || true)
    log "charon, $count spokes: swanctl --list-sas shows $up CHILD_SAs installed"
}

# --- the runs --------------------------------------------------------------------------------
# Each responder's namespaces exist only during its own runs, so that neither shares the
# kernel's address and socket hash tables (global across namespaces) with the other's spoke
# addresses.
for r in $RESPONDERS; do
    case $r in
    ours | charon) ;;
    *) fail "RESPONDERS: unknown '$r' (ours, charon)" ;;
    esac
done
topology_down() { # NAME...: deletes these namespaces of ours
    local x
    for x; do ip netns del "$(ns "$x")" 2>/dev/null || true; done
}
log "prefix $PFX, work $WORK; sizes $SIZES, window $WINDOW"
bench_begin ike-setup "SIZES=\"$SIZES\" WINDOW=$WINDOW ${THREADS:+THREADS=$THREADS }CHARON_THREADS=$CHARON_THREADS RESPONDERS=\"$RESPONDERS\" HUB_RX_MODE=$HUB_RX_MODE ${SHARED_KEY:+SHARED_KEY=$SHARED_KEY }benches/ike-setup.sh"
for count in $SIZES; do
    for r in $RESPONDERS; do
        "${r}_topology"
        in_case "$r-$count" "run_$r" "$count" || fail "run $r with $count spokes failed"
        case $r in
        ours) topology_down hA hub ld-ours ;;
        charon) topology_down cs ld-cs ;;
        esac
    done
done

# --- the table and the JSON ------------------------------------------------------------------
mkdir -p "$(dirname "$OUT")"
HUB_RX_MODE=$HUB_RX_MODE "$PY" - "$WORK" "$OUT" "$SIZES" "$WINDOW" "$DH_WARM" <<'EOF'
import glob, json, os, sys
work, out, sizes, window = sys.argv[1], sys.argv[2], sys.argv[3].split(), int(sys.argv[4])
dh_warm = sys.argv[5] != "0"
runs = {}
for f in glob.glob(os.path.join(work, "report-*.json")):
    r = json.load(open(f))
    runs[(r["responder_label"], r["spokes"])] = r
def fmt(v, spec="%.2f"):
    return "-" if v is None else spec % v
print()
print("| spokes | responder | tunnels/s | first phase 2 (s) | last phase 2 (s) | all carrying traffic (s) | failures | load avg before |")
print("|---|---|---|---|---|---|---|---|")
rows = []
for n in map(int, sizes):
    ours, cs = runs.get(("ipsec-control", n)), runs.get(("charon", n))
    for r in (ours, cs):
        if r is None:
            continue
        print("| %d | %s | %s | %s | %s | %s | %d | %s |" % (
            n, r["responder_label"], fmt(r["tunnels_per_s"], "%.1f"), fmt(r["first_phase2_s"]),
            fmt(r["last_phase2_s"]), fmt(r["all_carrying_traffic_s"]),
            sum(r["failures"].values()), r["load_before"]))
    ratio = None
    if ours and cs and ours["tunnels_per_s"] and cs["tunnels_per_s"]:
        ratio = ours["tunnels_per_s"] / cs["tunnels_per_s"]
        print("| %d | **ours / charon** | **%.2f x** | | | | | |" % (n, ratio))
    rows.append({"spokes": n, "ours": ours, "charon": cs, "ratio_tunnels_per_s": ratio})
json.dump({
    "bench": "ike-setup",
    "window": window,
    "load": "IKEv1 Main Mode rsa-sig (RSA-2048), aes sha1 group 14; Quick Mode esp-aes esp-sha-hmac, PFS group 14",
    "generator_dh": "precomputed before the timed start",
    "hub_dh": "none precomputed (dh_precompute = 0)" if os.environ.get("HUB_DH_PRECOMPUTE") == "0" else "all precomputed before the load" if dh_warm else "precomputed at idle priority from the hub's start",
    "hub_rx_mode": os.environ.get("HUB_RX_MODE", "adaptive"),
    "runs": rows,
}, open(out, "w"), indent=2)
EOF
bench_record "$OUT"
echo "written: $OUT"
log "PASS"
