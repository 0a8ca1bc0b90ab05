#!/usr/bin/python3
"""Hold raw sockets for IP protocol 50 (ESP), IPv4 and IPv6, and never read them.

Run inside a namespace whose kernel owns an address that ESP is sent to on behalf of a DPDK
process on the same link (ipsec-secgw on net_af_packet). This kernel has no ESP, so without a
listener it answers every such packet with ICMP protocol unreachable (or ICMPv6 parameter
problem). With a raw socket bound to the protocol it delivers a copy there instead and stays
silent. The socket buffers fill and the kernel drops the copies; that is intended.
"""
import signal
import socket
import sys

ESP = 50
socks = [socket.socket(socket.AF_INET, socket.SOCK_RAW, ESP),
         socket.socket(socket.AF_INET6, socket.SOCK_RAW, ESP)]
for s in socks:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
print("ready", flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    signal.pause()
except KeyboardInterrupt:
    pass
