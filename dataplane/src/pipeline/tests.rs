//! The whole pipeline on `VecPacket` frames, through [`worker::poll_once`], with the real
//! route, neighbour and SPD tables.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::worker::{poll_once, Staging, WorkerIo};
use super::*;
use crate::esp::{Prefix, Selector};
use crate::l3::route::RouteEntry;
use crate::l3::{NeighborTable, RouteTable};
use crate::packet::VecPacket;
use crate::spd::{Spd, SpdRule};

/// A shard with no SA installed.
struct EmptyShard;
impl SaShard<VecPacket> for EmptyShard {
    fn owner_of_spi(&self, _spi: u32) -> Option<WorkerId> {
        None
    }
    fn owner_of_sa(&self, _: u32) -> WorkerId {
        0
    }
    fn decap(&mut self, _: &mut VecPacket, _: usize, _: usize, _: bool) -> Result<(), DropReason> {
        Err(DropReason::UnknownSpi)
    }
    fn encap<F>(&mut self, _: &mut VecPacket, _: u32, _: u64, _: F) -> Result<PeerPath, EncapError>
    where
        F: FnOnce(IpAddr) -> Result<PeerPath, DropReason>,
    {
        Err(EncapError::Drop(DropReason::NoSa))
    }
}

#[derive(Default)]
pub(crate) struct Requests {
    pub resolve: Vec<(PortId, IpAddr)>,
    pub acquire: Vec<u32>,
}
impl SlowPathRequests for Requests {
    fn resolve(&mut self, port: PortId, ip: IpAddr) {
        self.resolve.push((port, ip));
    }
    fn acquire(&mut self, sa: u32, _ip: &IpInfo) {
        self.acquire.push(sa);
    }
}

#[derive(Default)]
pub(crate) struct MemIo {
    pub rx: Vec<VecDeque<VecPacket>>,
    pub tx: Vec<Vec<VecPacket>>,
    pub handoff_in: VecDeque<VecPacket>,
    pub handoff_out: Vec<(WorkerId, VecPacket)>,
    pub punted: Vec<(PuntKind, VecPacket)>,
}
impl MemIo {
    pub fn new(ports: usize) -> Self {
        MemIo {
            rx: (0..ports).map(|_| VecDeque::new()).collect(),
            tx: (0..ports).map(|_| Vec::new()).collect(),
            ..Default::default()
        }
    }
}
impl WorkerIo<VecPacket> for MemIo {
    fn rx_burst(&mut self, port: PortId, out: &mut Vec<VecPacket>, max: usize) {
        let q = &mut self.rx[port as usize];
        while out.len() < max {
            match q.pop_front() {
                Some(p) => out.push(p),
                None => break,
            }
        }
    }
    fn tx_burst(&mut self, port: PortId, pkts: &mut Vec<VecPacket>) {
        self.tx[port as usize].append(pkts);
    }
    fn handoff_send(&mut self, to: WorkerId, pkts: &mut Vec<VecPacket>) {
        self.handoff_out.extend(pkts.drain(..).map(|p| (to, p)));
    }
    fn handoff_recv(&mut self, out: &mut Vec<VecPacket>, max: usize) {
        while out.len() < max {
            match self.handoff_in.pop_front() {
                Some(p) => out.push(p),
                None => break,
            }
        }
    }
    fn punt(&mut self, kind: PuntKind, _port: PortId, pkt: VecPacket) -> Result<(), VecPacket> {
        self.punted.push((kind, pkt));
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecPacket> {
        Some(VecPacket::with_room(&[], VecPacket::HEADROOM, 2048))
    }
}

pub(crate) const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xa0];
pub(crate) const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xb0];
pub(crate) const HOST_A_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
pub(crate) const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x02];

pub(crate) fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix {
        addr: a.parse().unwrap(),
        len: l.parse().unwrap(),
    }
}

pub(crate) fn selector(src: &str, dst: &str) -> Selector {
    Selector {
        source: prefix(src),
        destination: prefix(dst),
        protocol: 0,
        source_ports: (0, u16::MAX),
        destination_ports: (0, u16::MAX),
    }
}

/// An Ethernet + IPv4 + UDP frame with a valid header checksum.
pub(crate) fn udp_frame(
    dst_mac: [u8; 6],
    src: [u8; 4],
    dst: [u8; 4],
    payload: &[u8],
    df: bool,
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&HOST_A_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    let total = 20 + 8 + payload.len();
    let mut h = [0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    h[6] = if df { 0x40 } else { 0 };
    h[8] = 64;
    h[9] = 17;
    h[12..16].copy_from_slice(&src);
    h[16..20].copy_from_slice(&dst);
    let c = l2::checksum(0, &h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&h);
    f.extend_from_slice(&1111u16.to_be_bytes());
    f.extend_from_slice(&2222u16.to_be_bytes());
    f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(payload);
    f
}

pub(crate) fn ports() -> Vec<PortInfo> {
    vec![
        PortInfo {
            mac: IN_MAC,
            mtu: 1500,
            role: PortRole::Inside,
        },
        PortInfo {
            mac: OUT_MAC,
            mtu: 1500,
            role: PortRole::Outside,
        },
    ]
}

/// gw1's routes: the connected inside and outside networks, and the far LAN and a bypass
/// destination through the peer.
pub(crate) fn gw1_routes() -> RouteTable {
    let mut t = RouteTable::default();
    let route = |port, gateway: Option<&str>| RouteEntry {
        port,
        gateway: gateway.map(|g| g.parse().unwrap()),
    };
    t.insert(prefix("10.10.1.0/24"), route(0, None));
    t.insert(prefix("10.99.0.0/24"), route(1, None));
    t.insert(prefix("10.10.2.0/24"), route(1, Some("10.99.0.2")));
    t.insert(prefix("192.0.2.0/24"), route(1, Some("10.99.0.2")));
    t
}

/// A neighbour table holding these bindings.
pub(crate) fn neighbours(entries: &[(PortId, &str, [u8; 6])]) -> NeighborTable {
    let t = NeighborTable::new(16);
    for (port, ip, mac) in entries {
        assert!(t.learn(ip.parse().unwrap(), *mac, *port, 0));
    }
    t
}

#[test]
fn bypass_is_routed_protect_without_sa_is_dropped_never_leaked() {
    let ports = ports();
    let local = LocalAddrs::new(["10.10.1.254".parse().unwrap(), "10.99.0.1".parse().unwrap()]);
    let routes = gw1_routes();
    let neighbours = neighbours(&[(1, "10.99.0.2", PEER_MAC)]);
    let policy = Spd::new([SpdRule {
        selector: selector("10.10.1.0/24", "10.10.2.0/24"),
        protect: Some(7),
        entry: 10,
    }]);
    let mut sas = EmptyShard;
    let mut req = Requests::default();
    let counters = LcoreCounters::default();
    let mut cx = Context {
        me: 0,
        ports: &ports,
        local: &local,
        routes: &routes,
        neighbours: &neighbours,
        policy: &policy,
        sas: &mut sas,
        requests: &mut req,
        counters: &counters,
        path_epoch: 0,
        hop_cache: Default::default(),
    };
    let mut io = MemIo::new(2);
    let mut st = Staging::new(2, 1, worker::BURST);
    // protected destination, no SA: dropped + Acquire
    io.rx[0].push_back(VecPacket::new(&udp_frame(
        IN_MAC,
        [10, 10, 1, 1],
        [10, 10, 2, 1],
        &[0; 30],
        true,
    )));
    // bypass destination: routed in clear via 10.99.0.2, TTL 63
    io.rx[0].push_back(VecPacket::new(&udp_frame(
        IN_MAC,
        [10, 10, 1, 1],
        [192, 0, 2, 9],
        &[0; 30],
        true,
    )));
    // bypass, next hop not resolved: dropped + resolve request
    io.rx[0].push_back(VecPacket::new(&udp_frame(
        IN_MAC,
        [10, 10, 1, 1],
        [10, 99, 0, 7],
        &[0; 30],
        true,
    )));
    // plaintext from outside that should have been protected
    io.rx[1].push_back(VecPacket::new(&udp_frame(
        OUT_MAC,
        [10, 10, 2, 1],
        [10, 10, 1, 1],
        &[0; 30],
        true,
    )));
    // ESP with an unknown SPI
    let mut esp = udp_frame(OUT_MAC, [10, 99, 0, 2], [10, 99, 0, 1], &[0; 30], true);
    esp[14 + 9] = 50;
    io.rx[1].push_back(VecPacket::new(&esp));

    assert_eq!(poll_once(&mut cx, &mut io, &mut st), 5);
    assert_eq!(io.tx[0].len(), 0);
    assert_eq!(io.tx[1].len(), 1, "only the bypass packet leaves");
    let out = io.tx[1][0].data();
    assert_eq!(&out[0..6], &PEER_MAC);
    assert_eq!(&out[6..12], &OUT_MAC);
    assert_eq!(&out[30..34], &[192, 0, 2, 9]);
    assert_eq!(out[14 + 8], 63);
    assert_eq!(l2::checksum(0, &out[14..34]), 0);
    assert_eq!(req.acquire, vec![7]);
    assert_eq!(req.resolve, vec![(1, "10.99.0.7".parse().unwrap())]);
    let s = counters.snapshot();
    assert_eq!((s.rx, s.tx, s.bursts), (5, 1, 2));
    assert_eq!(s.drops[DropReason::NoSa as usize], 1);
    assert_eq!(s.drops[DropReason::NoNeighbour as usize], 1);
    assert_eq!(s.drops[DropReason::PlainPolicyViolation as usize], 1);
    assert_eq!(s.drops[DropReason::UnknownSpi as usize], 1);
    assert_eq!(counters.total_drops(), 4);
}

#[test]
fn slow_path_frames_are_punted_to_main() {
    let ports = ports();
    let local = LocalAddrs::new(["10.99.0.1".parse().unwrap()]);
    let routes = gw1_routes();
    let neighbours = neighbours(&[]);
    let policy = Spd::new([]);
    let mut sas = EmptyShard;
    let mut req = Requests::default();
    let counters = LcoreCounters::default();
    let mut cx = Context {
        me: 0,
        ports: &ports,
        local: &local,
        routes: &routes,
        neighbours: &neighbours,
        policy: &policy,
        sas: &mut sas,
        requests: &mut req,
        counters: &counters,
        path_epoch: 0,
        hop_cache: Default::default(),
    };
    let mut io = MemIo::new(2);
    let mut st = Staging::new(2, 1, worker::BURST);
    let mut ike = udp_frame(OUT_MAC, [10, 99, 0, 2], [10, 99, 0, 1], &[1; 40], false);
    ike[14 + 22..14 + 24].copy_from_slice(&500u16.to_be_bytes());
    io.rx[1].push_back(VecPacket::new(&ike));
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&PEER_MAC);
    arp.extend_from_slice(&0x0806u16.to_be_bytes());
    arp.extend_from_slice(&[0; 28]);
    io.rx[1].push_back(VecPacket::new(&arp));
    poll_once(&mut cx, &mut io, &mut st);
    let kinds: Vec<_> = io.punted.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, vec![PuntKind::Ike, PuntKind::Arp]);
    assert_eq!(counters.punted.get(), 2);
}
