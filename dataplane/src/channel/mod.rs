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

mod socket;

pub use socket::{Client, Connection, Server};

use serde::{Deserialize, Serialize};

use crate::esp::{Direction, SaParams, Selector};

pub const MAGIC: [u8; 4] = *b"IPGW";
pub const VERSION: u16 = 1;
pub const HEADER_LEN: usize = 16;
/// Largest frame accepted (a counter dump of many SAs is the big one).
pub const MAX_FRAME: usize = 4 << 20;

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
}

/// Everything `DumpCounters` returns.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CountersMsg {
    pub sas: Vec<SaCountersMsg>,
    pub lcores: Vec<LcoreCountersMsg>,
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
    DumpSas,
    Sas {
        sas: Vec<SaCountersMsg>,
    },
    DumpCounters,
    Counters(CountersMsg),
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
            Message::Sas { .. } => 9,
            Message::DumpCounters => 10,
            Message::Counters(_) => 11,
            Message::Ack => 12,
            Message::Error { .. } => 13,
            Message::Acquire { .. } => 14,
            Message::SoftExpire { .. } => 15,
            Message::HardExpire { .. } => 16,
            Message::PuntedIke { .. } => 17,
            Message::SendIke { .. } => 18,
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
    #[error("protocol version {0}, this side speaks {VERSION}")]
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
mod tests;
