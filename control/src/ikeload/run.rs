//! Running the load: spokes dealt round-robin to worker threads (each steps its own spokes,
//! so the Diffie-Hellman and RSA work of the initiators is spread over the cores), one
//! reader thread per IKE port handing each datagram to the worker of the spoke it is
//! addressed to, a concurrency window shared by all workers (at most `window` spokes
//! negotiating at once), and the sink recording the probes' arrivals.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::dplink::IkeDatagram;
use crate::sessions::Schedule;

use super::net::{IkePort, IkeSockets, RawSender};
use super::report::{Report, SpokeResult};
use super::sink::{self, Arrivals};
use super::spoke::{Output, Spoke, SpokeSetup};

/// How often a worker looks at its spokes' timers when no message comes.
const POLL: Duration = Duration::from_millis(5);

/// What to run.
pub struct LoadConfig {
    /// Free text naming the responder in the report ("ipsec-control", "charon"...).
    pub label: String,
    pub responder: Ipv4Addr,
    /// The spokes, numbered 1..=N in order, with consecutive addresses from the first's.
    pub spokes: Vec<SpokeSetup>,
    /// At most this many spokes negotiate (MM1 sent, phase 2 not up) at once.
    pub window: usize,
    pub threads: usize,
    /// IKE retransmissions.
    pub schedule: Schedule,
    /// The traffic check: the network namespace of the responder's LAN and the address
    /// the sink listens on there (the probes' destination). None: no probes are sent.
    pub sink: Option<(String, SocketAddrV4)>,
    /// The whole run is given up after this.
    pub timeout: Duration,
}

/// What the workers share.
struct Shared {
    sockets: IkeSockets,
    raw: RawSender,
    arrivals: Arc<Arrivals>,
    probing: bool,
    responder: IpAddr,
    window: usize,
    in_flight: AtomicUsize,
    send_errors: AtomicU64,
    t0: Instant,
    deadline: Instant,
}

impl Shared {
    /// Takes a place in the window, if one is free.
    fn enter_window(&self) -> bool {
        self.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.window).then_some(n + 1)
            })
            .is_ok()
    }

    fn send(&self, out: &mut Vec<Output>) {
        for o in out.drain(..) {
            let r = match o {
                Output::Ike(d) => self.sockets.send(&d),
                Output::Packet {
                    to: IpAddr::V4(to),
                    packet,
                } => self.raw.send(to, &packet),
                Output::Packet { .. } => Err("IPv6 probe".into()),
            };
            if let Err(e) = r {
                if self.send_errors.fetch_add(1, Ordering::Relaxed) < 5 {
                    log::warn!("ikeload: {e}");
                }
            }
        }
    }
}

/// One worker: its spokes (in start order), stepped by messages and timers.
fn worker(mut spokes: Vec<Spoke>, rx: Receiver<(usize, IkeDatagram)>, sh: &Shared) -> Vec<Spoke> {
    // spoke number -> index in `spokes`
    let index: BTreeMap<usize, usize> = spokes
        .iter()
        .enumerate()
        .map(|(i, s)| (s.setup.number, i))
        .collect();
    let mut next_start = 0;
    let mut out = Vec::new();
    let mut finished = vec![false; spokes.len()];
    let mut left = spokes.len();
    let mut last_poll = Instant::now();
    let step = |s: &mut Spoke, out: &mut Vec<Output>, was: bool| {
        if !was && s.negotiated() {
            sh.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
        sh.send(out);
    };
    while left > 0 && Instant::now() < sh.deadline {
        let first = match rx.recv_timeout(POLL) {
            Ok(m) => Some(m),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        for (number, d) in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
        {
            let Some(&i) = index.get(&number) else {
                continue;
            };
            let s = &mut spokes[i];
            let was = s.negotiated();
            let now = Instant::now();
            s.on_message(&d, now, now - sh.t0, &mut out);
            step(s, &mut out, was);
        }
        let now = Instant::now();
        if now.duration_since(last_poll) >= POLL {
            last_poll = now;
            for (i, s) in spokes[..next_start].iter_mut().enumerate() {
                if finished[i] {
                    continue;
                }
                let delivered = sh.arrivals.of(s.setup.number).is_some();
                let was = s.negotiated();
                s.poll(now, delivered, &mut out);
                step(s, &mut out, was);
                let done = s.failed()
                    || (s.negotiated() && (!sh.probing || delivered || s.failure.is_some()));
                if done {
                    finished[i] = true;
                    left -= 1;
                }
            }
        }
        while next_start < spokes.len() && sh.enter_window() {
            let now = Instant::now();
            let s = &mut spokes[next_start];
            s.start(sh.responder, now, now - sh.t0, &mut out);
            step(s, &mut out, false);
            next_start += 1;
        }
    }
    spokes
}

/// Reads one IKE port and hands each datagram to its spoke's worker.
fn reader(
    port: &IkePort,
    first: Ipv4Addr,
    count: usize,
    workers: &[Sender<(usize, IkeDatagram)>],
    stop: &AtomicBool,
) {
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::Relaxed) {
        match port.recv(&mut buf) {
            Ok(Some(d)) => {
                let IpAddr::V4(a) = d.local.ip() else {
                    continue;
                };
                let n = u32::from(a).wrapping_sub(u32::from(first)) as usize + 1;
                if (1..=count).contains(&n) {
                    let _ = workers[(n - 1) % workers.len()].send((n, d));
                }
            }
            Ok(None) => {}
            Err(e) => {
                log::warn!("ikeload: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Runs the load and reports.
pub fn run(cfg: LoadConfig) -> Result<Report, String> {
    let n = cfg.spokes.len();
    if n == 0 {
        return Err("no spokes".into());
    }
    let first = cfg.spokes[0].address;
    for (i, s) in cfg.spokes.iter().enumerate() {
        if s.number != i + 1 || u32::from(s.address) != u32::from(first) + i as u32 {
            return Err("spokes must be numbered 1..N with consecutive addresses".into());
        }
    }
    let threads = cfg.threads.clamp(1, n);
    let sockets = IkeSockets::bind(Duration::from_millis(50))?;
    let raw = RawSender::open()?;
    let arrivals = Arc::new(Arrivals::new(n));
    let stop = Arc::new(AtomicBool::new(false));
    let load_before = loadavg();
    let t0 = Instant::now();
    let sink = match &cfg.sink {
        Some((netns, addr)) => Some(sink::start(
            netns.clone(),
            *addr,
            arrivals.clone(),
            t0,
            stop.clone(),
        )?),
        None => None,
    };
    let shared = Shared {
        sockets,
        raw,
        arrivals: arrivals.clone(),
        probing: cfg.sink.is_some(),
        responder: IpAddr::V4(cfg.responder),
        window: cfg.window.max(1),
        in_flight: AtomicUsize::new(0),
        send_errors: AtomicU64::new(0),
        t0,
        deadline: t0 + cfg.timeout,
    };
    let mut per_worker: Vec<Vec<Spoke>> = (0..threads).map(|_| Vec::new()).collect();
    for s in cfg.spokes {
        let w = (s.number - 1) % threads;
        per_worker[w].push(Spoke::new(s, cfg.schedule));
    }
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| channel()).unzip();
    let spokes: Vec<Spoke> = std::thread::scope(|scope| {
        let sh = &shared;
        let (txs, stop) = (&txs, &stop);
        let readers = [&sh.sockets.main, &sh.sockets.natt]
            .map(|p| scope.spawn(move || reader(p, first, n, txs, stop)));
        let workers: Vec<_> = per_worker
            .into_iter()
            .zip(rxs)
            .map(|(sp, rx)| scope.spawn(move || worker(sp, rx, sh)))
            .collect();
        let done: Vec<Spoke> = workers
            .into_iter()
            .flat_map(|h| h.join().expect("an ikeload worker panicked"))
            .collect();
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            let _ = r.join();
        }
        done
    });
    stop.store(true, Ordering::Relaxed);
    if let Some(h) = sink {
        let _ = h.join();
    }
    let results = spokes
        .iter()
        .map(|s| SpokeResult {
            number: s.setup.number,
            times: s.times,
            arrival: arrivals.of(s.setup.number),
            retransmissions: s.retransmissions,
            failure: s.failure.clone().or_else(|| {
                (s.times.started.is_none()).then(|| "not started before the timeout".into())
            }),
        })
        .collect();
    Ok(Report::new(
        &cfg.label,
        cfg.responder,
        shared.window,
        threads,
        shared.probing,
        results,
        arrivals.strays.load(Ordering::Relaxed),
        shared.send_errors.load(Ordering::Relaxed),
        load_before,
        loadavg(),
    ))
}
