//! The zero-loss throughput search of RFC 2544 section 26.1: offer a rate for a fixed time,
//! count what comes back, and bisect between the highest rate that passed and the lowest that
//! failed until the two are within a resolution.
//!
//! The search is written against a closure that runs one trial, so that it can be tested on a
//! model of a device.
//!
//! On a shared machine a trial can lose packets for a reason that has nothing to do with the
//! rate: the gateway's or the generator's CPU taken away for a few milliseconds by another
//! tenant, and the rings overflow. One such hiccup in one trial would rule the rate out and
//! the search would settle far below the device's rate, at a different place in every run.
//! So a rate that lost packets is tried again (`confirm_loss` more times) before it is ruled
//! out: a rate passes when one of its trials is clean. On a dedicated machine (isolated
//! cores, no other tenant) a rate that loses packets loses them every time, and the result
//! is the same as without the retries. The first trial is unlimited (as fast as the generator can send): its
//! offered rate is the ceiling of the search, and when even that passes, the result is the
//! generator's limit, not the device's, and says so.

use serde::Serialize;

/// One trial: what was asked, offered and delivered.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Trial {
    /// Rate asked for in packets per second (infinite: as fast as possible).
    pub target_pps: f64,
    /// Rate actually offered (packets the generator tried to send over the duration).
    pub offered_pps: f64,
    /// Packets offered.
    pub sent: u64,
    /// Packets that came back (and passed the checks).
    pub received: u64,
}

impl Trial {
    /// Fraction of the offered packets that did not come back.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.sent.saturating_sub(self.received) as f64 / self.sent as f64
    }
}

/// Parameters of the search.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct SearchConfig {
    /// Loss that still counts as "zero" (a fraction: 0.00001 is 0.001 %).
    pub loss_tolerance: f64,
    /// Stop when the bracket is narrower than this fraction of its upper end.
    pub resolution: f64,
    /// At most this many rates tried after the first (unlimited) trial.
    pub max_trials: u32,
    /// Trials again at a rate that lost packets before it counts as failed.
    pub confirm_loss: u32,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            loss_tolerance: 0.0,
            resolution: 0.02,
            max_trials: 12,
            confirm_loss: 1,
        }
    }
}

/// The outcome of a search.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    /// The highest offered rate that passed (0 when none did).
    pub rate_pps: f64,
    /// The passing trial (its `received` counts), if any.
    pub best: Option<Trial>,
    /// The unlimited trial passed: the generator, not the device, set the rate.
    pub generator_limited: bool,
    /// Every trial in order, the unlimited one first.
    pub trials: Vec<Trial>,
}

/// Runs the search. `run(target_pps)` performs one trial (`f64::INFINITY`: unlimited).
pub fn zero_loss_rate(cfg: &SearchConfig, mut run: impl FnMut(f64) -> Trial) -> SearchResult {
    let first = run(f64::INFINITY);
    let mut trials = vec![first];
    let passes = |t: &Trial| t.sent > 0 && t.loss() <= cfg.loss_tolerance;
    if passes(&first) {
        return SearchResult {
            rate_pps: first.offered_pps,
            best: Some(first),
            generator_limited: true,
            trials,
        };
    }
    // Bracket first, then bisect. The rate delivered under overload is about the device's
    // forwarding rate, so the first probe goes just below it; from there the probes step away
    // (5 %, then 15 %, 45 %, ...) until one passes and one fails, which brackets the answer
    // in a few trials even when the guess is poor (a device that collapses under overload).
    // The unlimited trial's offered rate is only a ceiling: a refused packet costs the
    // generator little, so it can be far above anything the device passes.
    let mut lo = 0.0f64;
    let mut hi = first.offered_pps;
    let (mut passed, mut failed) = (false, false);
    let mut best: Option<Trial> = None;
    let delivered = first.received as f64 / first.sent.max(1) as f64 * first.offered_pps;
    let mut target = if delivered > 0.0 {
        (delivered * 0.98).min(hi)
    } else {
        hi / 2.0
    };
    let mut step = 0.05f64;
    for _ in 0..cfg.max_trials {
        if hi <= 0.0 || target <= 0.0 || (passed && failed && hi - lo <= cfg.resolution * hi) {
            break;
        }
        let mut t = run(target);
        trials.push(t);
        for _ in 0..cfg.confirm_loss {
            if passes(&t) {
                break;
            }
            t = run(target);
            trials.push(t);
        }
        if passes(&t) {
            lo = target;
            passed = true;
            // What counts is the rate actually offered (a busy generator may fall short).
            if best.is_none_or(|b| t.offered_pps > b.offered_pps) {
                best = Some(t);
            }
        } else {
            hi = target;
            failed = true;
        }
        target = if passed && failed {
            (lo + hi) / 2.0
        } else if passed {
            let up = lo * (1.0 + step);
            if up >= hi {
                (lo + hi) / 2.0
            } else {
                up
            }
        } else {
            hi * (1.0 - step.min(0.9))
        };
        step *= 3.0;
    }
    SearchResult {
        rate_pps: best.map_or(0.0, |b| b.offered_pps),
        best,
        generator_limited: false,
        trials,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A device that forwards up to `capacity` pps and drops the excess, fed by a generator
    /// that can offer at most `gen_max` pps, for one second per trial. `noise` lost packets
    /// per trial model a device that is never quite clean.
    fn model(capacity: f64, gen_max: f64, noise: u64) -> impl FnMut(f64) -> Trial {
        move |target| {
            let offered = target.min(gen_max);
            let sent = offered as u64;
            let received = (offered.min(capacity) as u64).saturating_sub(noise);
            Trial {
                target_pps: target,
                offered_pps: offered,
                sent,
                received,
            }
        }
    }

    #[test]
    fn converges_on_the_capacity_from_below() {
        let cfg = SearchConfig::default();
        let r = zero_loss_rate(&cfg, model(3_000_000.0, 10_000_000.0, 0));
        assert!(!r.generator_limited);
        assert!(r.rate_pps <= 3_000_000.0, "{}", r.rate_pps);
        assert!(
            r.rate_pps >= 3_000_000.0 * (1.0 - 2.0 * cfg.resolution),
            "{}",
            r.rate_pps
        );
        assert!(r.trials.len() <= 1 + cfg.max_trials as usize);
        assert_eq!(r.best.unwrap().received, r.best.unwrap().sent);
    }

    #[test]
    fn converges_without_a_good_first_guess() {
        // Under overload this device collapses (delivers 10 %): the guess is far too low and
        // the bisection must climb.
        let mut dev = |target: f64| {
            let offered = target.min(8e6);
            let received = if offered <= 5e6 {
                offered
            } else {
                offered * 0.1
            };
            Trial {
                target_pps: target,
                offered_pps: offered,
                sent: offered as u64,
                received: received as u64,
            }
        };
        let cfg = SearchConfig {
            max_trials: 20,
            ..Default::default()
        };
        let r = zero_loss_rate(&cfg, &mut dev);
        assert!(
            r.rate_pps <= 5e6 && r.rate_pps >= 5e6 * 0.96,
            "{}",
            r.rate_pps
        );
    }

    #[test]
    fn a_far_ceiling_costs_few_trials() {
        // A generator that "offers" 30 Mpps into a full ring, a device that forwards 270 kpps
        // and delivers only half of that under overload.
        let mut dev = |target: f64| {
            let offered = target.min(30e6);
            let received = if offered <= 270e3 { offered } else { 137e3 };
            Trial {
                target_pps: target,
                offered_pps: offered,
                sent: offered as u64,
                received: received as u64,
            }
        };
        // Counted in rates tried: no trial is repeated to confirm a loss here.
        let cfg = SearchConfig {
            confirm_loss: 0,
            ..Default::default()
        };
        let r = zero_loss_rate(&cfg, &mut dev);
        assert!(
            r.rate_pps <= 270e3 && r.rate_pps >= 270e3 * 0.96,
            "{}",
            r.rate_pps
        );
        assert!(r.trials.len() <= 12, "{} trials", r.trials.len());
    }

    /// A device that forwards `capacity` pps but loses packets in every second trial,
    /// whatever the rate (a neighbour takes its CPU now and then).
    fn hiccuping(capacity: f64) -> impl FnMut(f64) -> Trial {
        let mut n = 0u32;
        move |target| {
            n += 1;
            let offered = target.min(10e6);
            let received = if n.is_multiple_of(2) {
                offered * 0.99
            } else {
                offered.min(capacity)
            };
            Trial {
                target_pps: target,
                offered_pps: offered,
                sent: offered as u64,
                received: received as u64,
            }
        }
    }

    #[test]
    fn a_loss_is_confirmed_before_a_rate_is_ruled_out() {
        let r = zero_loss_rate(&SearchConfig::default(), hiccuping(3e6));
        assert!(
            r.rate_pps <= 3e6 && r.rate_pps >= 3e6 * 0.96,
            "{}",
            r.rate_pps
        );
        // Without the second trial the same device settles wherever the first hiccup fell.
        let once = SearchConfig {
            confirm_loss: 0,
            ..Default::default()
        };
        assert!(zero_loss_rate(&once, hiccuping(3e6)).rate_pps < 3e6 * 0.96);
        // A rate that always loses still fails (and costs one trial more).
        let r = zero_loss_rate(&SearchConfig::default(), model(3e6, 10e6, 0));
        assert!(
            r.rate_pps <= 3e6 && r.rate_pps >= 3e6 * 0.96,
            "{}",
            r.rate_pps
        );
    }

    #[test]
    fn generator_limit_is_reported() {
        let r = zero_loss_rate(&SearchConfig::default(), model(5e6, 2e6, 0));
        assert!(r.generator_limited);
        assert_eq!(r.rate_pps, 2e6);
        assert_eq!(r.trials.len(), 1);
    }

    #[test]
    fn tolerance_accepts_small_loss_only() {
        // 5 packets lost in every trial: zero tolerance never passes, 0.001 % does.
        let strict = zero_loss_rate(&SearchConfig::default(), model(1e6, 4e6, 5));
        assert_eq!(strict.rate_pps, 0.0);
        assert!(strict.best.is_none());
        let cfg = SearchConfig {
            loss_tolerance: 0.00001,
            ..Default::default()
        };
        let loose = zero_loss_rate(&cfg, model(1e6, 4e6, 5));
        assert!(
            loose.rate_pps > 0.9e6 && loose.rate_pps <= 1e6,
            "{}",
            loose.rate_pps
        );
    }
}
