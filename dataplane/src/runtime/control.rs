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
                    if let Err(e) = conn.send(id, &reply) {
                        log::warn!("%DATAPLANE-4-CHANNEL: reply failed, client dropped: {e}");
                        return false;
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

    /// Sends an event (request id 0) to every client; clients that fail are dropped.
    pub fn broadcast(&mut self, event: &Message) {
        self.conns.retain(|c| c.send(0, event).is_ok());
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
}
