//! The `ipsec-control` process: loads the configuration, connects to the dataplane's
//! channel (waiting for it if the dataplane is not up yet), and runs the daemon until
//! SIGINT/SIGTERM. If the dataplane goes away, the daemon reconnects and reinstalls the SPD
//! and every SA pair it holds (DESIGN.md: "If the dataplane restarts, control reinstalls
//! every SA it holds"). On exit the SAs stay in the dataplane and keep forwarding until
//! their lifetimes end.
//!
//! The operator's side is served from the same loop, between two waits for a dataplane
//! event (at most [`EVENT_WAIT`] apart): the ctl socket (`[ctl] socket`, for `ipsec-ctl`)
//! and, when `[ctl] metrics` is set, the Prometheus endpoint. Both answer from the daemon's
//! state ([`super::views`]); the loop being single-threaded, nothing they read can change
//! under them. The socket file is removed when the process stops.

use std::path::Path;
use std::time::{Duration, Instant};

use dataplane::signals;

use crate::config::IkeConfig;
use crate::ctl::{CtlServer, CtlServerOptions, MetricsServer};
use crate::dplink::{Dataplane, LinkError};
use dataplane::channel::SaCountersMsg;

use super::monitor_log;
use super::policy::GatewayPolicy;
use super::{Daemon, Link};

/// How long one wait for a dataplane event lasts: the timer resolution of the daemon.
pub(super) const EVENT_WAIT: Duration = Duration::from_millis(50);
/// How long a request to the dataplane waits for its reply (the channel socket's receive
/// timeout; events are waited for with [`EVENT_WAIT`] apart from it). Long enough for a
/// dataplane whose main lcore is descheduled for a while on a loaded host: a request that
/// times out loses what it carried (an IKE message: a retransmission interval, seconds).
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// At most this many queued events are taken at once. The channel must not go unread for
/// long: past a bound the dataplane drops the IKE messages it punts to us (it holds Acquire
/// and lifetime events; see dataplane::channel::outbox), and with a thousand spokes
/// starting at once, batches of 256 (a few hundred ms of DH and RSA, and the serial Quick
/// Mode work after them) kept it unread that long (the dataplane used to drop us then). The
/// parallel steps now read the channel as they run (Daemon::on_events); 32 still gives
/// every core several steps.
const MAX_BATCH: usize = 32;
/// How often timers run.
const TICK: Duration = Duration::from_millis(100);

/// The operator's endpoints: the ctl socket and the optional metrics server.
struct Operator {
    ctl: CtlServer,
    metrics: Option<MetricsServer>,
}

impl Operator {
    /// Binds the ctl socket (creating its directory) and the metrics endpoint, and starts
    /// feeding the log to debugging sessions.
    fn bind(config: &IkeConfig) -> Result<Operator, String> {
        let ctl = CtlServer::bind(
            &config.ctl_socket,
            CtlServerOptions {
                group: config.ctl_group,
                max_sessions: 0,
            },
        )
        .map_err(|e| format!("ctl socket {}: {e}", config.ctl_socket.display()))?;
        let metrics = match config.ctl_metrics {
            Some(addr) => Some(
                MetricsServer::bind(addr).map_err(|e| format!("metrics address {addr}: {e}"))?,
            ),
            None => None,
        };
        monitor_log::attach(ctl.monitor());
        log::info!(
            "%CRYPTO-6-CTL: ipsec-ctl socket at {}{}",
            config.ctl_socket.display(),
            match config.ctl_metrics {
                Some(a) => format!(", metrics at http://{a}/metrics"),
                None => String::new(),
            }
        );
        Ok(Operator { ctl, metrics })
    }

    /// Answers whatever is pending, without blocking.
    fn poll<L: Link>(&mut self, daemon: &mut Daemon<L>) {
        self.ctl.poll(daemon);
        if let Some(m) = &mut self.metrics {
            m.poll(daemon);
        }
        monitor_log::refresh_level();
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        monitor_log::detach();
    }
}

/// Connects to the dataplane, trying once a second until it answers or a stop is asked
/// for; `meanwhile` runs between two tries (it serves ipsec-ctl while the dataplane of a
/// running daemon is away).
fn connect(path: &Path, mut meanwhile: impl FnMut()) -> Option<Dataplane> {
    let mut said = false;
    loop {
        if signals::stop_requested() {
            return None;
        }
        match Dataplane::connect(path) {
            Ok(mut d) => {
                if let Err(e) = d.set_event_timeout(REQUEST_TIMEOUT) {
                    log::warn!("dataplane channel: {e}");
                    continue;
                }
                log::info!(
                    "%CRYPTO-6-DATAPLANE: connected to the dataplane at {}",
                    path.display()
                );
                return Some(d);
            }
            Err(e) => {
                if !said {
                    log::warn!(
                        "%CRYPTO-4-DATAPLANE: no dataplane at {} ({e}); retrying every second",
                        path.display()
                    );
                    said = true;
                }
                let until = Instant::now() + Duration::from_secs(1);
                while Instant::now() < until && !signals::stop_requested() {
                    meanwhile();
                    std::thread::sleep(EVENT_WAIT);
                }
            }
        }
    }
}

/// Times a refused SA dump is asked for again before a resync goes without it.
const DUMP_TRIES: u32 = 3;

/// The SAs the dataplane holds, for a resync (every page of its dump). A dump it refused —
/// a worker did not report in time, on a loaded host — is asked for again a few times:
/// going without it would leave its SAs unknown to us (not shown, not rekeyed, and the SPD
/// we install would lack the rules of dynamic-map SAs).
pub(super) fn held_sas(link: &mut Dataplane) -> Result<Vec<SaCountersMsg>, LinkError> {
    let mut tries = 1;
    loop {
        match link.sas() {
            Err(LinkError::Refused(reason)) if tries < DUMP_TRIES => {
                log::info!("%CRYPTO-6-RESYNC: SA dump refused ({reason}); asking again");
                tries += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            r => return r,
        }
    }
}

impl<L: Link> Daemon<L> {
    /// Puts the SPD and every SA pair back into a dataplane we reconnected to. `held` is
    /// what it holds: after a restart, the `ipsec-manual` SAs it installed itself from the
    /// file — those under an SA id other than ours (the file was reloaded with entries added
    /// in front of them) are moved to ours, so that the SPD we install finds them. An SA it
    /// still holds (the connection broke, the dataplane did not restart) is left alone:
    /// installing it again would start its sequence numbers over, and the peer's
    /// anti-replay check would drop what follows.
    pub fn reinstall(&mut self, held: &[dataplane::channel::SaCountersMsg]) {
        use dataplane::esp::Direction;
        let holds =
            |spi: u32, d: Direction| held.iter().any(|s| s.spi == spi && s.direction == Some(d));
        // what an earlier control run left in a dataplane that restarted is gone with it
        self.children
            .adopted
            .retain(|_, a| holds(a.spi, a.direction));
        let ours: Vec<(super::sa_ids::EntryKey, dataplane::config::ManualSa)> = self
            .policy
            .manual_sas()
            .map(|(k, m)| (k, m.clone()))
            .collect();
        for s in held {
            let Some(direction) = s.direction else {
                continue;
            };
            let key = (s.crypto_map.clone(), s.crypto_map_seq);
            let Some((_, m)) = ours.iter().find(|(k, _)| *k == key) else {
                continue; // not an ipsec-manual SA
            };
            let placed = m.sa_id == s.sa_id && (m.inbound.spi == s.spi || m.outbound.spi == s.spi);
            if !placed {
                if let Err(e) = self.link.delete_sa(s.spi, direction, s.sa_id) {
                    log::info!("IPSEC: manual SA 0x{:08x}: {e}", s.spi);
                }
            }
        }
        for (_, m) in ours {
            for p in [m.inbound, m.outbound] {
                if held.iter().any(|s| {
                    s.sa_id == m.sa_id && s.spi == p.spi && s.direction == Some(p.direction)
                }) {
                    continue;
                }
                let spi = p.spi;
                if let Err(e) = self.link.add_sa(m.sa_id, p) {
                    log::warn!("IPSEC: manual SA 0x{spi:08x} not reinstalled: {e}");
                }
            }
        }
        let pairs: Vec<(u32, u32)> = self
            .children
            .by_spi
            .iter()
            .map(|(s, c)| (*s, c.sa_id))
            .collect();
        for (spi, sa_id) in pairs {
            let c = &self.children.by_spi[&spi];
            let (inbound, outbound) = (c.sa.inbound.clone(), c.sa.outbound.clone());
            let current = self.children.current.get(&sa_id) == Some(&spi)
                && !holds(outbound.spi, Direction::Outbound);
            if holds(spi, Direction::Inbound) {
                // still there
            } else if let Err(e) = self.link.add_sa(sa_id, inbound) {
                log::warn!("IPSEC: inbound SA 0x{spi:08x} not reinstalled: {e}");
            }
            if current {
                if let Err(e) = self.link.add_sa(sa_id, outbound) {
                    log::warn!("IPSEC: outbound SA for SA id {sa_id} not reinstalled: {e}");
                }
            }
        }
        // ours, not the one the dataplane compiled from the file: after a reload the SA
        // ids differ, and the dynamic-map rules of the spokes are only here
        self.install_spd();
        log::info!(
            "%CRYPTO-6-DATAPLANE: reinstalled {} SA pairs",
            self.children.by_spi.len()
        );
    }
}

/// `group 14: 2048, group 2: 1024` (or `none`), for the log.
fn dh_targets_text(targets: &[(crate::ikecrypto::DhGroup, usize)]) -> String {
    if targets.is_empty() {
        return "none".into();
    }
    targets
        .iter()
        .map(|(g, n)| format!("{g}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs `ipsec-control --config FILE` until a signal.
pub fn run(config_path: &Path) -> Result<(), String> {
    let config = IkeConfig::load(config_path).map_err(|e| e.to_string())?;
    let policy = GatewayPolicy::new(&config)?;
    signals::install().map_err(|e| format!("signal handlers: {e}"))?;
    signals::install_reload().map_err(|e| format!("SIGHUP handler: {e}"))?;
    let channel = config.base.dataplane.channel.clone();
    log::info!(
        "%CRYPTO-6-IKMP_ON: ISAKMP is enabled: {} isakmp policies, {} crypto map entries keyed \
         by IKE, {} dynamic map entries, local addresses {:?}",
        policy.phase1.len(),
        policy.statics.len(),
        policy.dynamics.len(),
        policy.main_mode.keys().collect::<Vec<_>>()
    );
    // Diffie-Hellman key pairs are made from now on whenever a CPU is idle, also while the
    // dataplane is awaited
    policy.dh_pool.set_targets(&policy.dh_targets());
    policy.dh_pool.start_refill();
    log::info!(
        "%CRYPTO-6-DH_PRECOMPUTE: precomputing Diffie-Hellman key pairs at idle priority: {}",
        dh_targets_text(&policy.dh_targets())
    );
    let Some(link) = connect(&channel, || {}) else {
        return Ok(());
    };
    let mut operator = Operator::bind(&config)?;
    let mut daemon = Daemon::new(link, policy);
    match held_sas(&mut daemon.link) {
        Ok(sas) => daemon.adopt(sas),
        Err(e) => log::warn!("%CRYPTO-4-RESYNC: cannot read the dataplane's SAs: {e}"),
    }
    let mut next_tick = Instant::now() + TICK;
    while !signals::stop_requested() {
        // what was read while the last batch was stepped comes first
        let first = match daemon.take_backlog() {
            Some(ev) => Ok(Some(ev)),
            None => daemon.link.wait_event(EVENT_WAIT),
        };
        match first {
            Ok(Some(ev)) => {
                // what else is already queued goes with it: Main Mode steps of different
                // peers then run in parallel (Daemon::on_events)
                let mut batch = vec![ev];
                while batch.len() < MAX_BATCH {
                    if let Some(e) = daemon.take_backlog() {
                        batch.push(e);
                        continue;
                    }
                    match daemon.link.try_event() {
                        Ok(Some(e)) => batch.push(e),
                        _ => break,
                    }
                }
                daemon.on_events(batch, Instant::now());
            }
            Ok(None) => {}
            Err(_) if signals::stop_requested() => break, // the signal interrupted the wait
            Err(e) => {
                log::warn!("%CRYPTO-4-DATAPLANE: lost the dataplane: {e}; reconnecting");
                // ipsec-ctl is served meanwhile: the IKE side as it is, and what needs the
                // dataplane answers that it is not connected
                let Some(link) = connect(&channel, || operator.poll(&mut daemon)) else {
                    break;
                };
                daemon.link = link;
                let held = held_sas(&mut daemon.link).unwrap_or_else(|e| {
                    log::warn!("%CRYPTO-4-DATAPLANE: cannot read the dataplane's SAs: {e}");
                    Vec::new()
                });
                daemon.reinstall(&held);
            }
        }
        if signals::take_reload() {
            // SIGHUP (systemctl reload): the same as `ipsec-ctl reload`; errors are logged
            let _ = daemon.reload_file();
        }
        let now = Instant::now();
        if now >= next_tick {
            daemon.tick(now);
            next_tick = now + TICK;
        }
        operator.poll(&mut daemon);
    }
    drop(operator); // removes the socket file
    log::info!(
        "%CRYPTO-6-IKMP_OFF: ipsec-control stopping; {} IPsec SA pairs stay in the dataplane",
        daemon.children.by_spi.len()
    );
    Ok(())
}
