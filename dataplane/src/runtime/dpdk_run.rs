//! The DPDK process, assembled from the pieces of this module.
//!
//! - EAL from the config ([`setup::eal_argv`]); one mbuf pool per NUMA socket that has a
//!   port or a worker lcore: a port receives into its socket's pool, a worker allocates
//!   (fragments) from its lcore's.
//! - Each `[[interface]]` is a port (config order) with one RX and one TX queue per worker
//!   (RSS spreads flows over the RX queues). A worker polls RX queue `w` of every port and
//!   sends on TX queue `w`; a device with fewer TX queues than workers is refused, a device
//!   with fewer RX queues leaves the extra workers to handoffs. The main lcore
//!   never touches a TX queue: its frames (ARP/ND, echo replies) go through worker 0.
//! - Queues between lcores are [`spsc`] rings (lock-free, no allocation per item): handoffs
//!   between every ordered pair of workers, punts worker -> main, main's frames -> worker 0,
//!   requests worker -> main, and the SA intake each way.
//! - Static SAs and the SPD of the config go through the same intake as run-time ones.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::esp_glue::{EspControl, EspFactory};
use super::intake::{Mailbox, Update};
use super::main_loop::{MainIo, MainLoop, SaControl};
use super::requests::RequestSender;
use super::rx_mode::IdleBackoff;
use super::sa_intake::{SaIntake, INTAKE_QUEUE};
use super::spsc::{channel, Consumer, Producer};
use super::stats::WorkerCounters;
use super::worker_loop::Worker;
use super::{clock, control::ControlServer, setup};
use crate::channel::{Message, SpdRuleMsg};
use crate::config::Config;
use crate::dpdk::{Eal, Mbuf, Mempool, Port};
use crate::esp::{Sa, SaShard};
use crate::l3::{NeighborTable, RouteTable};
use crate::packet::PacketBuf;
use crate::pipeline::worker::{Staging, WorkerIo, BURST};
use crate::pipeline::{classify, Class, LcoreCounters, PortId, PuntKind, WorkerId};

/// How long the main lcore waits when it found nothing to do (it wakes up at once for a
/// channel message; punted frames and worker requests wait up to this long).
const IDLE_WAIT: std::time::Duration = std::time::Duration::from_micros(200);
use crate::signals;
use crate::spd::Spd;

/// One end (or both) of an SPSC queue of boxes, as the intake's [`Mailbox`].
pub struct SpscMailbox<T> {
    tx: Option<RefCell<Producer<Box<T>>>>,
    rx: Option<RefCell<Consumer<Box<T>>>>,
}

impl<T: Send> SpscMailbox<T> {
    /// A queue of `n` slots, as (sending end, receiving end).
    pub fn pair(n: usize) -> (Self, Self) {
        let (p, c) = channel(n);
        (
            SpscMailbox {
                tx: Some(RefCell::new(p)),
                rx: None,
            },
            SpscMailbox {
                tx: None,
                rx: Some(RefCell::new(c)),
            },
        )
    }
}

impl<T> Mailbox<T> for SpscMailbox<T> {
    fn try_send(&self, item: Box<T>) -> Result<(), Box<T>> {
        match &self.tx {
            Some(p) => p.borrow_mut().push(item),
            None => Err(item),
        }
    }
    fn try_recv(&self) -> Option<Box<T>> {
        self.rx.as_ref().and_then(|c| c.borrow_mut().pop())
    }
}

struct DpdkWorkerIo {
    me: usize,
    ports: Vec<Port>,
    pool: Mempool,
    handoff_to: Vec<Option<Producer<Mbuf>>>,
    handoff_from: Vec<Option<Consumer<Mbuf>>>,
    punt: Producer<Mbuf>,
    /// Frames the main lcore wants sent (worker 0 only).
    from_main: Option<Consumer<(PortId, Mbuf)>>,
    tx_one: Vec<Mbuf>,
    /// Multi-segment frames dropped on receive.
    chained_dropped: u64,
}

impl WorkerIo<Mbuf> for DpdkWorkerIo {
    fn rx_burst(&mut self, port: PortId, out: &mut Vec<Mbuf>, max: usize) {
        if port == 0 {
            if let Some(q) = self.from_main.as_mut() {
                while let Some((p, m)) = q.pop() {
                    self.tx_one.push(m);
                    if let Some(port) = self.ports.get(p as usize) {
                        port.tx_burst(self.me as u16, &mut self.tx_one);
                    }
                    self.tx_one.clear();
                }
            }
        }
        let p = &self.ports[port as usize];
        if (self.me as u16) < p.rx_queues {
            p.rx_burst(self.me as u16, out, max);
            // The ESP engine takes single-segment buffers only (packet.rs): a chained mbuf
            // (jumbo frame, scattered RX) is dropped here and counted.
            let before = out.len();
            out.retain(|m| m.segments() == 1);
            self.chained_dropped += (before - out.len()) as u64;
        }
    }
    fn tx_burst(&mut self, port: PortId, pkts: &mut Vec<Mbuf>) {
        let p = &self.ports[port as usize];
        p.tx_burst(self.me as u16, pkts);
    }
    fn handoff_send(&mut self, to: WorkerId, pkts: &mut Vec<Mbuf>) {
        // Drain in place, so that the staging Vec keeps its capacity (the pipeline counts
        // a full batch as handoff-full), and only as many as the ring has room for: the rest
        // stay in `pkts` for the caller.
        if let Some(q) = self.handoff_to[to as usize].as_mut() {
            let k = q.free_slots().min(pkts.len());
            for m in pkts.drain(..k) {
                // Cannot fail: this lcore is the ring's only producer and k slots were free.
                let _ = q.push(m);
            }
        }
    }
    fn handoff_recv(&mut self, out: &mut Vec<Mbuf>, max: usize) {
        for q in self.handoff_from.iter_mut().flatten() {
            while out.len() < max {
                match q.pop() {
                    Some(m) => out.push(m),
                    None => break,
                }
            }
        }
    }
    fn punt(&mut self, _kind: PuntKind, _port: PortId, pkt: Mbuf) -> Result<(), Mbuf> {
        self.punt.push(pkt)
    }
    fn alloc(&mut self) -> Option<Mbuf> {
        self.pool.alloc()
    }
}

struct DpdkMainIo {
    pool: Mempool,
    punts: Vec<Consumer<Mbuf>>,
    to_worker0: Producer<(PortId, Mbuf)>,
    local: crate::pipeline::LocalAddrs,
}

impl MainIo<Mbuf> for DpdkMainIo {
    fn recv_punted(&mut self) -> Option<(PuntKind, PortId, Mbuf)> {
        for q in self.punts.iter_mut() {
            if let Some(m) = q.pop() {
                let kind = match classify(m.data(), &self.local) {
                    Class::Punt(k) => k,
                    _ => PuntKind::Icmp,
                };
                let port = m.port();
                return Some((kind, port, m));
            }
        }
        None
    }
    fn send(&mut self, port: PortId, pkt: Mbuf) {
        let _ = self.to_worker0.push((port, pkt));
    }
    fn send_copy(&mut self, port: PortId, frame: &[u8]) -> bool {
        let Some(mut m) = self.pool.alloc() else {
            return false;
        };
        if !m.append(frame.len()) {
            return false;
        }
        m.data_mut().copy_from_slice(frame);
        self.to_worker0.push((port, m)).is_ok()
    }
}

fn now() -> u64 {
    clock::now_secs()
}

/// Runs the dataplane until SIGINT/SIGTERM.
pub fn run(config: Config) -> Result<(), String> {
    signals::install().map_err(|e| e.to_string())?;
    clock::tick();
    let eal = Eal::init(&setup::eal_argv(&config))?;
    let n = config.dataplane.worker_lcores.len().max(1);
    // One pool per NUMA socket in use, so that no lcore or port touches remote memory.
    let mut port_ids = Vec::new();
    for iface in &config.interfaces {
        port_ids.push(Port::find(setup::device_name(&iface.device))?);
    }
    let mut pools: std::collections::BTreeMap<u32, Mempool> = std::collections::BTreeMap::new();
    let sockets = port_ids
        .iter()
        .map(|id| Port::socket(*id))
        .chain(
            config
                .dataplane
                .worker_lcores
                .iter()
                .map(|l| Eal::lcore_socket(*l)),
        )
        .chain([Eal::lcore_socket(config.dataplane.main_lcore)]);
    for s in sockets {
        if let std::collections::btree_map::Entry::Vacant(e) = pools.entry(s) {
            e.insert(Mempool::new(
                &format!("ipgw_mbufs{s}"),
                config.dataplane.mbufs,
                s as i32,
            )?);
        }
    }
    let pool_of = |socket: u32| pools[&socket];
    let pool = pool_of(Eal::lcore_socket(config.dataplane.main_lcore));
    let mut ports = Vec::new();
    for (iface, &id) in config.interfaces.iter().zip(&port_ids) {
        let p = Port::start(id, n as u16, n as u16, iface.mtu, pool_of(Port::socket(id)))?;
        log::info!(
            "%LINK-3-UPDOWN: Interface {} ({}), changed state to up: port {id}, {} rx / {} tx queues",
            iface.name,
            iface.device,
            p.rx_queues,
            p.tx_queues
        );
        // A TX queue is owned by one worker (no lock on it), so every worker needs its own.
        if (p.tx_queues as usize) < n {
            return Err(format!(
                "interface {} ({}) has {} TX queues for {n} workers; give the device more \
                 queues (net_af_packet: qpairs={n}) or use fewer workers",
                iface.name, iface.device, p.tx_queues
            ));
        }
        ports.push(p);
    }
    let macs: Vec<[u8; 6]> = ports.iter().map(Port::mac).collect();
    let port_infos = setup::port_infos(&config, &macs);
    let local = setup::local_addrs(&config);
    let routes = Arc::new(RouteTable::from_config(&config));
    let neighbours = Arc::new(NeighborTable::new(4096));
    // Configured neighbours (`arp A.B.C.D H.H.H ARPA`): ports are numbered as the interfaces.
    for a in &config.static_arp {
        neighbours.add_static(a.address, a.mac, a.interface as PortId);
    }

    // queues
    let mut handoff_tx: Vec<Vec<Option<Producer<Mbuf>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    let mut handoff_rx: Vec<Vec<Option<Consumer<Mbuf>>>> =
        (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
    for a in 0..n {
        for b in 0..n {
            if a != b {
                let (p, c) = channel(1024);
                handoff_tx[a][b] = Some(p);
                handoff_rx[b][a] = Some(c);
            }
        }
    }
    let (to_w0, from_main) = channel::<(PortId, Mbuf)>(256);
    let mut from_main = Some(from_main);
    let mut punt_rx = Vec::new();
    let mut req_rx = Vec::new();
    let intake_slots = (2 * config.manual_sas.len() + 64).max(INTAKE_QUEUE);
    let mut intake_to = Vec::new();
    let mut intake_back = Vec::new();
    let mut counters = Vec::new();
    let stop = Arc::new(AtomicBool::new(false));
    let mut launches = Vec::new();
    for (w, (htx, hrx)) in handoff_tx.into_iter().zip(handoff_rx).enumerate() {
        let (punt_p, punt_c) = channel(1024);
        punt_rx.push(punt_c);
        let (req_p, req_c) = channel(1024);
        req_rx.push(req_c);
        // The static SAs of the configuration all go through the intake before the workers
        // start to drain it, and one worker may own all of them: room for every one (a
        // headend's thousands of ipsec-manual entries overflowed a fixed 1024). The return
        // queue is as large: the intake never has more boxes out than it can take back.
        let (to_p, to_c) = SpscMailbox::<Update<Sa, Spd>>::pair(intake_slots);
        let (back_p, back_c) = SpscMailbox::<Update<Sa, Spd>>::pair(intake_slots);
        intake_to.push(to_p);
        intake_back.push(back_c);
        let lc = Arc::new(LcoreCounters::default());
        let lcore = config.dataplane.worker_lcores.get(w).copied().unwrap_or(1);
        counters.push((lcore, lc.clone()));
        let worker: Worker<Sa, Spd, SaShard, RouteTable, NeighborTable, _, _> = Worker {
            me: w as WorkerId,
            ports: port_infos.clone(),
            local: local.clone(),
            routes: routes.clone(),
            neighbours: neighbours.clone(),
            spd: Arc::new(Spd::new([])),
            sas: SaShard::new(w as WorkerId, n as u16),
            requests: RequestSender::new(req_p),
            counters: lc,
            intake: to_c,
            retired: back_p,
            _sa: std::marker::PhantomData,
            lifetimes_checked: 0,
            idle: IdleBackoff::new(config.dataplane.rx_mode),
            report: Default::default(),
        };
        let io = DpdkWorkerIo {
            me: w,
            ports: ports
                .iter()
                .map(|p| Port {
                    id: p.id,
                    rx_queues: p.rx_queues,
                    tx_queues: p.tx_queues,
                })
                .collect(),
            pool: pool_of(Eal::lcore_socket(lcore)),
            handoff_to: htx,
            handoff_from: hrx,
            punt: punt_p,
            from_main: if w == 0 { from_main.take() } else { None },
            tx_one: Vec::with_capacity(1),
            chained_dropped: 0,
        };
        launches.push((lcore, worker, io));
    }

    // static SAs and the SPD go through the intake before the workers start
    let factory = EspFactory {
        workers: n as u16,
        forced_backend: config.dataplane.backend.clone(),
        now,
    };
    let mut sas = EspControl::new(
        SaIntake::new(intake_to, intake_back).with_capacity(intake_slots),
        factory,
    );
    for m in &config.manual_sas {
        for p in [&m.inbound, &m.outbound] {
            let r = sas.handle(Message::AddSa {
                sa_id: m.sa_id,
                params: p.clone(),
            });
            if let Message::Error { reason } = r {
                return Err(format!("SA spi 0x{:x}: {reason}", p.spi));
            }
        }
    }
    let rules: Vec<SpdRuleMsg> = config
        .spd_rules
        .iter()
        .map(|r| SpdRuleMsg {
            selector: r.selector,
            protect: r.protect,
            entry: r.entry,
        })
        .collect();
    sas.handle(Message::InstallSpd { rules });

    let rx_mode = config.dataplane.rx_mode;
    for (lcore, mut worker, mut io) in launches {
        let stop = stop.clone();
        eal.launch(lcore, move || {
            let mut st = Staging::new(io.ports.len(), n, BURST);
            if let Err(e) = worker.idle.prepare_thread() {
                log::warn!(
                    "%DATAPLANE-4-WORKER: worker {}: timer slack not set ({e}); its idle sleeps \
                     may run long",
                    worker.me
                );
            }
            log::info!(
                "%DATAPLANE-6-WORKER: worker {} on lcore {lcore}, rx-mode {}",
                worker.me,
                rx_mode.name()
            );
            while !stop.load(Ordering::Relaxed) && !signals::stop_requested() {
                worker.poll_or_sleep(&mut io, &mut st);
                if io.chained_dropped > 0 {
                    let unsupported = crate::pipeline::DropReason::Unsupported as usize;
                    worker.counters.drops[unsupported].add(io.chained_dropped);
                    io.chained_dropped = 0;
                }
            }
        })?;
    }

    let control = ControlServer::bind(&config.dataplane.channel)
        .map_err(|e| format!("channel {}: {e}", config.dataplane.channel.display()))?;
    super::heap::log_sa_heap_pages();
    log::info!(
        "%DATAPLANE-6-READY: channel {}",
        config.dataplane.channel.display()
    );
    let port_addrs = config
        .interfaces
        .iter()
        .map(|i| i.addresses.iter().map(|p| p.addr).collect())
        .collect();
    let stats = WorkerCounters { workers: counters };
    let mut main = MainLoop::new(
        Some(control),
        local.clone(),
        port_infos,
        port_addrs,
        neighbours,
        req_rx,
        stats.clone(),
        config.dataplane.arp_timeout,
    );
    main.routes = routes.clone();
    let mut mio = DpdkMainIo {
        pool,
        punts: punt_rx,
        to_worker0: to_w0,
        local,
    };
    while !signals::stop_requested() {
        let t = clock::tick();
        let work = main.iterate(&mut mio, &mut sas, t);
        sas.intake.collect_retired();
        if work == 0 {
            main.idle(IDLE_WAIT);
        }
    }
    stop.store(true, Ordering::Relaxed);
    log::info!("%DATAPLANE-6-STOP: stopping workers");
    eal.wait_all();
    for p in &ports {
        let s = p.stats();
        eprintln!(
            "port {}: ipackets={} opackets={} imissed={} ierrors={} oerrors={} rx_nombuf={}",
            p.id, s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf
        );
        p.stop();
    }
    eprint!("{}", stats.summary());
    Ok(())
}
