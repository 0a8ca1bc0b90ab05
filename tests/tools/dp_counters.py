#!/usr/bin/python3
"""Read the JSON of `ipsec-dpctl counters --json` without depending on its exact nesting.

  dp_counters.py FILE sa SPI     prints "ENCAPS DECAPS" for the SA with that SPI
  dp_counters.py FILE drops      prints "REASON COUNT" per drop reason (summed over lcores)
  dp_counters.py FILE missed     prints the packets the ports lost before the dataplane read
                                 them (members "imissed" or "rx_missed", summed; 0 if none)

Expected content (the channel/config engineers own the format): somewhere an object with an
"spi" member (number, or "0x..." string) and members whose names contain "encap" and/or
"decap" (e.g. "pkts_encaps", "decaps"); and drop counters as objects whose members are the
reason names of dataplane::pipeline::DropReason::name() ("replay", "auth-failed", ...). Drops
are counted once per lcore (every drop has exactly one reason there), and may be repeated per
SA: objects under "lcores" win, then objects under a key containing "total", else all are summed.
(Today's format, dataplane::channel::CountersMsg: {"sas": [{"spi", "encaps", "decaps", ...,
"drops": {...}}], "lcores": [{"lcore", "rx", ..., "drops": {...}}]}.)
Exit 1 with the reason when the SA or any drop counter cannot be found.
"""
import json
import sys

REASONS = {"malformed", "unsupported", "fragment", "local-unhandled", "natt-keepalive",
           "no-route", "no-neighbour", "ttl-expired", "policy-discard", "no-sa",
           "plain-policy-violation", "unknown-spi", "replay", "auth-failed", "bad-padding",
           "policy-mismatch", "lifetime-expired", "too-big", "no-room", "handoff-full",
           "punt-full", "tx-full", "esp-other"}


def walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from walk(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (str(i),))


def as_int(v):
    if isinstance(v, str):
        return int(v, 0)
    return int(v)


def sa_counts(doc, spi):
    for _, d in walk(doc):
        if "spi" in d:
            try:
                if as_int(d["spi"]) != spi:
                    continue
            except (TypeError, ValueError):
                continue
            enc = [as_int(v) for k, v in d.items() if "encap" in k and isinstance(v, (int, str))]
            dec = [as_int(v) for k, v in d.items() if "decap" in k and isinstance(v, (int, str))]
            if enc or dec:
                return (max(enc) if enc else 0), (max(dec) if dec else 0)
    return None


def drops(doc):
    found = []
    for path, d in walk(doc):
        hits = {k: as_int(v) for k, v in d.items() if k in REASONS and isinstance(v, int)}
        if hits:
            found.append((path, hits))
    lcores = [h for p, h in found if "lcores" in p]
    total = [h for p, h in found if any("total" in x for x in p)]
    use = lcores or total[:1] or [h for _, h in found]
    out = {}
    for h in use:
        for k, v in h.items():
            out[k] = out.get(k, 0) + v
    return out


def main():
    doc = json.load(open(sys.argv[1]))
    if sys.argv[2] == "sa":
        c = sa_counts(doc, int(sys.argv[3], 0))
        if c is None:
            sys.exit("no per-SA counters for spi %s in the counters JSON" % sys.argv[3])
        print(*c)
    elif sys.argv[2] == "drops":
        d = drops(doc)
        if not d:
            sys.exit("no drop counters in the counters JSON")
        for k, v in sorted(d.items()):
            print(k, v)
    elif sys.argv[2] == "missed":
        print(sum(as_int(v) for _, d in walk(doc) for k, v in d.items()
                  if k in ("imissed", "rx_missed") and isinstance(v, int)))
    else:
        sys.exit("usage: dp_counters.py FILE sa SPI | drops | missed")


if __name__ == "__main__":
    main()
