//! The main lcore's handling of punted ARP, neighbour discovery and ICMP echo frames.
//!
//! Every ARP packet and NS/NA teaches the neighbour table the sender's binding (only the main
//! lcore writes it). A request for one of our addresses (ARP request, NS, echo request) is
//! turned into its answer in the same buffer, which is then sent back out of the port it came
//! in on: no allocation. IKE frames are not handled here (they go to control).

use std::net::IpAddr;

use crate::l3::NeighborTable;
use crate::packet::PacketBuf;
use crate::pipeline::{LocalAddrs, PortId};
use crate::wire::{arp, ethernet, icmpv4, icmpv6, ipv4, ipv6, proto};

/// What became of a punted frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlowPathOutcome {
    /// The buffer now holds the answer: send it out of the same port.
    Reply,
    /// Learned or ignored: free the buffer.
    Consumed,
}

/// Handles an ARP, ND or ICMP frame received on `port` whose MAC is `mac`.
pub fn handle<P: PacketBuf>(
    pkt: &mut P,
    port: PortId,
    mac: [u8; 6],
    local: &LocalAddrs,
    neighbours: &NeighborTable,
    now_secs: u64,
) -> SlowPathOutcome {
    let frame = pkt.data_mut();
    if frame.len() < ethernet::HEADER_LEN {
        return SlowPathOutcome::Consumed;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let src_mac: [u8; 6] = frame[6..12].try_into().unwrap();
    let done = match ethertype {
        ethernet::ETHERTYPE_ARP => arp_in(frame, port, mac, local, neighbours, now_secs),
        ethernet::ETHERTYPE_IPV4 => echo_v4(&mut frame[ethernet::HEADER_LEN..], local),
        ethernet::ETHERTYPE_IPV6 => icmp_v6(
            &mut frame[ethernet::HEADER_LEN..],
            port,
            mac,
            local,
            neighbours,
            now_secs,
        ),
        _ => false,
    };
    if done {
        // Answer to whoever asked, from us.
        frame[0..6].copy_from_slice(&src_mac);
        frame[6..12].copy_from_slice(&mac);
        SlowPathOutcome::Reply
    } else {
        SlowPathOutcome::Consumed
    }
}

fn arp_in(
    frame: &mut [u8],
    port: PortId,
    mac: [u8; 6],
    local: &LocalAddrs,
    neighbours: &NeighborTable,
    now: u64,
) -> bool {
    let Ok(r) = arp::Repr::parse(&frame[ethernet::HEADER_LEN..]) else {
        return false;
    };
    if !r.sender_ip.is_unspecified() {
        neighbours.learn(IpAddr::V4(r.sender_ip), r.sender_mac, port, now);
    }
    if r.operation != arp::OP_REQUEST || !local.contains(IpAddr::V4(r.target_ip)) {
        return false;
    }
    arp::Repr {
        operation: arp::OP_REPLY,
        sender_mac: mac,
        sender_ip: r.target_ip,
        target_mac: r.sender_mac,
        target_ip: r.sender_ip,
    }
    .emit(&mut frame[ethernet::HEADER_LEN..]);
    true
}

fn echo_v4(ip: &mut [u8], local: &LocalAddrs) -> bool {
    let Ok(p) = ipv4::Packet::new_checked(&*ip) else {
        return false;
    };
    let (src, dst, hl, total) = (p.src(), p.dst(), p.header_len(), p.total_len());
    if p.protocol() != proto::ICMP || p.is_fragment() || !local.contains(IpAddr::V4(dst)) {
        return false;
    }
    let Ok(icmp) = icmpv4::Packet::new_checked(&ip[hl..total]) else {
        return false;
    };
    if icmp.msg_type() != icmpv4::TYPE_ECHO_REQUEST || !icmp.verify_checksum() {
        return false;
    }
    let mut p = ipv4::Packet::new_unchecked(&mut *ip);
    p.set_src(dst);
    p.set_dst(src);
    p.set_ttl(64);
    p.fill_checksum();
    // checked above: the ICMP message is at least a header long
    if let Ok(mut icmp) = icmpv4::Packet::new_checked(&mut ip[hl..total]) {
        icmp.set_msg_type(icmpv4::TYPE_ECHO_REPLY);
        icmp.fill_checksum();
    }
    true
}

fn icmp_v6(
    ip: &mut [u8],
    port: PortId,
    mac: [u8; 6],
    local: &LocalAddrs,
    neighbours: &NeighborTable,
    now: u64,
) -> bool {
    let Ok(p) = ipv6::Packet::new_checked(&*ip) else {
        return false;
    };
    let (src, dst, total) = (p.src(), p.dst(), p.total_len());
    if p.next_header() != proto::ICMPV6 {
        return false;
    }
    let Ok(icmp) = icmpv6::Packet::new_checked(&ip[40..total]) else {
        return false;
    };
    if !icmp.verify_checksum(src, dst) {
        return false;
    }
    match icmp.msg_type() {
        icmpv6::TYPE_NEIGHBOR_SOLICIT => {
            let Ok(target) = icmp.nd_target() else {
                return false;
            };
            let Ok(Some(sll)) = icmp.nd_link_layer_option(icmpv6::OPT_SOURCE_LL) else {
                // DAD probes (unspecified source) carry no option; nothing to answer.
                return false;
            };
            if !src.is_unspecified() {
                neighbours.learn(IpAddr::V6(src), sll, port, now);
            }
            if !local.contains(IpAddr::V6(target)) || total - 40 < 32 || src.is_unspecified() {
                return false;
            }
            // Same length as an NS with its 8-byte option: rewrite in place.
            let mut p = ipv6::Packet::new_unchecked(&mut *ip);
            p.set_src(target);
            p.set_dst(src);
            p.set_hop_limit(255);
            p.set_payload_len(32);
            let na = &mut ip[40..72];
            icmpv6::write_neighbor_advert(na, target, mac, true);
            if let Ok(mut na) = icmpv6::Packet::new_checked(na) {
                na.fill_checksum(target, src);
            }
            true
        }
        icmpv6::TYPE_NEIGHBOR_ADVERT => {
            if let (Ok(target), Ok(Some(tll))) = (
                icmp.nd_target(),
                icmp.nd_link_layer_option(icmpv6::OPT_TARGET_LL),
            ) {
                neighbours.learn(IpAddr::V6(target), tll, port, now);
            }
            false
        }
        icmpv6::TYPE_ECHO_REQUEST if local.contains(IpAddr::V6(dst)) => {
            let mut p = ipv6::Packet::new_unchecked(&mut *ip);
            p.set_src(dst);
            p.set_dst(src);
            p.set_hop_limit(64);
            if let Ok(mut icmp) = icmpv6::Packet::new_checked(&mut ip[40..total]) {
                icmp.set_msg_type(icmpv6::TYPE_ECHO_REPLY);
                icmp.fill_checksum(dst, src);
            }
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::neighbor::Lookup;
    use crate::packet::VecPacket;
    use crate::wire::checksum;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const US_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const HIM_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn local() -> LocalAddrs {
        LocalAddrs::new([
            "10.99.0.1".parse().unwrap(),
            "2001:db8:99::1".parse().unwrap(),
        ])
    }

    #[test]
    fn arp_request_for_us_is_answered_and_the_asker_learned() {
        let mut f = vec![0u8; 42];
        ethernet::write_header(
            &mut f,
            ethernet::BROADCAST,
            HIM_MAC,
            ethernet::ETHERTYPE_ARP,
        );
        arp::Repr {
            operation: arp::OP_REQUEST,
            sender_mac: HIM_MAC,
            sender_ip: Ipv4Addr::new(10, 99, 0, 2),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(10, 99, 0, 1),
        }
        .emit(&mut f[14..]);
        let mut pkt = VecPacket::new(&f);
        let t = NeighborTable::new(16);
        assert_eq!(
            handle(&mut pkt, 1, US_MAC, &local(), &t, 5),
            SlowPathOutcome::Reply
        );
        let d = pkt.data();
        assert_eq!(&d[0..6], &HIM_MAC);
        assert_eq!(&d[6..12], &US_MAC);
        let r = arp::Repr::parse(&d[14..]).unwrap();
        assert_eq!(r.operation, arp::OP_REPLY);
        assert_eq!(
            (r.sender_mac, r.sender_ip),
            (US_MAC, Ipv4Addr::new(10, 99, 0, 1))
        );
        assert_eq!(r.target_ip, Ipv4Addr::new(10, 99, 0, 2));
        assert_eq!(
            t.get("10.99.0.2".parse().unwrap()),
            Lookup::Reachable {
                mac: HIM_MAC,
                port: 1
            }
        );
        // a request for someone else: learned, not answered
        let mut f2 = f.clone();
        f2[14 + 27] = 9;
        let mut pkt = VecPacket::new(&f2);
        assert_eq!(
            handle(&mut pkt, 1, US_MAC, &local(), &t, 5),
            SlowPathOutcome::Consumed
        );
    }

    #[test]
    fn echo_request_to_us_becomes_a_valid_reply() {
        let mut f = vec![0u8; 14 + 20 + 16];
        ethernet::write_header(&mut f, US_MAC, HIM_MAC, ethernet::ETHERTYPE_IPV4);
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&36u16.to_be_bytes());
        ip[8] = 63;
        ip[9] = proto::ICMP;
        ip[12..16].copy_from_slice(&[10, 99, 0, 2]);
        ip[16..20].copy_from_slice(&[10, 99, 0, 1]);
        let c = checksum::checksum(&ip[..20]);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip[20] = icmpv4::TYPE_ECHO_REQUEST;
        ip[24..28].copy_from_slice(&[0, 7, 0, 1]);
        ip[28..36].copy_from_slice(b"payload!");
        let c = checksum::checksum(&ip[20..36]);
        ip[22..24].copy_from_slice(&c.to_be_bytes());
        let mut pkt = VecPacket::new(&f);
        let t = NeighborTable::new(16);
        assert_eq!(
            handle(&mut pkt, 1, US_MAC, &local(), &t, 5),
            SlowPathOutcome::Reply
        );
        let ip = &pkt.data()[14..];
        assert_eq!(&ip[12..16], &[10, 99, 0, 1]);
        assert_eq!(&ip[16..20], &[10, 99, 0, 2]);
        assert_eq!(checksum::checksum(&ip[..20]), 0);
        assert_eq!(ip[20], icmpv4::TYPE_ECHO_REPLY);
        assert_eq!(checksum::checksum(&ip[20..36]), 0);
        assert_eq!(&ip[28..36], b"payload!");
    }

    #[test]
    fn neighbor_solicitation_for_us_becomes_an_advertisement() {
        let src: Ipv6Addr = "2001:db8:99::2".parse().unwrap();
        let target: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
        let group = icmpv6::solicited_node(target);
        let mut f = vec![0u8; 14 + 40 + 32];
        ethernet::write_header(
            &mut f,
            [0x33, 0x33, 0xff, 0, 0, 1],
            HIM_MAC,
            ethernet::ETHERTYPE_IPV6,
        );
        let ip = &mut f[14..];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&32u16.to_be_bytes());
        ip[6] = proto::ICMPV6;
        ip[7] = 255;
        ip[8..24].copy_from_slice(&src.octets());
        ip[24..40].copy_from_slice(&group.octets());
        icmpv6::write_neighbor_solicit(&mut ip[40..72], target, HIM_MAC);
        icmpv6::Packet::new_checked(&mut ip[40..72])
            .unwrap()
            .fill_checksum(src, group);
        let mut pkt = VecPacket::new(&f);
        let t = NeighborTable::new(16);
        assert_eq!(
            handle(&mut pkt, 1, US_MAC, &local(), &t, 5),
            SlowPathOutcome::Reply
        );
        let ip = &pkt.data()[14..];
        let na = icmpv6::Packet::new_checked(&ip[40..72]).unwrap();
        assert_eq!(na.msg_type(), icmpv6::TYPE_NEIGHBOR_ADVERT);
        assert!(na.verify_checksum(target, src));
        assert_eq!(
            na.nd_link_layer_option(icmpv6::OPT_TARGET_LL).unwrap(),
            Some(US_MAC)
        );
        assert_eq!(&pkt.data()[0..6], &HIM_MAC);
        assert_eq!(
            t.get(src.into()),
            Lookup::Reachable {
                mac: HIM_MAC,
                port: 1
            }
        );
    }
}
