//! A worker and the main lcore together, without DPDK: in-memory queues stand in for the
//! ports and rings, everything else is the real code (pipeline, tables, intake, requests,
//! slow path). Scenario: host A pings the gateway, then sends traffic that needs a next hop
//! the gateway has not resolved yet, then the same after the peer answered ARP.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use super::intake::{Mailbox, SaStore, Update};
use super::main_loop::{MainIo, MainLoop, SaControl};
use super::requests::RequestSender;
use super::rx_mode::{IdleBackoff, RxMode};
use super::spsc::channel;
use super::stats::WorkerCounters;
use super::worker_loop::Worker;
use crate::channel::{Message, SaCountersMsg};
use crate::esp::Prefix;
use crate::l3::route::RouteEntry;
use crate::l3::{NeighborTable, RouteTable};
use crate::packet::{PacketBuf, VecPacket};
use crate::pipeline::worker::{Staging, WorkerIo, BURST};
use crate::pipeline::*;
use crate::spd::Spd;
use crate::wire::{arp, checksum, ethernet, proto};

const IN_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xa0];
const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xb0];
const HOST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];
const PEER_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x02];

#[derive(Default)]
struct Wires {
    rx: [VecDeque<VecPacket>; 2],
    tx: [Vec<Vec<u8>>; 2],
    punted: VecDeque<(PuntKind, PortId, VecPacket)>,
}

struct WorkerSide(Rc<RefCell<Wires>>);
impl WorkerIo<VecPacket> for WorkerSide {
    fn rx_burst(&mut self, port: PortId, out: &mut Vec<VecPacket>, max: usize) {
        let mut w = self.0.borrow_mut();
        while out.len() < max {
            match w.rx[port as usize].pop_front() {
                Some(p) => out.push(p),
                None => break,
            }
        }
    }
    fn tx_burst(&mut self, port: PortId, pkts: &mut Vec<VecPacket>) {
        let mut w = self.0.borrow_mut();
        w.tx[port as usize].extend(pkts.drain(..).map(|p| p.data().to_vec()));
    }
    fn handoff_send(&mut self, _to: WorkerId, _pkts: &mut Vec<VecPacket>) {}
    fn handoff_recv(&mut self, _out: &mut Vec<VecPacket>, _max: usize) {}
    fn punt(&mut self, kind: PuntKind, port: PortId, pkt: VecPacket) -> Result<(), VecPacket> {
        self.0.borrow_mut().punted.push_back((kind, port, pkt));
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecPacket> {
        Some(VecPacket::with_room(&[], VecPacket::HEADROOM, 2048))
    }
}

struct MainSide(Rc<RefCell<Wires>>);
impl MainIo<VecPacket> for MainSide {
    fn recv_punted(&mut self) -> Option<(PuntKind, PortId, VecPacket)> {
        self.0.borrow_mut().punted.pop_front()
    }
    fn send(&mut self, port: PortId, pkt: VecPacket) {
        self.0.borrow_mut().tx[port as usize].push(pkt.data().to_vec());
    }
    fn send_copy(&mut self, port: PortId, frame: &[u8]) -> bool {
        self.0.borrow_mut().tx[port as usize].push(frame.to_vec());
        true
    }
}

/// A gateway with no SA installed (this scenario is all bypass and slow path).
#[derive(Default)]
struct NoSaShard;
impl SaShard<VecPacket> for NoSaShard {
    fn owner_of_spi(&self, _: u32) -> Option<WorkerId> {
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
impl SaStore<()> for NoSaShard {
    fn insert(&mut self, _sa: Box<()>) -> Option<Box<()>> {
        None
    }
    fn remove(&mut self, _: u32, _: bool) -> Option<Box<()>> {
        None
    }
}
impl SaControl for NoSaShard {
    fn handle(&mut self, _msg: Message) -> Message {
        Message::Error {
            reason: "no SAs in this test".into(),
        }
    }
    fn dump_sas(&mut self) -> Result<Vec<SaCountersMsg>, String> {
        Ok(vec![])
    }
}

struct Q<T>(RefCell<VecDeque<Box<T>>>);
impl<T> Mailbox<T> for Q<T> {
    fn try_send(&self, item: Box<T>) -> Result<(), Box<T>> {
        self.0.borrow_mut().push_back(item);
        Ok(())
    }
    fn try_recv(&self) -> Option<Box<T>> {
        self.0.borrow_mut().pop_front()
    }
}

fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix {
        addr: a.parse().unwrap(),
        len: l.parse().unwrap(),
    }
}

fn ipv4_frame(dst_mac: [u8; 6], src: [u8; 4], dst: [u8; 4], protocol: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20];
    ethernet::write_header(&mut f, dst_mac, HOST_MAC, ethernet::ETHERTYPE_IPV4);
    let total = 20 + l4.len();
    f[14] = 0x45;
    f[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    f[20] = 0x40;
    f[22] = 64;
    f[23] = protocol;
    f[26..30].copy_from_slice(&src);
    f[30..34].copy_from_slice(&dst);
    let c = checksum::checksum(&f[14..34]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(l4);
    f
}

#[test]
fn ping_the_gateway_then_resolve_a_next_hop_and_forward() {
    let ports = vec![
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
    ];
    let local = LocalAddrs::new(["10.10.1.254".parse().unwrap(), "10.99.0.1".parse().unwrap()]);
    let mut routes = RouteTable::default();
    routes.insert(
        prefix("10.10.1.0/24"),
        RouteEntry {
            port: 0,
            gateway: None,
        },
    );
    routes.insert(
        prefix("10.99.0.0/24"),
        RouteEntry {
            port: 1,
            gateway: None,
        },
    );
    routes.insert(
        prefix("192.0.2.0/24"),
        RouteEntry {
            port: 1,
            gateway: Some("10.99.0.2".parse().unwrap()),
        },
    );
    let neighbours = Arc::new(NeighborTable::new(64));
    let (req_tx, req_rx) = channel(64);
    let counters = Arc::new(LcoreCounters::default());
    let mut worker: Worker<(), Spd, NoSaShard, RouteTable, NeighborTable, _, _> = Worker {
        me: 0,
        ports: ports.clone(),
        local: local.clone(),
        routes: Arc::new(routes),
        neighbours: neighbours.clone(),
        spd: Arc::new(Spd::new([])),
        sas: NoSaShard,
        requests: RequestSender::new(req_tx),
        counters: counters.clone(),
        intake: Q::<Update<(), Spd>>(RefCell::new(VecDeque::new())),
        retired: Q::<Update<(), Spd>>(RefCell::new(VecDeque::new())),
        _sa: std::marker::PhantomData,
        lifetimes_checked: 0,
        idle: IdleBackoff::new(RxMode::Polling),
        report: Default::default(),
    };
    let mut main = MainLoop::new(
        None,
        local,
        ports,
        vec![
            vec!["10.10.1.254".parse().unwrap()],
            vec!["10.99.0.1".parse().unwrap()],
        ],
        neighbours.clone(),
        vec![req_rx],
        WorkerCounters {
            workers: vec![(1, counters.clone())],
        },
        300,
    );
    let wires = Rc::new(RefCell::new(Wires::default()));
    let mut wio = WorkerSide(wires.clone());
    let mut mio = MainSide(wires.clone());
    let mut st = Staging::new(2, 1, BURST);
    let mut sas = NoSaShard;

    // 1. host A pings the gateway's inside address: punted, answered by main on port 0
    let mut echo = vec![8u8, 0, 0, 0, 0, 1, 0, 1];
    echo.extend_from_slice(b"abcdefgh");
    let c = checksum::checksum(&echo);
    echo[2..4].copy_from_slice(&c.to_be_bytes());
    let ping = ipv4_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 1, 254], proto::ICMP, &echo);
    // idle polls cost nothing in the per-packet figure; a poll with a packet does
    worker.iterate(&mut wio, &mut st);
    assert_eq!(
        counters.snapshot().busy_cycles,
        0,
        "an empty poll is not busy time"
    );
    wires.borrow_mut().rx[0].push_back(VecPacket::new(&ping));
    worker.iterate(&mut wio, &mut st);
    let s = counters.snapshot();
    assert!(s.busy_cycles > 0, "the poll with the ping was counted");
    assert!(
        s.pipeline_cycles > 0 && s.pipeline_cycles <= s.busy_cycles,
        "the pipeline's part of the poll is counted within it: {s:?}"
    );
    main.iterate(&mut mio, &mut sas, 1);
    let reply = wires.borrow_mut().tx[0].pop().expect("echo reply");
    assert_eq!(&reply[0..6], &HOST_MAC);
    assert_eq!(&reply[26..30], &[10, 10, 1, 254]);
    assert_eq!(reply[34], 0, "echo reply type");

    // 2. traffic to 192.0.2.9 via 10.99.0.2, not resolved: dropped, ARP request sent
    let data = ipv4_frame(
        IN_MAC,
        [10, 10, 1, 1],
        [192, 0, 2, 9],
        proto::UDP,
        &[0, 1, 0, 2, 0, 12, 0, 0, 1, 2, 3, 4],
    );
    wires.borrow_mut().rx[0].push_back(VecPacket::new(&data));
    worker.iterate(&mut wio, &mut st);
    main.iterate(&mut mio, &mut sas, 2);
    assert_eq!(counters.drops_of(DropReason::NoNeighbour), 1);
    let req = wires.borrow_mut().tx[1]
        .pop()
        .expect("ARP request on the outside port");
    let r = arp::Repr::parse(&req[14..]).unwrap();
    assert_eq!(
        r.target_ip,
        "10.99.0.2".parse::<std::net::Ipv4Addr>().unwrap()
    );

    // 3. the peer answers; the next packet is forwarded to its MAC with TTL 63
    let mut ans = vec![0u8; 42];
    ethernet::write_header(&mut ans, OUT_MAC, PEER_MAC, ethernet::ETHERTYPE_ARP);
    arp::Repr {
        operation: arp::OP_REPLY,
        sender_mac: PEER_MAC,
        sender_ip: r.target_ip,
        target_mac: OUT_MAC,
        target_ip: r.sender_ip,
    }
    .emit(&mut ans[14..]);
    wires.borrow_mut().rx[1].push_back(VecPacket::new(&ans));
    worker.iterate(&mut wio, &mut st);
    main.iterate(&mut mio, &mut sas, 3);
    wires.borrow_mut().rx[0].push_back(VecPacket::new(&data));
    worker.iterate(&mut wio, &mut st);
    let out = wires.borrow_mut().tx[1].pop().expect("forwarded");
    assert_eq!(&out[0..6], &PEER_MAC);
    assert_eq!(&out[6..12], &OUT_MAC);
    assert_eq!(out[22], 63);
    assert_eq!(checksum::checksum(&out[14..34]), 0);
    let s = counters.snapshot();
    assert_eq!((s.rx, s.tx, s.punted), (4, 1, 2));
}

/// A queue both ends of which are held in one test thread.
struct SharedQ<T>(Rc<RefCell<VecDeque<Box<T>>>>);
impl<T> Clone for SharedQ<T> {
    fn clone(&self) -> Self {
        SharedQ(self.0.clone())
    }
}
impl<T> Mailbox<T> for SharedQ<T> {
    fn try_send(&self, item: Box<T>) -> Result<(), Box<T>> {
        self.0.borrow_mut().push_back(item);
        Ok(())
    }
    fn try_recv(&self) -> Option<Box<T>> {
        self.0.borrow_mut().pop_front()
    }
}

#[derive(Default)]
struct TwoWorkerWires {
    rx: [VecDeque<VecPacket>; 2],
    tx: [Vec<VecPacket>; 2],
    handoff: [VecDeque<VecPacket>; 2],
}
struct WorkerPorts {
    me: usize,
    w: Rc<RefCell<TwoWorkerWires>>,
}
impl WorkerIo<VecPacket> for WorkerPorts {
    fn rx_burst(&mut self, port: PortId, out: &mut Vec<VecPacket>, max: usize) {
        // all frames arrive on worker 0's queues (no RSS in this test)
        if self.me != 0 {
            return;
        }
        let mut w = self.w.borrow_mut();
        while out.len() < max {
            match w.rx[port as usize].pop_front() {
                Some(p) => out.push(p),
                None => break,
            }
        }
    }
    fn tx_burst(&mut self, port: PortId, pkts: &mut Vec<VecPacket>) {
        self.w.borrow_mut().tx[port as usize].append(pkts);
    }
    fn handoff_send(&mut self, to: WorkerId, pkts: &mut Vec<VecPacket>) {
        self.w.borrow_mut().handoff[to as usize].extend(pkts.drain(..));
    }
    fn handoff_recv(&mut self, out: &mut Vec<VecPacket>, max: usize) {
        let mut w = self.w.borrow_mut();
        while out.len() < max {
            match w.handoff[self.me].pop_front() {
                Some(p) => out.push(p),
                None => break,
            }
        }
    }
    fn punt(&mut self, _: PuntKind, _: PortId, _: VecPacket) -> Result<(), VecPacket> {
        Ok(())
    }
    fn alloc(&mut self) -> Option<VecPacket> {
        Some(VecPacket::with_room(&[], VecPacket::HEADROOM, 2048))
    }
}

#[test]
fn two_workers_each_sa_processed_by_its_owner_and_deleted_sas_stop_traffic() {
    use super::esp_glue::EspFactory;
    use super::sa_intake::SaIntake;
    use crate::config::Config;
    use crate::esp::{Direction, Sa, SaShard as EspShard};

    let c = Config::parse(
        "secgw-peer.toml",
        include_str!("../../../examples/secgw-peer.toml"),
    )
    .unwrap();
    let to: Vec<SharedQ<Update<Sa, Spd>>> = (0..2)
        .map(|_| SharedQ(Rc::new(RefCell::new(VecDeque::new()))))
        .collect();
    let back: Vec<SharedQ<Update<Sa, Spd>>> = (0..2)
        .map(|_| SharedQ(Rc::new(RefCell::new(VecDeque::new()))))
        .collect();
    let mut intake = SaIntake::new(to.clone(), back.clone());
    let factory = EspFactory {
        workers: 2,
        forced_backend: Default::default(),
        now: || 0,
    };
    for m in &c.manual_sas {
        for p in [&m.inbound, &m.outbound] {
            let reply = intake.handle(
                &factory,
                Message::AddSa {
                    sa_id: m.sa_id,
                    params: p.clone(),
                },
            );
            assert_eq!(reply, Message::Ack);
        }
    }
    assert_eq!(
        intake.install_spd(&[]),
        Message::Ack,
        "an SPD swap reaches both"
    );
    let neighbours = Arc::new(NeighborTable::new(64));
    neighbours.learn("10.99.0.2".parse().unwrap(), PEER_MAC, 1, 0);
    let routes = Arc::new(RouteTable::from_config(&c));
    let ports = vec![
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
    ];
    let local = LocalAddrs::new(["10.10.1.254".parse().unwrap(), "10.99.0.1".parse().unwrap()]);
    let mut workers: Vec<Worker<Sa, Spd, EspShard, RouteTable, NeighborTable, _, _>> = (0..2)
        .map(|me| Worker {
            me: me as WorkerId,
            ports: ports.clone(),
            local: local.clone(),
            routes: routes.clone(),
            neighbours: neighbours.clone(),
            // the configured SPD; the empty one sent above is replaced again below
            spd: Arc::new(c.spd()),
            sas: EspShard::new(me as WorkerId, 2),
            requests: RequestSender::new(channel(16).0),
            counters: Arc::new(LcoreCounters::default()),
            intake: to[me].clone(),
            retired: back[me].clone(),
            _sa: std::marker::PhantomData,
            lifetimes_checked: 0,
            idle: IdleBackoff::new(RxMode::Polling),
            report: Default::default(),
        })
        .collect();
    let wires = Rc::new(RefCell::new(TwoWorkerWires::default()));
    let mut ios: Vec<WorkerPorts> = (0..2)
        .map(|me| WorkerPorts {
            me,
            w: wires.clone(),
        })
        .collect();
    let mut st: Vec<Staging<VecPacket>> = (0..2).map(|_| Staging::new(2, 2, BURST)).collect();
    let spd_msg: Vec<_> = c
        .spd_rules
        .iter()
        .map(|r| crate::channel::SpdRuleMsg {
            selector: r.selector,
            protect: r.protect,
            entry: r.entry,
        })
        .collect();
    assert_eq!(intake.install_spd(&spd_msg), Message::Ack);
    let run = |workers: &mut Vec<Worker<Sa, Spd, EspShard, RouteTable, NeighborTable, _, _>>,
               ios: &mut Vec<WorkerPorts>,
               st: &mut Vec<Staging<VecPacket>>| {
        for _ in 0..2 {
            for i in 0..2 {
                workers[i].iterate(&mut ios[i], &mut st[i]);
            }
        }
    };
    // the intake is drained at the top of the first iteration
    run(&mut workers, &mut ios, &mut st);
    assert_eq!(workers[0].sas.len() + workers[1].sas.len(), 4);
    let gcm = c.manual_sas[0].sa_id;
    let cbc = c.manual_sas[1].sa_id;
    assert_ne!(
        gcm % 2,
        cbc % 2,
        "the two outbound SAs live on different workers"
    );
    // one packet per SA, both received by worker 0
    let to_gcm = ipv4_frame(
        IN_MAC,
        [10, 10, 1, 1],
        [10, 10, 2, 1],
        proto::UDP,
        &[0, 1, 0, 2, 0, 12, 0, 0, 9, 9, 9, 9],
    );
    let to_cbc = ipv4_frame(
        IN_MAC,
        [10, 10, 1, 1],
        [10, 10, 2, 200],
        proto::UDP,
        &[0, 1, 0, 2, 0, 12, 0, 0, 9, 9, 9, 9],
    );
    wires.borrow_mut().rx[0].push_back(VecPacket::new(&to_gcm));
    wires.borrow_mut().rx[0].push_back(VecPacket::new(&to_cbc));
    run(&mut workers, &mut ios, &mut st);
    let spis: Vec<u32> = wires.borrow().tx[1]
        .iter()
        .map(|p| u32::from_be_bytes(p.data()[34..38].try_into().unwrap()))
        .collect();
    assert_eq!(spis.len(), 2);
    assert!(spis.contains(&5) && spis.contains(&6));
    let (c0, c1) = (
        workers[0].counters.snapshot(),
        workers[1].counters.snapshot(),
    );
    assert_eq!((c0.encaps, c1.encaps), (1, 1), "each SA on its owner only");
    assert_eq!((c0.handoff_out, c1.handoff_in), (1, 1));
    // delete the GCM outbound SA while traffic flows: its packets are dropped, never sent
    let gcm_spi = c.manual_sas[0].outbound.spi;
    assert_eq!(
        intake.delete(Direction::Outbound, gcm_spi, gcm),
        Message::Ack
    );
    wires.borrow_mut().tx[1].clear();
    wires.borrow_mut().rx[0].push_back(VecPacket::new(&to_gcm));
    wires.borrow_mut().rx[0].push_back(VecPacket::new(&to_cbc));
    run(&mut workers, &mut ios, &mut st);
    let sent: Vec<Vec<u8>> = wires.borrow().tx[1]
        .iter()
        .map(|p| p.data().to_vec())
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(u32::from_be_bytes(sent[0][34..38].try_into().unwrap()), 6);
    assert!(wires.borrow().tx[0].is_empty());
    let owner = workers[(gcm % 2) as usize].counters.snapshot();
    assert_eq!(owner.drops[DropReason::NoSa as usize], 1);
    // the deleted SA came back to main (with the two old SPDs per worker and the acks)
    assert!(intake.collect_retired() >= 1);
    assert_eq!(intake.installed(), 3);
    // per-SA counters come back from the owners
    assert_eq!(intake.request_reports(), 2);
    run(&mut workers, &mut ios, &mut st);
    let mut reports = Vec::new();
    assert_eq!(intake.take_reports(&mut reports), 2);
    assert_eq!(reports.len(), 3);
    let cbc_out = reports.iter().find(|r| r.spi == 6).unwrap();
    assert_eq!((cbc_out.encaps, cbc_out.owner), (2, (cbc % 2) as u16));
}
