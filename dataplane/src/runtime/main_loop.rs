//! One iteration of the main lcore: the control channel, the workers' requests (next-hop
//! resolution, Acquire), the punted frames (ARP/ND/ICMP answered here, IKE handed to
//! control), and neighbour ageing. Nothing here is on the fast path; it may allocate.

use std::net::IpAddr;
use std::sync::Arc;

use super::control::{lcore_counters_msg, ControlHandler, ControlServer, Reply};
use super::ike_out::{IkeOutbox, Net};
use super::requests::{Request, RequestReceiver};
use super::resolver::{resolution_frame, should_send};
use super::slowpath::{handle, SlowPathOutcome};
use super::stats::WorkerCounters;
use crate::channel::paging::Dump;
use crate::channel::{CountersMsg, Message, SaCountersMsg};
use crate::l3::{NeighborTable, RouteTable};
use crate::packet::PacketBuf;
use crate::pipeline::{LocalAddrs, PortId, PortInfo, PuntKind};

/// The main lcore's access to frames.
pub trait MainIo<P> {
    /// One frame punted by a worker, with the port it arrived on.
    fn recv_punted(&mut self) -> Option<(PuntKind, PortId, P)>;
    /// Sends a frame out of `port` (the main lcore's own TX queue).
    fn send(&mut self, port: PortId, pkt: P);
    /// Sends a copy of `frame` out of `port` (a buffer is allocated for it); false when
    /// no buffer or no room.
    fn send_copy(&mut self, port: PortId, frame: &[u8]) -> bool;
}

/// What the SA side of the dataplane answers (implemented over the SA shards and intake).
pub trait SaControl {
    /// Replies to AllocateSpi, AddSa, UpdateSa, DeleteSa, InstallSpd.
    fn handle(&mut self, msg: Message) -> Message;
    /// Every SA with its counters, for DumpSas and DumpCounters: a snapshot, or why none
    /// could be taken.
    fn dump_sas(&mut self) -> Result<Vec<SaCountersMsg>, String>;
}

/// The main lcore's state.
pub struct MainLoop {
    pub control: Option<ControlServer>,
    pub local: LocalAddrs,
    pub ports: Vec<PortInfo>,
    /// Our addresses on each port: the source of resolution requests.
    pub port_addrs: Vec<Vec<IpAddr>>,
    pub neighbours: Arc<NeighborTable>,
    pub requests: Vec<RequestReceiver>,
    pub counters: WorkerCounters,
    /// Seconds a neighbour binding stays valid.
    pub arp_timeout: u64,
    /// Routes for the IKE packets control sends (the workers' table; empty until set).
    pub routes: Arc<RouteTable>,
    /// IKE packets from control waiting for their next hop.
    pub ike_out: IkeOutbox,
    /// When an Acquire was last raised per SPD SA id (seconds): every packet without an SA
    /// asks, but control hears it (and the log shows it) at most once a second per entry.
    acquired: std::collections::HashMap<u32, u64>,
    last_age: u64,
}

/// Answers the dumps itself (the SA side's snapshot, sent in pages by the server), keeps the
/// IKE packets to send for after the poll, and passes the rest to the SA side.
struct Handler<'a, S> {
    counters: &'a WorkerCounters,
    sas: &'a mut S,
    ike: &'a mut Vec<Vec<u8>>,
}

impl<S: SaControl> ControlHandler for Handler<'_, S> {
    fn handle(&mut self, msg: Message) -> Reply {
        match msg {
            Message::DumpSas => match self.sas.dump_sas() {
                Ok(sas) => Reply::Dump(Dump::Sas(sas)),
                Err(reason) => Message::Error { reason }.into(),
            },
            Message::DumpCounters => match self.sas.dump_sas() {
                Ok(sas) => {
                    let (per, _) = self.counters.collect();
                    Reply::Dump(Dump::Counters(CountersMsg {
                        sas,
                        lcores: per
                            .iter()
                            .enumerate()
                            .map(|(w, (lcore, s))| lcore_counters_msg(*lcore, w as u16, s))
                            .collect(),
                    }))
                }
                Err(reason) => Message::Error { reason }.into(),
            },
            Message::SendIke { packet } => {
                self.ike.push(packet);
                Message::Ack.into()
            }
            other => self.sas.handle(other).into(),
        }
    }
}

impl MainLoop {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        control: Option<ControlServer>,
        local: LocalAddrs,
        ports: Vec<PortInfo>,
        port_addrs: Vec<Vec<IpAddr>>,
        neighbours: Arc<NeighborTable>,
        requests: Vec<RequestReceiver>,
        counters: WorkerCounters,
        arp_timeout: u64,
    ) -> Self {
        MainLoop {
            control,
            local,
            ports,
            port_addrs,
            neighbours,
            requests,
            counters,
            arp_timeout,
            routes: Arc::new(RouteTable::default()),
            ike_out: IkeOutbox::default(),
            acquired: Default::default(),
            last_age: 0,
        }
    }

    /// One iteration at time `now` (seconds). Returns the amount of work done (0: idle).
    pub fn iterate<P: PacketBuf, IO: MainIo<P>, S: SaControl>(
        &mut self,
        io: &mut IO,
        sas: &mut S,
        now: u64,
    ) -> usize {
        let mut work = 0;
        let mut ike = Vec::new();
        if let Some(control) = self.control.as_mut() {
            work += control.poll(&mut Handler {
                counters: &self.counters,
                sas,
                ike: &mut ike,
            });
        }
        work += self.send_ike(io, ike, now);
        work += self.requests_from_workers(io, now);
        work += self.punted(io, now);
        if now != self.last_age {
            self.last_age = now;
            self.neighbours.age(now, self.arp_timeout);
        }
        work
    }

    /// Waits up to `timeout` for a channel message (or just sleeps without a channel).
    pub fn idle(&self, timeout: std::time::Duration) {
        match &self.control {
            Some(c) => c.wait(timeout),
            None => std::thread::sleep(timeout),
        }
    }

    fn requests_from_workers<P, IO: MainIo<P>>(&mut self, io: &mut IO, now: u64) -> usize {
        let mut n = 0;
        let mut frame = [0u8; 128];
        for rx in self.requests.iter_mut() {
            while let Some(req) = rx.pop() {
                n += 1;
                match req {
                    Request::Resolve { port, ip } => {
                        if !should_send(&self.neighbours, ip, now) {
                            continue;
                        }
                        let (Some(info), Some(addrs)) = (
                            self.ports.get(port as usize),
                            self.port_addrs.get(port as usize),
                        ) else {
                            continue;
                        };
                        let src = addrs.iter().find(|a| a.is_ipv4() == ip.is_ipv4());
                        if let Some(len) =
                            src.and_then(|s| resolution_frame(&mut frame, info.mac, *s, ip))
                        {
                            io.send_copy(port, &frame[..len]);
                        }
                    }
                    Request::Expire {
                        spi,
                        direction,
                        hard,
                        by_bytes,
                    } => {
                        let (tag, what) = if hard {
                            ("HARD", "expired")
                        } else {
                            ("SOFT", "reached its soft lifetime")
                        };
                        log::info!(
                            "%CRYPTO-6-SA_{tag}_EXPIRE: {direction:?} SA spi 0x{spi:x} {what} (by {})",
                            if by_bytes { "kilobytes" } else { "seconds" }
                        );
                        if let Some(c) = self.control.as_mut() {
                            c.broadcast(&if hard {
                                Message::HardExpire {
                                    spi,
                                    direction,
                                    by_bytes,
                                }
                            } else {
                                Message::SoftExpire {
                                    spi,
                                    direction,
                                    by_bytes,
                                }
                            });
                        }
                    }
                    Request::Acquire {
                        sa,
                        src,
                        dst,
                        protocol,
                        ..
                    } => {
                        if self.acquired.get(&sa).is_some_and(|&t| now < t + 1) {
                            continue;
                        }
                        self.acquired.insert(sa, now);
                        log::info!(
                            "%CRYPTO-6-ACQUIRE: no SA for {src} -> {dst} (proto {protocol}), crypto map SA id {sa}"
                        );
                        if let Some(c) = self.control.as_mut() {
                            c.broadcast(&Message::Acquire {
                                sa_id: sa,
                                source: src.to_string(),
                                destination: dst.to_string(),
                                protocol,
                            });
                        }
                    }
                }
            }
        }
        n
    }

    /// Sends control's IKE packets, and those whose next hop has been resolved since.
    fn send_ike<P, IO: MainIo<P>>(
        &mut self,
        io: &mut IO,
        packets: Vec<Vec<u8>>,
        now: u64,
    ) -> usize {
        let net = Net {
            routes: &self.routes,
            neighbours: &self.neighbours,
            ports: &self.ports,
            port_addrs: &self.port_addrs,
        };
        let mut out = |port: PortId, frame: &[u8]| io.send_copy(port, frame);
        let n = packets.len();
        for p in packets {
            let _ = self.ike_out.send(&mut out, &net, p, now);
        }
        n + self.ike_out.retry(&mut out, &net, now)
    }

    fn punted<P: PacketBuf, IO: MainIo<P>>(&mut self, io: &mut IO, now: u64) -> usize {
        let mut n = 0;
        while let Some((kind, port, mut pkt)) = io.recv_punted() {
            n += 1;
            match kind {
                PuntKind::Ike => {
                    if let Some(c) = self.control.as_mut() {
                        let ip = pkt.data().get(14..).unwrap_or(&[]).to_vec();
                        c.broadcast(&Message::PuntedIke { port, packet: ip });
                    }
                }
                PuntKind::Arp | PuntKind::Icmp => {
                    let Some(info) = self.ports.get(port as usize) else {
                        continue;
                    };
                    if handle(&mut pkt, port, info.mac, &self.local, &self.neighbours, now)
                        == SlowPathOutcome::Reply
                    {
                        io.send(port, pkt);
                    }
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::VecPacket;
    use crate::pipeline::PortRole;
    use crate::pipeline::SlowPathRequests;
    use crate::runtime::requests::RequestSender;
    use crate::runtime::spsc::channel;
    use crate::wire::{arp, ethernet};
    use std::collections::VecDeque;

    #[derive(Default)]
    struct Io {
        punted: VecDeque<(PuntKind, PortId, VecPacket)>,
        sent: Vec<(PortId, Vec<u8>)>,
    }
    impl MainIo<VecPacket> for Io {
        fn recv_punted(&mut self) -> Option<(PuntKind, PortId, VecPacket)> {
            self.punted.pop_front()
        }
        fn send(&mut self, port: PortId, pkt: VecPacket) {
            self.sent.push((port, pkt.data().to_vec()));
        }
        fn send_copy(&mut self, port: PortId, frame: &[u8]) -> bool {
            self.sent.push((port, frame.to_vec()));
            true
        }
    }

    struct NoSas;
    impl SaControl for NoSas {
        fn handle(&mut self, _msg: Message) -> Message {
            Message::Error {
                reason: "no SA support".into(),
            }
        }
        fn dump_sas(&mut self) -> Result<Vec<SaCountersMsg>, String> {
            Ok(vec![])
        }
    }

    const OUT_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xb0];

    #[test]
    fn resolves_next_hops_once_and_answers_arp() {
        let (tx, rx) = channel(16);
        let mut worker = RequestSender::new(tx);
        let neighbours = Arc::new(NeighborTable::new(16));
        let mut main = MainLoop::new(
            None,
            LocalAddrs::new(["10.99.0.1".parse().unwrap()]),
            vec![
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
            ],
            vec![
                vec!["10.10.1.254".parse().unwrap()],
                vec!["10.99.0.1".parse().unwrap()],
            ],
            neighbours.clone(),
            vec![rx],
            WorkerCounters::default(),
            300,
        );
        let peer: IpAddr = "10.99.0.2".parse().unwrap();
        worker.resolve(1, peer);
        worker.new_iteration();
        worker.resolve(1, peer);
        let mut io = Io::default();
        assert_eq!(main.iterate(&mut io, &mut NoSas, 10), 2);
        assert_eq!(io.sent.len(), 1, "one ARP request for two asks");
        let (port, f) = &io.sent[0];
        assert_eq!(*port, 1);
        let r = arp::Repr::parse(&f[14..]).unwrap();
        assert_eq!(
            (r.operation, r.target_ip),
            (arp::OP_REQUEST, "10.99.0.2".parse().unwrap())
        );
        assert_eq!(r.sender_mac, OUT_MAC);
        // the peer's reply is punted back: learned, so the workers find it
        let mut reply = vec![0u8; 42];
        ethernet::write_header(
            &mut reply,
            OUT_MAC,
            [2, 0, 0, 0, 0, 2],
            ethernet::ETHERTYPE_ARP,
        );
        arp::Repr {
            operation: arp::OP_REPLY,
            sender_mac: [2, 0, 0, 0, 0, 2],
            sender_ip: "10.99.0.2".parse().unwrap(),
            target_mac: OUT_MAC,
            target_ip: "10.99.0.1".parse().unwrap(),
        }
        .emit(&mut reply[14..]);
        io.punted
            .push_back((PuntKind::Arp, 1, VecPacket::new(&reply)));
        main.iterate(&mut io, &mut NoSas, 11);
        assert_eq!(io.sent.len(), 1, "a reply is not answered");
        use crate::pipeline::Neighbours;
        assert_eq!(neighbours.lookup(1, peer), Some([2, 0, 0, 0, 0, 2]));
    }
}
