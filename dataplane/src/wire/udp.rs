//! UDP headers (RFC 768), including the UDP encapsulation of ESP (RFC 3948).

use std::net::IpAddr;

use super::{checksum, get_u16, proto, set_u16, Error, Result};

pub const HEADER_LEN: usize = 8;
/// IKE.
pub const PORT_IKE: u16 = 500;
/// IKE and ESP after NAT traversal (RFC 3947, RFC 3948).
pub const PORT_NATT: u16 = 4500;

/// A view of a UDP datagram.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Checks the length field: at least 8 and no more than the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let len = get_u16(b, 4) as usize;
        if len < HEADER_LEN {
            return Err(Error::BadLength);
        }
        if len > b.len() {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0)
    }
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 2)
    }
    pub fn len(&self) -> usize {
        get_u16(self.buffer.as_ref(), 4) as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() <= HEADER_LEN
    }
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.len()]
    }
    /// Verifies the checksum; a zero checksum over IPv4 means "none" (and is accepted).
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return matches!(src, IpAddr::V4(_));
        }
        let data = &self.buffer.as_ref()[..self.len()];
        checksum::finish(checksum::accumulate(pseudo(src, dst, data.len()), data)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_src_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 0, v);
    }
    pub fn set_dst_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }
    pub fn set_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_checksum(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }
    /// Computes and writes the checksum (mandatory over IPv6).
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let len = self.len();
        let data = &self.buffer.as_ref()[..len];
        let mut c = checksum::finish(checksum::accumulate(pseudo(src, dst, len), data));
        if c == 0 {
            c = 0xffff;
        }
        self.set_checksum(c);
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.len();
        &mut self.buffer.as_mut()[HEADER_LEN..l]
    }
}

fn pseudo(src: IpAddr, dst: IpAddr, len: usize) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_v4(s, d, proto::UDP, len as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_v6(s, d, proto::UDP, len as u32),
        _ => 0,
    }
}

/// Writes a UDP header with a zero checksum (as RFC 3948 allows for ESP over IPv4).
pub fn write_header(buf: &mut [u8], src_port: u16, dst_port: u16, len: u16) {
    set_u16(buf, 0, src_port);
    set_u16(buf, 2, dst_port);
    set_u16(buf, 4, len);
    set_u16(buf, 6, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_round_trip_v4_v6() {
        for (s, d) in [("10.0.0.1", "10.0.0.2"), ("2001:db8::1", "2001:db8::2")] {
            let (s, d): (IpAddr, IpAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let mut b = [0u8; 13];
            write_header(&mut b, 4500, 4500, 13);
            b[8..].copy_from_slice(b"hello");
            let mut p = Packet::new_checked(&mut b[..]).unwrap();
            p.fill_checksum(s, d);
            assert!(p.verify_checksum(s, d));
            p.payload_mut()[0] ^= 1;
            assert!(!p.verify_checksum(s, d));
        }
    }

    #[test]
    fn length_checks() {
        let mut b = [0u8; 8];
        write_header(&mut b, 1, 2, 7);
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::BadLength);
        write_header(&mut b, 1, 2, 9);
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
    }
}
