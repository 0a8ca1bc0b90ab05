//! The runtime on real threads, without DPDK: two worker threads running `Worker::run_until`
//! with SPSC queues standing in for NIC queues and rte_rings, and the main thread running
//! `MainLoop` with the real control socket. A client installs the example's SAs and the SPD
//! over the channel while the workers poll, traffic is encrypted by each SA's owner, and
//! DumpCounters reports per-lcore and per-SA counts.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::control::ControlServer;
use super::esp_glue::{EspControl, EspFactory};
use super::intake::{Mailbox, Update};
use super::main_loop::{MainIo, MainLoop};
use super::requests::RequestSender;
use super::rx_mode::{IdleBackoff, RxMode};
use super::sa_intake::SaIntake;
use super::spsc::{channel, Consumer, Producer};
use super::stats::WorkerCounters;
use super::worker_loop::Worker;
use crate::channel::{Client, Message, SpdRuleMsg};
use crate::config::Config;
use crate::esp::{Sa, SaShard as EspShard};
use crate::l3::{NeighborTable, RouteTable};
use crate::packet::VecPacket;
use crate::pipeline::worker::{Staging, WorkerIo, BURST};
use crate::pipeline::*;
use crate::spd::Spd;

/// A mailbox for the test (a lock is fine off the fast path of a test).
struct LockedQ<T>(Arc<Mutex<VecDeque<Box<T>>>>);
impl<T> Clone for LockedQ<T> {
    fn clone(&self) -> Self {
        LockedQ(self.0.clone())
    }
}
impl<T> Mailbox<T> for LockedQ<T> {
    fn try_send(&self, item: Box<T>) -> Result<(), Box<T>> {
        self.0.lock().unwrap().push_back(item);
        Ok(())
    }
    fn try_recv(&self) -> Option<Box<T>> {
        self.0.lock().unwrap().pop_front()
    }
}

struct ThreadIo {
    rx: Vec<Consumer<VecPacket>>,
    tx: Vec<Producer<VecPacket>>,
    to: Vec<Option<Producer<VecPacket>>>,
    from: Vec<Option<Consumer<VecPacket>>>,
}
impl WorkerIo<VecPacket> for ThreadIo {
    fn rx_burst(&mut self, port: PortId, out: &mut Vec<VecPacket>, max: usize) {
        while out.len() < max {
            match self.rx[port as usize].pop() {
                Some(p) => out.push(p),
                None => break,
            }
        }
    }
    fn tx_burst(&mut self, port: PortId, pkts: &mut Vec<VecPacket>) {
        let q = &mut self.tx[port as usize];
        let mut unsent = Vec::new();
        for p in pkts.drain(..) {
            if let Err(p) = q.push(p) {
                unsent.push(p);
            }
        }
        pkts.extend(unsent);
    }
    fn handoff_send(&mut self, to: WorkerId, pkts: &mut Vec<VecPacket>) {
        if let Some(q) = self.to[to as usize].as_mut() {
            let mut unsent = Vec::new();
            for p in pkts.drain(..) {
                if let Err(p) = q.push(p) {
                    unsent.push(p);
                }
            }
            pkts.extend(unsent);
        }
    }
    fn handoff_recv(&mut self, out: &mut Vec<VecPacket>, max: usize) {
        for q in self.from.iter_mut().flatten() {
            while out.len() < max {
                match q.pop() {
                    Some(p) => out.push(p),
                    None => break,
                }
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

struct NoFrames;
impl MainIo<VecPacket> for NoFrames {
    fn recv_punted(&mut self) -> Option<(PuntKind, PortId, VecPacket)> {
        None
    }
    fn send(&mut self, _: PortId, _: VecPacket) {}
    fn send_copy(&mut self, _: PortId, _: &[u8]) -> bool {
        true
    }
}

/// A worker over the test's mailboxes.
type TestWorker = Worker<
    Sa,
    Spd,
    EspShard,
    RouteTable,
    NeighborTable,
    LockedQ<Update<Sa, Spd>>,
    LockedQ<Update<Sa, Spd>>,
>;

/// The workers these tests run: worker `w` of `to.len()`, with an empty SPD and SA shard, fed by
/// `to[w]` and retiring into `back[w]`, waiting as `rx_mode` says when idle.
#[allow(clippy::too_many_arguments)]
fn test_worker(
    w: usize,
    ports: &[PortInfo],
    local: &LocalAddrs,
    routes: &Arc<RouteTable>,
    neighbours: &Arc<NeighborTable>,
    req_tx: Producer<super::requests::Request>,
    lc: Arc<LcoreCounters>,
    to: &[LockedQ<Update<Sa, Spd>>],
    back: &[LockedQ<Update<Sa, Spd>>],
    rx_mode: RxMode,
) -> TestWorker {
    Worker {
        me: w as WorkerId,
        ports: ports.to_vec(),
        local: local.clone(),
        routes: routes.clone(),
        neighbours: neighbours.clone(),
        spd: Arc::new(Spd::new([])),
        sas: EspShard::new(w as WorkerId, to.len() as u16),
        requests: RequestSender::new(req_tx),
        counters: lc,
        intake: to[w].clone(),
        retired: back[w].clone(),
        _sa: std::marker::PhantomData,
        lifetimes_checked: 0,
        idle: IdleBackoff::new(rx_mode),
        report: Default::default(),
    }
}

#[test]
fn workers_on_threads_take_sas_from_the_channel_and_encrypt_on_their_owner() {
    const W: usize = 2;
    let c = Config::parse(
        "secgw-peer.toml",
        include_str!("../../../examples/secgw-peer.toml"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dp.sock");
    let routes = Arc::new(RouteTable::from_config(&c));
    let neighbours = Arc::new(NeighborTable::new(64));
    neighbours.learn("10.99.0.2".parse().unwrap(), [2, 0, 0, 0, 0, 2], 1, 0);
    let ports = vec![
        PortInfo {
            mac: [2, 0, 0, 0, 0, 0xa0],
            mtu: 1500,
            role: PortRole::Inside,
        },
        PortInfo {
            mac: [2, 0, 0, 0, 0, 0xb0],
            mtu: 1500,
            role: PortRole::Outside,
        },
    ];
    let local = LocalAddrs::new(["10.10.1.254".parse().unwrap(), "10.99.0.1".parse().unwrap()]);
    let to: Vec<LockedQ<Update<Sa, Spd>>> = (0..W).map(|_| LockedQ(Default::default())).collect();
    let back: Vec<LockedQ<Update<Sa, Spd>>> = (0..W).map(|_| LockedQ(Default::default())).collect();
    // rings: per worker, inside rx, outside tx; handoffs between the two workers
    let mut rx_in_prod = Vec::new();
    let mut tx_out_cons = Vec::new();
    let mut ios = Vec::new();
    let (h01p, h01c) = channel(256);
    let (h10p, h10c) = channel(256);
    let mut h = [(Some(h01p), Some(h10c)), (Some(h10p), Some(h01c))];
    for w in 0..W {
        let (rin_p, rin_c) = channel(256);
        let (rout_p, rout_c) = channel(256);
        let (tin_p, _tin_c) = channel(256);
        let (tout_p, tout_c) = channel(256);
        rx_in_prod.push(rin_p);
        tx_out_cons.push(tout_c);
        let (to_other, from_other) = std::mem::take(&mut h[w]);
        let mut to_v = vec![None, None];
        let mut from_v = vec![None, None];
        to_v[1 - w] = to_other;
        from_v[1 - w] = from_other;
        drop(rout_p);
        ios.push(ThreadIo {
            rx: vec![rin_c, rout_c],
            tx: vec![tin_p, tout_p],
            to: to_v,
            from: from_v,
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut counters = Vec::new();
    let mut handles = Vec::new();
    let mut req_rx = Vec::new();
    for (w, mut io) in ios.into_iter().enumerate() {
        let (req_tx, rx) = channel(64);
        req_rx.push(rx);
        let lc = Arc::new(LcoreCounters::default());
        counters.push((w as u32 + 1, lc.clone()));
        let mut worker = test_worker(
            w,
            &ports,
            &local,
            &routes,
            &neighbours,
            req_tx,
            lc,
            &to,
            &back,
            // worker 0 sleeps when idle, worker 1 polls: both must forward all the same
            if w == 0 {
                RxMode::Adaptive
            } else {
                RxMode::Polling
            },
        );
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut st = Staging::new(2, W, BURST);
            worker.run_until(&mut io, &mut st, &stop);
        }));
    }
    let mut main = MainLoop::new(
        Some(ControlServer::bind(&sock).unwrap()),
        local,
        ports,
        vec![vec![], vec![]],
        neighbours,
        req_rx,
        WorkerCounters { workers: counters },
        300,
    );
    let mut sas = EspControl::new(
        SaIntake::new(to, back),
        EspFactory {
            workers: W as u16,
            forced_backend: Default::default(),
            now: || 0,
        },
    );
    // control: install SAs and the SPD, send traffic, dump counters
    let manual = c.manual_sas.clone();
    let rules: Vec<SpdRuleMsg> = c
        .spd_rules
        .iter()
        .map(|r| SpdRuleMsg {
            selector: r.selector,
            protect: r.protect,
            entry: r.entry,
        })
        .collect();
    let p = sock.clone();
    let client = std::thread::spawn(move || {
        let mut cl = Client::connect(&p, "test").unwrap();
        for m in &manual {
            for params in [&m.inbound, &m.outbound] {
                let r = cl.request(&Message::AddSa {
                    sa_id: m.sa_id,
                    params: params.clone(),
                });
                assert_eq!(r.unwrap(), Message::Ack);
            }
        }
        assert_eq!(
            cl.request(&Message::InstallSpd { rules }).unwrap(),
            Message::Ack
        );
        cl
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while !client.is_finished() && Instant::now() < deadline {
        main.iterate(&mut NoFrames, &mut sas, 0);
    }
    let mut cl = client.join().unwrap();
    // let the workers take the intake, then send 10 frames per SA into worker 0's queue
    std::thread::sleep(Duration::from_millis(50));
    let frame = |last: u8| {
        let mut f = vec![0u8; 14 + 28];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[14] = 0x45;
        f[16..18].copy_from_slice(&28u16.to_be_bytes());
        f[20] = 0x40;
        f[22] = 64;
        f[23] = 17;
        f[26..30].copy_from_slice(&[10, 10, 1, 1]);
        f[30..34].copy_from_slice(&[10, 10, 2, last]);
        f
    };
    for _ in 0..10 {
        rx_in_prod[0].push(VecPacket::new(&frame(1))).unwrap();
        rx_in_prod[0].push(VecPacket::new(&frame(200))).unwrap();
    }
    let mut sent = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sent.len() < 20 && Instant::now() < deadline {
        for q in tx_out_cons.iter_mut() {
            while let Some(p) = q.pop() {
                sent.push(p);
            }
        }
        main.iterate(&mut NoFrames, &mut sas, 0);
    }
    assert_eq!(sent.len(), 20);
    let dump = std::thread::spawn(move || cl.dump_counters().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dump.is_finished() && Instant::now() < deadline {
        main.iterate(&mut NoFrames, &mut sas, 0);
    }
    let counts = dump.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let encaps: u64 = counts.lcores.iter().map(|l| l.tx).sum();
    assert_eq!(encaps, 20);
    assert_eq!(
        counts.lcores[0].handoff_out, 10,
        "worker 0 hands the other SA's traffic off"
    );
    assert_eq!(counts.lcores[1].handoff_in, 10);
    // the adaptive worker slept while control set up (and still took every frame above);
    // the polling one never did
    assert!(counts.lcores[0].idle_sleeps > 0, "{:?}", counts.lcores[0]);
    assert_eq!(counts.lcores[1].idle_sleeps, 0);
    for spi in [5u32, 6] {
        let sa = counts
            .sas
            .iter()
            .find(|s| s.spi == spi)
            .expect("SA reported");
        assert_eq!(sa.encaps, 10, "spi {spi}");
    }
}

/// Tunnel `i` of a hub: its inbound and outbound SA (esp-gcm 128), under SPD id 1 + i.
fn tunnel(i: u32) -> [crate::esp::SaParams; 2] {
    use crate::crypto::{Encryption, Integrity, Transform};
    use crate::esp::{Direction, Keys, Lifetime, Mode, Prefix, SaParams, Selector};
    let sa = |spi: u32, direction: Direction| SaParams {
        spi,
        direction,
        transform: Transform {
            encryption: Encryption::Gcm128,
            integrity: Integrity::None,
        },
        keys: Keys {
            encryption: vec![(i % 251) as u8; 20],
            authentication: vec![],
        },
        mode: Mode::Tunnel,
        local: "10.99.0.1".parse().unwrap(),
        remote: std::net::Ipv4Addr::from(0xc612_0000 + i).into(),
        selectors: vec![Selector {
            source: Prefix {
                addr: "10.0.0.0".parse().unwrap(),
                len: 8,
            },
            destination: Prefix {
                addr: std::net::Ipv4Addr::from(0xac10_0000 + (i << 8)).into(),
                len: 24,
            },
            protocol: 0,
            source_ports: (0, 65535),
            destination_ports: (0, 65535),
        }],
        lifetime: Lifetime::default(),
        replay_window: 64,
        esn: false,
        udp_encap: None,
        crypto_map: "dynmap".into(),
        crypto_map_seq: 10,
    };
    [
        sa(0x80_0000 + i, Direction::Inbound),
        sa(0xc0_0000 + i, Direction::Outbound),
    ]
}

/// SAs as a dump names them: (SPI, inbound).
fn keys(sas: &[crate::channel::SaCountersMsg]) -> Vec<(u32, bool)> {
    let mut k: Vec<(u32, bool)> = sas
        .iter()
        .map(|s| (s.spi, s.direction == Some(crate::esp::Direction::Inbound)))
        .collect();
    k.sort_unstable();
    k
}

/// The real runtime (two workers on threads, the SA intake, the control server on the main
/// loop) holding 25,000 SAs: a client reads a dump's first page, another client deletes
/// 1,000 of those SAs and adds 1,000 new ones, and then the first reads the rest. Its dump
/// is the snapshot of when it asked: every one of the 25,000 SAs exactly once, none of the
/// new ones; the second client's dump afterwards shows the change.
#[test]
fn a_dump_of_25000_sas_is_one_snapshot_while_sas_change_between_its_pages() {
    use crate::channel::paging::DumpReader;
    use crate::esp::Direction;
    use std::sync::mpsc;
    const W: usize = 2;
    const TUNNELS: u32 = 12_500;
    const CHANGED: u32 = 500;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("dp.sock");
    let to: Vec<LockedQ<Update<Sa, Spd>>> = (0..W).map(|_| LockedQ(Default::default())).collect();
    let back: Vec<LockedQ<Update<Sa, Spd>>> = (0..W).map(|_| LockedQ(Default::default())).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let ports = vec![
        PortInfo {
            mac: [2, 0, 0, 0, 0, 0xa0],
            mtu: 1500,
            role: PortRole::Inside,
        },
        PortInfo {
            mac: [2, 0, 0, 0, 0, 0xb0],
            mtu: 1500,
            role: PortRole::Outside,
        },
    ];
    let local = LocalAddrs::new(["10.99.0.1".parse().unwrap()]);
    let routes = Arc::new(RouteTable::default());
    let neighbours = Arc::new(NeighborTable::new(64));
    let mut handles = Vec::new();
    let mut req_rx = Vec::new();
    let mut counters = Vec::new();
    for w in 0..W {
        let (req_tx, rx) = channel(64);
        req_rx.push(rx);
        let lc = Arc::new(LcoreCounters::default());
        counters.push((w as u32 + 1, lc.clone()));
        // no traffic: the workers only take SA changes and answer report requests
        let (_rx0, rx0) = channel(4);
        let (_rx1, rx1) = channel(4);
        let (tx0, _tx0) = channel(4);
        let (tx1, _tx1) = channel(4);
        let mut io = ThreadIo {
            rx: vec![rx0, rx1],
            tx: vec![tx0, tx1],
            to: vec![None, None],
            from: vec![None, None],
        };
        let mut worker = test_worker(
            w,
            &ports,
            &local,
            &routes,
            &neighbours,
            req_tx,
            lc,
            &to,
            &back,
            RxMode::Polling,
        );
        let stop = stop.clone();
        handles.push(std::thread::spawn(move || {
            let mut st = Staging::new(2, W, BURST);
            worker.run_until(&mut io, &mut st, &stop);
            // the producers of its empty rings live as long as the worker
            drop((_rx0, _rx1));
        }));
    }
    let mut main = MainLoop::new(
        Some(ControlServer::bind(&sock).unwrap()),
        local,
        ports,
        vec![vec![], vec![]],
        neighbours,
        req_rx,
        WorkerCounters { workers: counters },
        300,
    );
    let mut sas = EspControl::new(
        SaIntake::new(to, back),
        EspFactory {
            workers: W as u16,
            forced_backend: Default::default(),
            now: || 0,
        },
    );
    // 25,000 SAs installed through the SA side of the channel (what AddSa does)
    use super::main_loop::SaControl;
    for i in 0..TUNNELS {
        for p in tunnel(i) {
            let r = sas.handle(Message::AddSa {
                sa_id: 1 + i,
                params: p,
            });
            assert_eq!(r, Message::Ack, "tunnel {i}");
        }
    }
    let before: Vec<(u32, bool)> = {
        let mut k: Vec<(u32, bool)> = (0..TUNNELS)
            .flat_map(|i| [(0x80_0000 + i, true), (0xc0_0000 + i, false)])
            .collect();
        k.sort_unstable();
        k
    };
    // the reader: asks, reads the first page, waits while the SAs change, reads the rest
    let (first_tx, first_rx) = mpsc::channel::<()>();
    let (changed_tx, changed_rx) = mpsc::channel::<()>();
    let p = sock.clone();
    let reader = std::thread::spawn(move || {
        let mut c = Client::connect(&p, "reader").unwrap();
        let conn = c.connection();
        conn.send(77, &Message::DumpSas).unwrap();
        let mut dump = DumpReader::new();
        let mut pages = 0;
        loop {
            let (id, m) = conn.recv(true).unwrap().expect("a page");
            assert_eq!(id, 77);
            pages += 1;
            let last = dump.feed(m).unwrap();
            if pages == 1 {
                first_tx.send(()).unwrap();
                changed_rx.recv().unwrap();
            }
            if last {
                break;
            }
        }
        (dump.finish().unwrap(), pages)
    });
    // the writer: once the first page is read, deletes and adds over its own connection
    let p = sock.clone();
    let writer = std::thread::spawn(move || {
        first_rx.recv().unwrap();
        let mut c = Client::connect(&p, "writer").unwrap();
        for i in 0..CHANGED {
            let [inb, out] = tunnel(i);
            for (spi, direction) in [
                (out.spi, Direction::Outbound),
                (inb.spi, Direction::Inbound),
            ] {
                let r = c.request(&Message::DeleteSa {
                    spi,
                    direction,
                    sa_id: 1 + i,
                });
                assert_eq!(r.unwrap(), Message::Ack);
            }
            for p in tunnel(TUNNELS + i) {
                let r = c.request(&Message::AddSa {
                    sa_id: 1 + TUNNELS + i,
                    params: p,
                });
                assert_eq!(r.unwrap(), Message::Ack);
            }
        }
        changed_tx.send(()).unwrap();
        c.dump_sas().unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while !(reader.is_finished() && writer.is_finished()) {
        assert!(Instant::now() < deadline, "the dumps did not finish");
        if main.iterate(&mut NoFrames, &mut sas, 0) == 0 {
            main.idle(Duration::from_micros(200));
        }
    }
    let (dump, pages) = reader.join().unwrap();
    let after = writer.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    let crate::channel::paging::Dump::Sas(dump) = dump else {
        panic!("not an SA dump")
    };
    assert!(pages > 50, "{pages} pages");
    assert_eq!(dump.len(), 25_000);
    assert_eq!(
        keys(&dump),
        before,
        "the snapshot: each SA once, none added later"
    );
    let mut expect: Vec<(u32, bool)> = before
        .iter()
        .filter(|(spi, _)| (spi & 0xf_ffff) >= CHANGED)
        .copied()
        .chain(
            (TUNNELS..TUNNELS + CHANGED)
                .flat_map(|i| [(0x80_0000 + i, true), (0xc0_0000 + i, false)]),
        )
        .collect();
    expect.sort_unstable();
    assert_eq!(keys(&after), expect, "the next dump shows the change");
    // the workers' counters and owners came with it
    assert!(after
        .iter()
        .all(|s| s.transform == "esp-gcm 128" && (s.owner as usize) < W));
}
