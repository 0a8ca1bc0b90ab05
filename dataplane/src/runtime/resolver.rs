//! Next-hop resolution on the main lcore: the workers ask (through their request queues),
//! the main lcore marks the neighbour entry pending and sends an ARP request or an IPv6
//! neighbour solicitation out of the port; the answer is learned when it is punted back.
//! Entries age out ([`crate::l3::NeighborTable::age`]), so a stale binding is resolved again.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::l3::NeighborTable;
use crate::wire::{arp, checksum, ethernet, icmpv6, proto};

/// Writes the frame that resolves `target` from a port with `mac` and address `source` of
/// the same family (ARP request, or NS to the solicited-node group) into `out`, returning its
/// length; None when the families differ or `out` is too short (86 bytes are enough).
pub fn resolution_frame(
    out: &mut [u8],
    mac: [u8; 6],
    source: IpAddr,
    target: IpAddr,
) -> Option<usize> {
    match (source, target) {
        (IpAddr::V4(s), IpAddr::V4(t)) => arp_request(out, mac, s, t),
        (IpAddr::V6(s), IpAddr::V6(t)) => neighbor_solicit(out, mac, s, t),
        _ => None,
    }
}

fn arp_request(out: &mut [u8], mac: [u8; 6], source: Ipv4Addr, target: Ipv4Addr) -> Option<usize> {
    let len = ethernet::HEADER_LEN + arp::PACKET_LEN;
    let out = out.get_mut(..len)?;
    ethernet::write_header(out, ethernet::BROADCAST, mac, ethernet::ETHERTYPE_ARP);
    arp::Repr {
        operation: arp::OP_REQUEST,
        sender_mac: mac,
        sender_ip: source,
        target_mac: [0; 6],
        target_ip: target,
    }
    .emit(&mut out[ethernet::HEADER_LEN..]);
    Some(len)
}

fn neighbor_solicit(
    out: &mut [u8],
    mac: [u8; 6],
    source: Ipv6Addr,
    target: Ipv6Addr,
) -> Option<usize> {
    const NS_LEN: usize = 32;
    let len = ethernet::HEADER_LEN + 40 + NS_LEN;
    let out = out.get_mut(..len)?;
    let group = icmpv6::solicited_node(target);
    let g = group.octets();
    let dst_mac = [0x33, 0x33, g[12], g[13], g[14], g[15]];
    ethernet::write_header(out, dst_mac, mac, ethernet::ETHERTYPE_IPV6);
    let ip = &mut out[ethernet::HEADER_LEN..];
    ip[..8].fill(0);
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&(NS_LEN as u16).to_be_bytes());
    ip[6] = proto::ICMPV6;
    ip[7] = 255; // ND messages must carry hop limit 255 (RFC 4861 section 7.1.1)
    ip[8..24].copy_from_slice(&source.octets());
    ip[24..40].copy_from_slice(&group.octets());
    let ns = &mut ip[40..40 + NS_LEN];
    icmpv6::write_neighbor_solicit(ns, target, mac);
    let sum = checksum::pseudo_v6(source, group, proto::ICMPV6, NS_LEN as u32);
    let c = checksum::finish(checksum::accumulate(sum, ns));
    ns[2..4].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

/// Handles one resolution request: true when a request frame should be sent now (the entry
/// was not already known or being resolved).
pub fn should_send(table: &NeighborTable, target: IpAddr, now_secs: u64) -> bool {
    table.start_resolving(target, now_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::neighbor::Lookup;

    #[test]
    fn arp_request_is_broadcast_and_parses_back() {
        let mut b = [0u8; 128];
        let n = resolution_frame(
            &mut b,
            [2, 0, 0, 0, 0, 1],
            "10.99.0.1".parse().unwrap(),
            "10.99.0.2".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(n, 42);
        assert_eq!(&b[0..6], &[0xff; 6]);
        assert_eq!(&b[12..14], &[0x08, 0x06]);
        let r = arp::Repr::parse(&b[14..n]).unwrap();
        assert_eq!(r.operation, arp::OP_REQUEST);
        assert_eq!(r.target_ip, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(r.sender_ip, Ipv4Addr::new(10, 99, 0, 1));
    }

    #[test]
    fn neighbor_solicit_goes_to_the_solicited_node_group_with_a_valid_checksum() {
        let mut b = [0u8; 128];
        let src: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8:99::2".parse().unwrap();
        let n = resolution_frame(&mut b, [2, 0, 0, 0, 0, 1], src.into(), dst.into()).unwrap();
        assert_eq!(n, 14 + 40 + 32);
        assert_eq!(&b[0..6], &[0x33, 0x33, 0xff, 0, 0, 2]);
        let icmp = icmpv6::Packet::new_checked(&b[54..n]).unwrap();
        assert_eq!(icmp.msg_type(), icmpv6::TYPE_NEIGHBOR_SOLICIT);
        assert!(icmp.verify_checksum(src, "ff02::1:ff00:2".parse().unwrap()));
        assert_eq!(icmp.nd_target().unwrap(), dst);
        assert_eq!(b[14 + 7], 255);
        assert!(
            resolution_frame(&mut b, [0; 6], src.into(), "10.0.0.1".parse().unwrap()).is_none()
        );
    }

    #[test]
    fn a_pending_resolution_is_not_repeated_at_once() {
        let t = NeighborTable::new(16);
        let ip: IpAddr = "10.99.0.2".parse().unwrap();
        assert!(should_send(&t, ip, 100));
        assert!(!should_send(&t, ip, 100));
        assert_eq!(t.get(ip), Lookup::Pending);
        assert!(t.learn(ip, [2, 0, 0, 0, 0, 2], 1, 100));
        assert!(!should_send(&t, ip, 200));
    }
}
