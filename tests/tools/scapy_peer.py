#!/usr/bin/python3
"""Play ipsec-dataplane's part with scapy's ESP, on a live link: encrypt ICMP echo requests
from host A to host B with the "out" SA of a key file, send them as raw frames, and check that
every echo reply comes back as ESP under the "in" SA, decrypts, and carries the same id,
sequence and payload.

usage: scapy_peer.py --keys keys.json --iface dp-out --src-mac M --dst-mac M
                     --src IP --dst IP [--count 5] [--pcap replies.pcap]

Exit 0 when every request got its reply; otherwise 1 with the reason.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from esplab import EspOpenError, load_keys, make_sa, open_esp  # noqa: E402

from scapy.all import AsyncSniffer, Ether, Raw, sendp, wrpcap  # noqa: E402
from scapy.layers.inet import ICMP, IP  # noqa: E402
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6  # noqa: E402
from scapy.layers.ipsec import ESP  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", required=True)
    ap.add_argument("--iface", required=True)
    ap.add_argument("--src-mac", required=True)
    ap.add_argument("--dst-mac", required=True)
    ap.add_argument("--src", required=True, help="inner source (host A)")
    ap.add_argument("--dst", required=True, help="inner destination (host B)")
    ap.add_argument("--count", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--pcap", help="write the ESP frames received to this file")
    a = ap.parse_args()

    sas = load_keys(a.keys)
    out = next(s for s in sas.values() if s["direction"] == "out")
    inb = next(s for s in sas.values() if s["direction"] == "in")
    v6 = int(out["family"]) == 6
    sa_out = make_sa(out)
    ident = os.getpid() & 0xFFFF
    payloads = {i: os.urandom(48) for i in range(1, a.count + 1)}

    received = []  # filled by the sniffer thread (its .results only appear after stop())
    sniffer = AsyncSniffer(iface=a.iface, store=False, prn=received.append,
                           lfilter=lambda p: ESP in p and p[Ether].src.lower() == a.dst_mac.lower())
    sniffer.start()
    time.sleep(0.5)
    for i in range(1, a.count + 1):
        if v6:
            inner = IPv6(src=a.src, dst=a.dst, hlim=64) / ICMPv6EchoRequest(id=ident, seq=i,
                                                                             data=payloads[i])
        else:
            inner = IP(src=a.src, dst=a.dst, ttl=64) / ICMP(type=8, id=ident, seq=i) / Raw(
                payloads[i])
        # Re-parse so scapy fills lengths and checksums before encryption.
        inner = inner.__class__(bytes(inner))
        esp = sa_out.encrypt(inner)
        sendp(Ether(src=a.src_mac, dst=a.dst_mac) / esp, iface=a.iface, verbose=False)
        time.sleep(0.05)

    deadline = time.time() + a.timeout
    answered = {}
    problems = []
    while time.time() < deadline and len(answered) < a.count:
        time.sleep(0.2)
        problems = []
        for p in list(received):
            outer = p[IPv6] if v6 else p[IP]
            esp = p[ESP]
            if esp.spi != int(inb["spi"]):
                problems.append("ESP with unexpected SPI %#x" % esp.spi)
                continue
            if (outer.src, outer.dst) != (inb["src"], inb["dst"]) and inb["mode"] == "tunnel":
                problems.append("outer %s -> %s, expected %s -> %s"
                                % (outer.src, outer.dst, inb["src"], inb["dst"]))
            try:
                opened = open_esp(inb, esp)
            except EspOpenError as e:
                problems.append("reply seq %d: %s" % (esp.seq, e))
                continue
            if inb["mode"] == "tunnel":
                ip = (IPv6 if v6 else IP)(opened["payload"])
            else:
                ip = outer.copy()
                ip.remove_payload()
                ip = ip / ((ICMPv6EchoReply if v6 else ICMP)(opened["payload"]))
            echo = ip[ICMPv6EchoReply] if v6 else ip[ICMP]
            if (ip.src, ip.dst) != (a.dst, a.src):
                problems.append("inner reply %s -> %s" % (ip.src, ip.dst))
                continue
            if not v6 and echo.type != 0:
                continue
            data = bytes(echo.data) if v6 else bytes(echo.payload)
            if echo.id == ident and payloads.get(echo.seq) == data:
                answered[echo.seq] = esp.seq
    sniffer.stop()
    pkts = received
    if a.pcap:
        wrpcap(a.pcap, pkts)
    for seq in sorted(answered):
        print("OK echo seq %d answered in ESP spi %#x seq %d" % (seq, int(inb["spi"]),
                                                                answered[seq]))
    for pr in sorted(set(problems)):
        print("PROBLEM", pr)
    missing = sorted(set(payloads) - set(answered))
    if missing or problems:
        print("FAIL: %d/%d echo requests answered through the tunnel (missing %s), %d ESP frames"
              " seen" % (len(answered), a.count, missing, len(pkts)))
        sys.exit(1)
    print("PASS: %d/%d echo requests answered through the tunnel" % (len(answered), a.count))


if __name__ == "__main__":
    main()
