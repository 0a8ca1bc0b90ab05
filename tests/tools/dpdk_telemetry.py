#!/usr/bin/python3
"""Query a DPDK process's telemetry socket (v2 protocol) once and print the JSON answer.

usage: dpdk_telemetry.py SOCKET_PATH COMMAND     e.g. /ethdev/stats,1
Exit status 1 with a reason if the socket cannot be reached or the answer is not JSON.
"""
import json
import socket
import sys


def query(path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    hello = json.loads(s.recv(16384).decode())
    s.send(cmd.encode())
    reply = s.recv(int(hello.get("max_output_len", 16384)))
    s.close()
    return json.loads(reply.decode())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: dpdk_telemetry.py SOCKET_PATH COMMAND")
    try:
        ans = query(sys.argv[1], sys.argv[2])
    except (OSError, ValueError) as e:
        sys.exit("telemetry query %r on %s failed: %s" % (sys.argv[2], sys.argv[1], e))
    print(json.dumps(ans))


if __name__ == "__main__":
    main()
