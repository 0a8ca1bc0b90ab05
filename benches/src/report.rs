//! Results of generator runs: the JSON records, a markdown table and an SVG line plot (written
//! by hand: no plotting library, no system libraries).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Latency percentiles in microseconds, measured at `at_pps`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub at_pps: f64,
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Result of one frame size in one run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SizeResult {
    /// `64`, `1420`, `imix`.
    pub size: String,
    /// Mean inner IP packet length in bytes.
    pub mean_ip_len: f64,
    /// Highest rate with loss within the tolerance.
    pub zero_loss_pps: f64,
    /// The same in Gbit/s of inner IP packets.
    pub zero_loss_gbps: f64,
    /// Rate delivered when offered as much as the generator could send.
    pub overload_delivered_pps: f64,
    /// The generator, not the gateway, set the rate (even its fastest trial lost nothing).
    pub generator_limited: bool,
    pub trials: usize,
    /// Packets that came back wrong (wrong SPI or tunnel, failed ICV, altered payload).
    pub mismatches: u64,
    /// What was wrong with the first of them.
    pub mismatch_reason: Option<String>,
    pub latency: Option<Latency>,
}

/// One `ipsec-trafficgen run`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// `encap` or `decap`.
    pub mode: String,
    pub tunnels: u32,
    pub workers: u32,
    /// Accepted loss (fraction).
    pub loss_tolerance: f64,
    /// Trials again at a rate that lost packets before it was ruled out (0 in runs from
    /// before this was recorded).
    #[serde(default)]
    pub confirm_loss: u32,
    pub trial_seconds: f64,
    /// Latency is measured at this fraction of the zero-loss rate.
    pub latency_fraction: f64,
    /// 1-minute load average when the run started and ended.
    pub loadavg_start: f64,
    pub loadavg_end: f64,
    /// Where generator and gateway ran (shared cores on small machines).
    pub placement: String,
    pub results: Vec<SizeResult>,
}

/// A markdown table of `runs`, one row per run and size.
pub fn markdown(runs: &[RunReport]) -> String {
    let mut s = String::new();
    let (tol, frac, confirm) = runs.first().map_or((0.0, 0.9, 0), |r| {
        (r.loss_tolerance, r.latency_fraction, r.confirm_loss)
    });
    let retried = match confirm {
        0 => String::new(),
        n => format!(
            " A rate that lost packets was tried {n} more time(s) before it was ruled out (a \
             hiccup of this shared host is not the gateway's limit)."
        ),
    };
    let _ = writeln!(
        s,
        "Zero-loss throughput (loss <= {} %) and latency at {} % of it; sizes are inner IP packet lengths.{retried}\n",
        tol * 100.0,
        frac * 100.0
    );
    s.push_str("| mode | tunnels | workers | size | zero-loss Mpps | Gbps | overload Mpps | p50 us | p90 us | p99 us | p99.9 us | max us | bad | note |\n");
    s.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in runs {
        for x in &r.results {
            let l = x.latency.clone().unwrap_or_default();
            let lat = |v: f64| {
                if x.latency.is_some() {
                    format!("{v:.1}")
                } else {
                    "-".into()
                }
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.3} | {:.2} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
                r.mode,
                r.tunnels,
                r.workers,
                x.size,
                x.zero_loss_pps / 1e6,
                x.zero_loss_gbps,
                x.overload_delivered_pps / 1e6,
                lat(l.p50_us),
                lat(l.p90_us),
                lat(l.p99_us),
                lat(l.p999_us),
                lat(l.max_us),
                x.mismatches,
                if x.generator_limited {
                    "generator-limited"
                } else {
                    ""
                },
            );
        }
    }
    if let Some(r) = runs.first() {
        let _ = writeln!(
            s,
            "\nPlacement: {}. Load average {:.2} at the start of the first run.",
            r.placement, r.loadavg_start
        );
    }
    s
}

/// Ratios of zero-loss rates within one set of runs, the only figures that mean something on
/// a shared machine: each tunnel count against the smallest one (same mode, size and worker
/// count), and two workers against one (same mode, size and tunnel count).
/// The same for the rate delivered under overload follows, which depends less on how long the
/// gateway's worker is descheduled on a shared machine.
pub fn ratios(runs: &[RunReport]) -> String {
    ratios_of(runs, "Zero-loss rate", |x| x.zero_loss_pps)
        + &ratios_of(runs, "Rate delivered under overload", |x| {
            x.overload_delivered_pps
        })
}

fn ratios_of(runs: &[RunReport], what: &str, metric: impl Fn(&SizeResult) -> f64) -> String {
    let rate = |mode: &str, tunnels: u32, workers: u32, size: &str| {
        runs.iter()
            .filter(|r| r.mode == mode && r.tunnels == tunnels && r.workers == workers)
            .flat_map(|r| r.results.iter())
            .find(|x| x.size == size)
            .map(&metric)
            .filter(|v| *v > 0.0)
    };
    let mut s = String::new();
    let min_workers = runs.iter().map(|r| r.workers).min().unwrap_or(1);
    let mut tunnels: Vec<u32> = runs
        .iter()
        .filter(|r| r.workers == min_workers)
        .map(|r| r.tunnels)
        .collect();
    tunnels.sort_unstable();
    tunnels.dedup();
    if tunnels.len() > 1 {
        let base = tunnels[0];
        let _ = writeln!(
            s,
            "\n{what} at N tunnels / at {base} tunnel(s), {min_workers} worker(s):\n"
        );
        let head: Vec<String> = tunnels[1..].iter().map(|t| format!("N={t}")).collect();
        let _ = writeln!(s, "| mode | size | {} |", head.join(" | "));
        let _ = writeln!(s, "|---|---|{}", "---|".repeat(head.len()));
        for r in runs
            .iter()
            .filter(|r| r.workers == min_workers && r.tunnels == base)
        {
            for x in &r.results {
                let cells: Vec<String> = tunnels[1..]
                    .iter()
                    .map(|t| {
                        match (
                            rate(&r.mode, *t, min_workers, &x.size),
                            rate(&r.mode, base, min_workers, &x.size),
                        ) {
                            (Some(a), Some(b)) => format!("{:.2}", a / b),
                            _ => "-".into(),
                        }
                    })
                    .collect();
                let _ = writeln!(s, "| {} | {} | {} |", r.mode, x.size, cells.join(" | "));
            }
        }
    }
    let mut pairs: Vec<(String, u32, u32, String, f64, f64)> = Vec::new();
    for r in runs.iter().filter(|r| r.workers > min_workers) {
        for x in &r.results {
            if let (Some(a), Some(b)) = (
                rate(&r.mode, r.tunnels, r.workers, &x.size),
                rate(&r.mode, r.tunnels, min_workers, &x.size),
            ) {
                pairs.push((r.mode.clone(), r.tunnels, r.workers, x.size.clone(), a, b));
            }
        }
    }
    if !pairs.is_empty() {
        let _ = writeln!(
            s,
            "\nScaling: {what} with more workers / with {min_workers}:\n"
        );
        let _ = writeln!(
            s,
            "| mode | tunnels | workers | size | Mpps | Mpps with {min_workers} | ratio |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for (m, t, w, sz, a, b) in pairs {
            let _ = writeln!(
                s,
                "| {m} | {t} | {w} | {sz} | {:.3} | {:.3} | {:.2} |",
                a / 1e6,
                b / 1e6,
                a / b
            );
        }
    }
    s
}

/// One line of a plot: a name and a value per x position (None: no point).
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// An SVG line plot with categorical x positions and a linear y axis from 0.
pub fn svg_lines(
    title: &str,
    x_label: &str,
    y_label: &str,
    xs: &[String],
    series: &[Series],
) -> String {
    let (w, h) = (900.0, 520.0);
    let (left, right, top, bottom) = (70.0, 230.0, 40.0, 60.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let ymax = series
        .iter()
        .flat_map(|s| s.values.iter().flatten())
        .cloned()
        .fold(0.0f64, f64::max);
    let ymax = nice_ceiling(ymax);
    let n = xs.len().max(1);
    let x_at = |i: usize| left + pw * (i as f64 + 0.5) / n as f64;
    let y_at = |v: f64| top + ph * (1.0 - v / ymax);
    let colours = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf",
    ];
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        left + pw / 2.0,
        esc(title)
    );
    // axes and grid
    for k in 0..=5 {
        let v = ymax * k as f64 / 5.0;
        let y = y_at(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            left + pw,
            left - 6.0,
            y + 4.0,
            trim_num(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<line x1="{left}" y1="{top}" x2="{left}" y2="{:.1}" stroke="black"/><line x1="{left}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        top + ph,
        top + ph,
        left + pw,
        top + ph
    );
    for (i, x) in xs.iter().enumerate() {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x_at(i),
            top + ph + 18.0,
            esc(x)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + pw / 2.0,
        h - 15.0,
        esc(x_label)
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(18,{:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        top + ph / 2.0,
        esc(y_label)
    );
    for (k, se) in series.iter().enumerate() {
        let c = colours[k % colours.len()];
        let pts: Vec<String> = se
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", x_at(i), y_at(v))))
            .collect();
        if pts.len() > 1 {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
                pts.join(" ")
            );
        }
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="3.5" fill="{c}"/>"#);
        }
        let ly = top + 14.0 + 18.0 * k as f64;
        let lx = left + pw + 15.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{c}" stroke-width="2"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            ly - 4.0,
            lx + 20.0,
            ly - 4.0,
            lx + 26.0,
            ly,
            esc(&se.name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The plot of a set of runs: zero-loss Mpps against the tunnel count, one line per mode and
/// size, for the runs with the fewest workers (the worker comparison is in the table). A single
/// tunnel count gives a plot against size instead.
pub fn svg(runs: &[RunReport]) -> String {
    let min_workers = runs.iter().map(|r| r.workers).min().unwrap_or(1);
    let runs: Vec<&RunReport> = runs.iter().filter(|r| r.workers == min_workers).collect();
    let mut tunnels: Vec<u32> = runs.iter().map(|r| r.tunnels).collect();
    tunnels.sort_unstable();
    tunnels.dedup();
    let mut keys: Vec<(String, String)> = Vec::new();
    for r in &runs {
        for x in &r.results {
            let k = (r.mode.clone(), x.size.clone());
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    let title = format!("ipsec-dataplane zero-loss throughput, {min_workers} worker lcore(s)");
    if tunnels.len() <= 1 {
        let mut sizes: Vec<String> = keys.iter().map(|k| k.1.clone()).collect();
        sizes.dedup();
        let mut modes: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
        modes.sort();
        modes.dedup();
        let series: Vec<Series> = modes
            .iter()
            .map(|m| Series {
                name: format!("{m}, {} tunnels", tunnels.first().copied().unwrap_or(0)),
                values: sizes
                    .iter()
                    .map(|sz| {
                        runs.iter()
                            .filter(|r| &r.mode == m)
                            .flat_map(|r| r.results.iter())
                            .find(|x| &x.size == sz)
                            .map(|x| x.zero_loss_pps / 1e6)
                    })
                    .collect(),
            })
            .collect();
        return svg_lines(&title, "inner packet size (bytes)", "Mpps", &sizes, &series);
    }
    let xs: Vec<String> = tunnels.iter().map(|t| t.to_string()).collect();
    let series: Vec<Series> = keys
        .iter()
        .map(|(m, sz)| Series {
            name: format!("{m} {sz}"),
            values: tunnels
                .iter()
                .map(|t| {
                    runs.iter()
                        .filter(|r| &r.mode == m && r.tunnels == *t)
                        .flat_map(|r| r.results.iter())
                        .find(|x| &x.size == sz)
                        .map(|x| x.zero_loss_pps / 1e6)
                })
                .collect(),
        })
        .collect();
    svg_lines(&title, "tunnels (2 SAs each)", "Mpps", &xs, &series)
}

fn nice_ceiling(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}

fn trim_num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(mode: &str, tunnels: u32, pps: f64) -> RunReport {
        RunReport {
            mode: mode.into(),
            tunnels,
            workers: 1,
            results: vec![SizeResult {
                size: "64".into(),
                mean_ip_len: 64.0,
                zero_loss_pps: pps,
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    #[test]
    fn table_and_plot_carry_every_run() {
        let runs = vec![
            run("encap", 1, 2.5e6),
            run("encap", 100, 2.0e6),
            run("decap", 1, 1.5e6),
        ];
        let md = markdown(&runs);
        assert_eq!(md.matches("\n| encap |").count(), 2);
        assert!(md.contains("| 2.500 |"));
        let svg = svg(&runs);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            1,
            "encap 64 has two points"
        );
        assert_eq!(svg.matches("<circle").count(), 3);
        let ra = ratios(&runs);
        assert!(ra.contains("| encap | 64 | 0.80 |"), "{ra}");
        let mut two = run("encap", 100, 3.0e6);
        two.workers = 2;
        let ra = ratios(&[runs[1].clone(), two]);
        assert!(
            ra.contains("| encap | 100 | 2 | 64 | 3.000 | 2.000 | 1.50 |"),
            "{ra}"
        );
        assert_eq!(nice_ceiling(2.6), 5.0);
        assert_eq!(nice_ceiling(0.9), 1.0);
    }
}
