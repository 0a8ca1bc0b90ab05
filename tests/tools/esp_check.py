#!/usr/bin/python3
"""Check every ESP packet in a capture, field by field, against the SAs of a key file.

usage: esp_check.py --keys keys.json [--direction out|in|all] [--count N | --min-count N]
                    [--tshark] [--first-seq N] PCAP

With scapy (decoding and the algorithms) for each ESP packet (IP protocol 50, or UDP 4500
after RFC 3948 demultiplexing; NAT keepalives and IKE on 4500 are skipped):
  - the SPI belongs to one of the checked SAs (an unknown SPI is an error);
  - the outer addresses are the SA's tunnel endpoints (tunnel mode), UDP encapsulation is
    present exactly when the SA has it, with its ports;
  - sequence numbers are strictly increasing per SA (ESN: the high half is tracked);
  - the IV has the transform's size, is never repeated; for CBC it is not all zero, not the
    previous packet's last ciphertext block (predictable IV), not a counter and does not
    share half its bytes with the previous IV;
  - the ICV verifies (the packet decrypts), the ciphertext is block aligned and the ESP
    payload 4-byte aligned;
  - the padding bytes are 1, 2, 3, ... (RFC 4303 2.4);
  - the next header is 4/41 in tunnel mode and the transport protocol in transport mode;
  - the inner packet parses, its length matches, and its addresses are inside the SA's
    selectors.
With --tshark also: tshark, given the keys in a temporary WIRESHARK_CONFIG_DIR (never on its
command line), must report esp.icv_good for every packet of the checked SAs.
Exit status 0 when everything holds, 1 with the reasons otherwise.
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from esplab import TRANSFORMS, EspOpenError, in_prefix, load_keys, open_esp  # noqa: E402

from scapy.all import PcapReader  # noqa: E402
from scapy.layers.inet import IP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.ipsec import ESP  # noqa: E402

CBC = ("AES-CBC", "3DES", "DES")
MAX_REASONS = 20
ALLOW_REPEATED_IV = False


def esp_of(pkt):
    """(outer IP layer, udp layer or None, raw ESP bytes) or None when not ESP."""
    ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
    if ip is None:
        return None
    proto = ip.proto if ip.version == 4 else ip.nh
    if proto == 50:
        return ip, None, bytes(ip.payload)
    if proto == 17 and UDP in ip:
        udp = ip[UDP]
        if 4500 not in (udp.sport, udp.dport):
            return None
        body = bytes(udp.payload)
        if body == b"\xff":  # RFC 3948 NAT keepalive
            return None
        if len(body) >= 4 and body[:4] == b"\x00\x00\x00\x00":  # non-ESP marker: IKE
            return None
        if len(body) < 8:
            return ip, udp, body  # too short to be ESP: reported below
        return ip, udp, body
    return None


class SaState:
    def __init__(self, sa):
        self.sa = sa
        self.t = TRANSFORMS[sa["transform"]]
        self.count = 0
        self.first_seq = None
        self.last_seq = None  # full 64-bit sequence
        self.ivs = set()
        self.prev_iv = None
        self.prev_last_block = None


def check_packet(st, ip, udp, raw, frame_no, reasons):
    sa = st.sa
    where = "frame %d spi %#x" % (frame_no, sa["spi"])

    def bad(msg):
        reasons.append("%s: %s" % (where, msg))

    # Outer header and encapsulation.
    if sa["mode"] == "tunnel" and (ip.src, ip.dst) != (sa["src"], sa["dst"]):
        bad("outer %s -> %s, SA says %s -> %s" % (ip.src, ip.dst, sa["src"], sa["dst"]))
    if sa["mode"] == "tunnel" and ip.version != int(sa["family"]):
        bad("outer IPv%d, SA is IPv%s" % (ip.version, sa["family"]))
    enc = sa.get("udp_encap")
    if bool(enc) != (udp is not None):
        bad("UDP encapsulation %s, SA %s it" % ("present" if udp else "absent",
                                                  "requires" if enc else "forbids"))
    elif udp is not None:
        if (udp.sport, udp.dport) != (int(enc["sport"]), int(enc["dport"])):
            bad("UDP ports %d -> %d, SA says %s -> %s" % (udp.sport, udp.dport, enc["sport"],
                                                          enc["dport"]))
        if udp.chksum not in (0, None) and ip.version == 4:
            pass  # a checksum is allowed; RFC 3948 says it SHOULD be zero, not MUST
    if len(raw) < 8:
        bad("ESP shorter than its header (%d bytes)" % len(raw))
        return
    esp = ESP(raw)

    # Sequence number (ESN: infer the high half from wrap-around of the low half).
    high = 0
    if st.last_seq is not None:
        high = st.last_seq >> 32
        if sa.get("esn") and esp.seq < (st.last_seq & 0xFFFFFFFF) and \
                (st.last_seq & 0xFFFFFFFF) - esp.seq > 0x80000000:
            high += 1
    seq = (high << 32) | esp.seq
    if st.last_seq is not None and seq <= st.last_seq:
        bad("sequence %d not above the previous %d" % (seq, st.last_seq))
    if not sa.get("esn") and esp.seq == 0:
        bad("sequence number 0 (RFC 4303: the first packet has 1)")

    # Decrypt with ICV verification.
    try:
        o = open_esp(sa, esp, esn_high=high)
    except EspOpenError as e:
        bad(str(e))
        return
    t = st.t
    iv = o["iv"]
    body_len = len(raw) - 8
    ct_len = body_len - t["iv"] - t["icv"]
    if len(iv) != t["iv"]:
        bad("IV of %d bytes, expected %d" % (len(iv), t["iv"]))
    if iv in st.ivs and not ALLOW_REPEATED_IV:
        bad("IV %s repeated" % iv.hex())
    if t["scapy"][0] in CBC:
        if iv == bytes(len(iv)):
            bad("all-zero CBC IV")
        if st.prev_last_block is not None and iv == st.prev_last_block:
            bad("CBC IV is the previous packet's last ciphertext block (predictable)")
        if st.prev_iv is not None and \
                int.from_bytes(iv, "big") == (int.from_bytes(st.prev_iv, "big") + 1) % (
                1 << (8 * len(iv))):
            bad("CBC IV is a counter (previous + 1): predictable")
        if st.prev_iv is not None and iv != st.prev_iv and \
                sum(x == y for x, y in zip(iv, st.prev_iv)) * 2 >= len(iv):
            # Random IVs share a byte position with probability 1/256 each; half of them equal
            # means a structured (counter or sequence based) IV, which CBC must not have.
            bad("CBC IV %s shares half its bytes with the previous %s: predictable"
                % (iv.hex(), st.prev_iv.hex()))
    if ct_len % t["block"]:
        bad("ciphertext of %d bytes is not a multiple of the block size %d" % (ct_len,
                                                                                t["block"]))
    if ct_len % 4:
        bad("encrypted part of %d bytes is not 4-byte aligned" % ct_len)
    want_pad = bytes(range(1, o["pad_len"] + 1))
    if o["padding"] != want_pad:
        bad("padding %s is not 1,2,3,... (pad length %d)" % (o["padding"].hex(), o["pad_len"]))

    # Next header and the inner packet.
    nh = o["next_header"]
    payload = o["payload"]
    if sa["mode"] == "tunnel":
        want_nh = 4 if int(sa["family"]) == 4 else 41
        if nh != want_nh:
            bad("next header %d in tunnel mode, expected %d" % (nh, want_nh))
        if nh == 4:
            inner = IP(payload)
            if inner.version != 4 or inner.len != len(payload):
                bad("inner IPv4 length %s, carried %d" % (inner.len, len(payload)))
            hdr = bytes(payload[:inner.ihl * 4])
            s = sum(struct.unpack("!%dH" % (len(hdr) // 2), hdr))
            while s >> 16:
                s = (s & 0xFFFF) + (s >> 16)
            if s != 0xFFFF:
                bad("inner IPv4 header checksum is wrong")
        elif nh == 41:
            inner = IPv6(payload)
            if inner.version != 6 or inner.plen + 40 != len(payload):
                bad("inner IPv6 payload length %s, carried %d" % (inner.plen, len(payload) - 40))
        else:
            return
        src, dst = inner.src, inner.dst
    else:
        if nh not in (1, 6, 17, 47, 58, 4, 41):
            bad("next header %d in transport mode is not a transport protocol" % nh)
        src, dst = ip.src, ip.dst
    if not in_prefix(src, sa["inner_src"]) or not in_prefix(dst, sa["inner_dst"]):
        bad("inner %s -> %s outside the selectors %s -> %s" % (src, dst, sa["inner_src"],
                                                                sa["inner_dst"]))

    st.ivs.add(iv)
    st.prev_iv = iv
    body = bytes(raw[8 + t["iv"]:len(raw) - t["icv"]])
    st.prev_last_block = body[-len(iv):] if len(body) >= len(iv) else None
    st.last_seq = seq
    if st.first_seq is None:
        st.first_seq = seq
    st.count += 1


def tshark_check(pcap, sas, frames, reasons):
    """tshark must mark every ESP frame of the checked SAs icv_good."""
    if not shutil.which("tshark"):
        reasons.append("tshark not found")
        return
    tmp = tempfile.mkdtemp(prefix="esp-check-ws.")
    try:
        os.chmod(tmp, 0o700)
        lines = []
        for sa in sas.values():
            if sa.get("esn"):
                continue  # tshark cannot be told the high sequence bits of an ESN SA
            enc_name, auth_name = TRANSFORMS[sa["transform"]]["tshark"]
            lines.append('"IPv%s","*","*","0x%08x","%s","0x%s","%s","%s"' % (
                sa["family"], int(sa["spi"]), enc_name, sa["enc_key"], auth_name,
                ("0x" + sa["auth_key"]) if sa.get("auth_key") else ""))
        with open(os.path.join(tmp, "esp_sa"), "w") as f:
            f.write("# This file is automatically generated, DO NOT MODIFY.\n")
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(tmp, "preferences"), "w") as f:
            f.write("esp.enable_encryption_decode: TRUE\n"
                    "esp.enable_authentication_check: TRUE\n")
        env = dict(os.environ, WIRESHARK_CONFIG_DIR=tmp)
        out = subprocess.run(
            ["tshark", "-n", "-r", pcap, "-Y", "esp", "-T", "fields", "-E", "separator=,",
             "-e", "frame.number", "-e", "esp.spi", "-e", "esp.icv_good", "-e", "esp.icv_bad"],
            env=env, capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            reasons.append("tshark failed: %s" % out.stderr.strip()[-300:])
            return
        seen = {}
        for line in out.stdout.splitlines():
            parts = line.split(",")
            if len(parts) < 4:
                continue
            seen[int(parts[0])] = parts
        good = 0
        for frame_no, spi in frames:
            sa = sas[spi]
            if sa.get("esn"):
                continue
            parts = seen.get(frame_no)
            if parts is None:
                reasons.append("tshark: frame %d (spi %#x) not dissected as ESP" % (frame_no, spi))
            elif parts[2] not in ("1", "True"):
                reasons.append("tshark: frame %d spi %#x icv_good=%r icv_bad=%r"
                               % (frame_no, spi, parts[2], parts[3]))
            else:
                good += 1
        print("tshark: %d/%d ESP frames with a good ICV" % (good, len(frames)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--keys", required=True)
    ap.add_argument("--direction", default="all", choices=["out", "in", "all"])
    ap.add_argument("--count", type=int, help="exact number of ESP packets expected per SA")
    ap.add_argument("--min-count", type=int, default=1)
    ap.add_argument("--first-seq", type=int, help="sequence number of each SA's first packet")
    ap.add_argument("--tshark", action="store_true")
    ap.add_argument("--allow-repeated-iv", action="store_true",
                    help="do not fail on repeated IVs (for a third-party peer known to repeat)")
    a = ap.parse_args()
    global ALLOW_REPEATED_IV
    ALLOW_REPEATED_IV = a.allow_repeated_iv

    all_sas = load_keys(a.keys)
    sas = {spi: sa for spi, sa in all_sas.items()
           if a.direction == "all" or sa["direction"] == a.direction}
    states = {spi: SaState(sa) for spi, sa in sas.items()}
    reasons = []
    frames = []
    for n, pkt in enumerate(PcapReader(a.pcap), start=1):
        e = esp_of(pkt)
        if e is None:
            continue
        ip, udp, raw = e
        spi = struct.unpack("!I", raw[:4])[0] if len(raw) >= 4 else None
        if spi in all_sas and spi not in sas:
            continue  # the other direction's SA: not asked for
        if spi not in sas:
            reasons.append("frame %d: ESP with unknown SPI %s" % (n, spi))
            continue
        frames.append((n, spi))
        check_packet(states[spi], ip, udp, raw, n, reasons)

    for spi, st in sorted(states.items()):
        if a.count is not None and st.count != a.count:
            reasons.append("spi %#x: %d valid ESP packets, expected %d" % (spi, st.count, a.count))
        elif a.count is None and st.count < a.min_count:
            reasons.append("spi %#x: %d valid ESP packets, expected at least %d"
                           % (spi, st.count, a.min_count))
        if a.first_seq is not None and st.first_seq is not None and st.first_seq != a.first_seq:
            reasons.append("spi %#x: first sequence %d, expected %d" % (spi, st.first_seq,
                                                                        a.first_seq))
        print("spi %#x (%s, %s, %s): %d packets, sequence %s..%s, %d distinct IVs" % (
            spi, st.sa["direction"], st.sa["transform"], st.sa["mode"], st.count, st.first_seq,
            st.last_seq, len(st.ivs)))
    if a.tshark:
        tshark_check(a.pcap, sas, frames, reasons)
    if reasons:
        for r in reasons[:MAX_REASONS]:
            print("FAIL", r)
        if len(reasons) > MAX_REASONS:
            print("FAIL ... and %d more" % (len(reasons) - MAX_REASONS))
        sys.exit(1)
    print("PASS: %d ESP packets checked" % len(frames))


if __name__ == "__main__":
    main()
