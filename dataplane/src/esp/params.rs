//! What an SA is, as it crosses module and process boundaries: the config loader and the
//! channel produce [`SaParams`]; the ESP engine turns them into fast-path SAs; the SPD and the
//! inbound policy check use [`Selector`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::Transform;

/// Direction of an SA as seen by this gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Inbound,
    Outbound,
}

/// ESP encapsulation mode (`mode tunnel` / `mode transport` in the transform set).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    Tunnel,
    Transport,
}

/// An IP prefix, IPv4 or IPv6.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Prefix {
    pub addr: IpAddr,
    pub len: u8,
}

impl Prefix {
    /// True when `ip` is inside this prefix (families must match).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(p), IpAddr::V4(a)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.len as u32)
                };
                (u32::from(p) & mask) == (u32::from(a) & mask)
            }
            (IpAddr::V6(p), IpAddr::V6(a)) => {
                let mask = if self.len == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.len as u32)
                };
                (u128::from(p) & mask) == (u128::from(a) & mask)
            }
            _ => false,
        }
    }
}

/// `10.1.0.0/24`, `2001:db8::/64`.
impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// A traffic selector: what an ACL entry or an SA's proxy identities cover.
/// `protocol` 0 means any; port ranges are inclusive and ignored for protocols without ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Selector {
    pub source: Prefix,
    pub destination: Prefix,
    pub protocol: u8,
    pub source_ports: (u16, u16),
    pub destination_ports: (u16, u16),
}

impl Selector {
    /// True when a packet with these fields falls inside the selector.
    pub fn matches(&self, src: IpAddr, dst: IpAddr, protocol: u8, sport: u16, dport: u16) -> bool {
        self.source.contains(src)
            && self.destination.contains(dst)
            && (self.protocol == 0 || self.protocol == protocol)
            && (self.source_ports.0..=self.source_ports.1).contains(&sport)
            && (self.destination_ports.0..=self.destination_ports.1).contains(&dport)
    }

    /// The mirror image: what the peer's traffic toward us looks like.
    pub fn mirror(&self) -> Selector {
        Selector {
            source: self.destination,
            destination: self.source,
            protocol: self.protocol,
            source_ports: self.destination_ports,
            destination_ports: self.source_ports,
        }
    }
}

/// SA lifetime as Cisco states it (`4608000 kilobytes/3600 seconds`). Zero means unlimited.
/// The soft limit is reached at `soft_percent` of either hard limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime {
    pub seconds: u64,
    pub kilobytes: u64,
    pub soft_percent: u8,
}

impl Default for Lifetime {
    /// IOS's global default: 3600 seconds, 4608000 kilobytes; soft at 90 %.
    fn default() -> Self {
        Lifetime {
            seconds: 3600,
            kilobytes: 4_608_000,
            soft_percent: 90,
        }
    }
}

/// UDP encapsulation of ESP (NAT traversal, RFC 3948).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UdpEncap {
    pub local_port: u16,
    pub remote_port: u16,
}

/// Key material of one SA. Zeroized on drop; its `Debug` never shows the bytes.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Keys {
    /// Cipher key, followed by the 4-byte salt for AES-GCM.
    pub encryption: Vec<u8>,
    /// HMAC key (empty for AES-GCM and esp-null without integrity).
    pub authentication: Vec<u8>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keys {{ encryption: <{} bytes>, authentication: <{} bytes> }}",
            self.encryption.len(),
            self.authentication.len()
        )
    }
}

/// Everything needed to install one SA in the dataplane.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaParams {
    pub spi: u32,
    pub direction: Direction,
    pub transform: Transform,
    pub keys: Keys,
    pub mode: Mode,
    /// Our address: the outer source (outbound) or destination (inbound) in tunnel mode, and
    /// the address the SA is bound to in transport mode.
    pub local: IpAddr,
    /// The peer's address.
    pub remote: IpAddr,
    /// What the SA protects, written from the outbound point of view (local side is the
    /// source). An inbound SA checks decrypted packets against its mirror image.
    pub selectors: Vec<Selector>,
    pub lifetime: Lifetime,
    /// Anti-replay window in packets (64..=4096); 0 disables replay detection.
    pub replay_window: u32,
    /// 64-bit extended sequence numbers (RFC 4303 appendix A).
    pub esn: bool,
    pub udp_encap: Option<UdpEncap>,
    /// Name of the crypto map and its sequence number, for counters and show output.
    pub crypto_map: String,
    pub crypto_map_seq: u32,
}
