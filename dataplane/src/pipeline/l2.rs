//! The small header rewrites the forwarding step needs: TTL, Ethernet header, and the ICMP
//! "too big" error built in place of the packet that caused it (no allocation).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::classify::{
    IpInfo, LocalAddrs, ETHERTYPE_IPV4, ETHERTYPE_IPV6, PROTO_ICMP, PROTO_ICMPV6,
};
use crate::packet::PacketBuf;
use crate::wire::{self, ipv4};

/// The destination of the IP packet at the start of `ip`, IPv4 or IPv6.
pub fn ip_destination(ip: &[u8]) -> Option<IpAddr> {
    match ip.first()? >> 4 {
        4 if ip.len() >= 20 => Some(IpAddr::V4(Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]))),
        6 if ip.len() >= 40 => {
            let mut d = [0u8; 16];
            d.copy_from_slice(&ip[24..40]);
            Some(IpAddr::V6(Ipv6Addr::from(d)))
        }
        _ => None,
    }
}

/// Decrements the TTL (IPv4, checksum updated incrementally) or the hop limit (IPv6).
/// Returns false when it would reach zero: the packet must not be forwarded.
pub fn decrement_ttl(ip: &mut [u8]) -> bool {
    match ip.first().map(|b| b >> 4) {
        Some(4) => match ipv4::Packet::new_checked(&mut *ip) {
            Ok(mut p) => p.decrement_ttl(),
            Err(_) => false,
        },
        Some(6) if ip.len() >= 40 => {
            if ip[7] <= 1 {
                return false;
            }
            ip[7] -= 1;
            true
        }
        _ => false,
    }
}

/// Prepends an Ethernet header (ethertype from the IP version). False when there is no
/// headroom or the packet is not IP.
pub fn push_ethernet<P: PacketBuf>(pkt: &mut P, dst: [u8; 6], src: [u8; 6]) -> bool {
    let ethertype = match pkt.data().first().map(|b| b >> 4) {
        Some(4) => ETHERTYPE_IPV4,
        Some(6) => ETHERTYPE_IPV6,
        _ => return false,
    };
    if !pkt.prepend(14) {
        return false;
    }
    let h = pkt.data_mut();
    h[0..6].copy_from_slice(&dst);
    h[6..12].copy_from_slice(&src);
    h[12..14].copy_from_slice(&ethertype.to_be_bytes());
    true
}

/// The Internet checksum (RFC 1071) of `data`, starting from `initial` (a pseudo-header
/// sum, or 0).
pub fn checksum(initial: u32, data: &[u8]) -> u16 {
    wire::checksum::finish(wire::checksum::accumulate(initial, data))
}

/// Turns the IP packet in `pkt` (no Ethernet header) into the ICMP error that tells its
/// sender the largest packet that fits (`mtu`): ICMPv4 type 3 code 4 "fragmentation needed"
/// (RFC 1191) or ICMPv6 "packet too big" (RFC 8201), from one of our addresses of the same
/// family. The original header and the start of its payload are quoted. Returns false when it
/// cannot be built (no address of that family, no headroom): the caller drops the packet.
pub fn icmp_too_big_in_place<P: PacketBuf>(
    pkt: &mut P,
    ip: &IpInfo,
    mtu: usize,
    local: &LocalAddrs,
) -> bool {
    match ip.src() {
        IpAddr::V4(orig_src) => {
            let Some(IpAddr::V4(me)) = local.iter().find(|a| a.is_ipv4()).copied() else {
                return false;
            };
            let ihl = ((pkt.data()[0] & 0x0f) as usize) * 4;
            let quote = pkt.len().min(ihl + 8);
            if !pkt.trim(pkt.len() - quote) || !pkt.prepend(28) {
                return false;
            }
            let total = 28 + quote;
            let d = pkt.data_mut();
            d[..20].fill(0);
            d[0] = 0x45;
            d[1] = 0xc0;
            d[2..4].copy_from_slice(&(total as u16).to_be_bytes());
            d[8] = 64;
            d[9] = PROTO_ICMP;
            d[12..16].copy_from_slice(&me.octets());
            d[16..20].copy_from_slice(&orig_src.octets());
            let c = checksum(0, &d[..20]);
            d[10..12].copy_from_slice(&c.to_be_bytes());
            let icmp = &mut d[20..total];
            icmp[..8].fill(0);
            icmp[0] = 3;
            icmp[1] = 4;
            icmp[6..8].copy_from_slice(&(mtu.min(0xffff) as u16).to_be_bytes());
            let c = checksum(0, icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            true
        }
        IpAddr::V6(orig_src) => {
            let Some(IpAddr::V6(me)) = local.iter().find(|a| a.is_ipv6()).copied() else {
                return false;
            };
            // The error must fit in the IPv6 minimum MTU.
            let quote = pkt.len().min(1280 - 48);
            if !pkt.trim(pkt.len() - quote) || !pkt.prepend(48) {
                return false;
            }
            let plen = 8 + quote;
            let d = pkt.data_mut();
            d[..8].fill(0);
            d[0] = 0x60;
            d[4..6].copy_from_slice(&(plen as u16).to_be_bytes());
            d[6] = PROTO_ICMPV6;
            d[7] = 64;
            d[8..24].copy_from_slice(&me.octets());
            d[24..40].copy_from_slice(&orig_src.octets());
            let mut pseudo = 0u32;
            for w in d[8..40].chunks_exact(2) {
                pseudo += u16::from_be_bytes([w[0], w[1]]) as u32;
            }
            pseudo += plen as u32 + PROTO_ICMPV6 as u32;
            let icmp = &mut d[40..40 + plen];
            icmp[..8].fill(0);
            icmp[0] = 2;
            icmp[4..8].copy_from_slice(&(mtu as u32).to_be_bytes());
            let c = checksum(pseudo, icmp);
            icmp[2..4].copy_from_slice(&c.to_be_bytes());
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::VecPacket;
    use crate::pipeline::classify::parse_ip;

    fn ipv4_packet(len: usize, ttl: u8) -> Vec<u8> {
        let mut p = vec![0u8; len];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[6] = 0x40;
        p[8] = ttl;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 10, 1, 1]);
        p[16..20].copy_from_slice(&[10, 10, 2, 1]);
        let c = checksum(0, &p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid() {
        let mut p = ipv4_packet(40, 64);
        assert!(decrement_ttl(&mut p));
        assert_eq!(p[8], 63);
        assert_eq!(checksum(0, &p[..20]), 0, "header checksum must verify");
        let mut p = ipv4_packet(40, 1);
        assert!(!decrement_ttl(&mut p));
    }

    #[test]
    fn frag_needed_quotes_the_header_and_verifies() {
        let orig = ipv4_packet(1400, 64);
        let mut pkt = VecPacket::new(&orig);
        // parse the packet as if behind an Ethernet header
        let mut frame = vec![0u8; 14];
        frame[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        frame.extend_from_slice(&orig);
        let info = parse_ip(&frame, 14, ETHERTYPE_IPV4).unwrap();
        let local = LocalAddrs::new(["10.10.1.254".parse().unwrap()]);
        assert!(icmp_too_big_in_place(&mut pkt, &info, 1438, &local));
        let d = pkt.data();
        assert_eq!(d.len(), 20 + 8 + 28);
        assert_eq!(checksum(0, &d[..20]), 0);
        assert_eq!(&d[12..16], &[10, 10, 1, 254]);
        assert_eq!(&d[16..20], &[10, 10, 1, 1]);
        assert_eq!((d[20], d[21]), (3, 4));
        assert_eq!(u16::from_be_bytes([d[26], d[27]]), 1438);
        assert_eq!(checksum(0, &d[20..]), 0);
        assert_eq!(&d[28..56], &orig[..28]);
    }
}
