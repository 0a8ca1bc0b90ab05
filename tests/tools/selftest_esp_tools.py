#!/usr/bin/python3
"""Self-test of the ESP test tools, without namespaces: esp_gen.py's packets must pass
esp_check.py (scapy) and tshark for every transform, ESN across the 2^32 boundary, and UDP
encapsulation with keepalives; every hostile case must be rejected by esp_check.py for its own
reason. A checker that cannot fail proves nothing, so this runs before the live tests.

usage: selftest_esp_tools.py WORKDIR
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
sys.path.insert(0, HERE)
from esplab import TRANSFORMS  # noqa: E402

HOSTILE = {  # case -> text esp_check.py must give as the reason
    "replay": "not above the previous",
    "bad-icv": "does not verify",
    "truncated": "shorter than",
    "unknown-spi": "unknown SPI",
    "policy": "outside the selectors",
    "bad-padding": "is not 1,2,3",
}


def run(*args):
    return subprocess.run([PY] + list(args), capture_output=True, text=True)


def main():
    work = sys.argv[1]
    failures = []

    def expect_pass(what, r):
        if r.returncode != 0:
            failures.append("%s: expected PASS:\n%s%s" % (what, r.stdout, r.stderr))

    for tf in sorted(TRANSFORMS):
        d = os.path.join(work, tf)
        r = run(os.path.join(HERE, "gen_configs.py"), "--transform", tf, "--out", d)
        if r.returncode:
            failures.append("gen_configs %s: %s" % (tf, r.stderr))
            continue
        keys = os.path.join(d, "keys.json")
        pcap = os.path.join(d, "valid.pcap")
        run(os.path.join(HERE, "esp_gen.py"), "--keys", keys, "--plan", "valid:4", "--out", pcap)
        expect_pass("%s valid" % tf, run(os.path.join(HERE, "esp_check.py"), "--keys", keys,
                                         "--direction", "in", "--count", "4", "--first-seq",
                                         "1", "--tshark", pcap))
        # Hostile cases on one transform of each kind (AEAD, AES-CBC+SHA1, DES+MD5): they
        # exercise the checker's rules, which do not depend on the cipher.
        for case, reason in (HOSTILE.items() if tf in ("gcm128", "aes128-sha1", "des-md5")
                             else ()):
            hp = os.path.join(d, case + ".pcap")
            run(os.path.join(HERE, "esp_gen.py"), "--keys", keys, "--plan",
                "valid:1,%s:1" % case, "--out", hp)
            r = run(os.path.join(HERE, "esp_check.py"), "--keys", keys, "--direction", "in", hp)
            if r.returncode == 0 or reason not in r.stdout:
                failures.append("%s %s: expected a FAIL naming %r, got rc %d:\n%s"
                                % (tf, case, reason, r.returncode, r.stdout))
        # tshark must also see a bad ICV as bad.
        hp = os.path.join(d, "bad-icv.pcap")
        run(os.path.join(HERE, "esp_gen.py"), "--keys", keys, "--plan", "valid:1,bad-icv:1",
            "--out", hp)
        r = run(os.path.join(HERE, "esp_check.py"), "--keys", keys, "--direction", "in",
                "--tshark", hp)
        if "tshark: frame" not in r.stdout:
            failures.append("%s: tshark did not flag the bad ICV:\n%s" % (tf, r.stdout))

    # ESN across the 2^32 boundary, and NAT-T with keepalives, on two transforms.
    for tf in ("gcm128", "aes128-sha1"):
        d = os.path.join(work, tf)
        keys = os.path.join(d, "keys.json")
        doc = json.load(open(keys))
        for sa in doc["sas"]:
            sa["esn"] = True
        esn_keys = os.path.join(d, "keys-esn.json")
        json.dump(doc, open(esn_keys, "w"))
        pcap = os.path.join(d, "esn.pcap")
        run(os.path.join(HERE, "esp_gen.py"), "--keys", esn_keys, "--plan", "valid:4",
            "--start-seq", "0xfffffffe", "--out", pcap)
        expect_pass("%s ESN" % tf, run(os.path.join(HERE, "esp_check.py"), "--keys", esn_keys,
                                       "--direction", "in", "--count", "4", pcap))
        # The same packets checked as non-ESN must fail (the ICV covers the high bits).
        r = run(os.path.join(HERE, "esp_check.py"), "--keys", keys, "--direction", "in", pcap)
        if r.returncode == 0:
            failures.append("%s: ESN packets past 2^32 accepted without ESN" % tf)

        doc = json.load(open(keys))
        for sa in doc["sas"]:
            sa["udp_encap"] = {"sport": 4500, "dport": 4500}
        natt_keys = os.path.join(d, "keys-natt.json")
        json.dump(doc, open(natt_keys, "w"))
        pcap = os.path.join(d, "natt.pcap")
        run(os.path.join(HERE, "esp_gen.py"), "--keys", natt_keys, "--plan",
            "keepalive:1,valid:3,keepalive:1", "--out", pcap)
        expect_pass("%s NAT-T" % tf, run(os.path.join(HERE, "esp_check.py"), "--keys", natt_keys,
                                         "--direction", "in", "--count", "3", "--tshark", pcap))
        r = run(os.path.join(HERE, "esp_check.py"), "--keys", keys, "--direction", "in", pcap)
        if r.returncode == 0 or "UDP encapsulation present" not in r.stdout:
            failures.append("%s: UDP-encapsulated ESP accepted for a plain SA:\n%s"
                            % (tf, r.stdout))

    for f in failures:
        print("FAIL", f)
    if failures:
        sys.exit(1)
    print("PASS: ESP tools self-test (%d transforms, hostile cases, ESN, NAT-T)"
          % len(TRANSFORMS))


if __name__ == "__main__":
    main()
