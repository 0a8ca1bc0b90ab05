//! IPv4 headers (RFC 791).

use std::net::Ipv4Addr;

use super::{checksum, get_u16, set_u16, Error, Result};

pub const MIN_HEADER_LEN: usize = 20;
/// Don't Fragment, in the flags/fragment-offset word.
pub const FLAG_DF: u16 = 0x4000;
/// More Fragments.
pub const FLAG_MF: u16 = 0x2000;

/// A view of an IPv4 packet.
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Checks version, IHL and total length against the buffer. The buffer may be longer
    /// than the total length (Ethernet padding); [`Packet::total_len`] is authoritative.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(Error::Unrecognized);
        }
        let ihl = ((b[0] & 0x0f) as usize) * 4;
        let total = get_u16(b, 2) as usize;
        if ihl < MIN_HEADER_LEN || total < ihl {
            return Err(Error::BadLength);
        }
        if b.len() < total {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn header_len(&self) -> usize {
        ((self.buffer.as_ref()[0] & 0x0f) as usize) * 4
    }
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[1]
    }
    pub fn total_len(&self) -> usize {
        get_u16(self.buffer.as_ref(), 2) as usize
    }
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 4)
    }
    /// The flags and fragment offset word.
    pub fn frag_word(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }
    pub fn dont_frag(&self) -> bool {
        self.frag_word() & FLAG_DF != 0
    }
    pub fn more_frags(&self) -> bool {
        self.frag_word() & FLAG_MF != 0
    }
    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> usize {
        ((self.frag_word() & 0x1fff) as usize) * 8
    }
    /// True for any fragment (first, middle or last).
    pub fn is_fragment(&self) -> bool {
        self.frag_word() & (FLAG_MF | 0x1fff) != 0
    }
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[8]
    }
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[9]
    }
    pub fn header_checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 10)
    }
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }
    /// True when the header checksum verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::checksum(&self.buffer.as_ref()[..self.header_len()]) == 0
    }
    /// The payload, up to the total length (Ethernet padding excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[1] = v;
    }
    pub fn set_total_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }
    pub fn set_ident(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 4, v);
    }
    pub fn set_frag_word(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[8] = v;
    }
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[9] = v;
    }
    pub fn set_src(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[12..16].copy_from_slice(&a.octets());
    }
    pub fn set_dst(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[16..20].copy_from_slice(&a.octets());
    }
    /// Recomputes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        let hl = self.header_len();
        let b = self.buffer.as_mut();
        set_u16(b, 10, 0);
        let c = checksum::checksum(&b[..hl]);
        set_u16(b, 10, c);
    }
    /// Decrements the TTL, updating the checksum incrementally. Returns false if the TTL was
    /// already 0 or 1 (the packet must not be forwarded).
    pub fn decrement_ttl(&mut self) -> bool {
        let b = self.buffer.as_mut();
        if b[8] <= 1 {
            return false;
        }
        let old = get_u16(b, 8);
        b[8] -= 1;
        let new = get_u16(b, 8);
        let c = checksum::update(get_u16(b, 10), old, new);
        set_u16(b, 10, c);
        true
    }
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (h, t) = (self.header_len(), self.total_len());
        &mut self.buffer.as_mut()[h..t]
    }
}

/// The fields of an option-less IPv4 header, to parse and emit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub payload_len: usize,
    pub ttl: u8,
    pub dscp_ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

impl Repr {
    /// Parses a checked packet (rejecting a bad header checksum).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        if !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        Ok(Repr {
            src: p.src(),
            dst: p.dst(),
            protocol: p.protocol(),
            payload_len: p.total_len() - p.header_len(),
            ttl: p.ttl(),
            dscp_ecn: p.dscp_ecn(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }
    pub fn buffer_len(&self) -> usize {
        MIN_HEADER_LEN
    }
    /// The header checksum of the 20-byte header `emit` writes, summed from the fields rather
    /// than read back from the buffer just written (which would stall on the stores).
    pub fn header_checksum(&self) -> u16 {
        let src = u32::from(self.src);
        let dst = u32::from(self.dst);
        let sum = 0x4500u32
            + self.dscp_ecn as u32
            + (MIN_HEADER_LEN + self.payload_len) as u16 as u32
            + self.ident as u32
            + if self.dont_frag { FLAG_DF as u32 } else { 0 }
            + ((self.ttl as u32) << 8 | self.protocol as u32)
            + (src >> 16)
            + (src & 0xffff)
            + (dst >> 16)
            + (dst & 0xffff);
        checksum::finish(sum)
    }

    /// Writes a 20-byte header with its checksum into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = 0x45;
        buf[1] = self.dscp_ecn;
        set_u16(buf, 2, (MIN_HEADER_LEN + self.payload_len) as u16);
        set_u16(buf, 4, self.ident);
        set_u16(buf, 6, if self.dont_frag { FLAG_DF } else { 0 });
        buf[8] = self.ttl;
        buf[9] = self.protocol;
        buf[12..16].copy_from_slice(&self.src.octets());
        buf[16..20].copy_from_slice(&self.dst.octets());
        set_u16(buf, 10, self.header_checksum());
    }
}

/// An option-less IPv4 header whose addresses, TTL and protocol never change (an SA's outer
/// header), prepared once: per packet only the type of service, length, identification and
/// DF bit are filled in, and the checksum is finished from a sum of the fixed fields. Every
/// byte is written with stores and nothing is read back from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Template {
    /// TTL, protocol (checksum zero), source and destination: bytes 8..20 of the header.
    ttl_proto: u16,
    addrs: [u8; 8],
    /// One's-complement sum of version/IHL, TTL/protocol and the addresses, not folded.
    sum: u32,
}

impl Template {
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, protocol: u8) -> Template {
        let (s, d) = (u32::from(src), u32::from(dst));
        let ttl_proto = (ttl as u16) << 8 | protocol as u16;
        let mut addrs = [0u8; 8];
        addrs[..4].copy_from_slice(&src.octets());
        addrs[4..].copy_from_slice(&dst.octets());
        Template {
            ttl_proto,
            addrs,
            sum: 0x4500 + ttl_proto as u32 + (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff),
        }
    }

    /// Writes the 20-byte header, with its checksum, at the start of `buf`.
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8], dscp_ecn: u8, total_len: u16, ident: u16, dont_frag: bool) {
        let flags = if dont_frag { FLAG_DF } else { 0 };
        let sum = self.sum + dscp_ecn as u32 + total_len as u32 + ident as u32 + flags as u32;
        let csum = checksum::finish(sum);
        let h = &mut buf[..MIN_HEADER_LEN];
        h[0..4].copy_from_slice(
            &(0x4500_0000 | (dscp_ecn as u32) << 16 | total_len as u32).to_be_bytes(),
        );
        h[4..8].copy_from_slice(&((ident as u32) << 16 | flags as u32).to_be_bytes());
        h[8..12].copy_from_slice(&((self.ttl_proto as u32) << 16 | csum as u32).to_be_bytes());
        h[12..20].copy_from_slice(&self.addrs);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An ICMP echo request 10.0.0.1 -> 10.0.0.2, as a Linux ping sends it (header only + 8).
    const PING: [u8; 28] = [
        0x45, 0x00, 0x00, 0x1c, 0x8a, 0x4b, 0x40, 0x00, 0x40, 0x01, 0x9c, 0x93, 0x0a, 0x00, 0x00,
        0x01, 0x0a, 0x00, 0x00, 0x02, 0x08, 0x00, 0xf7, 0xff, 0x00, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn emitted_checksums_verify() {
        for (i, (df, ttl, tos)) in [(true, 64, 0), (false, 1, 0xff), (true, 255, 0xb8)]
            .into_iter()
            .enumerate()
        {
            let r = Repr {
                src: Ipv4Addr::new(255, 255, 254, 1 + i as u8),
                dst: Ipv4Addr::new(10, 99, 0, 2),
                protocol: 50,
                payload_len: 1480 - i * 333,
                ttl,
                dscp_ecn: tos,
                ident: 0xfffe - i as u16,
                dont_frag: df,
            };
            let mut b = [0u8; 20];
            r.emit(&mut b);
            assert_eq!(checksum::checksum(&b), 0, "{r:?}");
        }
    }

    #[test]
    fn template_emits_what_repr_emits() {
        for (i, (df, tos)) in [(true, 0), (false, 0xff), (true, 0xb8)]
            .into_iter()
            .enumerate()
        {
            let r = Repr {
                src: Ipv4Addr::new(255, 255, 254, 1 + i as u8),
                dst: Ipv4Addr::new(10, 99, 0, 2),
                protocol: 50,
                payload_len: 1480 - i * 333,
                ttl: 64,
                dscp_ecn: tos,
                ident: 0xfffe - i as u16,
                dont_frag: df,
            };
            let (mut a, mut b) = ([0u8; 20], [0xaau8; 20]);
            r.emit(&mut a);
            Template::new(r.src, r.dst, 64, 50).emit(
                &mut b,
                tos,
                (20 + r.payload_len) as u16,
                r.ident,
                df,
            );
            assert_eq!(a, b, "{r:?}");
            assert_eq!(checksum::checksum(&b), 0);
        }
    }

    #[test]
    fn parse_real_header() {
        let p = Packet::new_checked(&PING[..]).unwrap();
        assert!(p.verify_checksum());
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.src, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(r.dst, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(r.protocol, 1);
        assert_eq!(r.payload_len, 8);
        assert!(r.dont_frag);
        let mut out = [0u8; 20];
        r.emit(&mut out);
        assert_eq!(out[..], PING[..20]);
    }

    #[test]
    fn malformed_headers_are_errors() {
        assert_eq!(
            Packet::new_checked(&PING[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut bad = PING;
        bad[0] = 0x44; // IHL 16 bytes
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::BadLength);
        let mut long = PING;
        long[3] = 0x40; // total length 64 > 28
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            Error::Truncated
        );
        let mut v6 = PING;
        v6[0] = 0x65;
        assert_eq!(
            Packet::new_checked(&v6[..]).unwrap_err(),
            Error::Unrecognized
        );
        let mut sum = PING;
        sum[11] ^= 1;
        let p = Packet::new_checked(&sum[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap_err(), Error::Checksum);
    }

    #[test]
    fn ttl_decrement_keeps_checksum_valid() {
        let mut b = PING;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        assert!(p.decrement_ttl());
        assert_eq!(p.ttl(), 63);
        assert!(p.verify_checksum());
    }
}
