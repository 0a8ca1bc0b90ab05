#!/usr/bin/python3
"""Tests of benches/render_results.py on made-up results (`make unit-test`; no root, no DPDK).

The results directory is written the way the bench scripts write theirs: the run record by
benches/lib.sh's own bench_begin / bench_record (run through bash), criterion's estimates in
its `<group>/<function>/<value>/new/{benchmark,estimates}.json` layout. The figures are chosen
so that every ratio and verdict below is known in advance.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
RENDER = os.path.join(HERE, "render_results.py")
LIB = os.path.join(HERE, "lib.sh")
PYTHON = sys.executable


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)


def record(path, name, command):
    """bench_begin + bench_record of benches/lib.sh on the JSON object in `path`."""
    subprocess.run(
        ["bash", "-c", 'source "$1"; bench_begin "$2" "$3"; bench_record "$4"', "-",
         LIB, name, command, path],
        check=True,
    )


def criterion_estimate(root, group, function, value, ns, mtime=None):
    """One benchmark as criterion 0.5 leaves it under target/criterion."""
    d = os.path.join(root, group.replace("/", "_"), function, value, "new")
    write(os.path.join(d, "benchmark.json"), {
        "group_id": group, "function_id": function, "value_str": value,
        "throughput": {"Bytes": int(value)} if value.isdigit() else None,
        "full_id": "%s/%s/%s" % (group, function, value),
        "directory_name": "%s/%s/%s" % (group.replace("/", "_"), function, value),
        "title": "%s/%s/%s" % (group, function, value),
    })
    est = {"confidence_interval": {"confidence_level": 0.95, "lower_bound": ns * 0.98,
                                   "upper_bound": ns * 1.02},
           "point_estimate": ns, "standard_error": ns * 0.01}
    write(os.path.join(d, "estimates.json"), {
        "mean": est, "median": est, "median_abs_dev": est, "slope": est, "std_dev": est})
    if mtime is not None:
        for f in ("benchmark.json", "estimates.json"):
            os.utime(os.path.join(d, f), (mtime, mtime))


def size_result(size, pps, generator_limited=False):
    return {"size": str(size), "mean_ip_len": float(size), "zero_loss_pps": pps,
            "zero_loss_gbps": pps * size * 8 / 1e9, "overload_delivered_pps": pps * 1.1,
            "generator_limited": generator_limited, "trials": 5, "mismatches": 0,
            "mismatch_reason": None,
            "latency": {"at_pps": pps * 0.9, "samples": 1000, "p50_us": 10.0, "p90_us": 20.0,
                        "p99_us": 30.0, "p999_us": 40.0, "max_us": 50.0}}


def tgen_run(mode, tunnels, pps64, pps1420, workers=1):
    return {"mode": mode, "tunnels": tunnels, "workers": workers, "loss_tolerance": 0.0,
            "trial_seconds": 1.0, "latency_fraction": 0.9, "loadavg_start": 0.5,
            "loadavg_end": 0.7, "placement": "test placement",
            "results": [size_result(1420, pps1420), size_result(64, pps64)]}


def ike_report(label, n, rate, all_traffic):
    return {"responder_label": label, "spokes": n, "phase2_up": n, "tunnels_per_s": rate,
            "first_phase2_s": 0.1, "last_phase2_s": n / rate, "all_carrying_traffic_s": all_traffic,
            "carrying_traffic": n, "retransmissions": 0, "failures": {},
            "load_before": "0.10 0.20 0.30", "load_after": "0.40 0.50 0.60"}


def section(text, title_start):
    """The markdown of the section whose title starts with `title_start`."""
    parts = re.split(r"^## ", text, flags=re.M)
    for p in parts:
        if p.startswith(title_start):
            return p
    raise AssertionError("no section %r in:\n%s" % (title_start, text))


def target_row(text, target):
    for line in text.splitlines():
        if line.startswith("| [") and target in line:
            return line
    raise AssertionError("no target row %r" % target)


class RenderTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="render-results-test.")
        self.results = os.path.join(self.dir, "results")
        self.criterion = os.path.join(self.dir, "criterion")
        self.out = os.path.join(self.dir, "RESULTS.md")
        self.plots = os.path.join(self.dir, "plots")
        os.makedirs(self.results)

    def tearDown(self):
        shutil.rmtree(self.dir)

    def render(self):
        subprocess.run([PYTHON, RENDER, "--results", self.results, "--criterion", self.criterion,
                        "--out", self.out, "--plots", self.plots],
                       check=True, stdout=subprocess.DEVNULL)
        with open(self.out) as f:
            return f.read()

    def fill(self):
        """Every script bench but crypto-ceiling; the esp criterion bench but not crypto or
        scale."""
        p = os.path.join(self.results, "throughput.json")
        write(p, {"bench": "throughput", "rows": [
            {"direction": "encap", "size": 64, "ours_pps": 9000000, "secgw_pps": 6000000,
             "ours_cycles_per_packet": 300, "ours_pipeline_cycles_per_packet": 200},
            {"direction": "encap", "size": 1420, "ours_pps": 1000000, "secgw_pps": 1250000},
            {"direction": "decap", "size": 64, "ours_pps": 8000000, "secgw_pps": 4000000},
            {"direction": "decap", "size": 1420, "ours_pps": 2000000, "secgw_pps": 1600000},
        ]})
        record(p, "throughput", "ROUNDS=3 benches/throughput.sh 5")

        p = os.path.join(self.results, "ike-setup.json")
        write(p, {"bench": "ike-setup", "window": 64, "load": "test load", "runs": [
            {"spokes": 100, "ours": ike_report("ipsec-control", 100, 300.0, 0.4),
             "charon": ike_report("charon", 100, 200.0, 0.6)},
            {"spokes": 1000, "ours": ike_report("ipsec-control", 1000, 250.0, 4.5),
             "charon": ike_report("charon", 1000, 250.0, 5.5)},
        ]})
        record(p, "ike-setup", 'SIZES="100 1000" WINDOW=64 benches/ike-setup.sh')

        p = os.path.join(self.results, "sa-install.json")
        pipelined = {"tunnels": 10000, "sas": 20000, "window": 64, "rounds": 3,
                     "install_sas_per_s": 12345.0, "install_s": 1.6, "on_lcores_s": 1.7,
                     "delete_sas_per_s": 20000.0, "bytes_per_sa": 4000, "errors": {}}
        lockstep = dict(pipelined, tunnels=2000, window=1, rounds=1, install_sas_per_s=9000.0)
        write(p, {"bench": "sa-install", "load_average": "1.0 1.0 1.0", "before_pps": 8000000,
                  "during_pps": 6000000, "after_pps": 7000000, "pipelined": pipelined,
                  "lockstep": lockstep,
                  "by_tunnels_pps": {"4": 8000000, "1000": 7760000, "10000": 6000000}})
        record(p, "sa-install", "benches/sa-install.sh 3")

        p = os.path.join(self.results, "trafficgen.json")
        write(p, {"bench": "trafficgen", "startup": [
            {"tunnels": 4, "workers": 1, "seconds": 0.4},
            {"tunnels": 10000, "workers": 1, "seconds": 1.2}], "runs": [
            tgen_run("encap", 4, 4000000, 1500000),
            tgen_run("encap", 1000, 3900000, 1450000),
            tgen_run("encap", 10000, 3000000, 1400000),
        ]})
        record(p, "trafficgen", 'TUNNELS="4 1000 10000" benches/trafficgen.sh')

        for transform, sizes in (("esp/esp-gcm_128", {64: (50.0, 80.0, 90.0, 5.0),
                                                      1420: (200.0, 250.0, 260.0, 20.0)}),):
            for size, (raw, encap, decap, reset) in sizes.items():
                for fn, v in (("raw-seal", raw), ("encap", encap), ("decap", decap),
                              ("reset-only", reset)):
                    criterion_estimate(self.criterion, transform, fn, str(size), v)

    def test_sections_ratios_and_verdicts(self):
        self.fill()
        text = self.render()
        self.assertTrue(text.startswith("# Benchmark results\n"))
        self.assertIn("Generated by benches/render_results.py", text)
        self.assertRegex(text, r"\[NOTES.md\]\([^)]*NOTES.md\)")

        t = section(text, "ipsec-dataplane against ipsec-secgw")
        self.assertIn("- Command: `ROUNDS=3 benches/throughput.sh 5`", t)
        self.assertRegex(t, r"- Ran: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d to \d\d:\d\d:\d\d UTC")
        self.assertIn("%d CPUs" % os.cpu_count(), t)
        self.assertRegex(t, r"- Load average \(1, 5, 15 min\): [\d.]+ [\d.]+ [\d.]+ at the start, "
                            r"[\d.]+ [\d.]+ [\d.]+ at the end")
        # ours / secgw per row: 1.50, 0.80, 2.00, 1.25
        self.assertIn("| encap | 64 | 9.00 | 4.6 | 300 (200) | 6.00 | 3.1 | 1.50 |", t)
        self.assertIn("| encap | 1420 | 1.00 | 11.4 | - | 1.25 | 14.2 | 0.80 |", t)
        self.assertIn("| decap | 64 | 8.00 | 4.1 | - | 4.00 | 2.0 | 2.00 |", t)
        self.assertIn("| decap | 1420 | 2.00 | 22.7 | - | 1.60 | 18.2 | 1.25 |", t)
        self.assertIn("**met** (lowest 8.00 Mpps)", t)
        self.assertIn("**not met** (lowest 11.4 Gbps)", t)
        self.assertIn("**not met** (lowest ratio 0.80)", t)
        self.assertIn("1.5 x ipsec-secgw at 64 B (encap and decap): **met** (lowest ratio 1.50)", t)
        self.assertIn(">= 5 Mpps per worker at 64 B (encap and decap): **met** (lowest 8.00", t)
        self.assertIn(">= 25 Gbps per worker at 1420 B (encap and decap): **not met** (lowest 11.4", t)
        # decap / encap: 8 / 9 = 0.89 at 64 B, 2 / 1 at 1420 B
        self.assertIn("decap within 10 % of encap, each size (decap / encap >= 0.9): **not met** "
                      "(lowest 0.89)", t)
        self.assertIn("![throughput.svg](plots/throughput.svg)", t)

        e = section(text, "ESP encap and decap")
        # (encap - reset) / raw: (80 - 5) / 50 = 1.50, (250 - 20) / 200 = 1.15;
        # (decap - reset) / raw: 1.70, 1.20; encap / raw: 1.60, 1.25
        self.assertIn("| esp-gcm 128 | 64 | 50.0 ns | 80.0 ns | 90.0 ns | 5.0 ns "
                      "| 1.60 | 1.50 | 1.70 |", e)
        self.assertIn("| esp-gcm 128 | 1420 | 200 ns | 250 ns | 260 ns | 20.0 ns "
                      "| 1.25 | 1.15 | 1.20 |", e)
        self.assertIn("at 64 B <= 2.0, every transform: **met** (worst 1.50 (esp-gcm 128))", e)
        self.assertIn("at 1420 B <= 1.2, every transform: **met** (worst 1.15 (esp-gcm 128))", e)
        self.assertIn("run directly: its machine and load average were not recorded", e)

        k = section(text, "IKE setup rate")
        self.assertIn("| 100 | **ours / charon** | **1.50 x** |", k)
        self.assertIn("| 1,000 | **ours / charon** | **1.00 x** |", k)
        self.assertIn("in < 5 s: **met** (4.50 s)", k)
        self.assertIn(">= 500 tunnels/s: **not met** (250.0 at 1,000 spokes)", k)
        self.assertIn("every tunnel count: **not met** (lowest 1.00 x)", k)

        s = section(text, "SA install rate")
        self.assertIn("| 1,000 tunnels | 7.76 | 0.97 |", s)
        self.assertIn("| 10,000 tunnels | 6.00 | 0.75 |", s)
        self.assertIn("| during the installs | 6.00 | 0.75 |", s)
        self.assertIn(">= 10,000 SAs/s installed while traffic flows: **met** (12,345 SAs/s)", s)
        self.assertIn("(rate ratio >= 0.95): **met** (0.97)", s)
        self.assertIn("(rate ratio >= 0.85): **not met** (0.75)", s)

        g = section(text, "Zero-loss throughput")
        self.assertIn("| encap | 64 | 0.97 | 0.75 |", g)
        self.assertIn("| encap | 1420 | 0.97 | 0.93 |", g)
        self.assertIn("at 1,000 tunnels within 5 % of 4, every mode and size: **met** "
                      "(lowest 0.97)", g)
        self.assertIn("at 10,000 tunnels within 15 % of 4, every mode and size: **not met** "
                      "(lowest 0.75)", g)
        self.assertIn("| 10,000 | 1 | 1.2 |", g)
        # sizes in numeric order
        self.assertLess(g.index("| encap | 4 | 1 | 64 |"), g.index("| encap | 4 | 1 | 1420 |"))

        # the targets' table repeats each verdict
        self.assertIn("| **not met** |", target_row(text, "zero-loss rate at 10,000 tunnels"))
        self.assertIn("| **met** |", target_row(text, "zero-loss rate at 1,000 tunnels"))

        for name in ("throughput.svg", "esp.svg", "ike-setup.svg", "sa-install.svg",
                     "trafficgen.svg"):
            with open(os.path.join(self.plots, name)) as f:
                svg = f.read()
            self.assertTrue(svg.startswith("<svg") and svg.rstrip().endswith("</svg>"), name)
        with open(os.path.join(self.plots, "throughput.svg")) as f:
            self.assertEqual(f.read().count("<rect x="), 8)  # 4 rows x 2 gateways

    def test_missing_benches_are_not_run(self):
        self.fill()
        os.makedirs(self.plots)
        stale = os.path.join(self.plots, "scale.svg")
        with open(stale, "w") as f:
            f.write("<svg/>")
        text = self.render()
        for title, command in (("Crypto backends", "benches/criterion.sh crypto"),
                               ("Scale: SPD and SA", "benches/criterion.sh scale"),
                               ("The crypto ceiling", "benches/crypto-ceiling.sh")):
            s = section(text, title)
            self.assertRegex(s, r"Not run: no results in benches/results/[^.]*\. Run it with `%s`"
                             % re.escape(command))
        self.assertIn("| not run |", target_row(text, "90 % of the crypto ceiling"))
        self.assertFalse(os.path.exists(stale), "a plot of a bench that did not run stayed")

        # nothing at all: every section is there, not run
        shutil.rmtree(self.results)
        shutil.rmtree(self.criterion)
        os.makedirs(self.results)
        text = self.render()
        self.assertEqual(text.count("Not run: no results"), 8)
        self.assertNotIn("**met**", text)

    def test_failed_attempt_after_the_results(self):
        self.fill()
        write(os.path.join(self.results, "sa-install.failed"),
              {"command": "benches/sa-install.sh 3",
               "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60)),
               "exit": 1})
        # an older failure, before the results it would otherwise shadow, says nothing
        write(os.path.join(self.results, "throughput.failed"),
              {"command": "benches/throughput.sh 5", "finished": "2020-01-01T00:00:00Z",
               "exit": 1})
        # a bench that failed with no earlier results: not run, and the failure said
        write(os.path.join(self.results, "crypto-ceiling.failed"),
              {"command": "benches/crypto-ceiling.sh", "finished": "2026-12-02T15:00:00Z",
               "exit": 2})
        text = self.render()
        self.assertIn("**The latest attempt failed**", section(text, "SA install rate"))
        self.assertNotIn("latest attempt failed", section(text, "ipsec-dataplane against"))
        c = section(text, "The crypto ceiling")
        self.assertIn("Not run: no results", c)
        self.assertIn("**The latest attempt failed** (2026-12-02 15:00:00 UTC, "
                      "`benches/crypto-ceiling.sh`, exit 2)", c)

    def test_trafficgen_targets_leave_out_generator_limited_figures(self):
        self.fill()
        p = os.path.join(self.results, "trafficgen.json")
        runs = [tgen_run("decap", 4, 4000000, 1000000), tgen_run("decap", 1000, 3900000, 700000)]
        # decap 1420: the generator could offer no more at 1,000 tunnels (0.70 against 4)
        runs[1]["results"][0]["generator_limited"] = True
        write(p, {"bench": "trafficgen", "runs": runs})
        record(p, "trafficgen", 'TUNNELS="4 1000" benches/trafficgen.sh')
        text = self.render()
        row = target_row(text, "zero-loss rate at 1,000 tunnels")
        self.assertIn("lowest 0.97; not judged, generator-limited: decap 1420", row)
        self.assertIn("| **met** |", row)
        g = section(text, "Zero-loss throughput")
        self.assertIn("| decap | 1420 | 0.70 (generator-limited) |", g)
        # nothing the gateway set: not measured
        runs[1]["results"][1]["generator_limited"] = True
        write(p, {"bench": "trafficgen", "runs": runs})
        record(p, "trafficgen", 'TUNNELS="4 1000" benches/trafficgen.sh')
        row = target_row(self.render(), "zero-loss rate at 1,000 tunnels")
        self.assertIn("every figure generator-limited (decap 64, decap 1420)", row)
        self.assertIn("| not measured |", row)

    def test_crypto_ceiling_in_cycles_and_end_to_end(self):
        self.fill()
        cp = lambda mops, cycles: {"mops": mops, "gbps": 1.0, "cycles_per_op": cycles}
        raw = {"mops": 7.0, "gbps": 1.0, "backend": "ipsec-mb"}
        write(os.path.join(self.results, "crypto-ceiling.json"), {
            "bench": "crypto-ceiling", "rows": [
                {"size": 64, "crypto_perf": cp(20.0, 120.0), "raw_aead": raw,
                 "dataplane_encap_mpps": 9.0, "dataplane_pipeline_cycles": 200},
                {"size": 1420, "crypto_perf": cp(8.0, 300.0), "raw_aead": raw,
                 "dataplane_encap_mpps": 4.0, "dataplane_pipeline_cycles": 320}]})
        text = self.render()
        c = section(text, "The crypto ceiling")
        # 300 / 320 cycles = 0.94; 4.0 / 8.0 Mpps = 0.50
        self.assertIn("| 1420 | 8.00 | 1.0 | 300 | 7.00 (ipsec-mb) | 1.0 | 0.88 | 4.00 | 0.57 "
                      "| 0.50 | 320 | 0.94 |", c)
        self.assertIn("| 0.94 | **met** |", target_row(text, "pipeline cycles per packet"))
        self.assertIn("| 0.50 | **not met** |", target_row(text, "end to end on net_pcap"))
        # a throughput run from before the cycles were counted: the cycle target is not measured
        for r in json.load(open(os.path.join(self.results, "crypto-ceiling.json")))["rows"]:
            r.pop("dataplane_pipeline_cycles")
        write(os.path.join(self.results, "crypto-ceiling.json"), {"bench": "crypto-ceiling",
                                                                  "rows": [r]})
        text = self.render()
        self.assertIn("| not measured |", target_row(text, "pipeline cycles per packet"))

    def test_unreadable_results(self):
        self.fill()
        with open(os.path.join(self.results, "throughput.json"), "w") as f:
            f.write('{"bench": "throughput", "rows": [{"direction": "encap"')  # cut short
        text = self.render()
        self.assertIn("The results could not be rendered (JSONDecodeError",
                      section(text, "ipsec-dataplane against"))
        self.assertIn("| not measured |", target_row(text, "this benchmark's targets"))
        self.assertIn("**met** (12,345 SAs/s)", section(text, "SA install rate"))

    def test_results_from_before_the_run_record(self):
        # throughput.json as the script wrote it before bench_record: a bare list
        write(os.path.join(self.results, "throughput.json"), [
            {"direction": "encap", "size": 64, "ours_pps": 3000000, "secgw_pps": 2000000,
             "ratio": 1.5}])
        text = self.render()
        t = section(text, "ipsec-dataplane against ipsec-secgw")
        self.assertIn("- Command: not recorded", t)
        self.assertIn("`benches/throughput.sh 5` runs it now", t)
        self.assertIn("- Machine: not recorded", t)
        self.assertIn("| encap | 64 | 3.00 | 1.5 | - | 2.00 | 1.0 | 1.50 |", t)

    def test_criterion_snapshot(self):
        criterion_estimate(self.criterion, "scale", "spd", "4", 20.0, mtime=time.time() - 3600)
        criterion_estimate(self.criterion, "scale", "spd", "1000", 30.0)
        criterion_estimate(self.criterion, "esp/esp-gcm_128", "encap", "64", 80.0)
        write(os.path.join(self.results, "scale-summary.json"), {
            "reference_tunnels": 4, "spd_rules": 10001, "spd_bytes_per_rule": 300,
            "sa_struct_bytes": 1424, "shard_table_bytes_per_sa": 40, "rss_sas": 20000,
            "rss_growth_kib": 57800, "load_start": "1.00 1.00 1.00", "load_end": "2.00 1.00 1.00",
            "rows": [
                {"tunnels": 4, "spd_ns": 20.0, "sa_out_ns": 1.0, "sa_in_ns": 2.0,
                 "encap_64_ns": 100.0, "burst_64_ns": 80.0, "spd_build_ms": 0.01},
                {"tunnels": 1000, "spd_ns": 25.0, "sa_out_ns": 1.5, "sa_in_ns": 3.0,
                 "encap_64_ns": 150.0, "burst_64_ns": 100.0, "spd_build_ms": 0.4}]})
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600))
        snap = os.path.join(self.results, "criterion-scale.json")
        subprocess.run([PYTHON, RENDER, "--criterion", self.criterion, "--results", self.results,
                        "criterion-snapshot", "--bench", "scale", "--since", since, "--out", snap],
                       check=True, stdout=subprocess.DEVNULL)
        with open(snap) as f:
            data = json.load(f)
        # only this run's estimate (the hour-old one is not), only the scale bench's groups
        self.assertEqual([(e["function"], e["value"], e["ns"]) for e in data["entries"]],
                         [("spd", "1000", 30.0)])
        self.assertEqual(data["summary"]["rss_sas"], 20000)
        record(snap, "criterion-scale", "benches/criterion.sh scale")
        text = self.render()
        s = section(text, "Scale: SPD and SA")
        self.assertIn("- Command: `benches/criterion.sh scale`", s)
        self.assertIn("| 1,000 | 25.0 ns (1.25) | 1.5 ns (1.50) | 3.0 ns (1.50) | 150 ns (1.50) | 100 ns (1.25) "
                      "| 0.40 ms |", s)
        self.assertIn("57,800 KiB, 2,959 bytes per SA", s)

        # a run that wrote no estimate fails and writes nothing
        r = subprocess.run([PYTHON, RENDER, "--criterion", self.criterion, "--results",
                            self.results, "criterion-snapshot", "--bench", "crypto", "--since",
                            since, "--out", os.path.join(self.results, "criterion-crypto.json")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(os.path.exists(os.path.join(self.results, "criterion-crypto.json")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
