//! What a run measured: per spoke when phase 1, phase 2 and the first probe's arrival
//! happened, and the totals the issue asks for: tunnels per second (phase 2 SAs up over the
//! time from the first MM1 to the last phase 2), time to the first and last phase 2 SA,
//! time until every tunnel carried traffic, failures by reason. Serialized as JSON for
//! `benches/ike-setup.sh`; `Display` is the human summary.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use serde::Serialize;

use super::spoke::Times;

/// One spoke's outcome.
pub struct SpokeResult {
    pub number: usize,
    pub times: Times,
    /// When the sink got its first probe.
    pub arrival: Option<Duration>,
    pub retransmissions: u32,
    pub failure: Option<String>,
}

/// Percentiles of a set of durations, in seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Spread {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Spread {
    fn of(mut v: Vec<f64>) -> Option<Spread> {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        Some(Spread {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: v[v.len() - 1],
        })
    }
}

/// The run's figures (times in seconds from the first MM1).
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub responder_label: String,
    pub responder: String,
    pub spokes: usize,
    pub window: usize,
    pub threads: usize,
    pub phase1_up: usize,
    pub phase2_up: usize,
    /// Phase 2 SAs up per second: `phase2_up / last_phase2_s`.
    pub tunnels_per_s: Option<f64>,
    pub first_phase2_s: Option<f64>,
    pub last_phase2_s: Option<f64>,
    /// Per tunnel, MM1 sent to QM3 sent.
    pub setup_latency_s: Option<Spread>,
    /// Whether probes were sent and counted.
    pub traffic_checked: bool,
    pub carrying_traffic: usize,
    /// When the last tunnel's first probe arrived, if every tunnel up carried one.
    pub all_carrying_traffic_s: Option<f64>,
    pub last_arrival_s: Option<f64>,
    pub stray_datagrams: u64,
    pub retransmissions: u64,
    pub send_errors: u64,
    pub failures: BTreeMap<String, usize>,
    /// /proc/loadavg (1, 5, 15 min) before and after: the machine is shared.
    pub load_before: String,
    pub load_after: String,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        label: &str,
        responder: Ipv4Addr,
        window: usize,
        threads: usize,
        traffic_checked: bool,
        spokes: Vec<SpokeResult>,
        stray_datagrams: u64,
        send_errors: u64,
        load_before: String,
        load_after: String,
    ) -> Report {
        let p2: Vec<Duration> = spokes.iter().filter_map(|s| s.times.phase2).collect();
        let first_p2 = p2.iter().min().copied();
        let last_p2 = p2.iter().max().copied();
        let arrivals: Vec<Duration> = spokes.iter().filter_map(|s| s.arrival).collect();
        let last_arrival = arrivals.iter().max().copied();
        let mut failures = BTreeMap::new();
        for s in &spokes {
            let reason = match (&s.failure, s.times.phase2) {
                (Some(r), _) => Some(r.clone()),
                (None, None) => Some("run timeout while negotiating".to_string()),
                (None, Some(_)) if traffic_checked && s.arrival.is_none() => {
                    Some("traffic: no probe arrived before the run timeout".to_string())
                }
                _ => None,
            };
            if let Some(r) = reason {
                *failures.entry(r).or_insert(0) += 1;
            }
        }
        let latency = spokes
            .iter()
            .filter_map(|s| Some(secs(s.times.phase2? - s.times.started?)))
            .collect();
        let all_carry = traffic_checked && !p2.is_empty() && arrivals.len() == spokes.len();
        Report {
            responder_label: label.to_string(),
            responder: responder.to_string(),
            spokes: spokes.len(),
            window,
            threads,
            phase1_up: spokes.iter().filter(|s| s.times.phase1.is_some()).count(),
            phase2_up: p2.len(),
            tunnels_per_s: last_p2
                .filter(|d| !d.is_zero())
                .map(|d| p2.len() as f64 / secs(d)),
            first_phase2_s: first_p2.map(secs),
            last_phase2_s: last_p2.map(secs),
            setup_latency_s: Spread::of(latency),
            traffic_checked,
            carrying_traffic: arrivals.len(),
            all_carrying_traffic_s: if all_carry {
                last_arrival.map(secs)
            } else {
                None
            },
            last_arrival_s: last_arrival.map(secs),
            stray_datagrams,
            retransmissions: spokes.iter().map(|s| s.retransmissions as u64).sum(),
            send_errors,
            failures,
            load_before,
            load_after,
        }
    }
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or("-".into(), |v| format!("{v:.3}{unit}"))
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "responder {} ({}): {} spokes, window {}, {} threads",
            self.responder_label, self.responder, self.spokes, self.window, self.threads
        )?;
        writeln!(
            f,
            "  phase 1 up {}, phase 2 up {}: {} tunnels/s; first phase 2 at {}, last at {}",
            self.phase1_up,
            self.phase2_up,
            self.tunnels_per_s.map_or("-".into(), |v| format!("{v:.1}")),
            opt(self.first_phase2_s, " s"),
            opt(self.last_phase2_s, " s")
        )?;
        if let Some(l) = &self.setup_latency_s {
            writeln!(
                f,
                "  setup latency MM1 -> QM3: p50 {:.3} s, p90 {:.3} s, p99 {:.3} s, max {:.3} s",
                l.p50, l.p90, l.p99, l.max
            )?;
        }
        if self.traffic_checked {
            writeln!(
                f,
                "  carrying traffic: {} of {} (all at {}, last probe at {}); stray datagrams {}",
                self.carrying_traffic,
                self.spokes,
                opt(self.all_carrying_traffic_s, " s"),
                opt(self.last_arrival_s, " s"),
                self.stray_datagrams
            )?;
        }
        writeln!(
            f,
            "  retransmissions {}, send errors {}, load average {} -> {}",
            self.retransmissions, self.send_errors, self.load_before, self.load_after
        )?;
        for (r, n) in &self.failures {
            writeln!(f, "  failed: {n} x {r}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    fn spoke(number: usize, p2: Option<Duration>, arrival: Option<Duration>) -> SpokeResult {
        SpokeResult {
            number,
            times: Times {
                started: ms(0),
                phase1: p2.map(|d| d / 2),
                phase2: p2,
                first_probe: p2,
            },
            arrival,
            retransmissions: 1,
            failure: None,
        }
    }

    fn report(spokes: Vec<SpokeResult>) -> Report {
        Report::new(
            "t",
            Ipv4Addr::LOCALHOST,
            10,
            2,
            true,
            spokes,
            0,
            0,
            String::new(),
            String::new(),
        )
    }

    #[test]
    fn rate_and_traffic_times_come_from_the_spokes() {
        let r = report(vec![
            spoke(1, ms(100), ms(150)),
            spoke(2, ms(400), ms(420)),
            spoke(3, ms(200), ms(500)),
            spoke(4, ms(300), ms(310)),
        ]);
        assert_eq!(r.phase2_up, 4);
        assert_eq!(r.tunnels_per_s, Some(10.0)); // 4 tunnels in 0.4 s
        assert_eq!(r.first_phase2_s, Some(0.1));
        assert_eq!(r.all_carrying_traffic_s, Some(0.5));
        assert!(r.failures.is_empty());
        assert_eq!(r.retransmissions, 4);
    }

    #[test]
    fn a_tunnel_without_traffic_or_phase_2_is_a_failure_and_no_all_time() {
        let mut failed = spoke(3, None, None);
        failed.failure = Some("MM: no answer (MM_NO_STATE)".into());
        let r = report(vec![
            spoke(1, ms(100), ms(150)),
            spoke(2, ms(200), None),
            failed,
        ]);
        assert_eq!(r.phase2_up, 2);
        assert_eq!(r.carrying_traffic, 1);
        assert_eq!(r.all_carrying_traffic_s, None);
        assert_eq!(r.last_arrival_s, Some(0.15));
        assert_eq!(r.failures.len(), 2);
        assert_eq!(r.failures["MM: no answer (MM_NO_STATE)"], 1);
    }
}
