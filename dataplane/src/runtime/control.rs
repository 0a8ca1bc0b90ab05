//! The main lcore's side of the control channel: a non-blocking server polled once per main
//! loop iteration, replying to requests through a [`ControlHandler`] and broadcasting events
//! (Acquire, lifetime expiry, punted IKE) to every connected client.

use std::io;
use std::path::Path;

use crate::channel::{Connection, LcoreCountersMsg, Message, Server, VERSION};
use crate::pipeline::{CounterSnapshot, DropReason};

/// What answers requests: the runtime's state on the main lcore.
pub trait ControlHandler {
    /// The reply to one request (`Hello` is answered by the server itself).
    fn handle(&mut self, msg: Message) -> Message;
}

/// The listening socket and its connections.
pub struct ControlServer {
    server: Server,
    conns: Vec<Connection>,
}

impl ControlServer {
    /// Listens at `path` (replacing a stale socket; removed again on drop).
    pub fn bind(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(ControlServer {
            server: Server::bind(path)?,
            conns: Vec::new(),
        })
    }

    /// Number of connected clients.
    pub fn clients(&self) -> usize {
        self.conns.len()
    }

    /// Accepts new clients and answers every request that is waiting. Never blocks.
    /// Returns the number of requests handled.
    pub fn poll(&mut self, handler: &mut impl ControlHandler) -> usize {
        loop {
            match self.server.accept() {
                Ok(Some(c)) => {
                    log::info!("%DATAPLANE-6-CHANNEL: control client connected");
                    self.conns.push(c);
                }
                Ok(None) => break,
                Err(e) => {
                    log::warn!("%DATAPLANE-4-CHANNEL: accept failed: {e}");
                    break;
                }
            }
        }
        let mut handled = 0;
        self.conns.retain_mut(|conn| loop {
            match conn.recv(false) {
                Ok(None) => return true,
                Ok(Some((id, msg))) => {
                    handled += 1;
                    let reply = match msg {
                        Message::Hello { .. } => Message::Hello {
                            version: VERSION,
                            name: format!("ipsec-dataplane {}", env!("CARGO_PKG_VERSION")),
                        },
                        other => handler.handle(other),
                    };
                    match conn.send(id, &reply) {
                        Ok(()) => {}
                        // A dump of more SAs than one frame holds: the client hears why, and
                        // keeps its connection.
                        Err(e) if too_large(&e) => {
                            log::warn!("%DATAPLANE-4-CHANNEL: reply too large for one frame");
                            let refusal = Message::Error {
                                reason: "reply too large for one channel frame".into(),
                            };
                            if conn.send(id, &refusal).is_err() {
                                return false;
                            }
                        }
                        Err(e) => {
                            log::warn!("%DATAPLANE-4-CHANNEL: reply failed, client dropped: {e}");
                            return false;
                        }
                    }
                }
                Err(crate::channel::Error::Closed) => {
                    log::info!("%DATAPLANE-6-CHANNEL: control client disconnected");
                    return false;
                }
                Err(e) => {
                    // A bad frame is answered with an error; the connection stays.
                    log::warn!("%DATAPLANE-4-CHANNEL: bad message: {e}");
                    if conn
                        .send(
                            0,
                            &Message::Error {
                                reason: e.to_string(),
                            },
                        )
                        .is_err()
                    {
                        return false;
                    }
                }
            }
        });
        handled
    }

    /// Waits until a client sends something or connects, or `timeout` passes: the main
    /// lcore's idle wait. A plain sleep made every lock-step request (control's
    /// request/ack exchange) wait for the rest of the sleep, which capped SA installs at a
    /// few thousand per second; poll(2) wakes up when the request arrives.
    pub fn wait(&self, timeout: std::time::Duration) {
        use std::os::fd::AsRawFd;
        let mut fds: Vec<libc::pollfd> = std::iter::once(self.server.as_raw_fd())
            .chain(self.conns.iter().map(|c| c.as_raw_fd()))
            .map(|fd| libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            })
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

    /// Sends an event (request id 0) to every client; clients that fail are dropped.
    pub fn broadcast(&mut self, event: &Message) {
        self.conns.retain(|c| c.send(0, event).is_ok());
    }
}

/// A reply that cannot go in one frame (an SA dump beyond about 10,000 SAs): refused by our
/// own size check, or by the socket.
fn too_large(e: &crate::channel::Error) -> bool {
    match e {
        crate::channel::Error::BadLength(_) => true,
        crate::channel::Error::Io(e) => e.raw_os_error() == Some(libc::EMSGSIZE),
        _ => false,
    }
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
    use crate::channel::{Client, CountersMsg};

    struct Counting {
        snap: CounterSnapshot,
    }
    impl ControlHandler for Counting {
        fn handle(&mut self, msg: Message) -> Message {
            match msg {
                Message::DumpCounters => Message::Counters(CountersMsg {
                    sas: vec![],
                    lcores: vec![lcore_counters_msg(1, 0, &self.snap)],
                }),
                _ => Message::Error {
                    reason: "unsupported".into(),
                },
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
            c.request(&Message::DumpCounters).unwrap()
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut handled = 0;
        while handled < 2 && std::time::Instant::now() < deadline {
            handled += server.poll(&mut handler);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let reply = client.join().unwrap();
        let Message::Counters(c) = reply else {
            panic!("{reply:?}")
        };
        assert_eq!(c.lcores[0].rx, 42);
        assert_eq!(c.lcores[0].drops["replay"], 3);
        assert_eq!(c.lcores[0].drops["auth-failed"], 0);
    }

    /// Answers DumpSas with more SAs than one frame holds.
    struct Huge;
    impl ControlHandler for Huge {
        fn handle(&mut self, msg: Message) -> Message {
            match msg {
                Message::DumpSas => Message::Sas {
                    sas: vec![
                        crate::channel::SaCountersMsg {
                            crypto_map: "x".repeat(1000),
                            ..Default::default()
                        };
                        5000
                    ],
                },
                _ => Message::Ack,
            }
        }
    }

    #[test]
    fn a_reply_too_large_for_a_frame_is_refused_and_the_client_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dp.sock");
        let mut server = ControlServer::bind(&path).unwrap();
        let p = path.clone();
        let client = std::thread::spawn(move || {
            let mut c = Client::connect(&p, "test").unwrap();
            let dump = c.request(&Message::DumpSas).unwrap();
            let after = c.request(&Message::DumpCounters).unwrap();
            (dump, after)
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut handled = 0;
        while handled < 3 && std::time::Instant::now() < deadline {
            handled += server.poll(&mut Huge);
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let (dump, after) = client.join().unwrap();
        assert!(
            matches!(&dump, Message::Error { reason } if reason.contains("too large")),
            "{dump:?}"
        );
        assert_eq!(after, Message::Ack, "the connection survived");
    }
}
