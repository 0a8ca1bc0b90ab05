#!/usr/bin/python3
"""Writes benches/RESULTS.md and the plots in benches/plots/ from the latest run of each
benchmark: the JSON the benchmark scripts leave in benches/results/ and criterion's estimates.

    render_results.py [--results DIR] [--criterion DIR] [--out FILE] [--plots DIR]
    render_results.py criterion-snapshot --bench NAME --since TIME --out FILE [...]

Every benchmark gets a section: the command that produced its figures, when (UTC), the
machine and the load average at the start and the end (benches/lib.sh's bench_record puts
those in the JSON), its figures in tables, each figure's ratio to its reference (ours against
ipsec-secgw or charon, encap against raw AEAD, N tunnels against 4) and the issue's targets
with met / not met. A benchmark without results is listed as not run, with its command.
Results written before the scripts recorded their run are rendered with what they hold.

criterion-snapshot (run by benches/criterion.sh after each `cargo bench`) copies the
estimates criterion wrote since TIME for one bench into a JSON in benches/results/, so that
the run's figures sit beside its machine and load average.

Standard library only: python3 is all `make deps` needs to install for it.
"""

import argparse
import datetime
import glob
import json
import math
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The criterion benches of benches/benches/*.rs and the criterion groups each one defines
# (the first part of the group id: `esp/esp-gcm_128`, `seal/...`, `open/...`, `scale`).
CRITERION_GROUPS = {
    "esp": ("esp",),
    "crypto": ("seal", "open"),
    "scale": ("scale",),
}

# The command each benchmark runs with in `make bench` (shown when a bench has not run, or
# when its results do not say how they were produced).
COMMANDS = {
    "esp": "benches/criterion.sh esp",
    "crypto": "benches/criterion.sh crypto",
    "scale": "benches/criterion.sh scale",
    "throughput": "benches/throughput.sh 5",
    "crypto-ceiling": "benches/crypto-ceiling.sh",
    "ike-setup": "benches/ike-setup.sh",
    "sa-install": "benches/sa-install.sh 3",
    "trafficgen": "benches/trafficgen.sh",
}
NEEDS = {
    "esp": "no root",
    "crypto": "no root",
    "scale": "no root",
    "throughput": "root and `make build`",
    "crypto-ceiling": "root and `make build`",
    "ike-setup": "root, `make build` and strongSwan (`make deps`)",
    "sa-install": "root and `make build`",
    "trafficgen": "root and `make build`",
}

# Reference tunnel count of the scale targets.
REFERENCE_TUNNELS = 4


# --- small helpers -----------------------------------------------------------------------------


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def utc(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)


def parse_time(s):
    """An ISO time as bench_record writes it (2026-12-02T14:27:09Z) -> aware datetime."""
    if not s:
        return None
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc
    )


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def span(start, end):
    """`2026-12-02 14:33:10 to 14:36:02 UTC` (the date once when both are on one day)."""
    if start and end:
        if start.date() == end.date():
            return "%s to %s UTC" % (start.strftime("%Y-%m-%d %H:%M:%S"), end.strftime("%H:%M:%S"))
        return "%s to %s UTC" % (
            start.strftime("%Y-%m-%d %H:%M:%S"),
            end.strftime("%Y-%m-%d %H:%M:%S"),
        )
    one = start or end
    return one.strftime("%Y-%m-%d %H:%M:%S UTC") if one else "not recorded"


def num(v, digits=2):
    return "-" if v is None else "%.*f" % (digits, v)


def grouped(v, digits=0):
    """1,068 / 33,776: thousands separated, as the tables have always had them."""
    return "-" if v is None else "{:,.{}f}".format(v, digits)


def ns(v):
    if v is None:
        return "-"
    if v < 100:
        return "%.1f ns" % v
    return "%s ns" % grouped(v)


def mpps(pps):
    return "-" if pps is None else "%.2f" % (pps / 1e6)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def size_key(size):
    """Packet sizes in numeric order, named ones (imix) after them."""
    s = str(size)
    return (0, int(s), "") if s.isdigit() else (1, 0, s)


def rows_of(data, key="rows"):
    """A bench's list of records: the JSON itself before bench_record, data[key] since."""
    if isinstance(data, list):
        return data
    return data.get(key) or []


class Target:
    """One of the issues' targets, judged on one run's figures. `met` is None when there is
    nothing to judge: the bench did not run (`ran` false), or its run lacks the figure."""

    def __init__(self, bench, text, source, figure, met, ran):
        self.bench, self.text, self.source, self.figure = bench, text, source, figure
        self.met, self.ran = met, ran

    def verdict(self):
        if self.met is None:
            return "not measured" if self.ran else "not run"
        return "**met**" if self.met else "**not met**"


class Report:
    """What the sections produce: markdown lines, targets, plots."""

    def __init__(self, results, criterion, out, plots):
        self.results, self.criterion, self.out, self.plots = results, criterion, out, plots
        self.targets = []
        self.plot_files = {}

    def target(self, bench, text, source, figure, met, ran=True):
        t = Target(bench, text, source, figure, met, ran)
        self.targets.append(t)
        return t

    def plot(self, name, svg):
        """Keeps an SVG for writing; returns the markdown image line that shows it."""
        self.plot_files[name] = svg
        rel = os.path.relpath(os.path.join(self.plots, name), os.path.dirname(self.out))
        return "![%s](%s)" % (name, rel)


# --- the run: command, time, machine, load --------------------------------------------------


def machine_text(m):
    parts = []
    if m.get("cpu_model"):
        cpu = m["cpu_model"]
        if m.get("cpu_flags"):
            cpu += " (%s)" % ", ".join(m["cpu_flags"])
        parts.append(cpu)
    if m.get("cpus"):
        parts.append("%d CPUs" % m["cpus"])
    if m.get("memory_kib"):
        parts.append("%.1f GiB" % (m["memory_kib"] / 1024 / 1024))
    if m.get("kernel"):
        parts.append("Linux " + m["kernel"])
    if m.get("os"):
        parts.append(m["os"])
    if m.get("rustc"):
        parts.append(m["rustc"])
    return ", ".join(parts)


def legacy_run(name, data, path):
    """What results written before bench_record say about their run (often nothing)."""
    run = {}
    if name == "ike-setup" and isinstance(data, dict):
        run["finished"] = data.get("date")
        run["machine"] = data.get("machine") or {}
        runs = [r for x in data.get("runs", []) for r in (x.get("ours"), x.get("charon")) if r]
        if runs:
            run["load_start"] = runs[0].get("load_before")
            run["load_end"] = runs[-1].get("load_after")
    elif name == "sa-install" and isinstance(data, dict) and data.get("load_average"):
        run["load_note"] = "%s (read once, after the install-rate part)" % data["load_average"]
    elif name == "trafficgen":
        # trafficgen.md's last line:
        # Command: `...`, DATE UTC, CPU, N CPUs, load average ... at the end.
        md = os.path.join(os.path.dirname(path), "trafficgen.md")
        try:
            text = open(md).read()
        except OSError:
            text = ""
        m = re.search(
            r"Command: `([^`]*)`, (\d{4}-\d\d-\d\d \d\d:\d\d) UTC, (.*), (\d+) CPUs, "
            r"load average ([\d. ]+) at the end",
            text,
        )
        if m:
            run["command"] = m.group(1)
            run["finished_minute"] = m.group(2)
            run["machine"] = {"cpu_model": m.group(3), "cpus": int(m.group(4))}
            run["load_end"] = m.group(5).strip()
        # the script runs encap then decap for each tunnel count in turn
        runs = sorted(rows_of(data, "runs"),
                      key=lambda r: (r["tunnels"], r["workers"], r["mode"] != "encap"))
        if runs:
            run["load_start"] = "%.2f (1 min only)" % runs[0]["loadavg_start"]
    return run


def run_lines(name, run, path, recorded):
    """The bullet list under a section's title."""
    lines = []
    command = run.get("command")
    if command:
        lines.append("- Command: `%s` (needs %s)" % (command, NEEDS[name]))
    else:
        lines.append(
            "- Command: not recorded (results from before benches/lib.sh recorded it); "
            "`%s` runs it now (needs %s)" % (COMMANDS[name], NEEDS[name])
        )
    start, end = parse_time(run.get("started")), parse_time(run.get("finished"))
    if start or end:
        when = span(start, end)
    elif run.get("finished_minute"):
        when = "%s UTC (end)" % run["finished_minute"]
    else:
        when = "not recorded; the results file was written %s" % utc(
            os.path.getmtime(path)
        ).strftime("%Y-%m-%d %H:%M:%S UTC")
    if run.get("commit"):
        when += ", commit %s" % run["commit"]
    lines.append("- Ran: " + when)
    m = machine_text(run.get("machine") or {})
    lines.append("- Machine: " + (m if m else "not recorded"))
    if run.get("load_start") or run.get("load_end"):
        lines.append(
            "- Load average (1, 5, 15 min): %s at the start, %s at the end"
            % (run.get("load_start") or "not recorded", run.get("load_end") or "not recorded")
        )
    elif run.get("load_note"):
        lines.append("- Load average (1, 5, 15 min): " + run["load_note"])
    else:
        lines.append("- Load average: not recorded")
    if not recorded:
        lines.append(
            "- These results predate the run record (benches/lib.sh's bench_record): what is "
            "not in them is marked not recorded."
        )
    return lines


def failed_note(results, name, data_time):
    """A line when `make bench` saw the bench fail after the run these figures come from."""
    marker = load_json(os.path.join(results, name + ".failed"))
    if not marker:
        return []
    when = parse_time(marker.get("finished"))
    if data_time and when and when <= data_time:
        return []
    return [
        "",
        "**The latest attempt failed** (%s, `%s`, exit %s): the figures below are from the run "
        "before it." % (span(None, when), marker.get("command", "?"), marker.get("exit", "?")),
    ]


def not_run(report, name):
    criterion = name in CRITERION_GROUPS
    marker = "criterion-" + name if criterion else name
    return [
        "Not run: no results in benches/results/%s. Run it with `%s` (needs %s), then "
        "`make bench-report`. Earlier runs, where there were any, are quoted in NOTES.md."
        % (" nor in criterion's directory" if criterion else "", COMMANDS[name], NEEDS[name])
    ] + failed_note(report.results, marker, None)


def bench_results(report, name, filename=None):
    """(data, run, path, recorded, header lines) of a script bench, or None when not run."""
    path = os.path.join(report.results, filename or name + ".json")
    data = load_json(path)
    if data is None:
        return None
    run = data.get("run") if isinstance(data, dict) else None
    recorded = run is not None
    if not recorded:
        run = legacy_run(name, data, path)
    header = run_lines(name, run, path, recorded)
    end = parse_time(run.get("finished")) or utc(os.path.getmtime(path))
    header += failed_note(report.results, name, end)
    return data, run, path, recorded, header


# --- criterion ---------------------------------------------------------------------------------


def criterion_entries(criterion_dir, groups, since=None):
    """The estimates of the benchmarks whose group starts with one of `groups`, from
    criterion's `<id>/new/{benchmark,estimates}.json`; only those written at or after `since`
    (a timestamp) when given."""
    entries = []
    pattern = os.path.join(criterion_dir, "**", "new", "benchmark.json")
    for bpath in glob.glob(pattern, recursive=True):
        b = load_json(bpath)
        epath = os.path.join(os.path.dirname(bpath), "estimates.json")
        est = load_json(epath)
        if not b or not est or b.get("group_id", "").split("/")[0] not in groups:
            continue
        mtime = os.path.getmtime(epath)
        if since is not None and mtime < since:
            continue
        # criterion's own headline figure: the slope of time over iterations when it sampled
        # linearly, the mean otherwise
        typical = est.get("slope") or est["mean"]
        # an iteration of several elements (a burst of frames) is reported per element
        per = (b.get("throughput") or {}).get("Elements") or 1
        entries.append(
            {
                "group": b["group_id"],
                "function": b.get("function_id"),
                "value": b.get("value_str"),
                "ns": typical["point_estimate"] / per,
                "ns_low": typical["confidence_interval"]["lower_bound"] / per,
                "ns_high": typical["confidence_interval"]["upper_bound"] / per,
                "written": iso(utc(mtime)),
            }
        )
    entries.sort(key=lambda e: (e["group"], e["function"] or "", e["value"] or ""))
    return entries


def criterion_results(report, name):
    """(entries, run, recorded, header lines, summary) of a criterion bench, or None.

    The latest run is benches/criterion.sh's snapshot (which has the machine) unless
    criterion's directory holds estimates written after it (a `cargo bench` run directly)."""
    spath = os.path.join(report.results, "criterion-%s.json" % name)
    snap = load_json(spath)
    direct = criterion_entries(report.criterion, CRITERION_GROUPS[name])
    if snap is not None:
        end = parse_time(snap["run"]["finished"]) if "run" in snap else utc(os.path.getmtime(spath))
        newer = [e for e in direct if parse_time(e["written"]) > end]
        if not newer:
            run = snap.get("run") or {}
            header = run_lines(name, run, spath, "run" in snap)
            header += failed_note(report.results, "criterion-" + name, end)
            return snap.get("entries") or [], run, True, header, snap.get("summary")
        direct = newer
    if not direct:
        return None
    written = sorted(e["written"] for e in direct)
    run = {"started": written[0], "finished": written[-1]}
    header = run_lines(name, run, report.criterion, True)
    header[0] = (
        "- Command: `cargo bench -p benches --bench %s` or a part of it, run directly: its "
        "machine and load average were not recorded (`%s` records them)" % (name, COMMANDS[name])
    )
    where = report.criterion
    if os.path.abspath(where).startswith(ROOT + os.sep):
        where = os.path.relpath(where, ROOT)
    header[1] = "- Ran: estimates written %s (criterion's files in %s)" % (
        span(parse_time(written[0]), parse_time(written[-1])),
        where,
    )
    summary = None
    if name == "scale":
        summary = load_json(os.path.join(report.results, "scale-summary.json"))
    return direct, run, False, header, summary


def by_key(entries):
    return {(e["group"], e["function"], e["value"]): e["ns"] for e in entries}


def label(group):
    """`esp/esp-gcm_128` -> `esp-gcm 128`."""
    return group.split("/", 1)[-1].replace("_", " ")


def section_esp(report):
    lines = []
    got = criterion_results(report, "esp")
    targets = [
        (64, 2.0, "(encap - reset) / raw seal at 64 B <= 2.0, every transform", "issue 2"),
        (1420, 1.2, "(encap - reset) / raw seal at 1420 B <= 1.2, every transform", "issue 2"),
    ]
    if got is None:
        for _, _, text, source in targets:
            report.target("esp", text, source, "-", None, ran=False)
        return lines + not_run(report, "esp")
    entries, _, _, header, _ = got
    lines += header + [
        "",
        "Per packet, inner IPv4 packet sizes, tunnel mode with an IPv4 outer header, each "
        "transform's default backend. \"raw seal\" is the same backend's seal over the same ESP "
        "bytes; encap and decap go over bursts of 32 buffers, each burst first reset (a memcpy "
        "of each packet, measured alone as \"reset\", which the dataplane does not do) and "
        "then processed, as the dataplane meets frames received a burst earlier; so "
        "(encap - reset) / raw is the ratio the targets are about. Before 2026-12-03 07:50 UTC "
        "each buffer was reset just before its own encap, and the cipher's load of the payload "
        "waited for the reset's stores. criterion's estimate (slope, or mean), per packet.",
        "",
        "| transform | size | raw seal | encap | decap | reset | encap / raw | "
        "(encap - reset) / raw | (decap - reset) / raw |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    k = by_key(entries)
    groups = sorted({e["group"] for e in entries})
    worst = {64: None, 1420: None}
    gcm128 = {}
    plot_cats, plot_enc, plot_dec = [], [], []
    for g in groups:
        sizes = sorted({int(e["value"]) for e in entries if e["group"] == g and e["value"]})
        for size in sizes:
            v = str(size)
            raw, enc, dec, rst = (
                k.get((g, f, v)) for f in ("raw-seal", "encap", "decap", "reset-only")
            )
            net = ratio(enc - rst, raw) if enc is not None and rst is not None else None
            dnet = ratio(dec - rst, raw) if dec is not None and rst is not None else None
            lines.append(
                "| %s | %d | %s | %s | %s | %s | %s | %s | %s |"
                % (label(g), size, ns(raw), ns(enc), ns(dec), ns(rst), num(ratio(enc, raw)),
                   num(net), num(dnet))
            )
            if size in worst and net is not None:
                if worst[size] is None or net > worst[size][0]:
                    worst[size] = (net, label(g))
            if label(g) == "esp-gcm 128" and net is not None:
                gcm128[size] = net
            plot_cats.append("%s %d" % (label(g), size))
            plot_enc.append(net)
            plot_dec.append(dnet)
    lines.append("")
    for size, limit, text, source in targets:
        w = worst[size]
        t = report.target(
            "esp", text, source,
            "worst %.2f (%s)" % w if w else "-",
            (w[0] <= limit) if w else None,
        )
        lines.append("- Target: %s: %s (%s)" % (text, t.verdict(), t.figure))
    # issue 5's targets are for the transform its dataplane figures are given in
    for size, limit in ((64, 1.5), (1420, 1.1)):
        text = "esp-gcm 128: (encap - reset) / raw seal at %d B <= %.1f" % (size, limit)
        v = gcm128.get(size)
        t = report.target("esp", text, "issue 5", "%.2f" % v if v is not None else "-",
                          (v <= limit) if v is not None else None)
        lines.append("- Target: %s: %s (%s)" % (text, t.verdict(), t.figure))
    if plot_cats:
        lines += [
            "",
            report.plot(
                "esp.svg",
                svg_bars(
                    "ESP work over raw AEAD, per packet (criterion)",
                    "ratio to raw seal",
                    plot_cats,
                    [("(encap - reset) / raw", plot_enc), ("(decap - reset) / raw", plot_dec)],
                    hlines=[(1.0, "raw"), (1.2, "1.2"), (2.0, "2.0")],
                ),
            ),
        ]
    return lines


def section_crypto(report):
    lines = []
    got = criterion_results(report, "crypto")
    if got is None:
        return lines + not_run(report, "crypto")
    entries, _, _, header, _ = got
    lines += header + [
        "",
        "ns per packet at 64 / 1420 bytes of payload, per backend; the fastest in each row is in "
        "bold, the others carry their ratio to it. `crypto::default_backend` picks the fastest "
        "correct backend per transform. \"open\" includes a memcpy restoring the sealed bytes.",
    ]
    for op in ("seal", "open"):
        mine = [e for e in entries if e["group"].split("/")[0] == op]
        if not mine:
            continue
        backends = sorted({e["function"] for e in mine})
        groups = []
        for e in mine:
            if e["group"] not in groups:
                groups.append(e["group"])
        lines += ["", "%s:" % op, "", "| transform | " + " | ".join(backends) + " |",
                  "|---|" + "---|" * len(backends)]
        k = by_key(mine)
        for g in groups:
            sizes = sorted({int(e["value"]) for e in mine if e["group"] == g})
            best = {}
            for s in sizes:
                vals = [k[(g, b, str(s))] for b in backends if (g, b, str(s)) in k]
                best[s] = min(vals) if vals else None
            cells = []
            for b in backends:
                vals = [k.get((g, b, str(s))) for s in sizes]
                if all(v is None for v in vals):
                    cells.append("-")
                    continue
                text = " / ".join(grouped(v) if v is not None else "-" for v in vals)
                fastest = all(v is not None and v == best[s] for v, s in zip(vals, sizes))
                if fastest:
                    cells.append("**%s**" % text)
                else:
                    rs = " / ".join(
                        num(ratio(v, best[s])) for v, s in zip(vals, sizes)
                    )
                    cells.append("%s (%s x)" % (text, rs))
            lines.append("| %s | %s |" % (label(g), " | ".join(cells)))
    return lines


def section_scale(report):
    lines = []
    got = criterion_results(report, "scale")
    if got is None:
        return lines + not_run(report, "scale")
    entries, _, _, header, summary = got
    lines += header + [
        "",
        "Tunnel i protects 10.0.0.0/8 -> its spoke's /24 behind one deny line, as a crypto map "
        "with one entry per spoke compiles; each measured packet goes to another tunnel, in a "
        "shuffled order (traffic does not arrive in the order the SAs were installed). ns per "
        "packet; in brackets the ratio to %d tunnels. spd: the outbound SPD lookup "
        "(indexed); spd-linear: the rule-by-rule reference it replaced; sa-out / sa-in: the "
        "outbound SA by id, the inbound SA by SPI; encap-64: classification, SPD, SA and ESP "
        "encapsulation of a 64-byte packet (AES-128-GCM), one at a time; burst-64: the same "
        "frames through the worker's pipeline 32 at a time (per frame), which prefetches each "
        "frame's SA and key schedule a pass ahead." % REFERENCE_TUNNELS,
        "",
    ]
    functions = [f for f in ("spd", "spd-linear", "sa-out", "sa-in", "encap-64", "burst-64")
                 if any(e["function"] == f for e in entries)]
    k = by_key(entries)
    tunnels = sorted({int(e["value"]) for e in entries if e["value"]})
    if functions:
        lines += ["criterion:", "", "| tunnels | " + " | ".join(functions) + " |",
                  "|---|" + "---|" * len(functions)]
        for n in tunnels:
            cells = []
            for f in functions:
                v = k.get(("scale", f, str(n)))
                r = ratio(v, k.get(("scale", f, str(REFERENCE_TUNNELS))))
                cells.append("-" if v is None else ns(v) + (" (%.2f)" % r if r else ""))
            lines.append("| %s | %s |" % (grouped(n), " | ".join(cells)))
        series = []
        for f in functions:
            ref = k.get(("scale", f, str(REFERENCE_TUNNELS)))
            series.append((f, [ratio(k.get(("scale", f, str(n))), ref) for n in tunnels]))
        lines += [
            "",
            report.plot(
                "scale.svg",
                svg_lines(
                    "Cost per packet against the tunnel count (criterion)",
                    "tunnels (2 SAs each)",
                    "ratio to %d tunnels" % REFERENCE_TUNNELS,
                    [grouped(n) for n in tunnels],
                    series,
                    hlines=[(1.0, "%d tunnels" % REFERENCE_TUNNELS)],
                ),
            ),
        ]
    if summary:
        rows = summary.get("rows") or []
        ref = next((r for r in rows if r["tunnels"] == summary.get("reference_tunnels")), None)
        lines += [
            "",
            "The bench's own summary (the best of a few timed passes over every tunnel, in a "
            "shuffled order, before criterion runs; "
            "load average %s at its start, %s at its end):"
            % (summary.get("load_start") or "not recorded",
               summary.get("load_end") or "not recorded"),
            "",
            "| tunnels | SPD lookup | SA out | SA in | encap 64 B incl. classify, one at a time "
            "| the same through the pipeline, 32 per burst | SPD build |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            cells = []
            for key in ("spd_ns", "sa_out_ns", "sa_in_ns", "encap_64_ns", "burst_64_ns"):
                if r.get(key) is None:
                    cells.append("not measured")
                    continue
                q = ratio(r[key], ref[key]) if ref and ref.get(key) else None
                cells.append(ns(r[key]) + (" (%.2f)" % q if q else ""))
            lines.append("| %s | %s | %.2f ms |" % (grouped(r["tunnels"]), " | ".join(cells),
                                                     r["spd_build_ms"]))
        growth = summary.get("rss_growth_kib")
        lines += [
            "",
            "Memory: `Sa` is %s bytes; the shard's tables %s bytes per SA; %s SAs grew the "
            "bench's RSS by %s; the SPD of %s rules takes %s bytes per rule."
            % (grouped(summary["sa_struct_bytes"]), grouped(summary["shard_table_bytes_per_sa"]),
               grouped(summary["rss_sas"]),
               "%s KiB, %s bytes per SA (expanded keys and tables included)"
               % (grouped(growth), grouped(growth * 1024 / summary["rss_sas"]))
               if growth is not None else "an unknown amount (no /proc/self/status)",
               grouped(summary["spd_rules"]), grouped(summary["spd_bytes_per_rule"])),
        ]
        lines += heap_comparison(report, summary)
    elif got[2]:
        lines += ["", "The bench's summary was not captured (benches/results/scale-summary.json "
                  "is missing from this run)."]
    return lines


def heap_comparison(report, summary):
    """The scale summary on the default heap against the same on 2 MB pages (same run)."""
    snap = load_json(os.path.join(report.results, "criterion-scale.json")) or {}
    huge = snap.get("summary_hugepages")
    if not huge:
        return ["", "The summary on a heap of 2 MB pages did not run with this one "
                "(benches/criterion.sh runs it as root)."]
    small = {r["tunnels"]: r for r in summary.get("rows") or []}
    lines = [
        "",
        "The same summary with the bench's heap on %s kB pages (GLIBC_TUNABLES=glibc.malloc."
        "hugetlb=2, as the dataplane's systemd unit starts it), run right after the one above "
        "on %s kB pages; ns per packet:" % (huge.get("heap_page_kib") or "?",
                                            summary.get("heap_page_kib") or "?"),
        "",
        "| tunnels | burst-64 on %s kB | on %s kB | ratio | to %d tunnels on %s kB |"
        % (summary.get("heap_page_kib") or "?", huge.get("heap_page_kib") or "?",
           REFERENCE_TUNNELS, huge.get("heap_page_kib") or "?"),
        "|---|---|---|---|---|",
    ]
    rows = huge.get("rows") or []
    ref = next((r for r in rows if r["tunnels"] == huge.get("reference_tunnels")), None)
    for r in rows:
        s = small.get(r["tunnels"])
        a, b = (s or {}).get("burst_64_ns"), r.get("burst_64_ns")
        q = ratio(b, a)
        to_ref = ratio(b, (ref or {}).get("burst_64_ns"))
        lines.append("| %s | %s | %s | %s | %s |" % (
            grouped(r["tunnels"]), ns(a) if a else "-", ns(b) if b else "-",
            "%.2f" % q if q else "-", "%.2f" % to_ref if to_ref else "-"))
    return lines


# --- the script benches --------------------------------------------------------------------


def section_throughput(report):
    lines = []
    got = bench_results(report, "throughput")
    targets = [
        ("ipsec-dataplane >= 3 Mpps per worker at 64 B (encap and decap)", "issue 2"),
        ("ipsec-dataplane >= 12 Gbps per worker at 1420 B (encap and decap)", "issue 2"),
        ("at least as fast as ipsec-secgw in the same run, every row", "issue 2"),
        ("1.5 x ipsec-secgw at 64 B (encap and decap)", "issue 5"),
        ("ipsec-dataplane >= 5 Mpps per worker at 64 B (encap and decap)", "issue 5"),
        ("ipsec-dataplane >= 25 Gbps per worker at 1420 B (encap and decap)", "issue 5"),
        ("decap within 10 % of encap, each size (decap / encap >= 0.9)", "issue 5"),
    ]
    if got is None:
        for text, source in targets:
            report.target("throughput", text, source, "-", None, ran=False)
        return lines + not_run(report, "throughput")
    data, _, _, _, header = got
    rows = rows_of(data)
    lines += header + [
        "",
        "One worker lcore for each gateway; input port `net_pcap` replaying 256 flows forever, "
        "output port `net_null`; esp-gcm 128 tunnel mode, IPv4; rate = output port opackets "
        "(DPDK telemetry) over the measured seconds; the two gateways alternate and each one's "
        "best round counts. Our worker's cycles per packet come from its counters over the same "
        "seconds: all of them, and in brackets the pipeline's part, the rest being the ports' "
        "bursts (net_pcap's rx copies each packet). ipsec-secgw 22.11 (librte_ipsec, cpu-crypto on crypto_aesni_gcm). "
        "Sizes are inner IP packet sizes; Gbps counts those bytes.",
        "",
        "| direction | size | ipsec-dataplane Mpps | Gbps | worker cycles per packet (pipeline) "
        "| ipsec-secgw Mpps | Gbps | ours / secgw |",
        "|---|---|---|---|---|---|---|---|",
    ]
    gbps = lambda pps, size: pps * size * 8 / 1e9
    for r in rows:
        o, s, size = r["ours_pps"], r["secgw_pps"], int(r["size"])
        cycles = ("%d (%d)" % (r["ours_cycles_per_packet"], r["ours_pipeline_cycles_per_packet"])
                  if r.get("ours_cycles_per_packet") else "-")
        lines.append(
            "| %s | %d | %s | %.1f | %s | %s | %.1f | %s |"
            % (r["direction"], size, mpps(o), gbps(o, size), cycles, mpps(s), gbps(s, size),
               num(ratio(o, s)))
        )
    small = [r for r in rows if int(r["size"]) == 64]
    large = [r for r in rows if int(r["size"]) == 1420]
    figures = []

    def judge(text, source, picked, value, limit, fmt):
        if not picked:
            t = report.target("throughput", text, source, "-", None)
        else:
            v = value(picked)
            t = report.target("throughput", text, source, fmt % v, v >= limit)
        figures.append("- Target: %s: %s (%s)" % (text, t.verdict(), t.figure))

    judge(*targets[0], small, lambda rs: min(r["ours_pps"] for r in rs) / 1e6, 3.0,
          "lowest %.2f Mpps")
    judge(*targets[1], large, lambda rs: min(gbps(r["ours_pps"], 1420) for r in rs), 12.0,
          "lowest %.1f Gbps")
    judge(*targets[2], rows, lambda rs: min(ratio(r["ours_pps"], r["secgw_pps"]) or 0 for r in rs),
          1.0, "lowest ratio %.2f")
    judge(*targets[3], small, lambda rs: min(ratio(r["ours_pps"], r["secgw_pps"]) or 0 for r in rs),
          1.5, "lowest ratio %.2f")
    judge(*targets[4], small, lambda rs: min(r["ours_pps"] for r in rs) / 1e6, 5.0,
          "lowest %.2f Mpps")
    judge(*targets[5], large, lambda rs: min(gbps(r["ours_pps"], 1420) for r in rs), 25.0,
          "lowest %.1f Gbps")

    def decap_over_encap(rs):
        by = {(r["direction"], int(r["size"])): r["ours_pps"] for r in rs}
        sizes = sorted({int(r["size"]) for r in rs})
        return min(ratio(by.get(("decap", z)), by.get(("encap", z))) or 0 for z in sizes)

    judge(*targets[6], [r for r in rows if r["direction"] == "decap"] and rows,
          decap_over_encap, 0.9, "lowest %.2f")
    lines += [""] + figures
    if rows:
        cats = ["%s %d" % (r["direction"], int(r["size"])) for r in rows]
        lines += [
            "",
            report.plot(
                "throughput.svg",
                svg_bars(
                    "ipsec-dataplane and ipsec-secgw, one worker lcore, esp-gcm 128",
                    "Mpps",
                    cats,
                    [("ipsec-dataplane", [r["ours_pps"] / 1e6 for r in rows]),
                     ("ipsec-secgw", [r["secgw_pps"] / 1e6 for r in rows])],
                ),
            ),
        ]
    return lines


def section_crypto_ceiling(report):
    lines = []
    got = bench_results(report, "crypto-ceiling")
    text = ("dataplane encap at 1420 B >= 90 % of the crypto ceiling: crypto-perf aesni_gcm "
            "cycles per op / the worker's pipeline cycles per packet (ports' bursts left out)")
    text_e2e = ("dataplane encap at 1420 B >= 90 % of crypto-perf's rate, end to end on "
                "net_pcap (its copy of every packet included)")
    source = "issue 5 (DESIGN.md's aim)"
    if got is None:
        report.target("crypto-ceiling", text, source, "-", None, ran=False)
        report.target("crypto-ceiling", text_e2e, source, "-", None, ran=False)
        return lines + not_run(report, "crypto-ceiling")
    data, _, _, _, header = got
    rows = rows_of(data)
    lines += header + [
        "",
        "AES-128-GCM encryption alone on lcore 1, no packet I/O: DPDK's dpdk-test-crypto-perf "
        "with crypto_aesni_gcm (burst 32), and raw-aead, this project's default backend sealing "
        "ESP packets of the same inner sizes; best of the rounds. The dataplane's encap rate is "
        "from benches/results/throughput.json %s."
        % (
            "(the run of %s)" % span(parse_time(data["throughput_run"]["started"]),
                                     parse_time(data["throughput_run"]["finished"]))
            if isinstance(data, dict) and data.get("throughput_run")
            else "when it existed at the time (its run is not recorded)"
        ),
        "",
        "The last two columns compare cycles instead of rates: crypto-perf's TSC cycles per "
        "operation against the dataplane worker's TSC cycles per packet spent in its pipeline "
        "(classification, policy and SA, ESP, the crypto, routing), read from its counters "
        "over the same seconds as the rate; the rest of the worker's cycles went to the ports' "
        "rx and tx bursts, where net_pcap copies every replayed packet into a fresh mbuf, which "
        "crypto-perf (no I/O) does not do and a NIC's DMA does not either. The copy also leaves "
        "the packet in the cache, which a NIC's DMA may not.",
        "",
        "| size | crypto-perf Mops | Gbps | cycles/op | raw-aead Mops | Gbps | "
        "raw-aead / crypto-perf | dataplane encap Mpps | encap / raw-aead | "
        "encap / crypto-perf | dataplane pipeline cycles/packet | "
        "crypto-perf cycles / pipeline cycles |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    big, big_cycles = None, None
    for r in rows:
        cp, raw, dp = r["crypto_perf"], r["raw_aead"], r.get("dataplane_encap_mpps")
        pipe = r.get("dataplane_pipeline_cycles")
        cycles = ratio(cp.get("cycles_per_op"), pipe) if pipe else None
        lines.append(
            "| %d | %.2f | %.1f | %s | %.2f (%s) | %.1f | %s | %s | %s | %s | %s | %s |"
            % (r["size"], cp["mops"], cp["gbps"],
               "%.0f" % cp["cycles_per_op"] if cp.get("cycles_per_op") else "-",
               raw["mops"], raw.get("backend", "?"),
               raw["gbps"], num(ratio(raw["mops"], cp["mops"])), num(dp),
               num(ratio(dp, raw["mops"])), num(ratio(dp, cp["mops"])),
               pipe or "-", num(cycles))
        )
        if r["size"] == 1420:
            big, big_cycles = ratio(dp, cp["mops"]), cycles
    t = report.target("crypto-ceiling", text, source,
                      "%.2f" % big_cycles if big_cycles is not None else "no pipeline figure",
                      (big_cycles >= 0.9) if big_cycles is not None else None)
    e = report.target("crypto-ceiling", text_e2e, source,
                      "%.2f" % big if big is not None else "no dataplane figure",
                      (big >= 0.9) if big is not None else None)
    lines += ["", "- Target: %s: %s (%s)" % (text, t.verdict(), t.figure),
              "- Target: %s: %s (%s)" % (text_e2e, e.verdict(), e.figure)]
    return lines


def section_ike_setup(report):
    lines = []
    got = bench_results(report, "ike-setup")
    targets = [
        ("1,000 spokes from nothing to all carrying traffic in < 5 s", "issue 5"),
        (">= 500 tunnels/s", "issue 5"),
        ("more tunnels/s than charon in the same run, every tunnel count", "issue 5"),
    ]
    if got is None:
        for t, s in targets:
            report.target("ike-setup", t, s, "-", None, ran=False)
        return lines + not_run(report, "ike-setup")
    data, _, _, _, header = got
    lines += header + [
        "",
        "ipsec-ikeload brings up N tunnels from N addresses (%s; concurrency window %s) against "
        "ipsec-dataplane + ipsec-control (a hub with a dynamic crypto map, CRL checking), then "
        "against strongSwan's charon (kernel-libipsec, the same certificates and proposals); "
        "every tunnel must carry an ESP probe to a sink in the responder's LAN. Tunnels/s = "
        "phase 2 SAs / time of the last one; \"all carrying traffic\" = the last probe's "
        "arrival. The generator shares the machine's cores with the responder. Our hub's "
        "dataplane worker: rx_mode %s (%s)."
        % (data.get("load", "?"), data.get("window", "?"), data.get("hub_rx_mode", "polling"),
           "it sleeps when its queues are empty, leaving its core to IKE"
           if data.get("hub_rx_mode") == "adaptive" else "it keeps one core polling"),
        "",
        "| spokes | responder | tunnels/s | first phase 2 (s) | last phase 2 (s) | "
        "all carrying traffic (s) | failures | retransmissions | load average before / after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    runs = data.get("runs", [])
    cats, ours_rate, charon_rate = [], [], []
    for x in runs:
        for r in (x.get("ours"), x.get("charon")):
            if not r:
                continue
            lines.append(
                "| %s | %s | %s | %s | %s | %s | %d | %s | %s / %s |"
                % (grouped(x["spokes"]), r["responder_label"], num(r["tunnels_per_s"], 1),
                   num(r["first_phase2_s"]), num(r["last_phase2_s"]),
                   num(r["all_carrying_traffic_s"]), sum(r["failures"].values()),
                   r.get("retransmissions", "-"), r.get("load_before", "-"),
                   r.get("load_after", "-"))
            )
        q = ratio((x.get("ours") or {}).get("tunnels_per_s"),
                  (x.get("charon") or {}).get("tunnels_per_s"))
        lines.append("| %s | **ours / charon** | **%s x** | | | | | | |"
                     % (grouped(x["spokes"]), num(q)))
        cats.append("%s spokes" % grouped(x["spokes"]))
        ours_rate.append((x.get("ours") or {}).get("tunnels_per_s"))
        charon_rate.append((x.get("charon") or {}).get("tunnels_per_s"))
    by_n = {x["spokes"]: x for x in runs}
    ours_1000 = (by_n.get(1000) or {}).get("ours")
    figs = []
    t = report.target("ike-setup", targets[0][0], targets[0][1],
                      "%.2f s" % ours_1000["all_carrying_traffic_s"]
                      if ours_1000 and ours_1000.get("all_carrying_traffic_s") is not None
                      else "no 1,000-spoke run of ours",
                      (ours_1000["all_carrying_traffic_s"] < 5.0
                       and ours_1000["carrying_traffic"] == 1000)
                      if ours_1000 and ours_1000.get("all_carrying_traffic_s") is not None
                      else None)
    figs.append(t)
    largest = max((x for x in runs if x.get("ours")), key=lambda x: x["spokes"], default=None)
    if largest:
        v = largest["ours"]["tunnels_per_s"]
        t = report.target("ike-setup", targets[1][0], targets[1][1],
                          "%.1f at %s spokes" % (v or 0, grouped(largest["spokes"])),
                          (v or 0) >= 500)
    else:
        t = report.target("ike-setup", targets[1][0], targets[1][1], "-", None)
    figs.append(t)
    qs = [ratio((x.get("ours") or {}).get("tunnels_per_s"),
                (x.get("charon") or {}).get("tunnels_per_s")) for x in runs]
    qs = [q for q in qs if q is not None]
    t = report.target("ike-setup", targets[2][0], targets[2][1],
                      "lowest %.2f x" % min(qs) if qs else "-",
                      min(qs) > 1.0 if qs else None)
    figs.append(t)
    lines += [""] + ["- Target: %s: %s (%s)" % (t.text, t.verdict(), t.figure) for t in figs]
    if cats:
        lines += [
            "",
            report.plot(
                "ike-setup.svg",
                svg_bars("IKE setup rate (tunnels/s), same run", "tunnels/s", cats,
                         [("ipsec-control", ours_rate), ("charon", charon_rate)],
                         hlines=[(500.0, "target 500/s")]),
            ),
        ]
    return lines


def section_sa_install(report):
    lines = []
    got = bench_results(report, "sa-install")
    targets = [
        (">= 10,000 SAs/s installed while traffic flows", "issue 5"),
        ("1,000 tunnels within 5 %% of %d (rate ratio >= 0.95)" % REFERENCE_TUNNELS, "issue 5"),
        ("10,000 tunnels within 15 %% of %d (rate ratio >= 0.85)" % REFERENCE_TUNNELS, "issue 5"),
    ]
    if got is None:
        for t, s in targets:
            report.target("sa-install", t, s, "-", None, ran=False)
        return lines + not_run(report, "sa-install")
    data, _, _, _, header = got
    lines += header + [
        "",
        "`ipsec-dpctl sa load` installs generated tunnels (two SAs each, and an SPD of one rule "
        "per tunnel) through the dataplane's channel while net_pcap replays 64-byte packets "
        "into net_null through one static tunnel (one worker); pipelined (a window of requests "
        "in flight) and one request at a time as ipsec-control sends them. Then a fresh "
        "dataplane per tunnel count with the traffic spread over every tunnel. The gateway's "
        "heap is on 2 MB pages (GLIBC_TUNABLES=glibc.malloc.hugetlb=2, as its systemd unit "
        "runs it) in runs since 2026-12-03.",
        "",
        "| install | tunnels | rounds | window | SAs/s | deletes SAs/s | bytes per SA (RSS) | "
        "refused |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("pipelined", "lockstep"):
        r = data.get(name)
        if not r:
            continue
        lines.append(
            "| %s | %s | %d | %d | %s | %s | %s | %d |"
            % (name, grouped(r["tunnels"]), r["rounds"], r["window"],
               grouped(r["install_sas_per_s"]), grouped(r.get("delete_sas_per_s")),
               grouped(r.get("bytes_per_sa")), sum(r.get("errors", {}).values()))
        )
    before = data.get("before_pps")
    tunnels = (data.get("pipelined") or {}).get("tunnels")
    lines += [
        "",
        "| traffic on the static tunnel (64 B) | Mpps | ratio to before |",
        "|---|---|---|",
        "| before | %s | 1.00 |" % mpps(before),
        "| during the installs | %s | %s |" % (mpps(data.get("during_pps")),
                                           num(ratio(data.get("during_pps"), before))),
        "| after, %s tunnels installed | %s | %s |"
        % (grouped(tunnels), mpps(data.get("after_pps")),
           num(ratio(data.get("after_pps"), before))),
    ]
    spread = {int(n): v for n, v in (data.get("by_tunnels_pps") or {}).items()}
    ref = spread.get(REFERENCE_TUNNELS)
    lines += ["", "| traffic spread over every tunnel | Mpps | ratio to %d tunnels |"
              % REFERENCE_TUNNELS, "|---|---|---|"]
    for n in sorted(spread):
        lines.append("| %s tunnels | %s | %s |" % (grouped(n), mpps(spread[n]),
                                                  num(ratio(spread[n], ref))))
    rate = (data.get("pipelined") or {}).get("install_sas_per_s")
    figs = [report.target("sa-install", targets[0][0], targets[0][1],
                          "%s SAs/s" % grouped(rate) if rate else "-",
                          rate >= 10000 if rate else None)]
    for (text, source), n, limit in ((targets[1], 1000, 0.95), (targets[2], 10000, 0.85)):
        q = ratio(spread.get(n), ref)
        figs.append(report.target("sa-install", text, source,
                                  "%.2f" % q if q is not None else "no %s-tunnel run" % grouped(n),
                                  q >= limit if q is not None else None))
    lines += [""] + ["- Target: %s: %s (%s)" % (t.text, t.verdict(), t.figure) for t in figs]
    if spread:
        lines += [
            "",
            report.plot(
                "sa-install.svg",
                svg_bars("64-byte traffic spread over every tunnel (net_pcap into net_null)",
                         "Mpps", ["%s tunnels" % grouped(n) for n in sorted(spread)],
                         [("ipsec-dataplane", [spread[n] / 1e6 for n in sorted(spread)])]),
            ),
        ]
    return lines


def startup_from_md(path):
    """Gateway start-up times from trafficgen.md (results from before they were in the JSON)."""
    try:
        text = open(os.path.join(os.path.dirname(path), "trafficgen.md")).read()
    except OSError:
        return []
    part = text.split("Gateway start-up", 1)
    if len(part) < 2:
        return []
    return [{"tunnels": int(n), "workers": int(w), "seconds": float(s)}
            for n, w, s in re.findall(r"^\| (\d+) \| (\d+) \| ([\d.]+) \|$", part[1], re.M)]


def section_trafficgen(report):
    lines = []
    got = bench_results(report, "trafficgen")
    targets = [
        (1000, 0.95, "zero-loss rate at 1,000 tunnels within 5 %% of %d, every mode and size"
         % REFERENCE_TUNNELS),
        (10000, 0.85, "zero-loss rate at 10,000 tunnels within 15 %% of %d, every mode and size"
         % REFERENCE_TUNNELS),
    ]
    if got is None:
        for _, _, text in targets:
            report.target("trafficgen", text, "issue 5", "-", None, ran=False)
        return lines + not_run(report, "trafficgen")
    data, _, path, _, header = got
    runs = rows_of(data, "runs")
    startup = data.get("startup") if isinstance(data, dict) else None
    if startup is None:
        startup = startup_from_md(path)
    lines += header + [
        "",
        "ipsec-trafficgen and ipsec-dataplane joined by net_memif: RFC 2544 binary search for "
        "the highest rate with loss within the tolerance, latency at a fraction of that rate; "
        "every returned packet checked (\"bad\": packets that came back wrong). Placement: %s. "
        "\"generator-limited\": even the generator's fastest trial lost nothing, so the gateway "
        "did not set that figure; a ratio with such a figure on either side measures the "
        "generator, and the targets leave it out (and say so). With ROUNDS above 1 in the command, the sweep ran that many "
        "times, the tunnel counts in turn, and each figure is the best of its rounds (a "
        "slow stretch of the shared host only ever lowers one)."
        % (runs[0]["placement"] if runs else "-"),
        "",
        "| mode | tunnels | workers | size | zero-loss Mpps | Gbps | overload Mpps | "
        "p50 / p99 / max us | bad | load average (1 min) | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    order = sorted(runs, key=lambda r: (r["mode"], r["workers"], r["tunnels"]))
    for r in order:
        r["results"] = sorted(r["results"], key=lambda x: size_key(x["size"]))
    for r in order:
        for x in r["results"]:
            lat = x.get("latency") or {}
            lines.append(
                "| %s | %s | %d | %s | %s | %.2f | %s | %s | %d | %.2f -> %.2f | %s |"
                % (r["mode"], grouped(r["tunnels"]), r["workers"], x["size"],
                   mpps(x["zero_loss_pps"]), x["zero_loss_gbps"],
                   mpps(x["overload_delivered_pps"]),
                   " / ".join(grouped(lat.get(p)) for p in ("p50_us", "p99_us", "max_us"))
                   if lat else "-",
                   x["mismatches"], r["loadavg_start"], r["loadavg_end"],
                   "generator-limited" if x["generator_limited"] else "")
            )
    # ratios to the reference tunnel count, one worker
    one = [r for r in runs if r["workers"] == min((q["workers"] for q in runs), default=1)]
    counts = sorted({r["tunnels"] for r in one})
    ref_n = REFERENCE_TUNNELS if REFERENCE_TUNNELS in counts else (counts[0] if counts else None)
    table = {}
    for r in one:
        for x in r["results"]:
            table[(r["mode"], x["size"], r["tunnels"])] = x
    keys = []
    for r in one:
        for x in r["results"]:
            if (r["mode"], x["size"]) not in keys:
                keys.append((r["mode"], x["size"]))
    keys.sort(key=lambda k: (k[0], size_key(k[1])))
    others = [n for n in counts if n != ref_n]
    if ref_n is not None and others:
        lines += [
            "",
            "Zero-loss rate at N tunnels / at %d tunnel(s)%s:" % (
                ref_n, "" if ref_n == REFERENCE_TUNNELS
                else " (no %d-tunnel run: the targets are not judged)" % REFERENCE_TUNNELS),
            "",
            "| mode | size | " + " | ".join("N = %s" % grouped(n) for n in others) + " |",
            "|---|---|" + "---|" * len(others),
        ]
        for mode, size in keys:
            base = table.get((mode, size, ref_n))
            cells = []
            for n in others:
                x = table.get((mode, size, n))
                q = ratio(x["zero_loss_pps"], base["zero_loss_pps"]) if x and base else None
                cells.append(num(q) + (" (generator-limited)" if x and x["generator_limited"]
                                       else ""))
            lines.append("| %s | %s | %s |" % (mode, size, " | ".join(cells)))
    # two workers against one, where both ran
    multi = [r for r in runs if r["workers"] > 1]
    if multi:
        lines += ["", "More workers against one (same tunnel count, same sweep):", "",
                  "| mode | tunnels | workers | size | ratio |", "|---|---|---|---|---|"]
        for r in multi:
            for x in r["results"]:
                base = table.get((r["mode"], x["size"], r["tunnels"]))
                lines.append("| %s | %s | %d | %s | %s |" % (
                    r["mode"], grouped(r["tunnels"]), r["workers"], x["size"],
                    num(ratio(x["zero_loss_pps"], base["zero_loss_pps"]) if base else None)))
    if startup:
        lines += ["", "Gateway start-up (configuration load, SA install, ports; from exec to "
                  "%DATAPLANE-6-READY):", "", "| tunnels | workers | seconds |", "|---|---|---|"]
        for s in startup:
            lines.append("| %s | %d | %.1f |" % (grouped(s["tunnels"]), s["workers"], s["seconds"]))
    lines.append("")
    # A ratio is the gateway's only when the gateway set both figures: where the generator
    # could not offer more at either tunnel count, the ratio measures the generator (on 2
    # CPUs, decap at 1420 bytes: it encrypts every packet, as the gateway decrypts it).
    for n, limit, text in targets:
        qs, left_out = [], []
        if ref_n == REFERENCE_TUNNELS:
            for mode, size in keys:
                x, base = table.get((mode, size, n)), table.get((mode, size, ref_n))
                if not (x and base):
                    continue
                if x["generator_limited"] or base["generator_limited"]:
                    left_out.append("%s %s" % (mode, size))
                    continue
                qs.append(ratio(x["zero_loss_pps"], base["zero_loss_pps"]))
        qs = [q for q in qs if q is not None]
        aside = ("; not judged, generator-limited: %s" % ", ".join(left_out)) if left_out else ""
        if qs:
            figure = "lowest %.2f%s" % (min(qs), aside)
        elif left_out:
            figure = "every figure generator-limited (%s)" % ", ".join(left_out)
        else:
            figure = "no %s- and %d-tunnel runs" % (grouped(n), REFERENCE_TUNNELS)
        t = report.target("trafficgen", text, "issue 5", figure, min(qs) >= limit if qs else None)
        lines.append("- Target: %s: %s (%s)" % (text, t.verdict(), t.figure))
    if counts and keys:
        lines += [
            "",
            report.plot(
                "trafficgen.svg",
                svg_lines(
                    "Zero-loss throughput, %d worker lcore(s)" % one[0]["workers"],
                    "tunnels (2 SAs each)", "Mpps", [grouped(n) for n in counts],
                    [("%s %s" % k, [table[(k[0], k[1], n)]["zero_loss_pps"] / 1e6
                                    if (k[0], k[1], n) in table else None for n in counts])
                     for k in keys],
                ),
            ),
        ]
    return lines


# --- SVG ---------------------------------------------------------------------------------------

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]


def esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def nice_ceiling(v):
    if v <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= v:
            return m * mag
    return 10 * mag


def trim(v):
    return ("%.2f" % v).rstrip("0").rstrip(".")


class Frame:
    """A plot's canvas: title, axes from 0 to a round maximum, legend on the right."""

    def __init__(self, title, x_label, y_label, xs, top_value):
        self.w, self.h = 900.0, 480.0
        self.left, self.right, self.top, self.bottom = 70.0, 220.0, 40.0, 80.0
        self.pw = self.w - self.left - self.right
        self.ph = self.h - self.top - self.bottom
        self.ymax = nice_ceiling(top_value)
        self.xs = xs
        self.out = [
            '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
            'font-family="sans-serif" font-size="12">' % (self.w, self.h, self.w, self.h),
            '<rect width="%d" height="%d" fill="white"/>' % (self.w, self.h),
            '<text x="%.1f" y="22" text-anchor="middle" font-size="15">%s</text>'
            % (self.left + self.pw / 2, esc(title)),
        ]
        for k in range(6):
            v = self.ymax * k / 5
            y = self.y(v)
            self.out.append(
                '<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>'
                '<text x="%.1f" y="%.1f" text-anchor="end">%s</text>'
                % (self.left, y, self.left + self.pw, y, self.left - 6, y + 4, trim(v))
            )
        self.out.append(
            '<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>'
            '<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>'
            % (self.left, self.top, self.left, self.top + self.ph,
               self.left, self.top + self.ph, self.left + self.pw, self.top + self.ph)
        )
        for i, x in enumerate(xs):
            self.out.append(
                '<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>'
                % (self.x(i), self.top + self.ph + 18, esc(x))
            )
        self.out.append(
            '<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>'
            % (self.left + self.pw / 2, self.h - 20, esc(x_label))
        )
        self.out.append(
            '<text transform="translate(18,%.1f) rotate(-90)" text-anchor="middle">%s</text>'
            % (self.top + self.ph / 2, esc(y_label))
        )
        self.legend_rows = 0

    def x(self, i):
        return self.left + self.pw * (i + 0.5) / max(len(self.xs), 1)

    def y(self, v):
        return self.top + self.ph * (1 - v / self.ymax)

    def legend(self, name, colour, dashed=False):
        ly = self.top + 14 + 18 * self.legend_rows
        lx = self.left + self.pw + 15
        self.legend_rows += 1
        self.out.append(
            '<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>'
            '<text x="%.1f" y="%.1f">%s</text>'
            % (lx, ly - 4, lx + 20, ly - 4, colour, ' stroke-dasharray="5,4"' if dashed else "",
               lx + 26, ly, esc(name))
        )

    def hline(self, v, name):
        if v > self.ymax:
            return
        y = self.y(v)
        self.out.append(
            '<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#555" stroke-dasharray="5,4"/>'
            '<text x="%.1f" y="%.1f" text-anchor="end" fill="#555">%s</text>'
            % (self.left, y, self.left + self.pw, y, self.left + self.pw - 4, y - 4, esc(name))
        )

    def svg(self):
        return "\n".join(self.out + ["</svg>", ""])


def svg_lines(title, x_label, y_label, xs, series, hlines=()):
    """Lines over categorical x positions; `series` is [(name, [value or None per x])]."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = max(values + [h for h, _ in hlines] + [0])
    f = Frame(title, x_label, y_label, xs, top)
    for v, name in hlines:
        f.hline(v, name)
    for k, (name, vs) in enumerate(series):
        c = COLOURS[k % len(COLOURS)]
        pts = [(f.x(i), f.y(v)) for i, v in enumerate(vs) if v is not None]
        if len(pts) > 1:
            f.out.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                         % (c, " ".join("%.1f,%.1f" % p for p in pts)))
        for px, py in pts:
            f.out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>' % (px, py, c))
        f.legend(name, c)
    return f.svg()


def svg_bars(title, y_label, cats, series, hlines=()):
    """Grouped bars, one group per category, one bar per series (None: no bar)."""
    values = [v for _, vs in series for v in vs if v is not None]
    top = max(values + [h for h, _ in hlines] + [0])
    f = Frame(title, "", y_label, cats, top)
    slot = f.pw / max(len(cats), 1)
    bar = slot * 0.8 / max(len(series), 1)
    for k, (name, vs) in enumerate(series):
        c = COLOURS[k % len(COLOURS)]
        for i, v in enumerate(vs):
            if v is None:
                continue
            x0 = f.left + slot * i + slot * 0.1 + bar * k
            f.out.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>'
                         % (x0, f.y(v), bar, f.top + f.ph - f.y(v), c))
        f.legend(name, c)
    for v, name in hlines:
        f.hline(v, name)
    return f.svg()


# --- the file ------------------------------------------------------------------------------

# (name, title, renderer of the section's body)
SECTIONS = [
    (
        "esp",
        "ESP encap and decap against raw AEAD (criterion, `--bench esp`)",
        section_esp,
    ),
    (
        "crypto",
        "Crypto backends, raw seal and open (criterion, `--bench crypto`)",
        section_crypto,
    ),
    (
        "throughput",
        "ipsec-dataplane against ipsec-secgw (same devices, traffic and core)",
        section_throughput,
    ),
    (
        "crypto-ceiling",
        "The crypto ceiling of one core: dpdk-test-crypto-perf, raw-aead, the dataplane",
        section_crypto_ceiling,
    ),
    (
        "ike-setup",
        "IKE setup rate: ipsec-control against charon",
        section_ike_setup,
    ),
    (
        "scale",
        "Scale: SPD and SA lookups against the tunnel count (criterion, `--bench scale`)",
        section_scale,
    ),
    (
        "sa-install",
        "SA install rate and throughput by tunnel count, on the real dataplane",
        section_sa_install,
    ),
    (
        "trafficgen",
        "Zero-loss throughput against the tunnel count (ipsec-trafficgen)",
        section_trafficgen,
    ),
]

PLOTS = ("esp.svg", "throughput.svg", "ike-setup.svg", "scale.svg", "sa-install.svg",
         "trafficgen.svg")


def anchor(title):
    """GitHub's anchor of a markdown heading."""
    a = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
    return a


def render(report):
    bodies = []
    for name, title, fn in SECTIONS:
        targets = len(report.targets)
        try:
            body = fn(report)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
            # results of an unexpected shape (a script changed, a file cut short): said in
            # their section and in the targets' table, the other sections still rendered
            body = ["The results could not be rendered (%s: %s): run `%s` again (needs %s)."
                    % (type(e).__name__, e, COMMANDS[name], NEEDS[name])]
            del report.targets[targets:]
            report.target(name, "this benchmark's targets", "-", "results not readable", None)
        bodies.append((name, title, body))
    notes = os.path.relpath(os.path.join(ROOT, "benches", "NOTES.md"), os.path.dirname(report.out))
    out = [
        "# Benchmark results",
        "",
        "<!-- Generated by benches/render_results.py: do not edit; edit NOTES.md or the "
        "renderer. -->",
        "",
        "Generated from the latest run of each benchmark (benches/results/*.json, criterion's "
        "estimates): `make bench` runs them all and regenerates this file and its plots "
        "(benches/plots/); `make bench-report` only re-renders them. Analysis that is not a "
        "figure (where the cycles go, what was changed and why, earlier runs) is kept by hand in "
        "[NOTES.md](%s)." % notes,
        "",
        "The machines these run on are small and shared: compare figures within one run, as "
        "ratios; absolute figures are noisy. Each section gives its command, time (UTC), "
        "machine and load average.",
        "",
        "## Targets",
        "",
        "| benchmark | target | source | figure | verdict |",
        "|---|---|---|---|---|",
    ]
    titles = {name: title for name, title, _ in bodies}
    for t in report.targets:
        out.append("| [%s](#%s) | %s | %s | %s | %s |" % (
            t.bench, anchor(titles[t.bench]), t.text, t.source, t.figure, t.verdict()))
    for _, title, body in bodies:
        out += ["", "## " + title, ""] + body
    return "\n".join(out) + "\n"


def write_all(report):
    text = render(report)
    os.makedirs(report.plots, exist_ok=True)
    for name in PLOTS:
        path = os.path.join(report.plots, name)
        if name in report.plot_files:
            with open(path, "w") as f:
                f.write(report.plot_files[name])
        elif os.path.exists(path):
            os.remove(path)  # its bench has no results: no stale plot beside "not run"
    with open(report.out, "w") as f:
        f.write(text)


def snapshot(args):
    """criterion-snapshot: the estimates one bench's run wrote, into a JSON for bench_record."""
    since = parse_time(args.since).timestamp()
    entries = criterion_entries(args.criterion, CRITERION_GROUPS[args.bench], since)
    if not entries:
        sys.exit("no criterion estimates of %s were written since %s" % (args.bench, args.since))
    data = {"bench": args.bench, "criterion_dir": args.criterion, "entries": entries}
    if args.bench == "scale":
        sp = os.path.join(args.results, "scale-summary.json")
        if os.path.exists(sp) and os.path.getmtime(sp) >= since:
            data["summary"] = load_json(sp)
        hp = os.path.join(args.results, "scale-summary-hugepages.json")
        if os.path.exists(hp) and os.path.getmtime(hp) >= since:
            data["summary_hugepages"] = load_json(hp)
    with open(args.out, "w") as f:
        json.dump(data, f, indent=1)
        f.write("\n")
    print("%s: %d criterion estimates since %s" % (args.bench, len(entries), args.since))


def default_criterion():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "criterion")


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--results", default=os.path.join(ROOT, "benches", "results"))
    p.add_argument("--criterion", default=default_criterion())
    p.add_argument("--out", default=os.path.join(ROOT, "benches", "RESULTS.md"))
    p.add_argument("--plots", default=os.path.join(ROOT, "benches", "plots"))
    sub = p.add_subparsers(dest="cmd")
    s = sub.add_parser("criterion-snapshot")
    s.add_argument("--bench", required=True, choices=sorted(CRITERION_GROUPS))
    s.add_argument("--since", required=True, help="UTC, as 2026-12-02T14:27:09Z")
    s.add_argument("--out", dest="snapshot_out", required=True)
    args = p.parse_args(argv)
    if args.cmd == "criterion-snapshot":
        args.out = args.snapshot_out
        snapshot(args)
        return
    write_all(Report(args.results, args.criterion, args.out, args.plots))
    print("written: %s" % args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
