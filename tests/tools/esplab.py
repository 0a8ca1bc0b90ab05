"""Shared vocabulary of the ESP test tools: the transforms both peers speak, the SA key file,
and scapy SecurityAssociations built from it.

The key file (JSON, written by gen_configs.py) holds every SA of one test run:

    {"sas": [{"name": "out", "spi": 5, "direction": "out",   # "out" = sent by ipsec-dataplane
              "transform": "gcm128", "mode": "tunnel", "family": 4,
              "src": "10.99.0.1", "dst": "10.99.0.2",         # outer addresses (tunnel)
              "inner_src": "10.10.1.0/24", "inner_dst": "10.10.2.0/24",
              "enc_key": "hex", "auth_key": "hex",           # GCM: key || 4-byte salt
              "esn": false, "udp_encap": null}]}              # or {"sport": 4500, "dport": 4500}

Only the test tools read it; it lives in the test's temporary directory.
"""
import ipaddress
import json
import os
import struct

from cryptography.exceptions import InvalidTag

from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.ipsec import ESP, SecurityAssociation

# name -> how each implementation spells it, and the key sizes (bytes, GCM includes the salt).
TRANSFORMS = {
    "gcm128": dict(secgw=("aead", "aes-128-gcm"), toml=["esp-gcm", "128"],
                   scapy=("AES-GCM", "NULL"), enc_len=20, auth_len=0, iv=8, block=4, icv=16,
                   tshark=("AES-GCM with 16 octet ICV [RFC4106]", "NULL")),
    "gcm256": dict(secgw=("aead", "aes-256-gcm"), toml=["esp-gcm", "256"],
                   scapy=("AES-GCM", "NULL"), enc_len=36, auth_len=0, iv=8, block=4, icv=16,
                   tshark=("AES-GCM with 16 octet ICV [RFC4106]", "NULL")),
    "aes128-sha1": dict(secgw=("cipher", "aes-128-cbc", "sha1-hmac"),
                        toml=["esp-aes", "128", "esp-sha-hmac"],
                        scapy=("AES-CBC", "HMAC-SHA1-96"), enc_len=16, auth_len=20, iv=16,
                        block=16, icv=12,
                        tshark=("AES-CBC [RFC3602]", "HMAC-SHA-1-96 [RFC2404]")),
    "aes256-sha256": dict(secgw=("cipher", "aes-256-cbc", "sha256-hmac"),
                          toml=["esp-aes", "256", "esp-sha256-hmac"],
                          scapy=("AES-CBC", "SHA2-256-128"), enc_len=32, auth_len=32, iv=16,
                          block=16, icv=16,
                          tshark=("AES-CBC [RFC3602]", "HMAC-SHA-256-128 [RFC4868]")),
    "3des-sha1": dict(secgw=("cipher", "3des-cbc", "sha1-hmac"), toml=["esp-3des", "esp-sha-hmac"],
                      scapy=("3DES", "HMAC-SHA1-96"), enc_len=24, auth_len=20, iv=8, block=8,
                      icv=12, tshark=("TripleDES-CBC [RFC2451]", "HMAC-SHA-1-96 [RFC2404]")),
    "des-sha1": dict(secgw=("cipher", "des-cbc", "sha1-hmac"), toml=["esp-des", "esp-sha-hmac"],
                     scapy=("DES", "HMAC-SHA1-96"), enc_len=8, auth_len=20, iv=8, block=8,
                     icv=12, tshark=("DES-CBC [RFC2405]", "HMAC-SHA-1-96 [RFC2404]")),
    # ipsec-secgw has no MD5: scapy-only peer.
    "des-md5": dict(secgw=None, toml=["esp-des", "esp-md5-hmac"],
                    scapy=("DES", "HMAC-MD5-96"), enc_len=8, auth_len=16, iv=8, block=8, icv=12,
                    tshark=("DES-CBC [RFC2405]", "HMAC-MD5-96 [RFC2403]")),
}

# The transforms that ipsec-secgw 22.11 also has (checked against its sa.c keyword tables).
SECGW_TRANSFORMS = [n for n, t in TRANSFORMS.items() if t["secgw"]]

# DES weak/semi-weak keys are refused by some libraries; a random 8-byte key practically never
# hits one, but parity bits are irrelevant to all implementations here.


def random_keys(transform):
    t = TRANSFORMS[transform]
    return os.urandom(t["enc_len"]).hex(), os.urandom(t["auth_len"]).hex()


def load_keys(path):
    with open(path) as f:
        doc = json.load(f)
    return {int(sa["spi"]): sa for sa in doc["sas"]}


def ip_class(family):
    return IP if int(family) == 4 else IPv6


def make_sa(sa, esn_high=None):
    """A scapy SecurityAssociation for one SA of the key file. For tunnel mode it carries the
    outer header; for UDP encapsulation the NAT-T UDP header."""
    t = TRANSFORMS[sa["transform"]]
    crypt, auth = t["scapy"]
    kw = dict(spi=int(sa["spi"]), crypt_algo=crypt, crypt_key=bytes.fromhex(sa["enc_key"]),
              auth_algo=auth)
    if sa.get("auth_key"):
        kw["auth_key"] = bytes.fromhex(sa["auth_key"])
    if sa["mode"] == "tunnel":
        kw["tunnel_header"] = ip_class(sa["family"])(src=sa["src"], dst=sa["dst"])
    if sa.get("udp_encap"):
        u = sa["udp_encap"]
        kw["nat_t_header"] = UDP(sport=int(u["sport"]), dport=int(u["dport"]))
    if sa.get("esn"):
        kw["esn_en"] = True
        kw["esn"] = esn_high or 0
    return SecurityAssociation(ESP, **kw)


class EspOpenError(Exception):
    pass


def esn_icv(auth_algo, key, esp_bytes, esn_high):
    """The ICV of an ESP packet with extended sequence numbers: the HMAC covers the packet
    followed by the high 32 bits of the sequence number (RFC 4303 section 2.2.1 and
    3.3.2.1). scapy 2.5 appends them for AH only and leaves them out for ESP, so ESN + HMAC
    is computed here."""
    mac = auth_algo.new_mac(key)
    mac.update(esp_bytes + struct.pack("!L", esn_high))
    return mac.finalize()[:auth_algo.icv_size]


def open_esp(sa_doc, esp, esn_high=0):
    """Verify and decrypt one ESP packet with scapy's algorithm objects, keeping every field
    (scapy's own decrypt() drops the padding bytes). Returns a dict with iv, payload, padding,
    pad_len, next_header, icv. Raises EspOpenError when the ICV does not verify."""
    t = TRANSFORMS[sa_doc["transform"]]
    sa = make_sa(sa_doc, esn_high)
    icv_size = t["icv"]
    if not isinstance(esp, ESP):
        esp = ESP(bytes(esp))
    body = bytes(esp.data)
    if len(body) < t["iv"] + icv_size + 2:
        raise EspOpenError("ESP payload of %d bytes is shorter than IV+ICV+2" % len(body))
    iv = body[:t["iv"]]
    ct = body[t["iv"]:len(body) - icv_size]
    icv = body[len(body) - icv_size:]
    esn_en = bool(sa_doc.get("esn"))
    algo = sa.crypt_algo
    key = sa.crypt_key  # without the GCM salt, which scapy keeps apart
    if algo.is_aead:
        mode_iv = algo._format_mode_iv(sa=sa, iv=iv)
        if esn_en:
            aad = struct.pack("!LLL", esp.spi, esn_high, esp.seq)
        else:
            aad = struct.pack("!LL", esp.spi, esp.seq)
        try:
            if algo.ciphers_aead_api:
                pt = algo.cipher(key).decrypt(mode_iv, ct + icv, aad)
            else:
                dec = algo.new_cipher(key, mode_iv, icv).decryptor()
                dec.authenticate_additional_data(aad)
                pt = dec.update(ct) + dec.finalize()
        except InvalidTag as e:
            raise EspOpenError("AEAD tag does not verify (%s)" % type(e).__name__)
    else:
        if esn_en and sa.auth_algo.mac:
            signed = bytes(esp)[:len(bytes(esp)) - icv_size]
            if esn_icv(sa.auth_algo, sa.auth_key, signed, esn_high) != icv:
                raise EspOpenError("ICV (with ESN high bits 0x%x) does not verify" % esn_high)
        else:
            try:
                sa.auth_algo.verify(esp, sa.auth_key, esn_en=esn_en, esn=esn_high)
            except Exception as e:
                raise EspOpenError("ICV does not verify (%s)" % e)
        if len(ct) % t["block"]:
            raise EspOpenError("ciphertext length %d is not a multiple of the block size %d"
                               % (len(ct), t["block"]))
        dec = algo.new_cipher(key, algo._format_mode_iv(sa=sa, iv=iv)).decryptor()
        pt = dec.update(ct) + dec.finalize()
    if len(pt) < 2:
        raise EspOpenError("plaintext too short for the ESP trailer")
    pad_len, nh = pt[-2], pt[-1]
    if pad_len + 2 > len(pt):
        raise EspOpenError("pad length %d exceeds the plaintext" % pad_len)
    return dict(iv=iv, payload=pt[:len(pt) - 2 - pad_len], padding=pt[len(pt) - 2 - pad_len:-2],
                pad_len=pad_len, next_header=nh, icv=icv, plaintext_len=len(pt))


def in_prefix(addr, prefix):
    return ipaddress.ip_address(addr) in ipaddress.ip_network(prefix, strict=False)
