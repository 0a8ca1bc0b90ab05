//! The control <-> dataplane channel (DESIGN.md "Control <-> dataplane").
//!
//! A Unix SOCK_SEQPACKET socket carries one framed message per datagram:
//!
//! ```text
//! | magic "IPGW" (4) | version (2) | kind (2) | request id (4) | payload length (4) | payload |
//! ```
//!
//! All integers are big-endian. `kind` repeats the message's discriminant so that a receiver
//! can reject a message it does not know before decoding it; the payload is the bincode
//! encoding of [`Message`]. A frame with a bad magic, an unknown version, a length that
//! disagrees with the datagram, or a payload that does not decode is an [`Error`], never a
//! panic. Replies carry the request id of the request they answer; events carry 0.
//!
//! Keys travel only inside `AddSa`/`UpdateSa` (in [`SaParams`], whose `Debug` redacts them)
//! and are never logged.
//!
//! # Dumps come in pages
//!
//! `DumpSas` and `DumpCounters` are answered with a series of frames carrying the request's
//! id ([`Message::SasPage`], [`Message::CountersPage`]), each holding at most [`PAGE_BYTES`]
//! of SAs (and, on a counter dump's first page, the workers' counters), numbered from 0, the
//! last one marked `last`. One frame of every SA does not fit a socket: at about 230 bytes
//! an SA, 20,000 SAs (10,000 tunnels) is more than [`MAX_FRAME`], and a host with the
//! kernel's default `net.core.wmem_max` refuses a datagram over about 420 KB (EMSGSIZE),
//! under 2,000 SAs.
//!
//! What a reader sees: a dump is one snapshot. The dataplane collects every SA from its
//! workers when it handles the request — each worker reports after it applied every change
//! queued before the request, and the main lcore handles nothing else meanwhile — and then
//! sends that snapshot page after page. An SA added or deleted while the pages are on their
//! way is not in this dump (it is in the next one): every SA of the snapshot arrives exactly
//! once, none that was not in it, however slowly the reader reads. Every page carries the
//! snapshot's SA count (`total`), and [`paging::DumpReader`] refuses a dump whose pages are
//! missing, out of order or short of that count. While a dump is being sent, the dataplane
//! reads no further request from that connection, so replies stay in request order; events
//! (request id 0) may come between pages.
//!
//! # Versions
//!
//! Every frame carries [`VERSION`]; a frame of another version is refused by [`decode`]
//! with [`Error::Version`], whose text names both versions, so that an `ipsec-control` or
//! `ipsec-dpctl` and an `ipsec-dataplane` of different releases fail at their first
//! exchange (Hello) with that reason instead of misreading each other. The dataplane answers
//! a frame of another version with an `Error` in its own version.
//!
//! - 1: `DumpSas`/`DumpCounters` answered with one message (`Sas`, kind 9; `Counters`,
//!   kind 11).
//! - 2: answered in pages (`SasPage`, kind 19; `CountersPage`, kind 20); kinds 9 and 11 are
//!   not used any more.

pub mod outbox;
pub mod paging;
mod socket;

pub use socket::{Client, Connection, Server};

use serde::{Deserialize, Serialize};

use crate::esp::{Direction, SaParams, Selector};

pub const MAGIC: [u8; 4] = *b"IPGW";
/// The protocol version in every frame (see the module's history).
pub const VERSION: u16 = 2;
pub const HEADER_LEN: usize = 16;
/// Largest frame accepted (an `InstallSpd` of many rules is the big one; dumps are paged).
pub const MAX_FRAME: usize = 4 << 20;
/// Largest payload of one dump page: far under what any socket takes (the kernel's default
/// send buffer is 208 KB), and large enough that a page holds a few hundred SAs.
pub const PAGE_BYTES: usize = 60 << 10;

/// A compiled SPD rule as it crosses the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpdRuleMsg {
    pub selector: Selector,
    pub protect: Option<u32>,
    pub entry: u32,
}

/// Counters of one SA, with IOS's meaning.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaCountersMsg {
    pub spi: u32,
    pub direction: Option<Direction>,
    pub sa_id: u32,
    pub crypto_map: String,
    pub crypto_map_seq: u32,
    pub local: String,
    pub remote: String,
    pub transform: String,
    /// What the SA protects, outbound view (control rebuilds its SPD rules from these when it
    /// restarts and adopts the SAs).
    #[serde(default)]
    pub selectors: Vec<crate::esp::Selector>,
    /// The crypto library of the SA (`ipsec-mb`, `ring`, `openssl`, `rustcrypto`).
    #[serde(default)]
    pub backend: String,
    /// Owner worker lcore (index among workers).
    pub owner: u16,
    /// Outbound: `#pkts encaps`, `#pkts encrypt`, `#pkts digest`.
    pub encaps: u64,
    pub encrypt: u64,
    pub digest: u64,
    /// Inbound: `#pkts decaps`, `#pkts decrypt`, `#pkts verify`.
    pub decaps: u64,
    pub decrypt: u64,
    pub verify: u64,
    pub bytes: u64,
    pub send_errors: u64,
    pub recv_errors: u64,
    /// Drops of this SA by reason name (`replay`, `auth-failed`, ...).
    pub drops: std::collections::BTreeMap<String, u64>,
    /// Seconds and kilobytes left before the hard lifetime.
    pub remaining_seconds: u64,
    pub remaining_kilobytes: u64,
}

/// Counters of one worker lcore.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LcoreCountersMsg {
    pub lcore: u32,
    pub worker: u16,
    pub rx: u64,
    pub tx: u64,
    pub handoff_in: u64,
    pub handoff_out: u64,
    pub punted: u64,
    pub bursts: u64,
    /// Packets this lcore encapsulated / decapsulated (for any SA: only an SA's owner does).
    pub encaps: u64,
    pub decaps: u64,
    pub drops: std::collections::BTreeMap<String, u64>,
    /// CPU cycles spent in poll iterations that had packets.
    #[serde(default)]
    pub busy_cycles: u64,
    /// The part of `busy_cycles` spent in the pipeline, outside the ports' rx and tx bursts.
    #[serde(default)]
    pub pipeline_cycles: u64,
    /// Times the worker slept with its queues empty (rx_mode adaptive).
    #[serde(default)]
    pub idle_sleeps: u64,
}

/// Everything `DumpCounters` returns, once its pages are put together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersMsg {
    pub sas: Vec<SaCountersMsg>,
    pub lcores: Vec<LcoreCountersMsg>,
}

/// Where a page stands in its dump.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageInfo {
    /// 0 for the first page of a dump, then 1, 2...
    pub index: u32,
    /// SAs in the whole dump (the same on every page).
    pub total: u32,
    /// No page follows this one.
    pub last: bool,
}

/// The messages. Requests go control -> dataplane and get a reply; events go dataplane ->
/// control unasked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// First message on a connection, both ways.
    Hello {
        version: u16,
        name: String,
    },
    /// Ask for an inbound SPI owned by the given worker (or any).
    AllocateSpi {
        owner: Option<u16>,
    },
    SpiAllocated {
        spi: u32,
        owner: u16,
    },
    /// Install an SA. Outbound SAs carry the dense id the SPD's Protect names.
    AddSa {
        sa_id: u32,
        params: SaParams,
    },
    /// Replace an SA's parameters (same SPI and direction), e.g. a new lifetime.
    UpdateSa {
        sa_id: u32,
        params: SaParams,
    },
    DeleteSa {
        spi: u32,
        direction: Direction,
        sa_id: u32,
    },
    /// Replace the whole SPD.
    InstallSpd {
        rules: Vec<SpdRuleMsg>,
    },
    /// Every SA with its counters: answered with [`Message::SasPage`]s.
    DumpSas,
    /// One page of the answer to `DumpSas`.
    SasPage {
        page: PageInfo,
        sas: Vec<SaCountersMsg>,
    },
    /// Every SA's and every worker's counters: answered with [`Message::CountersPage`]s.
    DumpCounters,
    /// One page of the answer to `DumpCounters`; the workers' counters are on the first.
    CountersPage {
        page: PageInfo,
        lcores: Vec<LcoreCountersMsg>,
        sas: Vec<SaCountersMsg>,
    },
    Ack,
    Error {
        reason: String,
    },
    /// A packet matched a crypto map entry with no SA: bring one up.
    Acquire {
        sa_id: u32,
        source: String,
        destination: String,
        protocol: u8,
    },
    SoftExpire {
        spi: u32,
        direction: Direction,
        by_bytes: bool,
    },
    HardExpire {
        spi: u32,
        direction: Direction,
        by_bytes: bool,
    },
    /// An IKE packet (UDP 500, or 4500 with the non-ESP marker) addressed to us.
    PuntedIke {
        port: u16,
        packet: Vec<u8>,
    },
    /// An IKE packet for the dataplane to send: a complete IP packet (UDP 500 or 4500,
    /// checksums filled in), routed by its destination.
    SendIke {
        packet: Vec<u8>,
    },
}

impl Message {
    /// The discriminant carried in the frame header.
    pub fn kind(&self) -> u16 {
        match self {
            Message::Hello { .. } => 1,
            Message::AllocateSpi { .. } => 2,
            Message::SpiAllocated { .. } => 3,
            Message::AddSa { .. } => 4,
            Message::UpdateSa { .. } => 5,
            Message::DeleteSa { .. } => 6,
            Message::InstallSpd { .. } => 7,
            Message::DumpSas => 8,
            // 9: the one-message SA dump of version 1
            Message::DumpCounters => 10,
            // 11: the one-message counter dump of version 1
            Message::Ack => 12,
            Message::Error { .. } => 13,
            Message::Acquire { .. } => 14,
            Message::SoftExpire { .. } => 15,
            Message::HardExpire { .. } => 16,
            Message::PuntedIke { .. } => 17,
            Message::SendIke { .. } => 18,
            Message::SasPage { .. } => 19,
            Message::CountersPage { .. } => 20,
        }
    }
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("frame shorter than its header")]
    Truncated,
    #[error("bad magic")]
    BadMagic,
    #[error(
        "the peer speaks channel protocol version {0}, this program version {VERSION}: \
         ipsec-dataplane, ipsec-control and ipsec-dpctl must come from the same release"
    )]
    Version(u16),
    #[error("payload length {0} disagrees with the frame")]
    BadLength(usize),
    #[error("payload does not decode: {0}")]
    Decode(String),
    #[error("kind {0} in the header does not match the payload")]
    KindMismatch(u16),
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    #[error("peer closed the channel")]
    Closed,
    /// The peer answered with an `Error` message.
    #[error("{0}")]
    Refused(String),
    /// A dump's pages did not add up (missing, out of order, short of their count).
    #[error("incomplete dump: {0}")]
    Dump(String),
}

/// Encodes a message into a frame.
pub fn encode(request_id: u32, msg: &Message) -> Vec<u8> {
    let payload = bincode::serialize(msg).expect("channel messages always serialize");
    let mut f = Vec::with_capacity(HEADER_LEN + payload.len());
    f.extend_from_slice(&MAGIC);
    f.extend_from_slice(&VERSION.to_be_bytes());
    f.extend_from_slice(&msg.kind().to_be_bytes());
    f.extend_from_slice(&request_id.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(&payload);
    f
}

/// Decodes a frame into its request id and message.
pub fn decode(frame: &[u8]) -> Result<(u32, Message), Error> {
    if frame.len() < HEADER_LEN {
        return Err(Error::Truncated);
    }
    if frame[0..4] != MAGIC {
        return Err(Error::BadMagic);
    }
    let version = u16::from_be_bytes([frame[4], frame[5]]);
    if version != VERSION {
        return Err(Error::Version(version));
    }
    let kind = u16::from_be_bytes([frame[6], frame[7]]);
    let id = u32::from_be_bytes(frame[8..12].try_into().unwrap());
    let len = u32::from_be_bytes(frame[12..16].try_into().unwrap()) as usize;
    if len != frame.len() - HEADER_LEN || len > MAX_FRAME {
        return Err(Error::BadLength(len));
    }
    let msg: Message = bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_limit(MAX_FRAME as u64)
        .allow_trailing_bytes()
        .deserialize(&frame[HEADER_LEN..])
        .map_err(|e| Error::Decode(e.to_string()))?;
    if msg.kind() != kind {
        return Err(Error::KindMismatch(kind));
    }
    Ok((id, msg))
}

use bincode::Options;

#[cfg(test)]
pub(crate) mod tests;
