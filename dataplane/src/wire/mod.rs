//! Zero-copy views of the headers the dataplane reads and writes, in smoltcp's `wire` style.
//!
//! Each header has a `Packet<T: AsRef<[u8]>>` view: `new_checked` validates every length
//! field against the buffer (a malformed packet is an [`Error`], never a panic), getters read
//! fields in network byte order, and setters exist when `T: AsMut<[u8]>`. Views cost nothing
//! beyond the bounds checks; the fast path builds them over mbuf data in place.

pub mod arp;
pub mod checksum;
pub mod esp;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod udp;

/// Why a buffer is not a valid header of the kind asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("buffer shorter than the header")]
    Truncated,
    #[error("a length field disagrees with the buffer")]
    BadLength,
    #[error("wrong version or unsupported header")]
    Unrecognized,
    #[error("bad checksum")]
    Checksum,
}

pub type Result<T> = core::result::Result<T, Error>;

/// IP protocol numbers used here.
pub mod proto {
    pub const ICMP: u8 = 1;
    pub const IPV4: u8 = 4;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const IPV6: u8 = 41;
    pub const GRE: u8 = 47;
    pub const ESP: u8 = 50;
    pub const AH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    /// "No next header": an ESP dummy packet (RFC 4303 section 2.6).
    pub const NO_NEXT: u8 = 59;
}

#[inline(always)]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline(always)]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline(always)]
pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline(always)]
pub(crate) fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
