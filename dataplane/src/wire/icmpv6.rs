//! ICMPv6 (RFC 4443) and the neighbour discovery messages (RFC 4861) the gateway answers.

use std::net::Ipv6Addr;

use super::ethernet::Address;
use super::{checksum, get_u16, proto, set_u16, Error, Result};

pub const HEADER_LEN: usize = 8;
pub const TYPE_PACKET_TOO_BIG: u8 = 2;
pub const TYPE_TIME_EXCEEDED: u8 = 3;
pub const TYPE_ECHO_REQUEST: u8 = 128;
pub const TYPE_ECHO_REPLY: u8 = 129;
pub const TYPE_NEIGHBOR_SOLICIT: u8 = 135;
pub const TYPE_NEIGHBOR_ADVERT: u8 = 136;

/// Neighbour discovery option: source link-layer address.
pub const OPT_SOURCE_LL: u8 = 1;
/// Neighbour discovery option: target link-layer address.
pub const OPT_TARGET_LL: u8 = 2;

/// Neighbour advertisement flags.
pub const NA_FLAG_SOLICITED: u32 = 0x4000_0000;
pub const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;

/// A view of an ICMPv6 message.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[0]
    }
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    /// The 4 bytes after the checksum (echo id+seq, MTU, NA flags).
    pub fn rest(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let b = self.buffer.as_ref();
        let sum = checksum::pseudo_v6(src, dst, proto::ICMPV6, b.len() as u32);
        checksum::finish(checksum::accumulate(sum, b)) == 0
    }
    /// The target address of a neighbour solicitation or advertisement.
    pub fn nd_target(&self) -> Result<Ipv6Addr> {
        let b = self.buffer.as_ref();
        if b.len() < 24 {
            return Err(Error::Truncated);
        }
        let o: [u8; 16] = b[8..24].try_into().unwrap();
        Ok(Ipv6Addr::from(o))
    }
    /// The link-layer address option of the given kind in an NS/NA, if present.
    pub fn nd_link_layer_option(&self, kind: u8) -> Result<Option<Address>> {
        let b = self.buffer.as_ref();
        let mut at = 24;
        while at + 2 <= b.len() {
            let len = b[at + 1] as usize * 8;
            if len == 0 || at + len > b.len() {
                return Err(Error::BadLength);
            }
            if b[at] == kind && len >= 8 {
                return Ok(Some(b[at + 2..at + 8].try_into().unwrap()));
            }
            at += len;
        }
        Ok(None)
    }
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[0] = v;
    }
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }
    pub fn set_rest(&mut self, v: u32) {
        self.buffer.as_mut()[4..8].copy_from_slice(&v.to_be_bytes());
    }
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let b = self.buffer.as_mut();
        set_u16(b, 2, 0);
        let sum = checksum::pseudo_v6(src, dst, proto::ICMPV6, b.len() as u32);
        let c = checksum::finish(checksum::accumulate(sum, b));
        set_u16(b, 2, c);
    }
}

/// Writes a neighbour advertisement for `target` with our MAC as target link-layer address
/// (32 bytes) into `b`; the caller fills the checksum once the IPv6 addresses are known.
pub fn write_neighbor_advert(b: &mut [u8], target: Ipv6Addr, mac: Address, solicited: bool) {
    b[0] = TYPE_NEIGHBOR_ADVERT;
    b[1] = 0;
    set_u16(b, 2, 0);
    let flags = NA_FLAG_OVERRIDE | if solicited { NA_FLAG_SOLICITED } else { 0 };
    b[4..8].copy_from_slice(&flags.to_be_bytes());
    b[8..24].copy_from_slice(&target.octets());
    b[24] = OPT_TARGET_LL;
    b[25] = 1;
    b[26..32].copy_from_slice(&mac);
}

/// Writes a neighbour solicitation for `target` with our MAC as source link-layer address
/// (32 bytes) into `b`.
pub fn write_neighbor_solicit(b: &mut [u8], target: Ipv6Addr, mac: Address) {
    b[0] = TYPE_NEIGHBOR_SOLICIT;
    b[1] = 0;
    b[2..8].fill(0);
    b[8..24].copy_from_slice(&target.octets());
    b[24] = OPT_SOURCE_LL;
    b[25] = 1;
    b[26..32].copy_from_slice(&mac);
}

/// The solicited-node multicast address of `a` (RFC 4291 section 2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        get_u16(&o, 14),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbor_advert_round_trip() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let mut b = [0u8; 32];
        write_neighbor_advert(&mut b, src, [2, 0, 0, 0, 0, 9], true);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum(src, dst);
        assert!(p.verify_checksum(src, dst));
        assert_eq!(p.nd_target().unwrap(), src);
        assert_eq!(
            p.nd_link_layer_option(OPT_TARGET_LL).unwrap(),
            Some([2, 0, 0, 0, 0, 9])
        );
        assert_eq!(p.nd_link_layer_option(OPT_SOURCE_LL).unwrap(), None);
        b[25] = 0; // zero-length option
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            p.nd_link_layer_option(OPT_TARGET_LL).unwrap_err(),
            Error::BadLength
        );
    }

    #[test]
    fn solicited_node_address() {
        let a: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(
            solicited_node(a),
            "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap()
        );
    }
}
