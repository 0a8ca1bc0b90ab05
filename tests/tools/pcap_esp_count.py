#!/usr/bin/python3
"""Count ESP packets per SPI in a pcap (Ethernet, IPv4/IPv6, ESP or ESP-in-UDP/4500) and check
that each SPI's sequence numbers strictly increase. Reads headers only, without scapy, so it is
fast on captures of tens of thousands of packets taken with a small snap length.

usage: pcap_esp_count.py PCAP     prints "SPI COUNT GAPS" lines (SPI in decimal);
exit 1 if a sequence number does not increase.
"""
import struct
import sys


def frames(path):
    with open(path, "rb") as f:
        hdr = f.read(24)
        magic = struct.unpack("<I", hdr[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                return
            _, _, incl, _ = struct.unpack(endian + "IIII", rh)
            yield f.read(incl)


def esp_header(fr):
    if len(fr) < 14:
        return None
    et = struct.unpack("!H", fr[12:14])[0]
    off = 14
    if et == 0x0800:
        ihl = (fr[off] & 0x0F) * 4
        proto = fr[off + 9]
        off += ihl
    elif et == 0x86DD:
        proto = fr[off + 6]
        off += 40
    else:
        return None
    if proto == 17:
        if len(fr) < off + 16:
            return None
        sport, dport = struct.unpack("!HH", fr[off:off + 4])
        if 4500 not in (sport, dport):
            return None
        off += 8
        if fr[off:off + 4] == b"\0\0\0\0" or len(fr) - off < 8:
            return None
    elif proto != 50:
        return None
    if len(fr) < off + 8:
        return None
    return struct.unpack("!II", fr[off:off + 8])


def main():
    counts, last, gaps, bad = {}, {}, {}, []
    for fr in frames(sys.argv[1]):
        h = esp_header(fr)
        if h is None:
            continue
        spi, seq = h
        counts[spi] = counts.get(spi, 0) + 1
        if spi in last:
            if seq <= last[spi]:
                bad.append("spi %#x: sequence %d after %d" % (spi, seq, last[spi]))
            elif seq != last[spi] + 1:
                gaps[spi] = gaps.get(spi, 0) + 1
        last[spi] = seq
    for spi in sorted(counts):
        print(spi, counts[spi], gaps.get(spi, 0))
    for b in bad[:10]:
        print("FAIL", b, file=sys.stderr)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
