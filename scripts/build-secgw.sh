#!/bin/bash
# Builds DPDK's ipsec-secgw example (Debian package dpdk-doc) into ./build/ipsec-secgw, for use as
# a third-party ESP peer in the interop tests and the demo. The sources are copied, never
# committed (./build is gitignored).
#
# One line is patched: the example insists on RX checksum offload, which the virtual PMDs we
# run it on (net_af_packet, net_pcap) do not offer, so port setup would fail.
#
# Idempotent: does nothing when the binary is newer than every source file.
# Prints the path of the binary on stdout; everything else goes to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=${SECGW_SRC:-/usr/share/dpdk/examples/ipsec-secgw}
DEST=${SECGW_BUILD_DIR:-$ROOT/build/ipsec-secgw}
BIN=$DEST/build/ipsec-secgw

die() { echo "build-secgw: $*" >&2; exit 1; }

[ -f "$SRC/ipsec-secgw.c" ] || die "no sources at $SRC (install the Debian package dpdk-doc)"
pkg-config --exists libdpdk || die "pkg-config cannot find libdpdk (install libdpdk-dev)"
command -v make >/dev/null || die "make not found (install build-essential)"

if [ -x "$BIN" ] && [ -z "$(find "$SRC" -type f -newer "$BIN" -print -quit)" ] \
   && [ "$BIN" -nt "${BASH_SOURCE[0]}" ]; then
    echo "$BIN"
    exit 0
fi

echo "build-secgw: building $BIN from $SRC" >&2
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -r "$SRC" "$DEST"

# The patch: RX offloads 0 instead of RTE_ETH_RX_OFFLOAD_CHECKSUM. Check it applied exactly once,
# so a changed upstream file fails here instead of at port start-up inside a test.
PATTERN='^\t\t.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,'
n=$(grep -cP "$PATTERN" "$DEST/ipsec-secgw.c" || true)
[ "$n" = 1 ] || die "expected one RX checksum offload line in ipsec-secgw.c, found $n"
sed -i 's/^\t\t.offloads = RTE_ETH_RX_OFFLOAD_CHECKSUM,/\t\t.offloads = 0,/' "$DEST/ipsec-secgw.c"
grep -qP '^\t\t.offloads = 0,' "$DEST/ipsec-secgw.c" || die "patch did not apply"

make -C "$DEST" -j"$(nproc)" >"$DEST/make.log" 2>&1 || { tail -30 "$DEST/make.log" >&2; die "make failed (log: $DEST/make.log)"; }
[ -x "$BIN" ] || die "make succeeded but $BIN is missing"
touch "$BIN"
echo "$BIN"
