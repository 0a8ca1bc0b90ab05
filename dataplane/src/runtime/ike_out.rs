//! IKE packets that control asks the dataplane to send (`Message::SendIke`), on the main
//! lcore.
//!
//! Control builds the whole IP packet (UDP 500 or 4500, checksums included); the dataplane
//! routes it by its destination and writes the Ethernet header. When the next hop is not
//! resolved yet the packet waits here (a peer's first Main Mode message is usually the packet
//! that makes us ARP for it, and losing it would cost a retransmission interval) while a
//! resolution request goes out; it is dropped, and counted, when no answer comes within
//! [`HOLD_SECS`] or when too many are waiting.

use std::net::IpAddr;

use super::resolver::{resolution_frame, should_send};
use crate::l3::{NeighborTable, RouteTable};
use crate::pipeline::{Neighbours, PortId, PortInfo, Routes};
use crate::wire::ethernet;

/// Seconds a packet waits for its next hop to be resolved.
pub const HOLD_SECS: u64 = 3;
/// Packets waiting at most (a flood of new peers cannot grow this without bound).
pub const MAX_WAITING: usize = 256;

struct Waiting {
    port: PortId,
    via: IpAddr,
    since: u64,
    packet: Vec<u8>,
}

/// Why an IKE packet was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IkeSendError {
    /// Not an IPv4 or IPv6 packet.
    Malformed,
    NoRoute,
    /// The next hop did not answer in time, or the queue was full.
    NoNeighbour,
    /// The port's queue took no more.
    TxFull,
}

/// Where the frames go: the main lcore's TX queue of a port.
pub trait FrameOut {
    /// Sends a copy of `frame` out of `port`; false when no buffer or no room.
    fn send_copy(&mut self, port: PortId, frame: &[u8]) -> bool;
}

impl<F: FnMut(PortId, &[u8]) -> bool> FrameOut for F {
    fn send_copy(&mut self, port: PortId, frame: &[u8]) -> bool {
        self(port, frame)
    }
}

/// The packets waiting for resolution, and what was sent and dropped.
#[derive(Default)]
pub struct IkeOutbox {
    waiting: Vec<Waiting>,
    pub sent: u64,
    pub dropped: u64,
}

/// What the outbox needs of the main lcore's state.
pub struct Net<'a> {
    pub routes: &'a RouteTable,
    pub neighbours: &'a NeighborTable,
    pub ports: &'a [PortInfo],
    /// Our addresses on each port (the source of ARP requests / neighbour solicitations).
    pub port_addrs: &'a [Vec<IpAddr>],
}

impl IkeOutbox {
    /// Sends `packet` (an IP packet) toward its destination, or holds it while its next hop
    /// is resolved. `Ok(true)` when sent now, `Ok(false)` when held.
    pub fn send<O: FrameOut>(
        &mut self,
        out: &mut O,
        net: &Net<'_>,
        packet: Vec<u8>,
        now: u64,
    ) -> Result<bool, IkeSendError> {
        let r = self.try_send(out, net, packet, now);
        match r {
            Ok(true) => self.sent += 1,
            Ok(false) => {}
            Err(e) => {
                self.dropped += 1;
                log::warn!("IKE packet to be sent dropped: {e:?}");
            }
        }
        r
    }

    fn try_send<O: FrameOut>(
        &mut self,
        out: &mut O,
        net: &Net<'_>,
        packet: Vec<u8>,
        now: u64,
    ) -> Result<bool, IkeSendError> {
        let dst = crate::pipeline::l2::ip_destination(&packet).ok_or(IkeSendError::Malformed)?;
        let hop = net.routes.lookup(dst).ok_or(IkeSendError::NoRoute)?;
        if let Some(mac) = net.neighbours.lookup(hop.port, hop.via) {
            return transmit(out, net, hop.port, mac, &packet).map(|()| true);
        }
        if self.waiting.len() >= MAX_WAITING {
            return Err(IkeSendError::NoNeighbour);
        }
        resolve(out, net, hop.port, hop.via, now);
        self.waiting.push(Waiting {
            port: hop.port,
            via: hop.via,
            since: now,
            packet,
        });
        Ok(false)
    }

    /// Sends what has been resolved since, drops what waited too long. Returns the number of
    /// packets that left the queue.
    pub fn retry<O: FrameOut>(&mut self, out: &mut O, net: &Net<'_>, now: u64) -> usize {
        if self.waiting.is_empty() {
            return 0;
        }
        let before = self.waiting.len();
        let mut sent = 0;
        let mut dropped = 0;
        self.waiting.retain(|w| {
            if let Some(mac) = net.neighbours.lookup(w.port, w.via) {
                match transmit(out, net, w.port, mac, &w.packet) {
                    Ok(()) => sent += 1,
                    Err(_) => dropped += 1,
                }
                return false;
            }
            if now >= w.since + HOLD_SECS {
                log::warn!(
                    "IKE packet dropped: next hop {} did not answer in {HOLD_SECS} s",
                    w.via
                );
                dropped += 1;
                return false;
            }
            true
        });
        self.sent += sent;
        self.dropped += dropped;
        before - self.waiting.len()
    }

    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

fn resolve<O: FrameOut>(out: &mut O, net: &Net<'_>, port: PortId, via: IpAddr, now: u64) {
    if !should_send(net.neighbours, via, now) {
        return;
    }
    let (Some(info), Some(addrs)) = (
        net.ports.get(port as usize),
        net.port_addrs.get(port as usize),
    ) else {
        return;
    };
    let mut frame = [0u8; 128];
    let src = addrs.iter().find(|a| a.is_ipv4() == via.is_ipv4());
    if let Some(len) = src.and_then(|s| resolution_frame(&mut frame, info.mac, *s, via)) {
        out.send_copy(port, &frame[..len]);
    }
}

fn transmit<O: FrameOut>(
    out: &mut O,
    net: &Net<'_>,
    port: PortId,
    dst_mac: [u8; 6],
    packet: &[u8],
) -> Result<(), IkeSendError> {
    let info = net.ports.get(port as usize).ok_or(IkeSendError::NoRoute)?;
    let ethertype = match packet.first().map(|b| b >> 4) {
        Some(4) => ethernet::ETHERTYPE_IPV4,
        Some(6) => ethernet::ETHERTYPE_IPV6,
        _ => return Err(IkeSendError::Malformed),
    };
    let mut frame = vec![0u8; ethernet::HEADER_LEN + packet.len()];
    ethernet::write_header(&mut frame, dst_mac, info.mac, ethertype);
    frame[ethernet::HEADER_LEN..].copy_from_slice(packet);
    if out.send_copy(port, &frame) {
        Ok(())
    } else {
        Err(IkeSendError::TxFull)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::l3::route::RouteEntry;
    use crate::pipeline::PortRole;

    #[derive(Default)]
    struct Wire(Vec<(PortId, Vec<u8>)>);
    impl Wire {
        fn out(&mut self) -> impl FnMut(PortId, &[u8]) -> bool + '_ {
            |port, frame| {
                self.0.push((port, frame.to_vec()));
                true
            }
        }
    }

    const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xb0];
    const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x22];

    fn ike_packet(dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0u8; 28 + 4];
        p[0] = 0x45;
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 99, 0, 1]);
        p[16..20].copy_from_slice(&dst);
        p[20..22].copy_from_slice(&500u16.to_be_bytes());
        p[22..24].copy_from_slice(&500u16.to_be_bytes());
        p
    }

    #[test]
    fn routed_held_until_resolved_then_sent_and_stale_ones_dropped() {
        let mut routes = RouteTable::default();
        routes.insert(
            crate::esp::Prefix {
                addr: "10.99.0.0".parse().unwrap(),
                len: 24,
            },
            RouteEntry {
                port: 1,
                gateway: None,
            },
        );
        let neighbours = NeighborTable::new(16);
        let ports = [
            PortInfo {
                mac: [2, 0, 0, 0, 0, 0xa0],
                mtu: 1500,
                role: PortRole::Inside,
            },
            PortInfo {
                mac: OUT_MAC,
                mtu: 1500,
                role: PortRole::Outside,
            },
        ];
        let addrs = [vec![], vec!["10.99.0.1".parse().unwrap()]];
        let net = Net {
            routes: &routes,
            neighbours: &neighbours,
            ports: &ports,
            port_addrs: &addrs,
        };
        let mut outbox = IkeOutbox::default();
        let mut wire = Wire::default();
        // no route
        assert_eq!(
            outbox.send(&mut wire.out(), &net, ike_packet([192, 0, 2, 1]), 0),
            Err(IkeSendError::NoRoute)
        );
        // unresolved: held, and an ARP request goes out on port 1
        let pkt = ike_packet([10, 99, 0, 2]);
        assert_eq!(
            outbox.send(&mut wire.out(), &net, pkt.clone(), 0),
            Ok(false)
        );
        assert_eq!(wire.0.len(), 1);
        assert_eq!(wire.0[0].0, 1);
        assert_eq!(&wire.0[0].1[12..14], &[0x08, 0x06], "ARP");
        assert_eq!(outbox.retry(&mut wire.out(), &net, 1), 0);
        // the answer comes: the packet leaves with the peer's MAC
        neighbours.learn("10.99.0.2".parse().unwrap(), PEER_MAC, 1, 1);
        assert_eq!(outbox.retry(&mut wire.out(), &net, 1), 1);
        let (port, frame) = wire.0.last().unwrap();
        assert_eq!(*port, 1);
        assert_eq!(&frame[0..6], &PEER_MAC);
        assert_eq!(&frame[6..12], &OUT_MAC);
        assert_eq!(&frame[14..], &pkt[..]);
        // resolved now: sent at once
        assert_eq!(outbox.send(&mut wire.out(), &net, pkt.clone(), 2), Ok(true));
        // a peer that never answers: dropped after HOLD_SECS
        let silent = ike_packet([10, 99, 0, 77]);
        assert_eq!(outbox.send(&mut wire.out(), &net, silent, 10), Ok(false));
        assert_eq!(outbox.retry(&mut wire.out(), &net, 10 + HOLD_SECS - 1), 0);
        assert_eq!(outbox.retry(&mut wire.out(), &net, 10 + HOLD_SECS), 1);
        assert_eq!(outbox.waiting(), 0);
        assert_eq!((outbox.sent, outbox.dropped), (2, 2));
        // not IP
        assert_eq!(
            outbox.send(&mut wire.out(), &net, vec![0x10; 30], 20),
            Err(IkeSendError::Malformed)
        );
    }
}
