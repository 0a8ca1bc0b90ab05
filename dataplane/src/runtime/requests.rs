//! Worker -> main requests: resolve a next hop, raise an Acquire. Sent through a per-worker
//! [`spsc`](super::spsc) queue; when it is full the request is dropped (the next packet asks
//! again), so the fast path never waits.

use std::net::IpAddr;

use super::spsc::{Consumer, Producer};
use crate::esp::Direction;
use crate::pipeline::{IpInfo, PortId, SlowPathRequests};

/// One request from a worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// Resolve `ip` on `port` (ARP / neighbour solicitation).
    Resolve { port: PortId, ip: IpAddr },
    /// SA `sa` of the SPD is needed for traffic `src -> dst` (protocol, ports).
    Acquire {
        sa: u32,
        src: IpAddr,
        dst: IpAddr,
        protocol: u8,
        sport: u16,
        dport: u16,
    },
    /// An SA crossed its soft or hard lifetime.
    Expire {
        spi: u32,
        direction: Direction,
        hard: bool,
        by_bytes: bool,
    },
}

/// The worker's end.
pub struct RequestSender {
    tx: Producer<Request>,
    /// The last resolution asked for: a burst toward one unresolved next hop asks once.
    last_resolve: Option<(PortId, IpAddr)>,
    /// Requests lost because the queue was full.
    pub lost: u64,
}

impl RequestSender {
    pub fn new(tx: Producer<Request>) -> Self {
        RequestSender {
            tx,
            last_resolve: None,
            lost: 0,
        }
    }

    /// Forgets the last resolution asked for (called once per poll iteration, so that an
    /// unanswered request is repeated on the next one).
    pub fn new_iteration(&mut self) {
        self.last_resolve = None;
    }

    /// Reports a lifetime crossing.
    pub fn expire(&mut self, spi: u32, direction: Direction, hard: bool, by_bytes: bool) {
        self.send(Request::Expire {
            spi,
            direction,
            hard,
            by_bytes,
        });
    }

    fn send(&mut self, r: Request) {
        if self.tx.push(r).is_err() {
            self.lost += 1;
        }
    }
}

impl SlowPathRequests for RequestSender {
    fn resolve(&mut self, port: PortId, ip: IpAddr) {
        if self.last_resolve == Some((port, ip)) {
            return;
        }
        self.last_resolve = Some((port, ip));
        self.send(Request::Resolve { port, ip });
    }
    fn acquire(&mut self, sa: u32, ip: &IpInfo) {
        self.send(Request::Acquire {
            sa,
            src: ip.src(),
            dst: ip.dst(),
            protocol: ip.protocol,
            sport: ip.sport,
            dport: ip.dport,
        });
    }
}

/// The main lcore's end.
pub type RequestReceiver = Consumer<Request>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::spsc::channel;

    #[test]
    fn repeated_resolves_in_one_iteration_are_sent_once() {
        let (tx, mut rx) = channel(4);
        let mut s = RequestSender::new(tx);
        let ip: IpAddr = "10.99.0.2".parse().unwrap();
        for _ in 0..10 {
            s.resolve(1, ip);
        }
        s.new_iteration();
        s.resolve(1, ip);
        assert_eq!(rx.pop(), Some(Request::Resolve { port: 1, ip }));
        assert_eq!(rx.pop(), Some(Request::Resolve { port: 1, ip }));
        assert_eq!(rx.pop(), None);
    }
}
