#!/usr/bin/python3
"""Hold raw sockets for IP protocol 50 (ESP), IPv4 and IPv6, and never read them.

Run inside a namespace whose kernel owns an address that ESP is sent to on behalf of a DPDK
process on the same link (ipsec-secgw on net_af_packet). This kernel has no ESP, so without a
listener it answers every such packet with ICMP protocol unreachable (or ICMPv6 parameter
problem). With a raw socket bound to the protocol it delivers a copy there instead and stays
silent. The socket buffers fill and the kernel drops the copies; that is intended.
UDP port 4500 (ESP-in-UDP, RFC 3948) gets the same treatment against ICMP port unreachable.
"""
import signal
import socket
import sys

ESP = 50
socks = [socket.socket(socket.AF_INET, socket.SOCK_RAW, ESP),
         socket.socket(socket.AF_INET6, socket.SOCK_RAW, ESP)]
for fam, any_addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    u = socket.socket(fam, socket.SOCK_DGRAM)
    if fam == socket.AF_INET6:
        u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.bind((any_addr, 4500))
    socks.append(u)
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    signal.pause()
except KeyboardInterrupt:
    pass
