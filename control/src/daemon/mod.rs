//! The IKE daemon: the state of every phase 1 and phase 2 negotiation and every installed
//! SA pair, driven by what the dataplane reports (punted IKE messages, Acquire for traffic
//! that needs a tunnel, lifetime expiry) and by time (retransmissions, DPD, rekeying,
//! re-authentication), acting through a [`Link`] to the dataplane.
//!
//! - [`policy`]: the configuration in the exchanges' terms.
//! - [`phase1`]: Main Mode exchanges and ISAKMP SAs.
//! - [`quick`]: Quick Mode exchanges.
//! - [`children`]: installed SA pairs, the current pair of each SPD entry, dynamic SPD rules.
//! - [`resync`]: SAs adopted from a dataplane that outlived an earlier `ipsec-control`.
//! - [`run`]: the process: connects to the dataplane and loops.
//! - [`views`]: what `ipsec-ctl` shows and does ([`crate::ctl::CtlBackend`]), from live state.
//! - [`monitor_log`]: the process's logger, which also feeds `debug crypto ...` sessions.
//!
//! The core ([`Daemon`]) does no I/O of its own and reads no clock: every entry point takes
//! `now`, so the whole life of a tunnel can be tested with two daemons talking to each
//! other (see the tests).
//!
//! Ordering rules kept here (issue 3, "Rekeying"): a new inbound SA is installed before the
//! message that lets the peer use it (the responder before QM2, the initiator before QM3);
//! a rekeyed pair takes over the outbound SA id in one step, and the old inbound SA stays
//! until [`RETIRE_GRACE`] has passed, so packets in flight on the old SA still decrypt.

pub mod children;
pub mod monitor_log;
pub mod phase1;
pub mod policy;
pub mod quick;
mod reload;
pub mod resync;
pub mod run;
pub mod sa_ids;
mod step_pool;
pub mod views;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_reload;
#[cfg(test)]
mod tests_resync;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use dataplane::channel::{CountersMsg, SpdRuleMsg};
use dataplane::esp::{Direction, SaParams};

use crate::dplink::{Dataplane, Event, IkeDatagram, LinkError};
use crate::ike::informational::{self, InfoEvent};
use crate::ike::log_context;
use crate::ike::{
    ChildSa, Initiator, Phase1Sa, Phase2Policy, QmResponse, QuickModeInitiator, QuickModeResponder,
    Rejection, Responder, Role, Step,
};
use crate::isakmp::header::ExchangeType;
use crate::isakmp::message;
use crate::sessions::{Admission, Due, Retransmit, Schedule};

use children::{Child, Children};
use phase1::{Advance, DpdState, Negotiation, P1Key, P1State, PendingQuick, Phase1};
use policy::{GatewayPolicy, Origin};
use quick::{Quick, QuickState};
use step_pool::StepPool;

/// How long the inbound SA of a rekeyed pair stays after the new pair took over.
pub const RETIRE_GRACE: Duration = Duration::from_secs(5);
/// How long a finished Quick Mode initiator state is kept to answer a retransmitted QM2.
const QM_LINGER: Duration = Duration::from_secs(30);
/// Phase 1 is re-authenticated at this fraction of its lifetime (by its initiator).
const REAUTH_PERCENT: u32 = 90;
/// Seconds between R-U-THERE retries.
const DPD_RETRY: Duration = Duration::from_secs(2);
/// How often the CRLs are checked for one due for refresh (the cache refreshes a CRL before
/// its nextUpdate; a fetch failure keeps the one held while it is valid).
const CRL_CHECK: Duration = Duration::from_secs(60);
/// First conn-id of IPsec SAs (IOS numbers them apart from ISAKMP SAs).
const FIRST_IPSEC_CONN_ID: u32 = 2001;

/// What the daemon needs from the dataplane.
pub trait Link {
    fn send_ike(&mut self, datagram: &IkeDatagram) -> Result<(), LinkError>;
    /// Sends an IP packet that is not an IKE message (NAT keepalives).
    fn send_packet(&mut self, packet: Vec<u8>) -> Result<(), LinkError>;
    fn allocate_spi(&mut self) -> Result<u32, LinkError>;
    fn add_sa(&mut self, sa_id: u32, params: SaParams) -> Result<(), LinkError>;
    fn delete_sa(&mut self, spi: u32, direction: Direction, sa_id: u32) -> Result<(), LinkError>;
    fn install_spd(&mut self, rules: Vec<SpdRuleMsg>) -> Result<(), LinkError>;
    /// Every SA's counters and remaining lifetime, and the per-lcore counters (what the
    /// show commands and the metrics print).
    fn counters(&mut self) -> Result<CountersMsg, LinkError>;
    /// An event already sent to us, without waiting; None when there is none (or the link
    /// has no events of its own, as in the tests). Read while a batch's Main Mode steps
    /// run, so that the channel keeps being emptied (see [`Daemon::on_events`]).
    fn poll_event(&mut self) -> Option<Event> {
        None
    }
    /// The dataplane's name and version, as its Hello gave them.
    fn engine_name(&self) -> Option<String> {
        None
    }
}

impl Link for Dataplane {
    fn send_ike(&mut self, datagram: &IkeDatagram) -> Result<(), LinkError> {
        Dataplane::send_ike(self, datagram)
    }
    fn send_packet(&mut self, packet: Vec<u8>) -> Result<(), LinkError> {
        Dataplane::send_packet(self, packet)
    }
    fn allocate_spi(&mut self) -> Result<u32, LinkError> {
        Dataplane::allocate_spi(self, None)
    }
    fn add_sa(&mut self, sa_id: u32, params: SaParams) -> Result<(), LinkError> {
        Dataplane::add_sa(self, sa_id, params)
    }
    fn delete_sa(&mut self, spi: u32, direction: Direction, sa_id: u32) -> Result<(), LinkError> {
        Dataplane::delete_sa(self, spi, direction, sa_id)
    }
    fn install_spd(&mut self, rules: Vec<SpdRuleMsg>) -> Result<(), LinkError> {
        Dataplane::install_spd(self, rules)
    }
    fn counters(&mut self) -> Result<CountersMsg, LinkError> {
        // the socket's timeout is the request timeout (run::REQUEST_TIMEOUT), long enough
        // for a dump the dataplane gathers from its lcores
        Dataplane::counters(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        // a broken channel shows again at the run loop's next wait, which reconnects
        self.try_event().ok().flatten()
    }
    fn engine_name(&self) -> Option<String> {
        Some(Dataplane::engine_name(self).to_string())
    }
}

/// Counts of what happened, for show output and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub acquires: u64,
    pub phase1_established: u64,
    pub phase1_failed: u64,
    pub quick_established: u64,
    pub quick_failed: u64,
    pub malformed: u64,
    pub no_sa: u64,
    pub refused_admission: u64,
    pub dead_peers: u64,
    pub link_errors: u64,
}

/// The daemon's state.
pub struct Daemon<L: Link> {
    pub link: L,
    pub policy: GatewayPolicy,
    pub admission: Admission,
    /// Retransmission schedule of every exchange.
    pub schedule: Schedule,
    pub phase1: BTreeMap<P1Key, Phase1>,
    pub children: Children,
    pub stats: Stats,
    next_conn_id: u32,
    next_ipsec_conn_id: u32,
    next_dynamic_sa_id: u32,
    /// When the CRLs are next checked for a refresh (before their nextUpdate).
    next_crl_check: Option<Instant>,
    /// Events read from the link while a batch was being stepped, oldest first: the next
    /// batch starts with them ([`Daemon::take_backlog`]).
    backlog: VecDeque<Event>,
    /// While [`Daemon::on_events`] handles a batch: whether the SPD changed. The SPD is
    /// then installed once for the batch instead of once per change (a hub bringing up
    /// hundreds of spokes would otherwise send its whole SPD once per spoke: O(N^2)).
    spd_batch: Option<bool>,
    /// The threads a batch's steps run on, one per core.
    steps: StepPool<Job, Stepped>,
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    // openssl's CSPRNG; a failure here means the process cannot do IKE at all
    openssl::rand::rand_bytes(&mut b).expect("OpenSSL random bytes");
    u32::from_be_bytes(b)
}

/// One exchange step of a batch to run on a thread of the [`StepPool`]: the phase 1 SA
/// (taken out of the map meanwhile), the message, and what to do with it.
struct Job {
    key: P1Key,
    p1: Phase1,
    d: IkeDatagram,
    work: Work,
}

/// The expensive steps: Diffie-Hellman, RSA and certificate checks.
enum Work {
    /// A Main Mode message for the negotiation (taken out of the SA).
    MainMode(Box<Negotiation>),
    /// A QM1 under the (established) SA: the crypto-map entries it may match and the
    /// inbound SPI allocated for it beforehand (the dataplane cannot be asked from a
    /// thread). With PFS, its two modular exponentiations are a third of a hub's work
    /// per tunnel.
    QuickMode {
        mid: u32,
        offered: Vec<(Phase2Policy, Origin)>,
        spi: u32,
    },
}

/// What a [`Job`] gave.
enum Outcome {
    MainMode(Box<Advance>),
    QuickMode {
        mid: u32,
        offered: Vec<(Phase2Policy, Origin)>,
        result: Box<Result<QmResponse, Rejection>>,
    },
}

impl Job {
    fn run(self) -> Stepped {
        let Job { key, p1, d, work } = self;
        let outcome = log_context::scope(p1.conn_id, || match work {
            Work::MainMode(n) => {
                Outcome::MainMode(Box::new(n.on_message(&d.message, d.local, d.remote)))
            }
            Work::QuickMode { mid, offered, spi } => {
                let P1State::Established { sa, .. } = &p1.state else {
                    unreachable!("a QM1 job is made for an established SA only")
                };
                let policies: Vec<_> = offered.iter().map(|(p, _)| p.clone()).collect();
                let result = Box::new(QuickModeResponder::on_qm1(
                    sa,
                    &d.message,
                    &policies,
                    &mut || spi,
                ));
                Outcome::QuickMode {
                    mid,
                    offered,
                    result,
                }
            }
        });
        (key, p1, d, outcome)
    }
}

/// The number of cores, asked once: `available_parallelism` reads the cgroup files of the
/// process each time (it showed in profiles of a hub under load, once per batch).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// How often the link is read while steps run.
const DRAIN_EVERY: Duration = Duration::from_millis(1);

/// A step's result: the SA back, its message, what the step gave.
type Stepped = (P1Key, Phase1, IkeDatagram, Outcome);

fn addr_port(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

impl<L: Link> Daemon<L> {
    /// The daemon for `policy`; sets the targets of the policy's Diffie-Hellman pool (what
    /// fills it is the caller's: [`run`] starts its refill thread).
    pub fn new(link: L, policy: GatewayPolicy) -> Daemon<L> {
        policy.dh_pool.set_targets(&policy.dh_targets());
        Daemon {
            link,
            admission: Admission::new(policy.admission_limit),
            next_dynamic_sa_id: policy.first_dynamic_sa_id,
            policy,
            schedule: Schedule::default(),
            phase1: BTreeMap::new(),
            children: Children::default(),
            stats: Stats::default(),
            next_conn_id: 1,
            next_ipsec_conn_id: FIRST_IPSEC_CONN_ID,
            next_crl_check: None,
            spd_batch: None,
            backlog: VecDeque::new(),
            steps: StepPool::new(cores(), Job::run),
        }
    }

    fn conn_id(&mut self) -> u32 {
        let c = self.next_conn_id;
        self.next_conn_id = self.next_conn_id.wrapping_add(1).max(1);
        c
    }

    fn ipsec_conn_id(&mut self) -> u32 {
        let c = self.next_ipsec_conn_id;
        self.next_ipsec_conn_id += 1;
        c
    }

    fn send(&mut self, local: SocketAddr, remote: SocketAddr, message: Vec<u8>) {
        if message.is_empty() {
            return;
        }
        let d = IkeDatagram {
            local,
            remote,
            message,
        };
        if let Err(e) = self.link.send_ike(&d) {
            self.stats.link_errors += 1;
            log::warn!("ISAKMP: cannot send to {remote}: {e}");
        }
    }

    /// One event from the dataplane.
    pub fn on_event(&mut self, event: Event, now: Instant) {
        match event {
            Event::Ike { datagram, .. } => self.on_ike(datagram, now),
            Event::Acquire {
                sa_id,
                source,
                destination,
                ..
            } => self.on_acquire(
                sa_id,
                source.parse().ok(),
                destination.parse().ok(),
                None,
                now,
            ),
            Event::Expire {
                spi,
                direction,
                hard,
                ..
            } => self.on_expire(spi, direction, hard, now),
        }
    }

    // -----------------------------------------------------------------------------------
    // Received IKE messages

    /// An IKE message for us.
    pub fn on_ike(&mut self, d: IkeDatagram, now: Instant) {
        let h = match message::parse_header(&d.message) {
            Ok((h, _)) => h,
            Err(e) => {
                self.stats.malformed += 1;
                log::warn!(
                    "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from {} failed its sanity check or \
                     is malformed ({e})",
                    d.remote
                );
                return;
            }
        };
        let key = (h.initiator_cookie, d.remote.ip());
        if let Some(mut p1) = self.phase1.remove(&key) {
            let keep = log_context::scope(p1.conn_id, || {
                self.on_p1_message(&mut p1, &d, h.exchange_type, h.message_id, now)
            });
            if keep {
                self.phase1.insert(key, p1);
            }
            return;
        }
        if h.exchange_type == ExchangeType::MAIN_MODE && h.responder_cookie == [0; 8] {
            self.new_responder(key, d, now);
        } else if h.exchange_type == ExchangeType::AGGRESSIVE {
            log::warn!(
                "ISAKMP:(0):Aggressive Mode (OAK_AG) from {} refused: only Main Mode is accepted",
                d.remote
            );
        } else {
            self.stats.no_sa += 1;
            log::info!(
                "%CRYPTO-4-IKMP_NO_SA: IKE message from {} has no SA and is not an \
                 initialization offer",
                d.remote
            );
        }
    }

    fn new_responder(&mut self, key: P1Key, d: IkeDatagram, now: Instant) {
        let Some(cfg) = self
            .policy
            .main_mode
            .get(&d.local.ip())
            .map(|m| m.first_contact.clone())
        else {
            log::warn!(
                "ISAKMP:(0):MM1 from {} to {}: no crypto map on that address, ignored",
                d.remote,
                d.local.ip()
            );
            return;
        };
        let Some(slot) = self.admission.admit() else {
            self.stats.refused_admission += 1;
            log::warn!(
                "%CRYPTO-4-IKE_DENY_SA_REQ: IKE denied an SA request from {} to {} due to the \
                 call admission limit ({} in negotiation)",
                d.remote.ip(),
                d.local.ip(),
                self.admission.in_negotiation()
            );
            return;
        };
        let conn_id = self.conn_id();
        match log_context::scope(conn_id, || {
            Responder::on_first(cfg, &d.message, d.local, d.remote)
        }) {
            Ok((st, mm2)) => {
                self.send(st.local(), st.remote(), mm2);
                self.phase1.insert(
                    key,
                    Phase1 {
                        conn_id,
                        peer: d.remote.ip(),
                        state: P1State::Negotiating {
                            negotiation: Some(Box::new(Negotiation::R2(st))),
                            retransmit: Retransmit::new(self.schedule, now),
                            slot: Some(slot),
                        },
                        created: now,
                        last_heard: now,
                        waiting: Vec::new(),
                        quick: BTreeMap::new(),
                    },
                );
            }
            Err(r) => {
                // the exchange logged why (IOS's line)
                self.admission.release(slot);
                self.stats.phase1_failed += 1;
                if let Some(n) = r.notify {
                    self.send(d.local, d.remote, n);
                }
            }
        }
    }

    /// A message for an existing phase 1 SA; false when the SA is gone.
    fn on_p1_message(
        &mut self,
        p1: &mut Phase1,
        d: &IkeDatagram,
        exchange: ExchangeType,
        message_id: u32,
        now: Instant,
    ) -> bool {
        match &mut p1.state {
            P1State::Negotiating { negotiation, .. } => {
                let Some(n) = negotiation.take() else {
                    return false;
                };
                let adv = (*n).on_message(&d.message, d.local, d.remote);
                self.apply_advance(p1, adv, d, now)
            }
            P1State::Established { sa, .. } => {
                let sa: &Phase1Sa = sa;
                match exchange {
                    ExchangeType::MAIN_MODE => {
                        if let Some(out) = sa.on_retransmit(&d.message) {
                            let (l, r) = (sa.local, sa.remote);
                            self.send(l, r, out);
                        }
                        true
                    }
                    ExchangeType::QUICK_MODE => {
                        self.on_quick(p1, d, message_id, now);
                        true
                    }
                    ExchangeType::INFORMATIONAL => self.on_informational(p1, d, now),
                    other => {
                        log::info!(
                            "ISAKMP:(0):unexpected exchange {other} from {} on an established SA, \
                             dropped",
                            d.remote
                        );
                        true
                    }
                }
            }
        }
    }

    /// What a Main Mode step made of a message, applied to its phase 1 SA (taken out of its
    /// negotiation); false when the SA is gone.
    fn apply_advance(
        &mut self,
        p1: &mut Phase1,
        adv: Advance,
        d: &IkeDatagram,
        now: Instant,
    ) -> bool {
        let P1State::Negotiating {
            negotiation,
            retransmit,
            slot,
        } = &mut p1.state
        else {
            return false;
        };
        match adv {
            Advance::Next(n, out) => {
                self.send(n.local(), n.remote(), out);
                *retransmit = Retransmit::new(self.schedule, now);
                *negotiation = Some(Box::new(n));
                p1.last_heard = now;
                true
            }
            Advance::Resend(n, out) => {
                self.send(n.local(), n.remote(), out);
                *negotiation = Some(Box::new(n));
                true
            }
            Advance::Ignored(n, r) => {
                let (l, rm) = (n.local(), n.remote());
                *negotiation = Some(Box::new(n));
                if let Some(m) = r.notify {
                    self.send(l, rm, m);
                }
                true
            }
            Advance::Failed(r) => {
                if let Some(s) = slot.take() {
                    self.admission.release(s);
                }
                // the exchange logged why (IOS's line)
                self.stats.phase1_failed += 1;
                if let Some(m) = r.notify {
                    self.send(d.local, d.remote, m);
                }
                false
            }
            Advance::Established(sa, out) => {
                if let Some(s) = slot.take() {
                    self.admission.release(s);
                }
                self.send(sa.local, sa.remote, out);
                p1.last_heard = now;
                self.established(p1, sa, now);
                true
            }
        }
    }

    /// Several events at once (what the dataplane had queued). The Main Mode steps among them
    /// — Diffie-Hellman and RSA, the expensive part of bringing a tunnel up — run in
    /// parallel, one message per ISAKMP SA, on up to one thread per core: the states are
    /// pure (state + message -> next state), so only the stepping is spread, and the results
    /// and every other event are applied on this thread, in order. What the link delivers
    /// meanwhile waits in the backlog ([`Daemon::take_backlog`]). SPD changes of the batch
    /// (dynamic-map rules) are installed once, at its end.
    pub fn on_events(&mut self, events: Vec<Event>, now: Instant) {
        self.spd_batch = Some(false);
        self.on_events_batched(events, now);
        if self.spd_batch.take() == Some(true) {
            self.install_spd();
        }
    }

    fn on_events_batched(&mut self, events: Vec<Event>, now: Instant) {
        // the steps that run in parallel, each holding its SA out of the map
        let mut jobs: Vec<Job> = Vec::new();
        let mut rest = Vec::new();
        // SAs with a message handled below, one at a time: their later messages wait too
        let mut in_order: Vec<P1Key> = Vec::new();
        for ev in events {
            let header = match &ev {
                Event::Ike { datagram, .. } => message::parse_header(&datagram.message)
                    .ok()
                    .map(|(h, _)| (h, datagram.remote.ip())),
                _ => None,
            };
            let Some((h, peer)) = header else {
                rest.push(ev);
                continue;
            };
            let key = (h.initiator_cookie, peer);
            if jobs.iter().any(|j| j.key == key) || in_order.contains(&key) {
                in_order.push(key);
                rest.push(ev);
                continue;
            }
            let work = match self.phase1.get_mut(&key) {
                Some(Phase1 {
                    state: P1State::Negotiating { negotiation, .. },
                    ..
                }) => negotiation.take().map(Work::MainMode),
                Some(p)
                    if h.exchange_type == ExchangeType::QUICK_MODE
                        && h.message_id != 0
                        && !p.quick.contains_key(&h.message_id) =>
                {
                    // a new Quick Mode (QM1): its SPI now, the rest on a thread
                    match (p.established(), self.link.allocate_spi()) {
                        (Some(sa), Ok(spi)) => Some(Work::QuickMode {
                            mid: h.message_id,
                            offered: self
                                .policy
                                .responder_policies(sa.remote.ip(), sa.local.ip()),
                            spi,
                        }),
                        // quick_responder says why
                        _ => None,
                    }
                }
                _ => None,
            };
            let Some(work) = work else {
                // MM1, Quick Mode messages of running exchanges, informational...
                in_order.push(key);
                rest.push(ev);
                continue;
            };
            let Event::Ike { datagram, .. } = ev else {
                unreachable!("only Ike events get a key")
            };
            let p1 = self.phase1.remove(&key).expect("found above");
            jobs.push(Job {
                key,
                p1,
                d: datagram,
                work,
            });
        }
        // Meanwhile the link is emptied into the backlog: the dataplane drops a control
        // client whose socket is full when it has another IKE message to punt.
        let (link, backlog) = (&mut self.link, &mut self.backlog);
        let stepped = self.steps.run(jobs, DRAIN_EVERY, || {
            while let Some(e) = link.poll_event() {
                backlog.push_back(e);
            }
        });
        for (key, mut p1, d, outcome) in stepped {
            let keep = log_context::scope(p1.conn_id, || match outcome {
                Outcome::MainMode(adv) => self.apply_advance(&mut p1, *adv, &d, now),
                Outcome::QuickMode {
                    mid,
                    offered,
                    result,
                } => {
                    self.quick_responded(&mut p1, mid, &offered, *result, now);
                    true
                }
            });
            if keep {
                self.phase1.insert(key, p1);
            }
        }
        for ev in rest {
            self.on_event(ev, now);
        }
    }

    /// The oldest event read while a batch was stepped, if any: the run loop takes these
    /// before reading the link again, so events stay in their order.
    pub fn take_backlog(&mut self) -> Option<Event> {
        self.backlog.pop_front()
    }

    /// Phase 1 is up: log it, honour INITIAL-CONTACT, start the Quick Modes that waited.
    fn established(&mut self, p1: &mut Phase1, mut sa: Box<Phase1Sa>, now: Instant) {
        // the daemon's clock (the exchange stamped its own): lifetimes and DPD are timed
        // against the `now` every entry point is given
        sa.established = now;
        self.stats.phase1_established += 1;
        log::info!(
            "%CRYPTO-5-IKMP_SA_UP: ISAKMP SA (conn-id {}) with {} is up: {} {} {} group {} \
             lifetime {} s, peer {}{}",
            p1.conn_id,
            sa.remote,
            sa.policy.cipher,
            format!("{:?}", sa.policy.hash).to_lowercase(),
            sa.policy.auth,
            sa.policy.group.id(),
            sa.lifetime.as_secs(),
            sa.peer.id,
            if sa.nat_detected() { ", NAT-T" } else { "" }
        );
        if sa.initial_contact {
            // The peer rebooted or lost its state: its old SAs with us are stale.
            self.forget_peer_except(p1.peer, sa.cookies());
        }
        p1.state = P1State::Established {
            sa,
            dpd: DpdState::default(),
            reauth_started: false,
        };
        for w in std::mem::take(&mut p1.waiting) {
            self.start_quick(p1, w, now);
        }
    }

    /// Removes the peer's other SAs (INITIAL-CONTACT), without telling it.
    fn forget_peer_except(&mut self, peer: IpAddr, keep_cookies: [u8; 16]) {
        let stale: Vec<P1Key> = self
            .phase1
            .iter()
            .filter(|(_, p)| p.peer == peer)
            .filter(|(_, p)| p.established().map(|s| s.cookies()) != Some(keep_cookies))
            .filter(|(_, p)| p.established().is_some())
            .map(|(k, _)| *k)
            .collect();
        for k in stale {
            log::info!("ISAKMP: INITIAL-CONTACT from {peer}: deleting its older ISAKMP SA");
            self.phase1.remove(&k);
        }
        for spi in self.children.of_peer(peer) {
            log::info!("ISAKMP: INITIAL-CONTACT from {peer}: deleting IPsec SA 0x{spi:08x}");
            self.delete_child(spi, None, "INITIAL-CONTACT");
        }
    }

    // -----------------------------------------------------------------------------------
    // Quick Mode

    fn on_quick(&mut self, p1: &mut Phase1, d: &IkeDatagram, mid: u32, now: Instant) {
        let P1State::Established { sa, .. } = &p1.state else {
            return;
        };
        let sa: &Phase1Sa = sa;
        let Some(mut q) = p1.quick.remove(&mid) else {
            self.quick_responder(p1, d, mid, now);
            return;
        };
        let (l, r) = (sa.local, sa.remote);
        let keep = match q.state.take() {
            Some(QuickState::I1(st)) => match st.on_message(sa, &d.message) {
                Step::Next(i3, qm3) => {
                    let child = i3.child().clone();
                    // inbound first, then outbound, then QM3 (the peer's outbound starts
                    // after QM3)
                    let ok = self.install_child(child, &q, true, false, p1.peer, now);
                    if ok {
                        self.send(l, r, qm3);
                        q.state = Some(QuickState::I3(i3));
                        q.retransmit = None;
                        true
                    } else {
                        false
                    }
                }
                other => self.quick_not_advanced(other, QuickState::I1, &mut q, (l, r)),
            },
            Some(QuickState::I3(st)) => {
                if let Some(out) = st.on_retransmit(&d.message) {
                    self.send(l, r, out);
                }
                q.state = Some(QuickState::I3(st));
                true
            }
            Some(QuickState::R2(st)) => match st.on_message(sa, &d.message) {
                Step::Next(child, _) => {
                    self.install_child(child, &q, false, true, p1.peer, now);
                    false
                }
                other => self.quick_not_advanced(other, QuickState::R2, &mut q, (l, r)),
            },
            None => false,
        };
        p1.last_heard = now;
        if keep {
            p1.quick.insert(mid, q);
        }
    }

    /// A Quick Mode message that did not advance the exchange: answer a retransmission,
    /// notify a refusal; false when the exchange is over.
    fn quick_not_advanced<S, N>(
        &mut self,
        step: Step<S, N>,
        wrap: fn(S) -> QuickState,
        q: &mut Quick,
        (l, r): (SocketAddr, SocketAddr),
    ) -> bool {
        match step {
            Step::Next(..) => unreachable!("the caller handles an accepted message"),
            Step::Retransmit(st, out) => {
                self.send(l, r, out);
                q.state = Some(wrap(st));
                true
            }
            Step::Ignored(st, rej) => {
                q.state = Some(wrap(st));
                self.send_rejection(l, r, rej);
                true
            }
            Step::Failed(rej) => {
                self.stats.quick_failed += 1;
                self.send_rejection(l, r, rej);
                false
            }
        }
    }

    /// Sends the notification of a refused Quick Mode message (the exchange logged why).
    fn send_rejection(&mut self, l: SocketAddr, r: SocketAddr, rej: Rejection) {
        if let Some(m) = rej.notify {
            self.send(l, r, m);
        }
    }

    /// QM1 from the peer.
    fn quick_responder(&mut self, p1: &mut Phase1, d: &IkeDatagram, mid: u32, now: Instant) {
        let P1State::Established { sa, .. } = &p1.state else {
            return;
        };
        let sa: &Phase1Sa = sa;
        let offered = self
            .policy
            .responder_policies(sa.remote.ip(), sa.local.ip());
        let policies: Vec<_> = offered.iter().map(|(p, _)| p.clone()).collect();
        let mut alloc_error = None;
        let link = &mut self.link;
        let mut alloc = || match link.allocate_spi() {
            Ok(s) => s,
            Err(e) => {
                alloc_error = Some(e);
                0
            }
        };
        let result = QuickModeResponder::on_qm1(sa, &d.message, &policies, &mut alloc);
        if let Some(e) = alloc_error {
            self.stats.link_errors += 1;
            log::warn!(
                "IPSEC: no SPI from the dataplane for {}: {e}; QM1 dropped",
                sa.remote
            );
            return;
        }
        self.quick_responded(p1, mid, &offered, result, now);
    }

    /// What [`QuickModeResponder::on_qm1`] made of a QM1 (here or on a thread of
    /// [`StepPool`]), applied: the SA id, the inbound SA, QM2, the exchange's state.
    fn quick_responded(
        &mut self,
        p1: &mut Phase1,
        mid: u32,
        offered: &[(Phase2Policy, Origin)],
        result: Result<QmResponse, Rejection>,
        now: Instant,
    ) {
        let P1State::Established { sa, .. } = &p1.state else {
            return;
        };
        let (l, r) = (sa.local, sa.remote);
        let resp = match result {
            Ok(resp) => resp,
            Err(rej) => {
                self.stats.quick_failed += 1;
                self.send_rejection(l, r, rej);
                return;
            }
        };
        p1.last_heard = now;
        let child = resp.state.child();
        let origin = offered[child.policy_index].1;
        let sa_id = match origin {
            Origin::Static(i) => self.policy.statics[i].sa_id,
            Origin::Dynamic(_) => {
                let pending = p1
                    .quick
                    .values()
                    .find(|q| {
                        matches!(&q.state, Some(QuickState::R2(s))
                            if s.child().selector == child.selector)
                    })
                    .map(|q| q.sa_id);
                match self
                    .children
                    .dynamic_sa_id(p1.peer, &child.selector)
                    .or(pending)
                {
                    Some(id) => id,
                    None => {
                        let id = self.next_dynamic_sa_id;
                        self.next_dynamic_sa_id += 1;
                        id
                    }
                }
            }
        };
        if let Err(e) = self.link.add_sa(sa_id, resp.inbound) {
            self.stats.link_errors += 1;
            log::warn!(
                "IPSEC: inbound SA 0x{:08x} for {r} not installed ({e}); QM1 dropped",
                child.spi_in
            );
            return;
        }
        self.send(l, r, resp.qm2);
        // the peer rekeying: the pair that holds this SA id now
        let rekey_of = self.children.current.get(&sa_id).copied();
        p1.quick.insert(
            mid,
            Quick {
                state: Some(QuickState::R2(resp.state)),
                retransmit: Some(Retransmit::new(self.schedule, now)),
                origin,
                sa_id,
                rekey_of,
                started: now,
            },
        );
    }

    /// Starts Quick Mode for a static entry under an established phase 1.
    fn start_quick(&mut self, p1: &mut Phase1, w: PendingQuick, now: Instant) {
        let P1State::Established { sa, .. } = &p1.state else {
            p1.waiting.push(w);
            return;
        };
        let sa: &Phase1Sa = sa;
        let Some(idx) = self.policy.statics.iter().position(|e| e.sa_id == w.sa_id) else {
            return;
        };
        let policy = self.policy.statics[idx]
            .proposal_for(w.source, w.destination)
            .clone();
        let spi = match self.link.allocate_spi() {
            Ok(s) => s,
            Err(e) => {
                self.stats.link_errors += 1;
                log::warn!("IPSEC: no SPI from the dataplane: {e}; Quick Mode not started");
                return;
            }
        };
        let mid = loop {
            let m = random_u32();
            if m != 0 && !p1.quick.contains_key(&m) {
                break m;
            }
        };
        match QuickModeInitiator::start(sa, &policy, spi, mid) {
            Ok((st, qm1)) => {
                let (l, r) = (sa.local, sa.remote);
                self.send(l, r, qm1);
                p1.quick.insert(
                    mid,
                    Quick {
                        state: Some(QuickState::I1(st)),
                        retransmit: Some(Retransmit::new(self.schedule, now)),
                        origin: Origin::Static(idx),
                        sa_id: w.sa_id,
                        rekey_of: w.rekey_of,
                        started: now,
                    },
                );
            }
            Err(rej) => {
                self.stats.quick_failed += 1;
                log::warn!("{}", rej.error);
            }
        }
    }

    /// Installs a negotiated pair (the inbound SA unless the responder did already) and
    /// makes it the current pair of its SA id. False when the dataplane refused.
    fn install_child(
        &mut self,
        child: ChildSa,
        q: &Quick,
        initiator: bool,
        inbound_installed: bool,
        peer: IpAddr,
        now: Instant,
    ) -> bool {
        let sa_id = q.sa_id;
        if !inbound_installed {
            if let Err(e) = self.link.add_sa(sa_id, child.inbound.clone()) {
                self.stats.link_errors += 1;
                log::warn!(
                    "IPSEC: inbound SA 0x{:08x} not installed: {e}",
                    child.spi_in
                );
                return false;
            }
        }
        if let Err(e) = self.link.add_sa(sa_id, child.outbound.clone()) {
            self.stats.link_errors += 1;
            log::warn!(
                "IPSEC: outbound SA 0x{:08x} not installed: {e}",
                child.spi_out
            );
            let _ = self.link.delete_sa(child.spi_in, Direction::Inbound, sa_id);
            return false;
        }
        let reverse_route = match q.origin {
            Origin::Dynamic(i) => {
                if let std::collections::btree_map::Entry::Vacant(v) =
                    self.children.dynamic_rules.entry(sa_id)
                {
                    v.insert(SpdRuleMsg {
                        selector: child.selector,
                        protect: Some(sa_id),
                        entry: sa_id,
                    });
                    self.install_spd();
                }
                self.policy.dynamics[i].reverse_route
            }
            Origin::Static(i) => self.policy.statics[i].reverse_route,
        };
        let spi_in = child.spi_in;
        self.supersede_adopted(sa_id, peer, now);
        if let Some(old) = self.children.current.insert(sa_id, spi_in) {
            if let Some(o) = self.children.by_spi.get_mut(&old) {
                o.retire_at = Some(now + RETIRE_GRACE);
                log::info!(
                    "IPSEC: rekeyed: SA pair 0x{:08x}/0x{:08x} replaces 0x{:08x}/0x{:08x} with {peer}",
                    child.spi_in,
                    child.spi_out,
                    o.sa.spi_in,
                    o.sa.spi_out
                );
            }
        }
        self.stats.quick_established += 1;
        log::info!(
            "%CRYPTO-5-SESSION_STATUS: Crypto tunnel is UP. Peer {peer} crypto map {} {} \
             proxy {} <-> {} inbound spi 0x{:08X} outbound spi 0x{:08X} ({}, {}{})",
            child.crypto_map,
            child.crypto_map_seq,
            child.selector.source,
            child.selector.destination,
            child.spi_in,
            child.spi_out,
            child.transform,
            child.transform_set,
            match child.pfs {
                Some(g) => format!(", PFS group {}", g.id()),
                None => String::new(),
            }
        );
        if reverse_route {
            log::info!(
                "%CRYPTO-6-RRI: route to {} via tunnel to {peer} added",
                child.selector.destination
            );
        }
        let conn_in = self.ipsec_conn_id();
        let conn_out = self.ipsec_conn_id();
        self.children.by_spi.insert(
            spi_in,
            Child {
                sa: child,
                sa_id,
                peer,
                origin: q.origin,
                initiator,
                conn_in,
                conn_out,
                established: now,
                rekey_started: false,
                retire_at: None,
            },
        );
        true
    }

    fn install_spd(&mut self) {
        if let Some(changed) = &mut self.spd_batch {
            *changed = true; // installed at the end of the batch
            return;
        }
        let mut rules = self.policy.static_spd.clone();
        rules.extend(self.children.dynamic_rules.values().cloned());
        if let Err(e) = self.link.install_spd(rules) {
            self.stats.link_errors += 1;
            log::warn!("IPSEC: SPD not installed: {e}");
        }
    }

    /// Removes a pair from the dataplane (its outbound SA only if it is still current) and
    /// tells the peer through `p1` if given.
    fn delete_child(&mut self, spi_in: u32, p1: Option<&Phase1Sa>, reason: &str) {
        let Some(c) = self.children.by_spi.remove(&spi_in) else {
            return;
        };
        if let Err(e) = self.link.delete_sa(spi_in, Direction::Inbound, c.sa_id) {
            log::info!("IPSEC: inbound SA 0x{spi_in:08x}: {e}");
        }
        if self.children.current.get(&c.sa_id) == Some(&spi_in) {
            self.children.current.remove(&c.sa_id);
            if let Err(e) = self
                .link
                .delete_sa(c.sa.spi_out, Direction::Outbound, c.sa_id)
            {
                log::info!("IPSEC: outbound SA 0x{:08x}: {e}", c.sa.spi_out);
            }
            if self.children.dynamic_rules.remove(&c.sa_id).is_some() {
                self.install_spd();
                let rr = match c.origin {
                    Origin::Dynamic(i) => self.policy.dynamics[i].reverse_route,
                    Origin::Static(_) => false,
                };
                if rr {
                    log::info!(
                        "%CRYPTO-6-RRI: route to {} via tunnel to {} removed",
                        c.sa.selector.destination,
                        c.peer
                    );
                }
            }
        }
        log::info!(
            "IPSEC(delete_sa): deleting SA, (sa) sa_dest= {}, sa_proto= 50, sa_spi= 0x{:X}({}), \
             and (sa) sa_dest= {}, sa_spi= 0x{:X}({}) ({reason})",
            c.sa.inbound.local,
            spi_in,
            spi_in,
            c.peer,
            c.sa.spi_out,
            c.sa.spi_out
        );
        if let Some(sa) = p1 {
            match informational::delete_esp(sa, &[spi_in]) {
                Ok(m) => {
                    let (l, r) = (sa.local, sa.remote);
                    self.send(l, r, m);
                }
                Err(e) => log::warn!("ISAKMP: DELETE for 0x{spi_in:08x} not built: {e}"),
            }
        }
        // `c` drops here: SaParams' keys are zeroized
    }

    /// The newest established phase 1 SA with `peer`, outside the map too (`also`).
    fn find_p1(&self, peer: IpAddr) -> Option<P1Key> {
        self.phase1
            .iter()
            .filter(|(_, p)| p.peer == peer && p.established().is_some())
            .max_by_key(|(_, p)| p.created)
            .map(|(k, _)| *k)
    }

    /// Runs `f` with the newest established phase 1 SA with `peer` (taken out of the map
    /// meanwhile).
    fn with_p1<T>(
        &mut self,
        peer: IpAddr,
        f: impl FnOnce(&mut Self, &mut Phase1) -> T,
    ) -> Option<T> {
        let k = self.find_p1(peer)?;
        let mut p1 = self.phase1.remove(&k)?;
        let t = log_context::scope(p1.conn_id, || f(self, &mut p1));
        self.phase1.insert(k, p1);
        Some(t)
    }

    fn delete_child_notify(&mut self, spi_in: u32, reason: &str) {
        let Some(peer) = self.children.by_spi.get(&spi_in).map(|c| c.peer) else {
            return;
        };
        let sent = self.with_p1(peer, |d, p1| {
            // p1 is out of the map: borrowing it and the daemon at once is fine
            if let P1State::Established { sa, .. } = &p1.state {
                d.delete_child(spi_in, Some(sa), reason);
            }
        });
        if sent.is_none() {
            self.delete_child(spi_in, None, reason);
        }
    }

    // -----------------------------------------------------------------------------------
    // Informational

    fn on_informational(&mut self, p1: &mut Phase1, d: &IkeDatagram, now: Instant) -> bool {
        let P1State::Established { sa, dpd, .. } = &mut p1.state else {
            return true;
        };
        let info = match informational::parse(sa, &d.message) {
            Ok(i) => i,
            Err(e) => {
                log::warn!("{e}");
                return true;
            }
        };
        p1.last_heard = now;
        let (l, r) = (sa.local, sa.remote);
        let mut keep = true;
        for ev in &info.events {
            match ev {
                InfoEvent::RUThere(seq) => {
                    log::debug!("ISAKMP:(0):DPD R-U-THERE sequence {seq} from {r}");
                    if let Some(ack) = info.dpd_reply(sa) {
                        self.send(l, r, ack);
                    }
                }
                InfoEvent::RUThereAck(seq) => {
                    if dpd.outstanding.map(|o| o.0) == Some(*seq) {
                        dpd.outstanding = None;
                    }
                }
                InfoEvent::DeleteIsakmp => {
                    log::info!(
                        "ISAKMP (0:{}): deleting SA with {}: reason \"Receive delete\"",
                        p1.conn_id,
                        r
                    );
                    keep = false;
                }
                InfoEvent::DeleteEsp(spis) => {
                    for spi in spis {
                        if let Some(spi_in) = self.children.by_outbound_spi(*spi) {
                            self.delete_child(spi_in, None, "deleted by peer");
                        } else if !self.adopted_deleted_by_peer(*spi) {
                            log::info!(
                                "IPSEC: peer {r} deleted SPI 0x{spi:08x}, which we do not hold"
                            );
                        }
                    }
                }
                InfoEvent::InitialContact => {
                    let c = sa.cookies();
                    self.forget_peer_except(p1.peer, c);
                }
                InfoEvent::Notify(n) => {
                    log::warn!("ISAKMP:(0): received notify {} from {r}", n.message_type);
                    // An error about one of our Quick Modes ends it.
                    if n.message_type.0 < 8192 && n.spi.len() == 4 {
                        let spi = u32::from_be_bytes([n.spi[0], n.spi[1], n.spi[2], n.spi[3]]);
                        p1.quick.retain(|_, q| {
                            !matches!(&q.state, Some(QuickState::I1(s)) if s.spi_in() == spi)
                        });
                    }
                }
                InfoEvent::OtherDelete(del) => {
                    log::info!("ISAKMP:(0): DELETE from {r} ignored: {del:?}");
                }
            }
        }
        keep
    }

    // -----------------------------------------------------------------------------------
    // Acquire and expiry

    /// Traffic for crypto-map entry `sa_id` found no SA: bring the tunnel up (or rekey
    /// `rekey_of`).
    pub fn on_acquire(
        &mut self,
        sa_id: u32,
        source: Option<IpAddr>,
        destination: Option<IpAddr>,
        rekey_of: Option<u32>,
        now: Instant,
    ) {
        self.stats.acquires += 1;
        if rekey_of.is_none() && self.children.current.contains_key(&sa_id) {
            return; // the SA is being installed; the Acquire raced it
        }
        if self.negotiating(sa_id) {
            return;
        }
        let Some(entry) = self.policy.static_by_sa_id(sa_id) else {
            log::info!("IPSEC: Acquire for SA id {sa_id}, which is no ipsec-isakmp entry");
            return;
        };
        let (peer, local) = (entry.peer, entry.local);
        let w = PendingQuick {
            sa_id,
            source,
            destination,
            rekey_of,
        };
        log::info!(
            "IPSEC(sa_request): {} {} -> peer {peer}: {}",
            entry.map,
            entry.seq,
            if rekey_of.is_some() {
                "rekey"
            } else {
                "new SA"
            }
        );
        if self
            .with_p1(peer, |d, p1| d.start_quick(p1, w.clone(), now))
            .is_some()
        {
            return;
        }
        // A Main Mode with that peer already running: wait for it.
        if let Some(p) = self
            .phase1
            .values_mut()
            .find(|p| p.peer == peer && p.established().is_none())
        {
            p.waiting.push(w);
            return;
        }
        self.start_main_mode(local, peer, vec![w], now);
    }

    /// A Quick Mode or a Main Mode that will start one is running for `sa_id`.
    fn negotiating(&self, sa_id: u32) -> bool {
        self.phase1.values().any(|p| {
            p.waiting.iter().any(|w| w.sa_id == sa_id)
                || p.quick.values().any(|q| {
                    q.sa_id == sa_id
                        && matches!(q.state, Some(QuickState::I1(_) | QuickState::R2(_)))
                })
        })
    }

    fn start_main_mode(
        &mut self,
        local: IpAddr,
        peer: IpAddr,
        waiting: Vec<PendingQuick>,
        now: Instant,
    ) {
        let known =
            self.phase1.values().any(|p| p.peer == peer) || !self.children.of_peer(peer).is_empty();
        let Some(cfg) = self.policy.main_mode.get(&local).map(|m| {
            if known {
                m.again.clone()
            } else {
                m.first_contact.clone()
            }
        }) else {
            log::warn!("ISAKMP: no ISAKMP configuration for local address {local}");
            return;
        };
        let Some(slot) = self.admission.admit() else {
            self.stats.refused_admission += 1;
            log::warn!(
                "%CRYPTO-4-IKE_DENY_SA_REQ: IKE denied an SA request to {peer} due to the call \
                 admission limit"
            );
            return;
        };
        let conn_id = self.conn_id();
        match log_context::scope(conn_id, || {
            Initiator::start(cfg, addr_port(local, 500), addr_port(peer, 500))
        }) {
            Ok((st, mm1)) => {
                let key = (st.cookies().0, peer);
                self.send(st.local(), st.remote(), mm1);
                self.phase1.insert(
                    key,
                    Phase1 {
                        conn_id,
                        peer,
                        state: P1State::Negotiating {
                            negotiation: Some(Box::new(Negotiation::I1(st))),
                            retransmit: Retransmit::new(self.schedule, now),
                            slot: Some(slot),
                        },
                        created: now,
                        last_heard: now,
                        waiting,
                        quick: BTreeMap::new(),
                    },
                );
            }
            Err(e) => {
                self.admission.release(slot);
                log::warn!("{e}");
            }
        }
    }

    /// A lifetime crossed in the dataplane.
    pub fn on_expire(&mut self, spi: u32, direction: Direction, hard: bool, now: Instant) {
        let spi_in = match direction {
            Direction::Inbound => Some(spi).filter(|s| self.children.by_spi.contains_key(s)),
            Direction::Outbound => self.children.by_outbound_spi(spi),
        };
        let Some(spi_in) = spi_in else {
            if self.adopted_expire(spi, direction, hard, now) {
                return;
            }
            log::info!("IPSEC: lifetime event for unknown {direction:?} SA 0x{spi:08x}");
            return;
        };
        if hard {
            log::info!("IPSEC: SA 0x{spi:08x} ({direction:?}) reached its hard lifetime");
            self.delete_child_notify(spi_in, "lifetime expired");
            return;
        }
        let c = &self.children.by_spi[&spi_in];
        let current = self.children.current.get(&c.sa_id) == Some(&spi_in);
        if !current || c.rekey_started || !c.initiator || !matches!(c.origin, Origin::Static(_)) {
            return;
        }
        let (sa_id, sel) = (c.sa_id, c.sa.selector);
        if let Some(c) = self.children.by_spi.get_mut(&spi_in) {
            c.rekey_started = true;
        }
        log::info!("IPSEC: SA 0x{spi:08x} reached its soft lifetime: rekeying");
        self.on_acquire(
            sa_id,
            Some(sel.source.addr),
            Some(sel.destination.addr),
            Some(spi_in),
            now,
        );
    }

    // -----------------------------------------------------------------------------------
    // Timers

    /// Retransmissions, timeouts, DPD, phase 1 expiry and re-authentication, retirement
    /// of rekeyed pairs. Call often (every 100 ms or so).
    pub fn tick(&mut self, now: Instant) {
        let keys: Vec<P1Key> = self.phase1.keys().copied().collect();
        for k in keys {
            let Some(mut p1) = self.phase1.remove(&k) else {
                continue;
            };
            if log_context::scope(p1.conn_id, || self.tick_p1(&mut p1, now)) {
                self.phase1.insert(k, p1);
            }
        }
        let retiring: Vec<u32> = self
            .children
            .by_spi
            .iter()
            .filter(|(_, c)| c.retire_at.is_some_and(|t| now >= t))
            .map(|(k, _)| *k)
            .collect();
        for spi in retiring {
            self.delete_child_notify(spi, "rekeyed");
        }
        self.retire_adopted(now);
        if self.next_crl_check.is_none_or(|t| now >= t) {
            self.next_crl_check = Some(now + CRL_CHECK);
            self.refresh_crls();
        }
    }

    fn tick_p1(&mut self, p1: &mut Phase1, now: Instant) -> bool {
        let mut expired_quick = Vec::new();
        let addresses = p1.addresses();
        for (mid, q) in p1.quick.iter_mut() {
            if let Some(rt) = &mut q.retransmit {
                match rt.poll(now) {
                    Due::Wait(_) => {}
                    Due::Resend { n } => {
                        if let (Some(m), Some((l, r))) = (q.last_sent(), addresses) {
                            log::debug!("ISAKMP:(0): retransmitting Quick Mode {mid:08x} ({n})");
                            let m = m.to_vec();
                            self.send(l, r, m);
                        }
                    }
                    Due::GiveUp => expired_quick.push(*mid),
                }
            } else if now.duration_since(q.started) > QM_LINGER {
                expired_quick.push(*mid);
            }
        }
        for mid in expired_quick {
            if let Some(q) = p1.quick.remove(&mid) {
                if let Some(QuickState::R2(s)) = &q.state {
                    let spi = s.child().spi_in;
                    let _ = self.link.delete_sa(spi, Direction::Inbound, q.sa_id);
                }
                if q.retransmit.is_some() {
                    self.stats.quick_failed += 1;
                    log::warn!(
                        "ISAKMP:(0): deleting Quick Mode {mid:08x} with {}: reason \"Death by \
                         retransmission P2\"",
                        p1.peer
                    );
                }
            }
        }
        match &mut p1.state {
            P1State::Negotiating {
                negotiation,
                retransmit,
                slot,
            } => match retransmit.poll(now) {
                Due::Wait(_) => true,
                Due::Resend { n } => {
                    if let Some(neg) = negotiation {
                        log::debug!(
                            "ISAKMP:(0): retransmitting phase 1 {} with {} ({n})",
                            neg.ios_state(),
                            p1.peer
                        );
                        let (l, r, m) = (neg.local(), neg.remote(), neg.last_sent().to_vec());
                        self.send(l, r, m);
                    }
                    true
                }
                Due::GiveUp => {
                    if let Some(s) = slot.take() {
                        self.admission.release(s);
                    }
                    self.stats.phase1_failed += 1;
                    log::warn!(
                        "ISAKMP (0:{}): deleting SA with {}: reason \"Death by retransmission P1\"",
                        p1.conn_id,
                        p1.peer
                    );
                    false
                }
            },
            P1State::Established {
                sa,
                dpd,
                reauth_started,
            } => {
                if now >= sa.expires() {
                    log::info!(
                        "ISAKMP (0:{}): deleting SA with {}: reason \"Lifetime expired\"",
                        p1.conn_id,
                        p1.peer
                    );
                    if let Ok(m) = informational::delete_isakmp(sa) {
                        let (l, r) = (sa.local, sa.remote);
                        self.send(l, r, m);
                    }
                    return false;
                }
                let reauth_at = sa.established + sa.lifetime * REAUTH_PERCENT / 100;
                if sa.role == Role::Initiator
                    && !*reauth_started
                    && now >= reauth_at
                    && !self.children.of_peer(p1.peer).is_empty()
                {
                    *reauth_started = true;
                    log::info!(
                        "ISAKMP (0:{}): re-authenticating with {} before the lifetime ends",
                        p1.conn_id,
                        p1.peer
                    );
                    let (local, peer) = (sa.local.ip(), p1.peer);
                    self.start_main_mode(local, peer, Vec::new(), now);
                }
                if let Some(every) = self.policy.nat_keepalive {
                    // RFC 3948 2.3: keep our NAT's mapping open
                    let due = dpd
                        .last_keepalive
                        .is_none_or(|t| now.duration_since(t).as_secs() >= every as u64);
                    if sa.nat_local && sa.nat_detected() && due {
                        dpd.last_keepalive = Some(now);
                        let p = crate::dplink::datagram::nat_keepalive_packet(sa.local, sa.remote);
                        if let Err(e) = self.link.send_packet(p) {
                            self.stats.link_errors += 1;
                            log::warn!("ISAKMP: NAT keepalive to {}: {e}", sa.remote);
                        }
                    }
                }
                if let Some(cfg) = self.policy.dpd {
                    if sa.peer_vendors.dpd {
                        let interval = Duration::from_secs(cfg.interval as u64);
                        let (l, r) = (sa.local, sa.remote);
                        match dpd.outstanding {
                            Some((seq, sent, tries)) if now.duration_since(sent) >= DPD_RETRY => {
                                if tries >= cfg.retries {
                                    self.stats.dead_peers += 1;
                                    log::warn!(
                                        "%CRYPTO-4-IKMP_NO_RESPONSE: peer {} did not answer {} \
                                         R-U-THERE: declared dead, its SAs are cleared",
                                        p1.peer,
                                        tries
                                    );
                                    for spi in self.children.of_peer(p1.peer) {
                                        self.delete_child(spi, None, "peer dead (DPD)");
                                    }
                                    return false;
                                }
                                if let Ok(m) = informational::r_u_there(sa, seq) {
                                    self.send(l, r, m);
                                }
                                dpd.outstanding = Some((seq, now, tries + 1));
                            }
                            None if now.duration_since(p1.last_heard) >= interval => {
                                dpd.seq = dpd.seq.wrapping_add(1).max(1);
                                if let Ok(m) = informational::r_u_there(sa, dpd.seq) {
                                    self.send(l, r, m);
                                }
                                dpd.outstanding = Some((dpd.seq, now, 1));
                            }
                            _ => {}
                        }
                    }
                }
                true
            }
        }
    }

    /// Refreshes the CRLs that are due, in every local address's trust store (each holds
    /// its own cache), logging what was renewed.
    fn refresh_crls(&mut self) {
        let now = std::time::SystemTime::now();
        for creds in self.policy.credentials.values() {
            for (issuer, r) in creds.store.refresh_crls(now) {
                if let Ok(what) = r {
                    log::info!("%PKI-6-CRL_UPDATE: CRL of {issuer} refreshed ({what})");
                }
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Operator actions

    /// `clear crypto sa peer A`: deletes the IPsec SAs with `peer` and tells it.
    pub fn clear_sa_peer(&mut self, peer: IpAddr) -> usize {
        let spis = self.children.of_peer(peer);
        for &s in &spis {
            self.delete_child_notify(s, "clear crypto sa");
        }
        spis.len() + self.clear_adopted(|a| a.peer == Some(peer))
    }

    /// `clear crypto sa`: every IPsec SA.
    pub fn clear_sa_all(&mut self) -> usize {
        let spis: Vec<u32> = self.children.by_spi.keys().copied().collect();
        for &s in &spis {
            self.delete_child_notify(s, "clear crypto sa");
        }
        spis.len() + self.clear_adopted(|_| true)
    }

    /// `clear crypto isakmp [conn-id]`: deletes ISAKMP SAs and tells the peers.
    pub fn clear_isakmp(&mut self, conn_id: Option<u32>) -> usize {
        let keys: Vec<P1Key> = self
            .phase1
            .iter()
            .filter(|(_, p)| conn_id.is_none_or(|c| p.conn_id == c))
            .map(|(k, _)| *k)
            .collect();
        for k in &keys {
            if let Some(mut p1) = self.phase1.remove(k) {
                match &mut p1.state {
                    P1State::Established { sa, .. } => {
                        if let Ok(m) = informational::delete_isakmp(sa) {
                            let (l, r) = (sa.local, sa.remote);
                            self.send(l, r, m);
                        }
                    }
                    P1State::Negotiating { slot, .. } => {
                        if let Some(s) = slot.take() {
                            self.admission.release(s);
                        }
                    }
                }
                log::info!(
                    "ISAKMP (0:{}): deleting SA with {}: reason \"clear crypto isakmp\"",
                    p1.conn_id,
                    p1.peer
                );
            }
        }
        keys.len()
    }
}
