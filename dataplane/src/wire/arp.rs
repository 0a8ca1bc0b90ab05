//! ARP for IPv4 over Ethernet (RFC 826).

use std::net::Ipv4Addr;

use super::ethernet::Address;
use super::{get_u16, set_u16, Error, Result};

pub const PACKET_LEN: usize = 28;
pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// An ARP packet (Ethernet/IPv4 only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub operation: u16,
    pub sender_mac: Address,
    pub sender_ip: Ipv4Addr,
    pub target_mac: Address,
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Parses an Ethernet/IPv4 ARP packet; anything else is refused.
    pub fn parse(b: &[u8]) -> Result<Repr> {
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if get_u16(b, 0) != 1 || get_u16(b, 2) != 0x0800 || b[4] != 6 || b[5] != 4 {
            return Err(Error::Unrecognized);
        }
        let operation = get_u16(b, 6);
        if operation != OP_REQUEST && operation != OP_REPLY {
            return Err(Error::Unrecognized);
        }
        Ok(Repr {
            operation,
            sender_mac: b[8..14].try_into().unwrap(),
            sender_ip: Ipv4Addr::new(b[14], b[15], b[16], b[17]),
            target_mac: b[18..24].try_into().unwrap(),
            target_ip: Ipv4Addr::new(b[24], b[25], b[26], b[27]),
        })
    }

    pub fn buffer_len(&self) -> usize {
        PACKET_LEN
    }

    pub fn emit(&self, b: &mut [u8]) {
        set_u16(b, 0, 1);
        set_u16(b, 2, 0x0800);
        b[4] = 6;
        b[5] = 4;
        set_u16(b, 6, self.operation);
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let r = Repr {
            operation: OP_REQUEST,
            sender_mac: [2, 0, 0, 0, 0, 1],
            sender_ip: Ipv4Addr::new(10, 0, 0, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 0, 0, 2),
        };
        let mut b = [0u8; PACKET_LEN];
        r.emit(&mut b);
        assert_eq!(Repr::parse(&b).unwrap(), r);
        assert_eq!(Repr::parse(&b[..27]).unwrap_err(), Error::Truncated);
        b[7] = 9;
        assert_eq!(Repr::parse(&b).unwrap_err(), Error::Unrecognized);
    }
}
