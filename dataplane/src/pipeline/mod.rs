//! The per-burst packet logic of a worker lcore, generic over [`PacketBuf`] so that it runs
//! the same on DPDK mbufs and on [`crate::packet::VecPacket`] in tests.
//!
//! A worker hands the pipeline a burst of received frames; the pipeline returns one
//! [`Verdict`] per frame (transmit on a port, hand off to the owner lcore, punt to the main
//! lcore, or drop with a reason) and the runtime moves each buffer accordingly. The pipeline
//! never allocates, locks or makes a system call: everything it needs is behind the traits
//! below, which the runtime implements over the real route table, neighbour table, SPD and
//! SA shard, and which are read-only or owned by this lcore.
//!
//! Per frame (DESIGN.md "Data flow"):
//! - [`classify`]: ARP, ICMP and IKE for us are punted; ESP for us goes inbound; anything
//!   else is transit.
//! - inbound ESP: owner lcore from the SPI (hand off if not us), decapsulate, forward the
//!   inner packet.
//! - transit from the inside port: SPD -> Protect(sa) (owner lcore, encapsulate, forward the
//!   outer packet), Bypass (forward in clear), Discard. A Protect without an installed SA
//!   raises an Acquire and drops: protected traffic never leaves in clear.
//! - transit from the outside port: plaintext that the SPD would protect is dropped (it must
//!   arrive as ESP); Bypass is forwarded, Discard dropped.
//! - forward: route, neighbour (a miss asks the main lcore to resolve and drops), MTU check,
//!   Ethernet header.

pub mod classify;
pub mod counters;
pub mod fragment;
pub mod l2;
pub mod prefetch;
pub mod worker;

use std::net::IpAddr;

use crate::packet::PacketBuf;

pub use classify::{classify, classify_into, Class, IpInfo, Kind, LocalAddrs, PuntKind};
pub use counters::{CounterSnapshot, DropReason, LcoreCounters};

/// Index of a port, as DPDK numbers them.
pub type PortId = u16;
/// Index of a worker (0-based among workers, not the EAL lcore id).
pub type WorkerId = u16;

/// Where a frame goes after the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Transmit on this port: the frame is complete (Ethernet header written).
    Tx(PortId),
    /// Hand to the worker that owns the SA; it runs [`Pipeline::process_handoff`] on it.
    Handoff(WorkerId),
    /// Give to the main lcore (slow path).
    Punt(PuntKind),
    /// Free it; already counted under this reason.
    Drop(DropReason),
    /// The buffer holds an IPv4 packet without DF (no Ethernet header) too big to encrypt for
    /// SA `sa`: fragment it to `max_inner` bytes and give each fragment to
    /// [`Pipeline::protect_fragment`] (the worker has the buffers for that).
    Fragment { sa: u32, max_inner: u16 },
}

/// What a port is for: the SPD is applied outbound on the inside and inbound on the outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortRole {
    Inside,
    Outside,
}

/// What the pipeline knows of a port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortInfo {
    pub mac: [u8; 6],
    pub mtu: u16,
    pub role: PortRole,
}

/// Where to send a packet: a port and the IP address to resolve there (the gateway, or the
/// destination itself on a connected network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    pub port: PortId,
    pub via: IpAddr,
}

/// The route table (longest prefix match), read-only on the fast path.
pub trait Routes {
    fn lookup(&self, dst: IpAddr) -> Option<NextHop>;
    /// A number that grows whenever a lookup could give another answer (0 for a table that
    /// never changes). Paths cached from lookups are valid while it stays the same.
    fn epoch(&self) -> u64;
}

/// The neighbour (ARP/ND) table, read-only on the fast path; the main lcore writes it.
pub trait Neighbours {
    fn lookup(&self, port: PortId, ip: IpAddr) -> Option<[u8; 6]>;
    /// A number that grows after any binding changed (learned, aged out, re-resolved).
    fn epoch(&self) -> u64;
}

/// The way to an outbound SA's peer, resolved once and cached in the SA: the port, its MTU
/// and the Ethernet addresses. It stands for `epoch` ([`Context::path_epoch`]): a route or
/// neighbour change moves the epoch on and the next packet resolves it again. Caching it
/// saves a route and a neighbour lookup per protected packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerPath {
    pub epoch: u64,
    pub port: PortId,
    pub mtu: u16,
    pub dst_mac: [u8; 6],
    pub src_mac: [u8; 6],
}

pub use crate::spd::SpdAction as PolicyAction;

/// The security policy database, immutable while a burst runs.
pub trait Policy {
    /// For plaintext arriving on the inside, leaving protected.
    fn outbound(&self, ip: &IpInfo) -> PolicyAction;
    /// Starts loading what [`Policy::outbound`] of `ip` will read (a hint; the default
    /// does nothing).
    #[inline(always)]
    fn prefetch_outbound(&self, _ip: &IpInfo) {}
    /// For plaintext arriving on the outside: false when the policy says such traffic must
    /// arrive protected (it is dropped).
    fn inbound_plaintext_allowed(&self, ip: &IpInfo) -> bool;
}

impl Policy for crate::spd::Spd {
    #[inline]
    fn outbound(&self, ip: &IpInfo) -> PolicyAction {
        self.outbound_words(
            ip.v6,
            ip.src_word(),
            ip.dst_word(),
            ip.protocol,
            ip.sport,
            ip.dport,
        )
    }
    #[inline(always)]
    fn prefetch_outbound(&self, ip: &IpInfo) {
        self.prefetch_outbound_words(ip.v6, ip.src_word(), ip.dst_word())
    }
    #[inline]
    fn inbound_plaintext_allowed(&self, ip: &IpInfo) -> bool {
        self.inbound_plaintext_words(
            ip.v6,
            ip.src_word(),
            ip.dst_word(),
            ip.protocol,
            ip.sport,
            ip.dport,
        ) == PolicyAction::Bypass
    }
}

/// Why an encapsulation did not produce a packet. On any error the packet is left as it
/// was given (the caller may still turn it into an ICMP error or fragment it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncapError {
    /// The result would exceed `mtu`; `max_inner` is the largest inner packet that fits.
    TooBig { max_inner: usize },
    /// Any other failure, counted under this reason.
    Drop(DropReason),
}

/// What became of an ESP packet offered to [`SaShard::inbound`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inbound {
    /// No SA has this SPI (this worker would own it): not ours.
    Unknown,
    /// Another worker owns the SPI.
    Handoff(WorkerId),
    /// Decapsulated: the buffer holds the inner IP packet.
    Decapsulated,
    /// Ours, and dropped for this reason.
    Drop(DropReason),
}

/// The ESP side of a worker: its own SA shard plus the owner map of every SA.
pub trait SaShard<P: PacketBuf> {
    /// The worker owning the inbound SA with this SPI (read from the SPI itself).
    fn owner_of_spi(&self, spi: u32) -> Option<WorkerId>;
    /// The worker owning the outbound SA with this SPD id (a function of the id alone, so
    /// it is known whether or not the SA is installed).
    fn owner_of_sa(&self, sa: u32) -> WorkerId;
    /// Decapsulates in place. `pkt` holds the whole frame; on success it holds the inner IP
    /// packet (no Ethernet header), checked against the SA's inbound policy.
    fn decap(
        &mut self,
        pkt: &mut P,
        l3_off: usize,
        esp_off: usize,
        udp: bool,
    ) -> Result<(), DropReason>;
    /// Encapsulates the IP packet in `pkt` (no Ethernet header) with outbound SA `sa`, in
    /// place, and returns the way to its peer. The SA's cached [`PeerPath`] is used when its
    /// epoch is `epoch`; otherwise `resolve` is asked for the path to the peer's address (and
    /// may fail with a drop reason) and the answer is cached. On success `pkt` holds the
    /// outer IP packet, at most the path's MTU long. `Drop(NoSa)` when no such SA is here.
    fn encap<F>(
        &mut self,
        pkt: &mut P,
        sa: u32,
        epoch: u64,
        resolve: F,
    ) -> Result<PeerPath, EncapError>
    where
        F: FnOnce(IpAddr) -> Result<PeerPath, DropReason>;
    /// Stage one of a burst: starts loading the SA `sa` refers to, when this worker holds
    /// it (reading only the SA table). The default does nothing.
    #[inline]
    fn prefetch_sa(&self, _sa: SaRef) {}
    /// Stage two: starts loading what the SA points to (its key schedule), reading the SA
    /// itself, which stage one prefetched a burst earlier. `frame_len` is the frame's length
    /// (see `Sa::prefetch_deps`). The default does nothing.
    #[inline]
    fn prefetch_sa_deps(&self, _sa: SaRef, _frame_len: usize) {}
    /// The inbound path in one call, for worker `me`: the owner of `spi`, then, when it is
    /// `me`, [`SaShard::decap`]. A shard overrides it to find the SA once rather than twice.
    #[inline]
    fn inbound(
        &mut self,
        me: WorkerId,
        pkt: &mut P,
        l3_off: usize,
        esp_off: usize,
        spi: u32,
        udp: bool,
    ) -> Inbound {
        match self.owner_of_spi(spi) {
            None => Inbound::Unknown,
            Some(owner) if owner != me => Inbound::Handoff(owner),
            Some(_) => match self.decap(pkt, l3_off, esp_off, udp) {
                Ok(()) => Inbound::Decapsulated,
                Err(r) => Inbound::Drop(r),
            },
        }
    }
}

/// The SA a packet of a burst will use, as the burst's second pass found it: an inbound SA
/// by SPI, an outbound one by SPD id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaRef {
    Inbound(u32),
    Outbound(u32),
}

/// What the second pass over a burst decided for one frame (see [`Pipeline::process_rx`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Decided without an SA (punt, drop, bypass, handoff): nothing left to do.
    Done(Verdict),
    /// ESP addressed to us.
    Esp { esp_off: u32, spi: u32, udp: bool },
    /// ESP passing through (transport mode between two protected hosts): ours when one of
    /// our inbound SAs has its SPI, ordinary transit otherwise.
    TransitEsp { spi: u32 },
    /// Inside traffic the SPD protects with outbound SA `sa`, which this worker owns.
    Protect(u32),
}

impl Step {
    #[inline(always)]
    fn sa(self) -> Option<SaRef> {
        match self {
            Step::Esp { spi, .. } | Step::TransitEsp { spi } => Some(SaRef::Inbound(spi)),
            Step::Protect(sa) => Some(SaRef::Outbound(sa)),
            Step::Done(_) => None,
        }
    }
}

/// Frames per pass of [`Pipeline::process_rx`]: the prefetches of one pass are in flight
/// together (a burst of [`worker::BURST`] is one pass).
const PASS: usize = worker::BURST;

/// The last next hop [`Pipeline`] resolved for a destination (route, port, neighbour), kept
/// for the next packets to the same address: decapsulated traffic mostly goes to a few hosts,
/// and a burst to one of them then costs one route and one neighbour lookup rather than one
/// per packet. It stands for `epoch`, as [`PeerPath`] does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HopCache {
    entry: Option<(IpAddr, PeerPath)>,
}

impl HopCache {
    #[inline]
    fn get(&self, dst: IpAddr, epoch: u64) -> Option<PeerPath> {
        match self.entry {
            Some((d, p)) if d == dst && p.epoch == epoch => Some(p),
            _ => None,
        }
    }
}

/// Requests from a worker to the main lcore (through a ring; never blocks, may drop).
pub trait SlowPathRequests {
    /// Resolve `ip` on `port` (ARP/ND); the packet that needed it was dropped.
    fn resolve(&mut self, port: PortId, ip: IpAddr);
    /// The SPD asked for SA `sa` which is not installed: tell control (Acquire).
    fn acquire(&mut self, sa: u32, ip: &IpInfo);
}

/// One worker's view of everything the pipeline reads.
pub struct Context<'a, R, N, S, P, Q> {
    pub me: WorkerId,
    pub ports: &'a [PortInfo],
    pub local: &'a LocalAddrs,
    pub routes: &'a R,
    pub neighbours: &'a N,
    pub policy: &'a S,
    pub sas: &'a mut P,
    pub requests: &'a mut Q,
    pub counters: &'a LcoreCounters,
    /// `routes.epoch() + neighbours.epoch()`, read once per poll iteration (both only grow,
    /// so the sum changes whenever either does): the epoch of valid [`PeerPath`]s.
    pub path_epoch: u64,
    /// The last next hop of a forwarded packet. Start each poll iteration with
    /// `HopCache::default()` (the worker builds a new `Context` per iteration).
    pub hop_cache: HopCache,
}

impl<R: Routes, N: Neighbours, S, P, Q> Context<'_, R, N, S, P, Q> {
    /// Reads the route and neighbour epochs; call before each poll iteration.
    pub fn refresh_path_epoch(&mut self) {
        self.path_epoch = self.routes.epoch().wrapping_add(self.neighbours.epoch());
    }
}

/// The per-burst processing of one worker.
pub struct Pipeline;

impl Pipeline {
    /// Processes frames received on `rx_port`, writing one verdict per frame.
    ///
    /// In four passes over each [`PASS`] frames, so that the memory each frame needs is
    /// loading while the others are worked on: classify every frame, prefetching the SPD
    /// buckets an inside frame's lookup will probe; then find the SA each frame will use
    /// (the SPD for inside plaintext, the SPI for ESP), prefetching the SA (with thousands
    /// of tunnels both are cold); then prefetch each SA's key schedule, now that the SA's
    /// pointer to it has arrived; then encapsulate, decapsulate and forward. Frames that
    /// need no SA are finished in the second pass.
    pub fn process_rx<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        rx_port: PortId,
        pkts: &mut [P],
        verdicts: &mut [Verdict],
    ) where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        cx.counters.rx.add(pkts.len() as u64);
        match cx.ports.get(rx_port as usize).map(|p| p.role) {
            Some(role) => Self::staged(cx, role, pkts, verdicts, false),
            None => {
                for v in verdicts.iter_mut().take(pkts.len()) {
                    let verdict = Verdict::Drop(DropReason::Unsupported);
                    Self::count(cx.counters, verdict);
                    *v = verdict;
                }
            }
        }
    }

    /// Processes frames handed off by other workers (ESP for our inbound SAs, or inside
    /// plaintext for our outbound SAs).
    pub fn process_handoff<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkts: &mut [P],
        verdicts: &mut [Verdict],
    ) where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        cx.counters.handoff_in.add(pkts.len() as u64);
        Self::staged(cx, PortRole::Inside, pkts, verdicts, true);
    }

    /// The passes of [`Pipeline::process_rx`]; `handed_off` for frames another worker gave
    /// us, which must not be handed off again.
    #[inline(always)]
    fn staged<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        role: PortRole,
        pkts: &mut [P],
        verdicts: &mut [Verdict],
        handed_off: bool,
    ) where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        prefetch::burst(pkts);
        let mut infos = [IpInfo::default(); PASS];
        let mut kinds = [Kind::Transit; PASS];
        let mut steps = [Step::Done(Verdict::Drop(DropReason::Unsupported)); PASS];
        for (pkts, verdicts) in pkts.chunks_mut(PASS).zip(verdicts.chunks_mut(PASS)) {
            let n = pkts.len();
            for ((pkt, ip), kind) in pkts.iter().zip(&mut infos).zip(&mut kinds) {
                *kind = classify_into(pkt.data(), cx.local, ip);
                if role == PortRole::Inside && *kind == Kind::Transit {
                    cx.policy.prefetch_outbound(ip);
                }
            }
            for (((pkt, ip), kind), step) in pkts.iter_mut().zip(&infos).zip(&kinds).zip(&mut steps)
            {
                *step = Self::find_sa(cx, role, pkt, ip, *kind);
                if let Some(sa) = step.sa() {
                    cx.sas.prefetch_sa(sa);
                }
            }
            for (step, pkt) in steps[..n].iter().zip(pkts.iter()) {
                if let Some(sa) = step.sa() {
                    cx.sas.prefetch_sa_deps(sa, pkt.len());
                }
            }
            for (((pkt, ip), step), v) in pkts.iter_mut().zip(&infos).zip(&steps).zip(verdicts) {
                // Counted from the value, not read back from `v`: the verdict is stored in
                // pieces, and one wide load of them right after stalls on store forwarding.
                let verdict = match Self::with_sa(cx, role, pkt, ip, *step) {
                    // An owner never hands back: a second handoff means the owner maps
                    // disagree (an SA moved while in flight); drop rather than loop.
                    Verdict::Handoff(_) if handed_off => Verdict::Drop(DropReason::UnknownSpi),
                    v => v,
                };
                Self::count(cx.counters, verdict);
                *v = verdict;
            }
        }
    }

    #[inline(always)]
    pub(crate) fn count(c: &LcoreCounters, v: Verdict) {
        match v {
            Verdict::Drop(r) => c.count_drop(r),
            Verdict::Handoff(_) => c.handoff_out.inc(),
            Verdict::Punt(_) => c.punted.inc(),
            // tx is counted by the runtime once the port accepted the frame; fragments are
            // counted one by one by protect_fragment
            Verdict::Tx(_) | Verdict::Fragment { .. } => {}
        }
    }

    /// The second pass for one frame, after its classification (`kind`, with its IP facts
    /// in `ip`): for inside transit, the SPD. What needs no SA is finished here.
    #[inline(always)]
    fn find_sa<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        role: PortRole,
        pkt: &mut P,
        ip: &IpInfo,
        kind: Kind,
    ) -> Step
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        match kind {
            Kind::Punt(kind) => Step::Done(Verdict::Punt(kind)),
            Kind::Drop(reason) => Step::Done(Verdict::Drop(reason)),
            Kind::Esp { esp_off, spi, udp } => Step::Esp { esp_off, spi, udp },
            // Transport-mode ESP between two protected hosts passes through us addressed to
            // the far host: it is ours when its SPI is one of our inbound SAs.
            // (Any port: a handed-off frame is processed as if from the inside.)
            Kind::Transit
                if ip.protocol == classify::PROTO_ESP
                    && !ip.fragment
                    && ip.l4_off + 8 <= ip.l3_off + ip.ip_len =>
            {
                let d = pkt.data();
                let spi = u32::from_be_bytes([
                    d[ip.l4_off],
                    d[ip.l4_off + 1],
                    d[ip.l4_off + 2],
                    d[ip.l4_off + 3],
                ]);
                Step::TransitEsp { spi }
            }
            Kind::Transit => Self::transit(cx, role, pkt, ip),
        }
    }

    /// The last pass for one frame: what needs its SA.
    #[inline(always)]
    fn with_sa<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        role: PortRole,
        pkt: &mut P,
        ip: &IpInfo,
        step: Step,
    ) -> Verdict
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        match step {
            Step::Done(v) => v,
            Step::Esp { esp_off, spi, udp } => {
                let l3_off = ip.l3_off;
                match cx
                    .sas
                    .inbound(cx.me, pkt, l3_off, esp_off as usize, spi, udp)
                {
                    Inbound::Unknown => Verdict::Drop(DropReason::UnknownSpi),
                    Inbound::Handoff(owner) => Verdict::Handoff(owner),
                    Inbound::Drop(reason) => Verdict::Drop(reason),
                    Inbound::Decapsulated => {
                        cx.counters.decaps.inc();
                        Self::forward_ip(cx, pkt, false)
                    }
                }
            }
            Step::TransitEsp { spi } => {
                let (l3_off, l4_off) = (ip.l3_off, ip.l4_off);
                match cx.sas.inbound(cx.me, pkt, l3_off, l4_off, spi, false) {
                    Inbound::Handoff(owner) => Verdict::Handoff(owner),
                    Inbound::Drop(reason) => Verdict::Drop(reason),
                    Inbound::Decapsulated => {
                        cx.counters.decaps.inc();
                        Self::forward_ip(cx, pkt, false)
                    }
                    // someone else's ESP: ordinary transit (its SA, if the SPD protects
                    // it, was not prefetched: a rare case)
                    Inbound::Unknown => match Self::transit(cx, role, pkt, ip) {
                        Step::Protect(sa) => Self::protect(cx, pkt, ip, sa),
                        Step::Done(v) => v,
                        Step::Esp { .. } | Step::TransitEsp { .. } => {
                            unreachable!("transit() decides on the SPD alone")
                        }
                    },
                }
            }
            Step::Protect(sa) => Self::protect(cx, pkt, ip, sa),
        }
    }

    /// A packet neither for us nor ESP of ours: the SPD decides. Only protection by an SA
    /// this worker owns is left for later ([`Step::Protect`]).
    #[inline(always)]
    fn transit<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        role: PortRole,
        pkt: &mut P,
        ip: &IpInfo,
    ) -> Step
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        match role {
            PortRole::Inside => match cx.policy.outbound(ip) {
                PolicyAction::Protect(sa) => match cx.sas.owner_of_sa(sa) {
                    owner if owner != cx.me => Step::Done(Verdict::Handoff(owner)),
                    _ => Step::Protect(sa),
                },
                PolicyAction::Bypass => Step::Done(Self::forward_frame(cx, pkt, ip)),
                PolicyAction::Discard => Step::Done(Verdict::Drop(DropReason::PolicyDiscard)),
            },
            PortRole::Outside => Step::Done(Self::from_outside(cx, pkt, ip)),
        }
    }

    /// Plaintext transit from the outside: forwarded only where the policy lets it arrive
    /// in clear.
    #[inline(always)]
    fn from_outside<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkt: &mut P,
        ip: &IpInfo,
    ) -> Verdict
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        if cx.policy.inbound_plaintext_allowed(ip) {
            Self::forward_frame(cx, pkt, ip)
        } else {
            Verdict::Drop(DropReason::PlainPolicyViolation)
        }
    }

    /// Encapsulates an inside frame with SA `sa` and forwards the ESP packet to its peer.
    fn protect<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkt: &mut P,
        ip: &IpInfo,
        sa: u32,
    ) -> Verdict
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        // Drop the Ethernet header and any Ethernet padding behind the IP packet.
        let trailer = pkt.len() - ip.l3_off - ip.ip_len;
        if !pkt.adj(ip.l3_off) || !pkt.trim(trailer) {
            return Verdict::Drop(DropReason::Malformed);
        }
        match Self::encap(cx, pkt, sa) {
            Ok(path) => {
                cx.counters.encaps.inc();
                Self::push_ethernet(pkt, &path)
            }
            Err(EncapError::Drop(DropReason::NoSa)) => {
                cx.requests.acquire(sa, ip);
                Verdict::Drop(DropReason::NoSa)
            }
            Err(EncapError::Drop(reason)) => Verdict::Drop(reason),
            Err(EncapError::TooBig { max_inner }) => {
                // DF set (or IPv6): tell the sender the MTU left after ESP overhead, in
                // place of the packet. DF clear: fragment first, then encrypt each fragment.
                if ip.dont_fragment {
                    if l2::icmp_too_big_in_place(pkt, ip, max_inner, cx.local) {
                        return Self::forward_ip(cx, pkt, false);
                    }
                    return Verdict::Drop(DropReason::TooBig);
                }
                Verdict::Fragment {
                    sa,
                    max_inner: max_inner.min(u16::MAX as usize) as u16,
                }
            }
        }
    }

    /// Encapsulates with SA `sa`, resolving the way to its peer when the SA's cached one is
    /// stale. The neighbour is resolved before anything is encrypted: a packet dropped after
    /// encryption would burn a sequence number (the peer would see a gap) and count an encap
    /// that never left.
    fn encap<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkt: &mut P,
        sa: u32,
    ) -> Result<PeerPath, EncapError>
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        let (routes, neighbours, ports, requests) =
            (cx.routes, cx.neighbours, cx.ports, &mut *cx.requests);
        let epoch = cx.path_epoch;
        cx.sas.encap(pkt, sa, epoch, |peer| {
            let hop = routes.lookup(peer).ok_or(DropReason::NoRoute)?;
            let port = ports.get(hop.port as usize).ok_or(DropReason::NoRoute)?;
            let Some(dst_mac) = neighbours.lookup(hop.port, hop.via) else {
                requests.resolve(hop.port, hop.via);
                return Err(DropReason::NoNeighbour);
            };
            Ok(PeerPath {
                epoch,
                port: hop.port,
                mtu: port.mtu,
                dst_mac,
                src_mac: port.mac,
            })
        })
    }

    /// Writes the Ethernet header of an encapsulated packet leaving by `path`.
    fn push_ethernet<P: PacketBuf>(pkt: &mut P, path: &PeerPath) -> Verdict {
        if !l2::push_ethernet(pkt, path.dst_mac, path.src_mac) {
            return Verdict::Drop(DropReason::NoRoom);
        }
        Verdict::Tx(path.port)
    }

    /// Encrypts one fragment (an IP packet, no Ethernet header) made after a
    /// [`Verdict::Fragment`], and forwards it. The verdict is already counted.
    pub fn protect_fragment<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkt: &mut P,
        sa: u32,
    ) -> Verdict
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        let v = match Self::encap(cx, pkt, sa) {
            Ok(path) => {
                cx.counters.encaps.inc();
                Self::push_ethernet(pkt, &path)
            }
            Err(EncapError::Drop(r)) => Verdict::Drop(r),
            Err(EncapError::TooBig { .. }) => Verdict::Drop(DropReason::TooBig),
        };
        Self::count(cx.counters, v);
        v
    }

    /// Forwards a frame in clear (Bypass): TTL decremented, new Ethernet header.
    fn forward_frame<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkt: &mut P,
        ip: &IpInfo,
    ) -> Verdict
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        let trailer = pkt.len() - ip.l3_off - ip.ip_len;
        if !pkt.adj(ip.l3_off) || !pkt.trim(trailer) {
            return Verdict::Drop(DropReason::Malformed);
        }
        Self::forward_ip(cx, pkt, true)
    }

    /// Routes the IP packet in `pkt` (no Ethernet header) and writes its Ethernet header.
    fn forward_ip<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkt: &mut P,
        decrement_ttl: bool,
    ) -> Verdict
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        let Some(dst) = l2::ip_destination(pkt.data()) else {
            return Verdict::Drop(DropReason::Malformed);
        };
        // The same checks as the lookups below, in the same order, on the cached answer.
        if let Some(path) = cx.hop_cache.get(dst, cx.path_epoch) {
            if decrement_ttl && !l2::decrement_ttl(pkt.data_mut()) {
                return Verdict::Drop(DropReason::TtlExpired);
            }
            if pkt.len() > path.mtu as usize {
                return Verdict::Drop(DropReason::TooBig);
            }
            return Self::push_ethernet(pkt, &path);
        }
        let Some(hop) = cx.routes.lookup(dst) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        if decrement_ttl && !l2::decrement_ttl(pkt.data_mut()) {
            return Verdict::Drop(DropReason::TtlExpired);
        }
        Self::finish(cx, pkt, dst, hop)
    }

    /// Neighbour lookup and Ethernet header for an IP packet leaving by `hop`.
    fn finish<P, R, N, S, A, Q>(
        cx: &mut Context<'_, R, N, S, A, Q>,
        pkt: &mut P,
        dst: IpAddr,
        hop: NextHop,
    ) -> Verdict
    where
        P: PacketBuf,
        R: Routes,
        N: Neighbours,
        S: Policy,
        A: SaShard<P>,
        Q: SlowPathRequests,
    {
        let Some(port) = cx.ports.get(hop.port as usize) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        if pkt.len() > port.mtu as usize {
            return Verdict::Drop(DropReason::TooBig);
        }
        let Some(mac) = cx.neighbours.lookup(hop.port, hop.via) else {
            cx.requests.resolve(hop.port, hop.via);
            return Verdict::Drop(DropReason::NoNeighbour);
        };
        let path = PeerPath {
            epoch: cx.path_epoch,
            port: hop.port,
            mtu: port.mtu,
            dst_mac: mac,
            src_mac: port.mac,
        };
        cx.hop_cache.entry = Some((dst, path));
        Self::push_ethernet(pkt, &path)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_esp;
