#!/usr/bin/python3
"""TCP bulk transfer with a SHA-256 of the bytes at each end, for end-to-end integrity checks
through the tunnel.

  tcp_xfer.py recv --listen ADDR --port P [--timeout S]
      accepts one connection, reads to EOF, prints "bytes=N sha256=HEX", exits.
      Prints "listening" first, once the socket is bound.
  tcp_xfer.py send --to ADDR --port P --bytes N [--timeout S]
      connects, sends N random bytes, prints "bytes=N sha256=HEX" of what it sent.
"""
import argparse
import hashlib
import os
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["send", "recv"])
    ap.add_argument("--listen")
    ap.add_argument("--to")
    ap.add_argument("--port", type=int, default=5001)
    ap.add_argument("--bytes", type=int, default=10 * 1024 * 1024)
    ap.add_argument("--timeout", type=float, default=60)
    a = ap.parse_args()
    h = hashlib.sha256()
    n = 0
    if a.mode == "recv":
        fam = socket.AF_INET6 if ":" in a.listen else socket.AF_INET
        srv = socket.socket(fam, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind((a.listen, a.port))
        srv.listen(1)
        srv.settimeout(a.timeout)
        print("listening", flush=True)
        conn, _ = srv.accept()
        conn.settimeout(a.timeout)
        while True:
            b = conn.recv(1 << 16)
            if not b:
                break
            h.update(b)
            n += len(b)
        conn.close()
    else:
        fam = socket.AF_INET6 if ":" in a.to else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(a.timeout)
        s.connect((a.to, a.port))
        left = a.bytes
        while left:
            b = os.urandom(min(left, 1 << 16))
            s.sendall(b)
            h.update(b)
            n += len(b)
            left -= len(b)
        s.shutdown(socket.SHUT_WR)
        s.recv(1)  # wait for the receiver to close: everything was read
        s.close()
    print("bytes=%d sha256=%s" % (n, h.hexdigest()), flush=True)


if __name__ == "__main__":
    try:
        main()
    except (OSError, socket.timeout) as e:
        sys.exit("tcp_xfer: %s" % e)
