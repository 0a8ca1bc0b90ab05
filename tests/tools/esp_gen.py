#!/usr/bin/python3
"""Produce ESP traffic that ipsec-secgw cannot: valid packets for the transforms and features it
lacks (des + md5, ESN, UDP encapsulation and NAT keepalives) and hostile packets. Sent as raw
frames on a link, or written to a pcap.

usage: esp_gen.py --keys keys.json [--sa in] --plan CASE:N[,CASE:N...]
                  (--iface IF --src-mac M --dst-mac M | --out FILE.pcap)
                  [--inner-src IP --inner-dst IP] [--start-seq S]
--start-seq is the full 64-bit sequence number for ESN SAs (high half implicit on the wire).

Cases, in the order given (the sequence number advances across cases):
  valid        N correctly protected ICMP echo requests
  replay       N copies of the first valid packet already sent (same sequence number)
  bad-icv      fresh sequence numbers, one bit of the ICV flipped
  truncated    fresh packets cut short inside the IV/ciphertext
  unknown-spi  correctly formed ESP under an SPI no SA has
  policy       correctly protected, but the inner source is outside the SA's selectors
  bad-padding  correctly protected (the ICV verifies), padding bytes not 1, 2, 3, ...
  plain        the inner packet sent in clear on the outside, as if it needed no protection
  keepalive    RFC 3948 NAT keepalives (UDP 4500, one 0xff byte); needs udp_encap on the SA
Each inner packet carries the marker "ESPGEN:<case>:<n>:" in its payload, so a capture on the
protected side tells which cases got through (see count_markers in this file: --count-markers).
"""
import argparse
import os
import re
import sys
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from esplab import esn_icv, load_keys, make_sa  # noqa: E402

from scapy.all import Ether, Raw, rdpcap, sendp, wrpcap  # noqa: E402
from scapy.layers.inet import ICMP, IP, UDP  # noqa: E402
from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6  # noqa: E402
from scapy.layers.ipsec import ESP, _ESPPlain, _lcm, split_for_transport  # noqa: E402

MARK = re.compile(rb"ESPGEN:([a-z-]+):(\d+):")


def inner_packet(sa_doc, case, n, src, dst):
    marker = b"ESPGEN:%s:%d:" % (case.encode(), n) + os.urandom(16)
    if int(sa_doc["family"]) == 6:
        p = IPv6(src=src, dst=dst, hlim=64) / ICMPv6EchoRequest(id=0x4747, seq=n, data=marker)
    else:
        p = IP(src=src, dst=dst, ttl=64) / ICMP(type=8, id=0x4747, seq=n) / Raw(marker)
    return p.__class__(bytes(p))


def seal(sa, sa_doc, inner, seq, esn_high=0, bad_padding=False):
    """scapy's SecurityAssociation._encrypt_esp, with a hook to corrupt the padding before
    encryption (so that the ICV still verifies)."""
    algo = sa.crypt_algo
    esp = _ESPPlain(spi=sa.spi, seq=seq, iv=algo.generate_iv())
    pkt = inner
    if sa.tunnel_header:
        tunnel = sa.tunnel_header.copy()
        if tunnel.version == 4:
            del tunnel.proto, tunnel.len, tunnel.chksum
        else:
            del tunnel.nh, tunnel.plen
        pkt = tunnel.__class__(bytes(tunnel / pkt))
    ip_header, nh, payload = split_for_transport(pkt, 50)
    esp.data = payload
    esp.nh = nh
    esp = algo.pad(esp)
    if bad_padding:
        align = _lcm(algo.block_size, 4)
        padlen = esp.padlen
        while padlen < 4:
            padlen += align
        pad = bytearray(range(1, padlen + 1))
        pad[padlen // 2] ^= 0x5A
        esp.padding = bytes(pad)
        esp.padlen = padlen
    esp = algo.encrypt(sa, esp, sa.crypt_key, sa.crypt_icv_size, esn_en=sa.esn_en, esn=esn_high)
    if sa.esn_en and sa.auth_algo.mac:
        esp.data += esn_icv(sa.auth_algo, sa.auth_key, bytes(esp), esn_high)
    else:
        sa.auth_algo.sign(esp, sa.auth_key, esn_en=sa.esn_en, esn=esn_high)
    # Lengths, checksums and the protocol field are left for scapy to compute at the end.
    if ip_header.version == 4:
        del ip_header.len, ip_header.chksum
    else:
        del ip_header.plen
    if sa.nat_t_header:
        udp = sa.nat_t_header.copy()
        udp.chksum = 0
        del udp.len
        if ip_header.version == 4:
            del ip_header.proto
        else:
            del ip_header.nh
        pkt = ip_header / udp / esp
    else:
        pkt = ip_header / esp
    return pkt.__class__(bytes(pkt))


def flip_icv(pkt):
    raw = bytearray(bytes(pkt))
    raw[-1] ^= 0x01
    return pkt.__class__(bytes(raw))


def truncate(pkt):
    """Keep the ESP header and 4 bytes after it; fix the IP length so that only ESP is short."""
    esp_bytes = bytes(pkt[ESP])[:12]
    hdr = pkt.copy()
    hdr[ESP].underlayer.remove_payload()
    if hdr.version == 4:
        del hdr.len, hdr.chksum
    else:
        del hdr.plen
    return hdr.__class__(bytes(hdr) + esp_bytes) if UDP not in hdr else \
        hdr.__class__(bytes(hdr / Raw(esp_bytes)))


def build(a, sa_doc):
    fam = int(sa_doc["family"])
    src = a.inner_src or ("10.10.2.1" if fam == 4 else "2001:db8:2::1")
    dst = a.inner_dst or ("10.10.1.1" if fam == 4 else "2001:db8:1::1")
    bad_src = "10.10.9.1" if fam == 4 else "2001:db8:9::1"
    sa = make_sa(sa_doc)
    seq = a.start_seq
    out = []
    first_valid = None
    n = 0
    for item in a.plan.split(","):
        case, _, cnt = item.partition(":")
        cnt = int(cnt or 1)
        for _ in range(cnt):
            n += 1
            if case == "replay":
                if first_valid is None:
                    sys.exit("replay needs a valid packet earlier in the plan")
                out.append(first_valid)
                continue
            if case == "keepalive":
                if not sa_doc.get("udp_encap"):
                    sys.exit("keepalive needs an SA with udp_encap")
                u = sa_doc["udp_encap"]
                ipc = IP if fam == 4 else IPv6
                out.append(ipc(src=sa_doc["src"], dst=sa_doc["dst"]) /
                           UDP(sport=int(u["sport"]), dport=int(u["dport"]), chksum=0) /
                           Raw(b"\xff"))
                continue
            if case == "plain":
                out.append(inner_packet(sa_doc, case, n, src, dst))
                continue
            isrc = bad_src if case == "policy" else src
            inner = inner_packet(sa_doc, case, n, isrc, dst)
            if not sa_doc.get("esn") and seq > 0xFFFFFFFF:
                sys.exit("sequence number %d needs ESN" % seq)
            hi, lo = seq >> 32, seq & 0xFFFFFFFF
            if case == "unknown-spi":
                other = make_sa(dict(sa_doc, spi=a.unknown_spi))
                p = seal(other, sa_doc, inner, lo, hi)
            else:
                p = seal(sa, sa_doc, inner, lo, hi, bad_padding=(case == "bad-padding"))
            seq += 1
            if case == "valid" and first_valid is None:
                first_valid = p
            if case == "bad-icv":
                p = flip_icv(p)
            elif case == "truncated":
                p = truncate(p)
            elif case not in ("valid", "policy", "unknown-spi", "bad-padding"):
                sys.exit("unknown case %r" % case)
            out.append(p)
    return out


def count_markers(pcap):
    """Counts the generated echo requests by case. Only requests count: the host answers the
    valid ones, and its echo replies (which carry the same marker) go through the same link."""
    c = Counter()
    for p in rdpcap(pcap):
        if p.haslayer(ICMP) and p[ICMP].type != 8:
            continue
        if p.haslayer(IPv6) and not p.haslayer(ICMPv6EchoRequest):
            continue
        m = MARK.search(bytes(p))
        if m:
            c[m.group(1).decode()] += 1
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys")
    ap.add_argument("--sa", default="in", help="name of the SA in the key file")
    ap.add_argument("--plan", default="valid:1")
    ap.add_argument("--iface")
    ap.add_argument("--src-mac")
    ap.add_argument("--dst-mac")
    ap.add_argument("--out")
    ap.add_argument("--inner-src")
    ap.add_argument("--inner-dst")
    ap.add_argument("--start-seq", type=lambda v: int(v, 0), default=1)
    ap.add_argument("--unknown-spi", type=int, default=0x7EADBEEF)
    ap.add_argument("--count-markers", metavar="PCAP",
                    help="instead: print 'case count' for the markers found in PCAP")
    a = ap.parse_args()
    if a.count_markers:
        for case, k in sorted(count_markers(a.count_markers).items()):
            print(case, k)
        return
    sas = {s["name"]: s for s in load_keys(a.keys).values()}
    if a.sa not in sas:
        sys.exit("no SA named %r in %s" % (a.sa, a.keys))
    pkts = build(a, sas[a.sa])
    if a.out:
        wrpcap(a.out, [Ether(src=a.src_mac or "02:00:00:00:99:02",
                             dst=a.dst_mac or "02:00:00:00:99:01") / p for p in pkts])
    elif a.iface:
        # One call, in order, 10 ms apart (one socket; a per-packet sendp is slow).
        sendp([Ether(src=a.src_mac, dst=a.dst_mac) / p for p in pkts], iface=a.iface,
              inter=0.01, verbose=False)
    else:
        sys.exit("give --iface or --out")
    print("sent %d packets (%s)" % (len(pkts), a.plan))


if __name__ == "__main__":
    main()
