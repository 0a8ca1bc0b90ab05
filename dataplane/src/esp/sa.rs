//! The fast-path security association: built once from [`SaParams`] when it is installed
//! (keys expanded into the cipher, outer-header facts precomputed), then used by its owner
//! lcore only. Encapsulation and decapsulation are in `encap.rs` and `decap.rs`.

use std::net::IpAddr;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::counters::{SaCounters, SaErrors, SaTraffic};
use super::lifetime::{LifetimeEvent, LifetimeGate, LifetimeState};
use super::params::{Direction, Mode, SaParams, Selector, UdpEncap};
use super::replay::ReplayWindow;
use crate::channel::SaCountersMsg;
use crate::crypto::{Backend, CryptoError, EspCipher, Transform};
use crate::pipeline::PeerPath;
use crate::wire::{ipv4, proto};

/// An IPv4 [`Selector`] as masks and ranges over host-order words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SelectorV4 {
    src: u32,
    src_mask: u32,
    dst: u32,
    dst_mask: u32,
    protocol: u8,
    sports: (u16, u16),
    dports: (u16, u16),
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len.min(32) as u32)
    }
}

impl SelectorV4 {
    /// The selector when both its prefixes are IPv4.
    fn of(s: &Selector) -> Option<SelectorV4> {
        match (s.source.addr, s.destination.addr) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let (sm, dm) = (mask4(s.source.len), mask4(s.destination.len));
                Some(SelectorV4 {
                    src: u32::from(a) & sm,
                    src_mask: sm,
                    dst: u32::from(b) & dm,
                    dst_mask: dm,
                    protocol: s.protocol,
                    sports: s.source_ports,
                    dports: s.destination_ports,
                })
            }
            _ => None,
        }
    }

    /// [`Selector::matches`] for an IPv4 packet.
    #[inline]
    pub(super) fn matches(&self, src: u32, dst: u32, protocol: u8, sport: u16, dport: u16) -> bool {
        src & self.src_mask == self.src
            && dst & self.dst_mask == self.dst
            && (self.protocol == 0 || self.protocol == protocol)
            && (self.sports.0..=self.sports.1).contains(&sport)
            && (self.dports.0..=self.dports.1).contains(&dport)
    }
}

/// Why an SA could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaError {
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    #[error("local and remote addresses are of different families")]
    MixedFamilies,
    #[error("transform {0} is not a valid combination")]
    InvalidTransform(Transform),
}

/// One SA, laid out for the fast path (`repr(C)`, so that the order below is the order in
/// memory, and aligned to a cache line). With thousands of SAs each packet finds its SA cold
/// in the cache, and the lines it must load are what a burst waits for (the prefetches of a
/// burst queue behind each other once the CPU's miss buffers are full), so an outbound
/// packet reads two lines of it, an inbound one three:
/// - line 0, every packet: the cipher, the sequence number, the framing;
/// - line 1, every packet: the counters of packets and bytes, the lifetime's gate (the
///   hard byte limit and the flags), and the outbound path to the peer;
/// - line 2, inbound: the first selector, the SA id, and the replay window's header and
///   first bitmap word (all of the default window of 64 packets).
///
/// The rest of an inbound SA's replay bitmap follows (a larger window's packet reads one
/// more word, which [`Sa::prefetch_deps`] loads), then the other selectors;
/// what only a refused packet (the errors), the lifetime sweep, show output or the control
/// plane reads comes last. The pipeline prefetches the hot lines ([`Sa::prefetch`]) and
/// then what the SA points to, the cipher's key schedule ([`Sa::prefetch_deps`]), for the
/// whole burst before it encapsulates or decapsulates the first packet. The assertions
/// below check the offsets at compile time.
#[repr(C, align(64))]
pub struct Sa {
    // Line 0.
    pub(super) cipher: Box<dyn EspCipher>,
    /// Outbound: the last sequence number sent (full 64 bits).
    pub(super) seq: u64,
    pub spi: u32,
    /// Outer IPv4 identification, per SA.
    pub(super) ip_id: u16,
    pub(super) iv_len: u8,
    pub(super) icv_len: u8,
    /// Over IPv4 (tunnel mode: the outer header's fixed part). `None` over IPv6.
    pub(super) outer_v4: Option<ipv4::Template>,
    pub(super) udp: Option<UdpEncap>,
    pub(super) block_len: u8,
    pub direction: Direction,
    pub(super) esn: bool,
    pub(super) aead: bool,
    pub(super) mode: Mode,
    // Line 1.
    pub(super) traffic: SaTraffic,
    pub(super) gate: LifetimeGate,
    /// Outbound: the way to the peer, as last resolved (see [`PeerPath`]).
    pub(super) path: Option<PeerPath>,
    // Line 2.
    /// Inbound only: the first IPv4 entry of `inbound_policy` as masks and ranges, checked
    /// per packet without building `IpAddr`s (a selector with an IPv6 side never matches an
    /// IPv4 packet). Inside the SA, so that a packet of a tunnel with one selector (a crypto
    /// map entry's ACL of one line) reads no line outside the SA's own.
    pub(super) inbound_v4_first: Option<SelectorV4>,
    /// The SPD's id for this SA's crypto-map entry.
    pub sa_id: u32,
    /// Inbound only: the receive window (its header and the bitmap's first word, the whole
    /// bitmap of the default window of 64, end line 2; the rest of the bitmap follows).
    pub(super) replay: ReplayWindow,
    /// Inbound only: the IPv4 entries of `inbound_policy` after the first (read only when the
    /// first does not match).
    pub(super) inbound_v4_rest: Box<[SelectorV4]>,
    /// Touched only when a packet is refused.
    pub(super) errors: SaErrors,
    /// The lifetime's clock and soft limits (the sweep reads them, no packet does).
    pub lifetime: LifetimeState,
    /// Inbound only: what decrypted packets must match (the mirror images of the selectors,
    /// i.e. the peer's traffic toward us).
    pub(super) inbound_policy: Vec<Selector>,
    pub(super) local: IpAddr,
    pub(super) remote: IpAddr,
    /// Outbound CBC IVs: unpredictable, from a per-SA ChaCha stream seeded from the OS at
    /// install time (no syscall per packet).
    pub(super) iv_rng: ChaCha8Rng,
    pub transform: Transform,
    pub crypto_map: String,
    pub crypto_map_seq: u32,
    pub replay_window: u32,
    /// Selectors as configured (outbound view), for show output.
    pub selectors: Vec<Selector>,
    /// The crypto library that expanded the keys (`show crypto engine configuration`).
    pub backend: &'static str,
    /// Its place in its shard's roster (see `SaShard`), set when it is installed.
    pub(super) roster_slot: u32,
}

/// The three lines of [`Sa`]'s doc, checked when the crate is built: a field added in the
/// wrong place, or a type that grew, fails the build rather than silently costing every
/// packet a cache miss.
const _: () = {
    use std::mem::offset_of;
    assert!(offset_of!(Sa, mode) < 64, "line 0 spills");
    assert!(offset_of!(Sa, traffic) == 64);
    assert!(offset_of!(Sa, inbound_v4_first) == 128, "line 1 spills");
    assert!(offset_of!(Sa, sa_id) + 4 <= 192, "line 2 spills");
    assert!(
        offset_of!(Sa, replay) + ReplayWindow::HOT_BYTES == 192,
        "the replay window's header and first word end line 2"
    );
};

impl Sa {
    /// Bytes from the start of an SA that every packet of its direction reads or writes: an
    /// inbound one all of lines 0 to 2 (a window larger than 64 packets also has a word
    /// beyond them, which [`Sa::prefetch_deps`] loads).
    pub const fn hot_bytes(direction: Direction) -> usize {
        match direction {
            Direction::Outbound => std::mem::offset_of!(Sa, inbound_v4_first),
            Direction::Inbound => std::mem::offset_of!(Sa, replay) + ReplayWindow::HOT_BYTES,
        }
    }

    /// Stage one of a burst: starts loading the hot lines of an SA of `direction` (the
    /// caller's knowledge: this reads nothing of the SA).
    #[inline(always)]
    pub fn prefetch(&self, direction: Direction) {
        crate::cache::lines(self as *const Sa as *const u8, Self::hot_bytes(direction));
    }

    /// Stage two, after [`Sa::prefetch`] had time to land: starts loading what the SA
    /// points to (the cipher's key schedule, the part that a packet in a frame of
    /// `frame_len` bytes reads) and, inbound, the replay window's edge. Reads the SA's hot
    /// lines.
    #[inline(always)]
    pub fn prefetch_deps(&self, frame_len: usize) {
        self.cipher.prefetch(self.payload_bound(frame_len));
        if self.direction == Direction::Inbound {
            self.replay.prefetch();
        }
    }

    /// At least the length of the encrypted payload of a packet in a frame of `frame_len`
    /// bytes: outbound, the whole frame (the inner packet is at most that) and the longest
    /// trailer; inbound, the frame less the outer IP header, the ESP header and IV and the
    /// ICV (the Ethernet header is not taken off: a handed-off frame may not have one).
    #[inline(always)]
    pub(crate) fn payload_bound(&self, frame_len: usize) -> usize {
        match self.direction {
            Direction::Outbound => frame_len + 1 + self.block_len as usize,
            Direction::Inbound => frame_len
                .saturating_sub(self.outer_len() + self.esp_header_len() + self.icv_len as usize),
        }
    }

    /// Expands the keys with `backend` and builds the SA. `now` is the caller's clock in
    /// seconds (lifetimes count from it). The caller drops `params` afterwards, which zeroizes
    /// its copy of the keys.
    pub fn new(
        params: &SaParams,
        sa_id: u32,
        backend: &dyn Backend,
        now: u64,
    ) -> Result<Sa, SaError> {
        if params.local.is_ipv4() != params.remote.is_ipv4() {
            return Err(SaError::MixedFamilies);
        }
        let t = params.transform;
        if !t.is_valid() {
            return Err(SaError::InvalidTransform(t));
        }
        debug_assert!(t.encryption.block_len().is_power_of_two());
        let cipher = backend.cipher(t, &params.keys.encryption, &params.keys.authentication)?;
        let inbound_policy: Vec<Selector> = params.selectors.iter().map(|s| s.mirror()).collect();
        let mut inbound_v4 = inbound_policy.iter().filter_map(SelectorV4::of);
        let inbound_v4_first = inbound_v4.next();
        let inbound_v4_rest = inbound_v4.collect();
        let outer_v4 = match (params.local, params.remote) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(ipv4::Template::new(
                src,
                dst,
                64,
                if params.udp_encap.is_some() {
                    proto::UDP
                } else {
                    proto::ESP
                },
            )),
            _ => None,
        };
        let (gate, lifetime) = LifetimeState::new(&params.lifetime, now);
        Ok(Sa {
            backend: backend.name(),
            spi: params.spi,
            direction: params.direction,
            sa_id,
            seq: 0,
            esn: params.esn,
            // At most 16 each (Transform's tables): they fit a byte.
            iv_len: t.iv_len() as u8,
            icv_len: t.icv_len() as u8,
            block_len: t.encryption.block_len() as u8,
            aead: t.encryption.is_aead(),
            mode: params.mode,
            cipher,
            udp: params.udp_encap,
            local: params.local,
            remote: params.remote,
            ip_id: (params.spi as u16) ^ 0x5a5a,
            path: None,
            traffic: SaTraffic::default(),
            errors: SaErrors::default(),
            gate,
            lifetime,
            replay: ReplayWindow::new(params.replay_window, params.esn),
            inbound_policy,
            inbound_v4_first,
            inbound_v4_rest,
            outer_v4,
            iv_rng: ChaCha8Rng::from_entropy(),
            transform: t,
            crypto_map: params.crypto_map.clone(),
            crypto_map_seq: params.crypto_map_seq,
            replay_window: params.replay_window,
            selectors: params.selectors.clone(),
            roster_slot: 0,
        })
    }

    pub fn local(&self) -> IpAddr {
        self.local
    }
    pub fn remote(&self) -> IpAddr {
        self.remote
    }
    pub fn mode(&self) -> Mode {
        self.mode
    }
    pub fn udp_encap(&self) -> Option<UdpEncap> {
        self.udp
    }
    /// The last sequence number sent (outbound) or the highest received (inbound).
    pub fn sequence(&self) -> u64 {
        match self.direction {
            Direction::Outbound => self.seq,
            Direction::Inbound => self.replay.top(),
        }
    }

    /// Outer header bytes in tunnel mode: IP, and UDP when encapsulated.
    pub fn outer_len(&self) -> usize {
        // `outer_v4` rather than `remote`: it is in the SA's first line, `remote` is not.
        let ip = if self.outer_v4.is_some() { 20 } else { 40 };
        ip + if self.udp.is_some() { 8 } else { 0 }
    }

    /// ESP header and IV.
    pub(super) fn esp_header_len(&self) -> usize {
        8 + self.iv_len as usize
    }

    /// Bytes of padding for `payload_len` bytes of payload (the trailer's 2 bytes included in
    /// the alignment).
    pub(super) fn pad_len(&self, payload_len: usize) -> usize {
        // Every ESP block length is a power of two (4, 8 or 16; checked in `new`), so the
        // remainders are masks: a division per packet costs more than the rest of the framing.
        let b = self.block_len as usize;
        let m = b - 1;
        (b - ((payload_len + 2) & m)) & m
    }

    /// Bytes added to an inner packet of `inner_len` bytes in tunnel mode.
    pub fn overhead(&self, inner_len: usize) -> usize {
        self.outer_len()
            + self.esp_header_len()
            + self.pad_len(inner_len)
            + 2
            + self.icv_len as usize
    }

    /// The largest inner packet that fits `mtu` once encapsulated in tunnel mode: what an
    /// ICMP "fragmentation needed" reports.
    pub fn max_inner_len(&self, mtu: usize) -> usize {
        let room =
            mtu.saturating_sub(self.outer_len() + self.esp_header_len() + self.icv_len as usize);
        (room & !(self.block_len as usize - 1)).saturating_sub(2)
    }

    /// Writes the next IV into `iv`: the 64-bit sequence number for AES-GCM (unique per key,
    /// as RFC 4106 section 3.1 allows), random bytes for CBC.
    pub(super) fn next_iv(&mut self, iv: &mut [u8], seq: u64) {
        if self.aead {
            iv.copy_from_slice(&seq.to_be_bytes());
        } else if !iv.is_empty() {
            self.iv_rng.fill_bytes(iv);
        }
    }

    /// Checks the lifetime against the clock; the runtime calls it every few milliseconds.
    pub fn poll_lifetime(&mut self, now: u64) -> Option<LifetimeEvent> {
        self.lifetime.poll(&mut self.gate, now, self.traffic.bytes)
    }

    /// IOS's counters of this SA.
    pub fn counters(&self) -> SaCounters {
        let icv = self.icv_len > 0;
        match self.direction {
            Direction::Outbound => SaCounters::outbound(&self.traffic, &self.errors, icv),
            Direction::Inbound => SaCounters::inbound(&self.traffic, &self.errors, icv),
        }
    }

    /// The SA's counters as the channel reports them.
    pub fn report(&self, now: u64, owner: u16) -> SaCountersMsg {
        let (kb, secs) = self.lifetime.remaining(&self.gate, now, self.traffic.bytes);
        let c = self.counters();
        SaCountersMsg {
            spi: self.spi,
            direction: Some(self.direction),
            sa_id: self.sa_id,
            crypto_map: self.crypto_map.clone(),
            crypto_map_seq: self.crypto_map_seq,
            local: self.local.to_string(),
            remote: self.remote.to_string(),
            transform: self.transform.to_string(),
            selectors: self.selectors.clone(),
            backend: self.backend.to_string(),
            owner,
            encaps: c.encaps,
            encrypt: c.encrypt,
            digest: c.digest,
            decaps: c.decaps,
            decrypt: c.decrypt,
            verify: c.verify,
            bytes: c.bytes,
            send_errors: c.send_errors,
            recv_errors: c.recv_errors,
            drops: c.drops_by_name().map(|(n, v)| (n.to_string(), v)).collect(),
            remaining_seconds: secs,
            remaining_kilobytes: kb,
        }
    }
}

impl std::fmt::Debug for Sa {
    /// No keys here: the cipher is opaque.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sa")
            .field("spi", &format_args!("0x{:08x}", self.spi))
            .field("direction", &self.direction)
            .field("sa_id", &self.sa_id)
            .field("transform", &self.transform.to_string())
            .field("mode", &self.mode)
            .field("local", &self.local)
            .field("remote", &self.remote)
            .finish_non_exhaustive()
    }
}
