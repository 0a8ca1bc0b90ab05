//! One spoke of the load: an IKEv1 initiator that runs Main Mode (rsa-sig) and Quick Mode
//! (with PFS) toward the responder with the project's own exchange states
//! ([`crate::daemon::phase1::Negotiation`], [`QuickModeInitiator`]), then sends ESP probes
//! on the negotiated outbound SA (encrypted by the dataplane crate's ESP code) until the
//! traffic sink has seen one. Sans-IO like the exchanges: every entry point takes `now` and
//! returns what to send.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dataplane::crypto::default_backend;
use dataplane::esp::Sa;
use dataplane::packet::{PacketBuf, VecPacket};

use crate::daemon::phase1::{Advance, Negotiation};
use crate::dplink::IkeDatagram;
use crate::ike::{
    Error, Initiator, MainModeConfig, Phase1Sa, Phase2Policy, QmI1Sent, QmI3Sent,
    QuickModeInitiator, Rejection, Step,
};
use crate::isakmp::header::ExchangeType;
use crate::isakmp::message;
use crate::sessions::{Due, Retransmit, Schedule};

/// UDP port of the probes (the sink listens on it).
pub const PROBE_PORT: u16 = 5501;
/// What a probe's payload starts with; the spoke's number (u32, big-endian) follows.
pub const PROBE_MAGIC: &[u8; 8] = b"ikeload1";
/// A probe is sent again this often until the sink saw one (the responder may install its
/// SAs only when QM3 arrives, a moment after the probe left).
pub const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// Probes before the traffic check of a spoke is given up.
pub const PROBE_TRIES: u32 = 40;

/// What one spoke is to do.
#[derive(Clone)]
pub struct SpokeSetup {
    /// 1-based, as in its certificate's name.
    pub number: usize,
    /// Its address on the outside (source of its IKE and ESP).
    pub address: Ipv4Addr,
    /// Main Mode: its policies and credentials.
    pub main_mode: Arc<MainModeConfig>,
    /// Quick Mode: its crypto map entry (proxies: its LAN <-> the responder's LAN, PFS).
    pub quick_mode: Arc<Phase2Policy>,
    /// Where its probe goes (an address in the responder's LAN).
    pub sink: Ipv4Addr,
}

/// Where the spoke is.
enum Stage {
    /// Not started yet.
    Idle,
    MainMode(Negotiation),
    QuickMode {
        sa: Box<Phase1Sa>,
        qm: QmI1Sent,
    },
    /// Phase 2 is up: probing until the sink saw one (or without a sink, finished). The
    /// Quick Mode state stays to answer a retransmitted QM2 (the responder did not get QM3).
    Up {
        sa: Box<Phase1Sa>,
        qm: QmI3Sent,
        esp: Box<Sa>,
        next_probe: Instant,
        probes: u32,
    },
    /// Given up.
    Failed,
}

/// When things happened, from the run's start.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    pub started: Option<Duration>,
    pub phase1: Option<Duration>,
    pub phase2: Option<Duration>,
    pub first_probe: Option<Duration>,
}

/// What to send.
#[derive(Debug)]
pub enum Output {
    /// An ISAKMP message (ports 500 or 4500: the socket layer adds the non-ESP marker).
    Ike(IkeDatagram),
    /// A whole IPv4 packet (ESP, or ESP in UDP 4500) to the responder.
    Packet { to: IpAddr, packet: Vec<u8> },
}

/// The stage a failure happened in and why, as counted in the report.
fn reason_of(stage: &str, e: &Error) -> String {
    let what = match e {
        Error::Malformed { .. } => "malformed message".to_string(),
        Error::InvalidPayloadType { .. } => "invalid payload type".to_string(),
        Error::UnknownCookies { .. } => "unknown cookies".to_string(),
        Error::UnexpectedExchange { .. } => "unexpected exchange".to_string(),
        Error::AggressiveModeRefused { .. } => "aggressive mode".to_string(),
        Error::NoProposalChosen { .. } | Error::QmNoProposalChosen { .. } => {
            "no proposal chosen".to_string()
        }
        Error::NoPresharedKey { .. } => "no pre-shared key".to_string(),
        Error::AuthenticationFailed { .. } => "authentication failed".to_string(),
        Error::BadCertificate { .. } => "responder certificate refused".to_string(),
        Error::InvalidId { .. } => "responder ID refused".to_string(),
        Error::PeerNotify { notify, .. } => format!("responder sent notify {notify}"),
        Error::BadHash { .. } => "bad hash".to_string(),
        Error::ProxyIdRefused { .. } => "proxy identities refused".to_string(),
        Error::Local { .. } => "local error".to_string(),
    };
    format!("{stage}: {what}")
}

/// One spoke.
pub struct Spoke {
    pub setup: SpokeSetup,
    stage: Stage,
    retransmit: Option<Retransmit>,
    schedule: Schedule,
    pub times: Times,
    /// IKE retransmissions made.
    pub retransmissions: u32,
    /// Set when the spoke gave up: the report's reason.
    pub failure: Option<String>,
}

impl Spoke {
    pub fn new(setup: SpokeSetup, schedule: Schedule) -> Spoke {
        Spoke {
            setup,
            stage: Stage::Idle,
            retransmit: None,
            schedule,
            times: Times::default(),
            retransmissions: 0,
            failure: None,
        }
    }

    /// Phase 2 is up or the spoke failed: its negotiation no longer counts in the window.
    pub fn negotiated(&self) -> bool {
        matches!(self.stage, Stage::Up { .. } | Stage::Failed)
    }

    pub fn failed(&self) -> bool {
        matches!(self.stage, Stage::Failed)
    }

    /// The next instant [`Spoke::poll`] has something to do.
    pub fn deadline(&self) -> Option<Instant> {
        match &self.stage {
            Stage::Up { next_probe, .. } => Some(*next_probe),
            Stage::Idle | Stage::Failed => None,
            _ => self.retransmit.as_ref().map(|r| r.deadline()),
        }
    }

    fn fail(&mut self, reason: String) {
        self.stage = Stage::Failed;
        self.retransmit = None;
        self.failure = Some(reason);
    }

    /// Sends MM1 toward `responder` (port 500). `at` is the time since the run's start.
    pub fn start(&mut self, responder: IpAddr, now: Instant, at: Duration, out: &mut Vec<Output>) {
        self.times.started = Some(at);
        let local = SocketAddr::new(IpAddr::V4(self.setup.address), 500);
        let remote = SocketAddr::new(responder, 500);
        match Initiator::start(self.setup.main_mode.clone(), local, remote) {
            Ok((st, mm1)) => {
                out.push(Output::Ike(IkeDatagram {
                    local,
                    remote,
                    message: mm1,
                }));
                self.stage = Stage::MainMode(Negotiation::I1(st));
                self.retransmit = Some(Retransmit::new(self.schedule, now));
            }
            Err(e) => self.fail(reason_of("MM1", &e)),
        }
    }

    /// A message from the responder.
    pub fn on_message(
        &mut self,
        d: &IkeDatagram,
        now: Instant,
        at: Duration,
        out: &mut Vec<Output>,
    ) {
        let Ok((h, _)) = message::parse_header(&d.message) else {
            return;
        };
        match std::mem::replace(&mut self.stage, Stage::Failed) {
            Stage::MainMode(n) => self.on_main_mode(n, d, now, at, out),
            Stage::QuickMode { sa, qm } => {
                if h.exchange_type != ExchangeType::QUICK_MODE || h.message_id != qm.message_id() {
                    // informational exchanges (INITIAL-CONTACT, notifications): not ours
                    self.stage = Stage::QuickMode { sa, qm };
                    return;
                }
                match qm.on_message(&sa, &d.message) {
                    Step::Next(i3, qm3) => {
                        self.times.phase2 = Some(at);
                        out.push(Output::Ike(IkeDatagram {
                            local: sa.local,
                            remote: sa.remote,
                            message: qm3,
                        }));
                        self.retransmit = None;
                        self.up(sa, i3, now, at, out);
                    }
                    Step::Retransmit(qm, again) => {
                        out.push(Output::Ike(IkeDatagram {
                            local: sa.local,
                            remote: sa.remote,
                            message: again,
                        }));
                        self.stage = Stage::QuickMode { sa, qm };
                    }
                    Step::Ignored(qm, _) => self.stage = Stage::QuickMode { sa, qm },
                    Step::Failed(r) => self.fail(reason_of("QM", &r.error)),
                }
            }
            Stage::Up {
                sa,
                qm,
                esp,
                next_probe,
                probes,
            } => {
                if let Some(qm3) = qm.on_retransmit(&d.message) {
                    out.push(Output::Ike(IkeDatagram {
                        local: sa.local,
                        remote: sa.remote,
                        message: qm3,
                    }));
                }
                self.stage = Stage::Up {
                    sa,
                    qm,
                    esp,
                    next_probe,
                    probes,
                };
            }
            other => self.stage = other,
        }
    }

    fn on_main_mode(
        &mut self,
        n: Negotiation,
        d: &IkeDatagram,
        now: Instant,
        at: Duration,
        out: &mut Vec<Output>,
    ) {
        match n.on_message(&d.message, d.local, d.remote) {
            Advance::Next(n, msg) => {
                out.push(Output::Ike(IkeDatagram {
                    local: n.local(),
                    remote: n.remote(),
                    message: msg,
                }));
                self.stage = Stage::MainMode(n);
                self.retransmit = Some(Retransmit::new(self.schedule, now));
            }
            Advance::Resend(n, msg) => {
                out.push(Output::Ike(IkeDatagram {
                    local: n.local(),
                    remote: n.remote(),
                    message: msg,
                }));
                self.stage = Stage::MainMode(n);
            }
            Advance::Ignored(n, _) => self.stage = Stage::MainMode(n),
            Advance::Failed(Rejection { error, .. }) => self.fail(reason_of("MM", &error)),
            Advance::Established(sa, _) => {
                self.times.phase1 = Some(at);
                self.start_quick(sa, now, out);
            }
        }
    }

    fn start_quick(&mut self, sa: Box<Phase1Sa>, now: Instant, out: &mut Vec<Output>) {
        // our inbound SPI: nothing will arrive on it (the probe only goes one way), but it is
        // unique per spoke so that the responder's outbound SAs are told apart
        let spi = 0x4000_0000 | self.setup.number as u32;
        let mid = loop {
            let mut b = [0u8; 4];
            if openssl::rand::rand_bytes(&mut b).is_err() {
                self.fail("QM: no random message ID".into());
                return;
            }
            let m = u32::from_be_bytes(b);
            if m != 0 {
                break m;
            }
        };
        match QuickModeInitiator::start(&sa, &self.setup.quick_mode, spi, mid) {
            Ok((qm, qm1)) => {
                out.push(Output::Ike(IkeDatagram {
                    local: sa.local,
                    remote: sa.remote,
                    message: qm1,
                }));
                self.stage = Stage::QuickMode { sa, qm };
                self.retransmit = Some(Retransmit::new(self.schedule, now));
            }
            Err(r) => self.fail(reason_of("QM1", &r.error)),
        }
    }

    /// Phase 2 up: build the outbound SA and send the first probe.
    fn up(
        &mut self,
        sa: Box<Phase1Sa>,
        qm: QmI3Sent,
        now: Instant,
        at: Duration,
        out: &mut Vec<Output>,
    ) {
        let params = &qm.child().outbound;
        let Some(backend) = default_backend(params.transform) else {
            self.fail("ESP: no backend for the negotiated transform".into());
            return;
        };
        let esp = match Sa::new(params, 1, backend, 0) {
            Ok(s) => Box::new(s),
            Err(e) => {
                self.fail(format!("ESP: outbound SA not built: {e}"));
                return;
            }
        };
        self.times.first_probe = Some(at);
        self.stage = Stage::Up {
            sa,
            qm,
            esp,
            next_probe: now,
            probes: 0,
        };
        self.poll(now, false, out);
    }

    /// Timers: retransmissions and give-ups of the exchanges, probes. `delivered`: the
    /// sink has seen this spoke's probe (probing stops).
    pub fn poll(&mut self, now: Instant, delivered: bool, out: &mut Vec<Output>) {
        if let Stage::Up {
            esp,
            next_probe,
            probes,
            ..
        } = &mut self.stage
        {
            if delivered || now < *next_probe {
                return;
            }
            if *probes >= PROBE_TRIES {
                *next_probe = now + Duration::from_secs(3600);
                self.failure = Some("traffic: no probe arrived".into());
                return;
            }
            *probes += 1;
            *next_probe = now + PROBE_INTERVAL;
            match probe(
                esp,
                self.setup.number,
                self.setup.sink,
                &self.setup.quick_mode,
            ) {
                Ok(packet) => out.push(Output::Packet {
                    to: esp.remote(),
                    packet,
                }),
                Err(e) => self.failure = Some(format!("ESP: {e}")),
            }
            return;
        }
        let Some(rt) = &mut self.retransmit else {
            return;
        };
        match rt.poll(now) {
            Due::Wait(_) => {}
            Due::Resend { .. } => {
                self.retransmissions += 1;
                let (l, r, m) = match &self.stage {
                    Stage::MainMode(n) => (n.local(), n.remote(), n.last_sent().to_vec()),
                    Stage::QuickMode { sa, qm } => (sa.local, sa.remote, qm.last_sent().to_vec()),
                    _ => return,
                };
                out.push(Output::Ike(IkeDatagram {
                    local: l,
                    remote: r,
                    message: m,
                }));
            }
            Due::GiveUp => {
                let what = match &self.stage {
                    Stage::MainMode(n) => format!("MM: no answer ({})", n.ios_state()),
                    _ => "QM: no answer".to_string(),
                };
                self.fail(what);
            }
        }
    }
}

/// One probe: IPv4/UDP from the spoke's LAN address (.1 of its proxy) to the sink, payload
/// magic + spoke number, encapsulated on the outbound SA.
fn probe(
    esp: &mut Sa,
    number: usize,
    sink: Ipv4Addr,
    p2: &Phase2Policy,
) -> Result<Vec<u8>, String> {
    let crate::ike::Proxies::Static(sel) = p2.proxies else {
        return Err("the spoke's proxies are not static".into());
    };
    let IpAddr::V4(lan) = sel.source.addr else {
        return Err("IPv4 proxies only".into());
    };
    let src = Ipv4Addr::from(u32::from(lan) | 1);
    let mut payload = PROBE_MAGIC.to_vec();
    payload.extend_from_slice(&(number as u32).to_be_bytes());
    let inner = ipv4_udp(src, sink, PROBE_PORT, PROBE_PORT, &payload);
    let mut pkt = VecPacket::new(&inner);
    esp.encap(&mut pkt, 1500)
        .map_err(|e| format!("encapsulation: {e:?}"))?;
    Ok(pkt.data().to_vec())
}

/// An IPv4 header (no options, DF, TTL 64) with its checksum, a UDP header (checksum 0:
/// none, allowed over IPv4) and the payload.
pub fn ipv4_udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + payload.len();
    let mut p = Vec::with_capacity(total);
    p.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        17,
        0,
        0,
    ]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let sum = p
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum::<u32>();
    let sum = (sum & 0xffff) + (sum >> 16);
    let sum = !(((sum & 0xffff) + (sum >> 16)) as u16);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    let ulen = (8 + payload.len()) as u16;
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&ulen.to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_checksum_verifies() {
        let p = ipv4_udp(
            Ipv4Addr::new(10, 128, 3, 1),
            Ipv4Addr::new(10, 10, 0, 1),
            PROBE_PORT,
            PROBE_PORT,
            b"ikeload1\0\0\0\x03",
        );
        assert_eq!(p.len(), 20 + 8 + 12);
        // the one's complement sum over a header with its checksum is 0xffff
        let s: u32 = p[..20]
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        let s = (s & 0xffff) + (s >> 16);
        assert_eq!((s & 0xffff) + (s >> 16), 0xffff);
        assert_eq!(&p[12..16], &[10, 128, 3, 1]);
        assert_eq!(u16::from_be_bytes([p[24], p[25]]), 20);
    }
}
