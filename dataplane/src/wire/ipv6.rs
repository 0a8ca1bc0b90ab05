//! IPv6 headers (RFC 8200), with a walk over extension headers to the upper layer.

use std::net::Ipv6Addr;

use super::{get_u16, proto, set_u16, Error, Result};

pub const HEADER_LEN: usize = 40;

// Extension headers that the walk steps over (hop-by-hop, routing, destination options).
const EXT_HOP_BY_HOP: u8 = 0;
const EXT_ROUTING: u8 = 43;
const EXT_FRAGMENT: u8 = 44;
const EXT_DEST_OPTS: u8 = 60;

/// A view of an IPv6 packet.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Checks the version and that the payload length fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::Unrecognized);
        }
        if b.len() < HEADER_LEN + get_u16(b, 4) as usize {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }
    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        (((b[1] & 0x0f) as u32) << 16) | get_u16(b, 2) as u32
    }
    pub fn payload_len(&self) -> usize {
        get_u16(self.buffer.as_ref(), 4) as usize
    }
    pub fn total_len(&self) -> usize {
        HEADER_LEN + self.payload_len()
    }
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    pub fn src(&self) -> Ipv6Addr {
        let o: [u8; 16] = self.buffer.as_ref()[8..24].try_into().unwrap();
        Ipv6Addr::from(o)
    }
    pub fn dst(&self) -> Ipv6Addr {
        let o: [u8; 16] = self.buffer.as_ref()[24..40].try_into().unwrap();
        Ipv6Addr::from(o)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }

    /// Walks hop-by-hop, routing and destination-options headers and returns the upper-layer
    /// protocol and its offset from the start of the packet. A fragment header ends the walk
    /// and is returned as protocol 44 (non-first fragments carry no ports). Errors when an
    /// extension header runs past the payload.
    pub fn upper_layer(&self) -> Result<(u8, usize)> {
        let b = &self.buffer.as_ref()[..self.total_len()];
        let mut next = self.next_header();
        let mut at = HEADER_LEN;
        for _ in 0..8 {
            match next {
                EXT_HOP_BY_HOP | EXT_ROUTING | EXT_DEST_OPTS => {
                    if b.len() < at + 2 {
                        return Err(Error::Truncated);
                    }
                    let len = (b[at + 1] as usize + 1) * 8;
                    next = b[at];
                    at += len;
                    if at > b.len() {
                        return Err(Error::Truncated);
                    }
                }
                EXT_FRAGMENT => return Ok((EXT_FRAGMENT, at)),
                _ => return Ok((next, at)),
            }
        }
        Err(Error::Unrecognized)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_payload_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_next_header(&mut self, v: u8) {
        self.buffer.as_mut()[6] = v;
    }
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[7] = v;
    }
    pub fn set_src(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&a.octets());
    }
    pub fn set_dst(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&a.octets());
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let t = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..t]
    }
}

/// The fields of an IPv6 header without extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub next_header: u8,
    pub payload_len: usize,
    pub hop_limit: u8,
    pub traffic_class: u8,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            src: p.src(),
            dst: p.dst(),
            next_header: p.next_header(),
            payload_len: p.payload_len(),
            hop_limit: p.hop_limit(),
            traffic_class: p.traffic_class(),
        }
    }
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    /// Writes the 40-byte header into the start of `buf` (flow label 0).
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = 0x60 | (self.traffic_class >> 4);
        buf[1] = self.traffic_class << 4;
        buf[2] = 0;
        buf[3] = 0;
        set_u16(buf, 4, self.payload_len as u16);
        buf[6] = self.next_header;
        buf[7] = self.hop_limit;
        buf[8..24].copy_from_slice(&self.src.octets());
        buf[24..40].copy_from_slice(&self.dst.octets());
    }
}

/// True for protocols whose first 4 payload bytes are source and destination ports.
pub fn has_ports(protocol: u8) -> bool {
    matches!(protocol, proto::TCP | proto::UDP | 132 /* SCTP */)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; HEADER_LEN + payload.len()];
        Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "2001:db8::2".parse().unwrap(),
            next_header: next,
            payload_len: payload.len(),
            hop_limit: 64,
            traffic_class: 0xb8,
        }
        .emit(&mut b);
        b[HEADER_LEN..].copy_from_slice(payload);
        b
    }

    #[test]
    fn round_trip_and_extension_walk() {
        // hop-by-hop (8 bytes) then UDP
        let mut pl = vec![proto::UDP, 0, 1, 4, 0, 0, 0, 0];
        pl.extend_from_slice(&[0x12, 0x34, 0x00, 0x35, 0, 8, 0, 0]);
        let b = packet(EXT_HOP_BY_HOP, &pl);
        let p = Packet::new_checked(&b[..]).unwrap();
        let r = Repr::parse(&p);
        assert_eq!(r.traffic_class, 0xb8);
        assert_eq!(r.src, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.upper_layer().unwrap(), (proto::UDP, 48));
    }

    #[test]
    fn malformed() {
        let b = packet(proto::UDP, &[0; 8]);
        assert_eq!(Packet::new_checked(&b[..39]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..45]).unwrap_err(), Error::Truncated);
        let bad = packet(EXT_DEST_OPTS, &[proto::UDP, 3, 0, 0]); // claims 32 bytes
        assert_eq!(
            Packet::new_checked(&bad[..])
                .unwrap()
                .upper_layer()
                .unwrap_err(),
            Error::Truncated
        );
    }
}
