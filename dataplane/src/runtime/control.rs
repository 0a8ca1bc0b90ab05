//! The main lcore's side of the control channel: a non-blocking server polled once per main
//! loop iteration, replying to requests through a [`ControlHandler`] and broadcasting events
//! (Acquire, lifetime expiry, punted IKE) to every connected client.
//!
//! Nothing is lost because a client is slow: what its socket does not take waits in the
//! client's [`Outbox`] (bounded; see there what happens past the bound), dumps go out a page
//! at a time as the client reads them, and a client is dropped only when its connection is
//! broken or closed.

use std::io;
use std::path::Path;

use crate::channel::outbox::{Outbox, OutboxStats};
use crate::channel::paging::{Dump, DumpPages};
use crate::channel::{Connection, Error, LcoreCountersMsg, Message, Server, VERSION};
use crate::pipeline::{CounterSnapshot, DropReason};

/// The answer to one request.
pub enum Reply {
    /// One message.
    Message(Message),
    /// A snapshot, sent as pages ([`crate::channel::paging`]).
    Dump(Dump),
}

impl From<Message> for Reply {
    fn from(m: Message) -> Reply {
        Reply::Message(m)
    }
}

/// What answers requests: the runtime's state on the main lcore.
pub trait ControlHandler {
    /// The reply to one request (`Hello` is answered by the server itself).
    fn handle(&mut self, msg: Message) -> Reply;
}

/// One connected client and what waits to be sent to it.
struct Peer {
    conn: Connection,
    out: Outbox,
}

/// The listening socket and its connections.
pub struct ControlServer {
    server: Server,
    peers: Vec<Peer>,
}

impl ControlServer {
    /// Listens at `path` (replacing a stale socket; removed again on drop).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(ControlServer {
            server: Server::bind(path)?,
            peers: Vec::new(),
        })
    }

    /// Number of connected clients.
    pub fn clients(&self) -> usize {
        self.peers.len()
    }

    /// What happened to each connected client's replies and events.
    pub fn client_stats(&self) -> Vec<OutboxStats> {
        self.peers.iter().map(|p| p.out.stats()).collect()
    }

    /// Accepts new clients, sends what waits for each, and answers the requests that are
    /// waiting (none from a client that is being sent a dump, or that has much waiting for
    /// it: see [`Outbox::reading_paused`]). Never blocks. Returns the number of requests
    /// handled and frames sent (0: nothing to do).
    pub fn poll(&mut self, handler: &mut impl ControlHandler) -> usize {
        loop {
            match self.server.accept() {
                Ok(Some(conn)) => {
                    log::info!("%DATAPLANE-6-CHANNEL: control client connected");
                    self.peers.push(Peer {
                        conn,
                        out: Outbox::new(),
                    });
                }
                Ok(None) => break,
                Err(e) => {
                    log::warn!("%DATAPLANE-4-CHANNEL: accept failed: {e}");
                    break;
                }
            }
        }
        let mut work = 0;
        self.peers.retain_mut(|p| match serve(p, handler) {
            Ok(n) => {
                work += n;
                true
            }
            Err(e) => {
                log_gone(&e);
                false
            }
        });
        work
    }

    /// Waits until a client sends something or connects, a client that has something
    /// waiting can take more, or `timeout` passes: the main lcore's idle wait. A plain
    /// sleep made every lock-step request (control's request/ack exchange) wait for the
    /// rest of the sleep, which capped SA installs at a few thousand per second; poll(2)
    /// wakes up when the request arrives.
    pub fn wait(&self, timeout: std::time::Duration) {
        use std::os::fd::AsRawFd;
        let mut fds: Vec<libc::pollfd> = std::iter::once(libc::pollfd {
            fd: self.server.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .chain(self.peers.iter().map(|p| libc::pollfd {
            fd: p.conn.as_raw_fd(),
            events: libc::POLLIN
                | if p.out.wants_write() {
                    libc::POLLOUT
                } else {
                    0
                },
            revents: 0,
        }))
        .collect();
        // poll(2) takes milliseconds; ppoll(2) takes the finer timeout the loop wants.
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: ppoll reads and writes exactly fds.len() pollfd entries of a live Vec,
        // reads the timespec we own, and a null signal mask leaves the mask unchanged.
        unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
    }

    /// Sends an event (request id 0) to every client, or queues it for a client that is
    /// behind; a client is dropped only when its connection is broken.
    pub fn broadcast(&mut self, event: &Message) {
        self.peers.retain_mut(|p| {
            p.out.event(event.clone());
            match p.out.flush(&p.conn) {
                Ok(_) => true,
                Err(e) => {
                    log_gone(&e);
                    false
                }
            }
        });
    }
}

/// Logs why a client was let go: it closed its end (a send then fails with EPIPE or
/// ECONNRESET, a receive reads the end), or the connection broke otherwise.
fn log_gone(e: &Error) {
    let closed = match e {
        Error::Closed => true,
        Error::Io(e) => matches!(e.raw_os_error(), Some(libc::EPIPE | libc::ECONNRESET)),
        _ => false,
    };
    if closed {
        log::info!("%DATAPLANE-6-CHANNEL: control client disconnected");
    } else {
        log::warn!("%DATAPLANE-4-CHANNEL: control client connection broken: {e}");
    }
}

/// One client's turn: what waits is sent, then its requests are read and answered while
/// reading is not paused. Returns requests handled and frames sent; an error when the
/// connection is closed or broken.
fn serve(p: &mut Peer, handler: &mut impl ControlHandler) -> Result<usize, Error> {
    let mut work = p.out.flush(&p.conn)?;
    while !p.out.reading_paused() {
        match p.conn.recv(false) {
            Ok(None) => break,
            Ok(Some((id, msg))) => {
                work += 1;
                let reply = match msg {
                    Message::Hello { .. } => Reply::Message(Message::Hello {
                        version: VERSION,
                        name: format!("ipsec-dataplane {}", env!("CARGO_PKG_VERSION")),
                    }),
                    other => handler.handle(other),
                };
                match reply {
                    Reply::Message(m) => p.out.reply(id, &m),
                    Reply::Dump(d) => p.out.dump(DumpPages::new(id, d)),
                }
            }
            Err(Error::Closed) => return Err(Error::Closed),
            Err(Error::Io(e)) => return Err(Error::Io(e)),
            Err(e) => {
                // A bad frame is answered with an error (in our version: a client of another
                // version fails on it with both versions named); the connection stays.
                match &e {
                    Error::Version(v) => log::warn!(
                        "%DATAPLANE-4-CHANNEL: a client speaks channel protocol version {v}, \
                         this dataplane version {VERSION}: refused"
                    ),
                    _ => log::warn!("%DATAPLANE-4-CHANNEL: bad message: {e}"),
                }
                p.out.reply(
                    0,
                    &Message::Error {
                        reason: e.to_string(),
                    },
                );
            }
        }
        work += p.out.flush(&p.conn)?;
    }
    Ok(work)
}

/// The channel form of one worker's counters.
pub fn lcore_counters_msg(lcore: u32, worker: u16, s: &CounterSnapshot) -> LcoreCountersMsg {
    LcoreCountersMsg {
        lcore,
        worker,
        rx: s.rx,
        tx: s.tx,
        handoff_in: s.handoff_in,
        handoff_out: s.handoff_out,
        punted: s.punted,
        bursts: s.bursts,
        encaps: s.encaps,
        decaps: s.decaps,
        busy_cycles: s.busy_cycles,
        pipeline_cycles: s.pipeline_cycles,
        idle_sleeps: s.idle_sleeps,
        drops: DropReason::ALL
            .iter()
            .zip(s.drops.iter())
            .map(|(r, n)| (r.name().to_string(), *n))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::paging::DumpReader;
    use crate::channel::tests::sample_sas;
    use crate::channel::{Client, CountersMsg, SaCountersMsg};
    use crate::esp::Direction;
    use std::collections::{BTreeMap, BTreeSet};
    use std::time::{Duration, Instant};

    struct Counting {
        snap: CounterSnapshot,
    }
    impl ControlHandler for Counting {
        fn handle(&mut self, msg: Message) -> Reply {
            match msg {
                Message::DumpCounters => Reply::Dump(Dump::Counters(CountersMsg {
                    sas: sample_sas(3),
                    lcores: vec![lcore_counters_msg(1, 0, &self.snap)],
                })),
                _ => Message::Error {
                    reason: "unsupported".into(),
                }
                .into(),
            }
        }
    }

    /// Polls `server` until `done` says so (bounded: a test that hangs fails instead).
    fn serve_until(
        server: &mut ControlServer,
        handler: &mut impl ControlHandler,
        mut done: impl FnMut(&ControlServer) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done(server) {
            assert!(Instant::now() < deadline, "the test did not finish in 60 s");
            if server.poll(handler) == 0 {
                server.wait(Duration::from_millis(1));
            }
        }
    }

    #[test]
    fn serves_hello_and_counters_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dp.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let mut snap = CounterSnapshot {
            rx: 42,
            ..Default::default()
        };
        snap.drops[DropReason::Replay as usize] = 3;
        let mut handler = Counting { snap };
        assert_eq!(
            server.poll(&mut handler),
            0,
            "nothing pending, returns at once"
        );
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut c = Client::connect(&p, "test").unwrap();
            c.dump_counters().unwrap()
        });
        serve_until(&mut server, &mut handler, |_| client.is_finished());
        let c = client.join().unwrap();
        assert_eq!(c.sas, sample_sas(3));
        assert_eq!(c.lcores[0].rx, 42);
        assert_eq!(c.lcores[0].drops["replay"], 3);
        assert_eq!(c.lcores[0].drops["auth-failed"], 0);
    }

    /// Answers DumpSas with `sas`, AllocateSpi with SPI `n` for its n-th request, and a dump
    /// that cannot be taken with the reason.
    struct Dumps {
        sas: Vec<SaCountersMsg>,
        allocated: u32,
    }
    impl ControlHandler for Dumps {
        fn handle(&mut self, msg: Message) -> Reply {
            match msg {
                Message::DumpSas => Reply::Dump(Dump::Sas(self.sas.clone())),
                Message::AllocateSpi { .. } => {
                    self.allocated += 1;
                    Message::SpiAllocated {
                        spi: self.allocated,
                        owner: 0,
                    }
                    .into()
                }
                _ => Message::Error {
                    reason: "worker 1 did not report its SAs in time; retry".into(),
                }
                .into(),
            }
        }
    }

    #[test]
    fn a_dump_of_25000_sas_arrives_in_pages_each_sa_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dp.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let sas = sample_sas(25_000);
        let mut handler = Dumps {
            sas: sas.clone(),
            allocated: 0,
        };
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut c = Client::connect(&p, "test").unwrap();
            let first = c.dump_sas().unwrap();
            // a refused dump is an error, and the connection stays usable
            let refused = c.dump_counters().unwrap_err();
            let second = c.dump_sas().unwrap();
            (first, refused, second, c)
        });
        serve_until(&mut server, &mut handler, |_| client.is_finished());
        let (first, refused, second, _connected) = client.join().unwrap();
        assert!(
            matches!(&refused, Error::Refused(r) if r.contains("did not report")),
            "{refused}"
        );
        for dump in [first, second] {
            assert_eq!(dump.len(), 25_000);
            let keys: BTreeSet<(u32, bool)> = dump
                .iter()
                .map(|s| (s.spi, s.direction == Some(Direction::Inbound)))
                .collect();
            assert_eq!(keys.len(), 25_000, "no SA twice");
            assert_eq!(dump, sas, "every SA, as the dataplane holds it");
        }
        assert_eq!(server.clients(), 1);
    }

    #[test]
    fn a_client_of_another_protocol_version_is_told_both_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dp.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let mut handler = Dumps {
            sas: vec![],
            allocated: 0,
        };
        let p = path.clone();
        let client = std::thread::spawn(move || {
            // connect as the current version, then talk as version 1 would
            let mut c = Client::connect(&p, "test").unwrap();
            let mut old_hello = crate::channel::encode(
                7,
                &Message::Hello {
                    version: 1,
                    name: "ipsec-control 0.0.1".into(),
                },
            );
            old_hello[4..6].copy_from_slice(&1u16.to_be_bytes());
            c.connection().send_frame(&old_hello).unwrap();
            c.event().unwrap()
        });
        serve_until(&mut server, &mut handler, |_| client.is_finished());
        let reply = client.join().unwrap();
        let Some(Message::Error { reason }) = reply else {
            panic!("{reply:?}")
        };
        assert!(
            reason.contains("version 1") && reason.contains(&format!("version {VERSION}")),
            "{reason}"
        );
    }

    /// A client that sends requests and then reads nothing for a while, as a busy control
    /// does, while the dataplane has dumps to send and a flood of events (more than its
    /// socket holds and more than the event bound): it stays connected, and when it reads it
    /// gets every reply complete and in order, every Acquire and lifetime event exactly
    /// once, and the punted IKE packets that were not dropped — the drops counted.
    #[test]
    fn a_client_that_does_not_read_for_a_while_gets_every_reply_and_event() {
        const DUMPS: u32 = 3;
        const SMALL: u32 = 200;
        const PUNTS: u32 = 20_000;
        const EVERY: u32 = 10;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dp.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let sas = sample_sas(25_000);
        let mut handler = Dumps {
            sas: sas.clone(),
            allocated: 0,
        };
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (sent_tx, sent_rx) = std::sync::mpsc::channel::<()>();
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut c = Client::connect(&p, "test").unwrap();
            c.connection().set_timeout(Duration::from_secs(20)).unwrap();
            // requests sent without reading: the dumps first, then small ones
            let conn = c.connection();
            for id in 1..=DUMPS {
                conn.send(id, &Message::DumpSas).unwrap();
            }
            for id in DUMPS + 1..=DUMPS + SMALL {
                conn.send(id, &Message::AllocateSpi { owner: None })
                    .unwrap();
            }
            sent_tx.send(()).unwrap();
            go_rx.recv().unwrap(); // until the server has broadcast everything
            let mut dumps: BTreeMap<u32, DumpReader> = BTreeMap::new();
            let mut complete = Vec::new();
            let mut small = Vec::new();
            let mut acquires = Vec::new();
            let mut expires = Vec::new();
            let mut punts = 0u32;
            let want_events = (PUNTS / EVERY) as usize;
            let mut next_dump = 1;
            while complete.len() < DUMPS as usize
                || small.len() < SMALL as usize
                || acquires.len() < want_events
                || expires.len() < 2 * want_events
            {
                let (id, m) = conn.recv(true).unwrap().expect("a message within 20 s");
                match (id, m) {
                    (0, Message::PuntedIke { .. }) => punts += 1,
                    (0, Message::Acquire { sa_id, .. }) => acquires.push(sa_id),
                    (0, Message::SoftExpire { spi, .. }) => expires.push((spi, false)),
                    (0, Message::HardExpire { spi, .. }) => expires.push((spi, true)),
                    (id, page @ Message::SasPage { .. }) => {
                        assert_eq!(id, next_dump, "replies come in request order");
                        let r = dumps.entry(id).or_default();
                        if r.feed(page).unwrap() {
                            complete.push(dumps.remove(&id).unwrap().finish().unwrap());
                            next_dump += 1;
                        }
                    }
                    (id, Message::SpiAllocated { spi, .. }) => {
                        assert_eq!(complete.len(), DUMPS as usize, "after the dumps");
                        assert_eq!(id, DUMPS + spi, "in request order");
                        small.push(spi);
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            // everything queued before this reply has arrived with it
            let fin = DUMPS + SMALL + 1;
            conn.send(fin, &Message::AllocateSpi { owner: None })
                .unwrap();
            loop {
                match conn.recv(true).unwrap().expect("the last reply") {
                    (0, Message::PuntedIke { .. }) => punts += 1,
                    (id, Message::SpiAllocated { .. }) if id == fin => break,
                    other => panic!("unexpected {other:?}"),
                }
            }
            (complete, small, acquires, expires, punts, c)
        });
        // the requests are in; answer them while the client does not read, until its socket
        // is full
        let mut sent = false;
        serve_until(&mut server, &mut handler, |s| {
            sent = sent || sent_rx.try_recv().is_ok();
            sent && s.client_stats().first().is_some_and(|c| c.deferred > 0)
        });
        for i in 0..PUNTS {
            server.broadcast(&Message::PuntedIke {
                port: 1,
                packet: vec![(i % 251) as u8; 1400],
            });
            if i % EVERY == 0 {
                let n = i / EVERY;
                server.broadcast(&Message::Acquire {
                    sa_id: n,
                    source: "10.1.0.1".into(),
                    destination: "10.2.0.1".into(),
                    protocol: 1,
                });
                for hard in [false, true] {
                    server.broadcast(&if hard {
                        Message::HardExpire {
                            spi: n,
                            direction: Direction::Inbound,
                            by_bytes: false,
                        }
                    } else {
                        Message::SoftExpire {
                            spi: n,
                            direction: Direction::Inbound,
                            by_bytes: false,
                        }
                    });
                }
            }
            server.poll(&mut handler);
        }
        assert_eq!(server.clients(), 1, "the slow client was not dropped");
        let stats = server.client_stats()[0];
        assert!(stats.deferred > 0, "the socket was full: {stats:?}");
        assert!(
            stats.overflows >= 1,
            "the event bound was exceeded: {stats:?}"
        );
        go_tx.send(()).unwrap();
        serve_until(&mut server, &mut handler, |_| client.is_finished());
        let (complete, small, acquires, expires, punts, _connected) = client.join().unwrap();
        for d in complete {
            assert_eq!(d, Dump::Sas(sas.clone()));
        }
        assert_eq!(small, (1..=SMALL).collect::<Vec<_>>());
        let n = PUNTS / EVERY;
        assert_eq!(
            acquires.iter().copied().collect::<BTreeSet<_>>(),
            (0..n).collect::<BTreeSet<_>>()
        );
        assert_eq!(acquires.len(), n as usize, "each Acquire once");
        let want: BTreeSet<(u32, bool)> = (0..n).flat_map(|s| [(s, false), (s, true)]).collect();
        assert_eq!(expires.iter().copied().collect::<BTreeSet<_>>(), want);
        assert_eq!(expires.len(), 2 * n as usize, "each lifetime event once");
        for s in 0..n {
            let soft = expires.iter().position(|e| *e == (s, false)).unwrap();
            let hard = expires.iter().position(|e| *e == (s, true)).unwrap();
            assert!(soft < hard, "SA {s}: the soft expiry first");
        }
        let stats = server.client_stats()[0];
        assert!(stats.dropped_punts > 0, "{stats:?}");
        assert!(stats.held_events > 0, "{stats:?}");
        assert_eq!(
            punts as u64 + stats.dropped_punts,
            PUNTS as u64,
            "every punted packet delivered or counted as dropped"
        );
        assert!(stats.dropped_punts < PUNTS as u64);
        assert_eq!(server.clients(), 1);
    }
}
