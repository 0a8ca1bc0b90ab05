#!/usr/bin/python3
"""Write ipsec-secgw's configuration for the peer of an ipsec-dataplane TOML with static
(ipsec-manual) crypto-map entries: the mirror image of every SA (our inbound SPI is its
outbound SA and the other way round), its SP rules from the ACLs, routes and neighbours.

usage: secgw-from-toml.py DATAPLANE.toml HB_MAC DP_OUT_MAC > secgw.cfg

Supports what ipsec-secgw has: esp-gcm 128/256, esp-aes 128/192/256, esp-3des, esp-des with
esp-sha-hmac or esp-sha256-hmac, tunnel mode over IPv4/IPv6, transport mode.
"""
import ipaddress
import sys
import tomllib

CIPHERS = {("esp-gcm", "128"): ("aead", "aes-128-gcm"), ("esp-gcm", "256"): ("aead", "aes-256-gcm"),
           ("esp-aes", "128"): ("cipher", "aes-128-cbc"), ("esp-aes", "192"): ("cipher", "aes-192-cbc"),
           ("esp-aes", "256"): ("cipher", "aes-256-cbc"), ("esp-3des", None): ("cipher", "3des-cbc"),
           ("esp-des", None): ("cipher", "des-cbc")}
AUTHS = {"esp-sha-hmac": "sha1-hmac", "esp-sha256-hmac": "sha256-hmac"}


def colons(h):
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def algo(esp, key):
    words = list(esp)
    enc = words.pop(0)
    size = words.pop(0) if words and words[0].isdigit() else None
    kind, name = CIPHERS[(enc, size if enc in ("esp-gcm", "esp-aes") else None)]
    if kind == "aead":
        return "aead_algo %s aead_key %s" % (name, colons(key["cipher"]))
    auth = AUTHS[words[0]] if words else None
    if auth is None:
        sys.exit("ipsec-secgw needs an authenticator for %s" % enc)
    return "cipher_algo %s cipher_key %s auth_algo %s auth_key %s" % (
        name, colons(key["cipher"]), auth, colons(key["authenticator"]))


def main():
    cfg = tomllib.load(open(sys.argv[1], "rb"))
    hb_mac, dp_mac = sys.argv[2], sys.argv[3]
    outside = next(i for i in cfg["interface"] if i.get("role") == "outside")
    our_addrs = [ipaddress.ip_interface(a).ip for a in outside["address"]]
    lines, routes = [], set()
    for cmap in cfg.get("crypto_map", {}).values():
        for e in cmap:
            if e.get("type") != "ipsec-manual":
                continue
            ts = cfg["transform_set"][e["transform_set"]]
            peer = ipaddress.ip_address(e["peer"])
            us = next(a for a in our_addrs if a.version == peer.version)
            fam = "ipv%d" % peer.version
            for ace in cfg["access_list"][str(e["match_address"])]:
                if ace["action"] != "permit":
                    continue
                src, dst = ace["source"], ace["destination"]
                ports = "sport 0:65535 dport 0:65535"
                sin, sout = e["session_key"]["inbound"], e["session_key"]["outbound"]
                lines.append("sp %s out esp protect %d pri 1 src %s dst %s %s"
                             % (fam, sin["spi"], dst, src, ports))
                lines.append("sp %s in esp protect %d pri 1 src %s dst %s %s"
                             % (fam, sout["spi"], src, dst, ports))
                routes.add("rt %s dst %s port 0" % (fam, dst))
            if ts.get("mode", "tunnel") == "tunnel":
                mode_out = "mode %s-tunnel src %s dst %s" % (fam, peer, us)
                mode_in = "mode %s-tunnel src %s dst %s" % (fam, us, peer)
                routes.add("rt %s dst %s/%d port 1" % (fam, us, 32 if peer.version == 4 else 128))
            else:
                mode_out = mode_in = "mode transport"
                for ace in cfg["access_list"][str(e["match_address"])]:
                    routes.add("rt %s dst %s port 1" % (fam, ace["source"]))
            lines.append("sa out %d %s %s" % (sin["spi"], algo(ts["esp"], sin), mode_out))
            lines.append("sa in %d %s %s" % (sout["spi"], algo(ts["esp"], sout), mode_in))
    lines += sorted(routes)
    lines += ["neigh port 0 %s" % hb_mac, "neigh port 1 %s" % dp_mac]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
