//! Control's side of the channel to `ipsec-dataplane` (DESIGN.md "Control <-> dataplane"):
//! IKE datagrams both ways, SPIs, SAs pushed and deleted, and the dataplane's events
//! (Acquire, lifetime expiry) turned into typed values for the IKE daemon.

pub mod datagram;

use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use dataplane::channel::{
    Client, CountersMsg, Error as ChannelError, Message, SaCountersMsg, SpdRuleMsg,
};
use dataplane::esp::{Direction, SaParams};

pub use datagram::{DatagramError, IkeDatagram};

/// What the dataplane tells control unasked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An IKE message addressed to us, and the dataplane port it came in on.
    Ike { port: u16, datagram: IkeDatagram },
    /// A packet matched crypto-map entry `sa_id` that has no SA: start the exchange.
    Acquire {
        sa_id: u32,
        source: String,
        destination: String,
        protocol: u8,
    },
    /// An SA reached its soft (`hard == false`) or hard lifetime.
    Expire {
        spi: u32,
        direction: Direction,
        hard: bool,
        by_bytes: bool,
    },
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("dataplane channel: {0}")]
    Channel(#[from] ChannelError),
    #[error("dataplane refused: {0}")]
    Refused(String),
    #[error("unexpected reply from the dataplane: {0}")]
    Unexpected(String),
}

/// The dataplane's refusal of a dump as such; other channel errors as they are.
fn refusal(e: ChannelError) -> LinkError {
    match e {
        ChannelError::Refused(reason) => LinkError::Refused(reason),
        e => LinkError::Channel(e),
    }
}

/// A connection to the dataplane.
pub struct Dataplane {
    client: Client,
    /// Punted packets that were not IKE (counted; they should not happen).
    pub malformed_punts: u64,
}

impl Dataplane {
    /// Connects to the dataplane's channel socket.
    pub fn connect(path: impl AsRef<Path>) -> Result<Dataplane, LinkError> {
        Ok(Dataplane {
            client: Client::connect(path, "ipsec-control")?,
            malformed_punts: 0,
        })
    }

    /// What the dataplane called itself in its Hello (`ipsec-dataplane 0.1.0`).
    pub fn engine_name(&self) -> &str {
        self.client.peer_name()
    }

    /// The socket's receive timeout: how long [`Dataplane::next_event`] waits, and how long
    /// a request waits for its reply (see [`Dataplane::wait_event`]).
    pub fn set_event_timeout(&mut self, t: Duration) -> Result<(), LinkError> {
        self.client
            .connection()
            .set_timeout(t)
            .map_err(|e| LinkError::Channel(ChannelError::Io(e)))
    }

    fn expect_ack(&mut self, msg: &Message) -> Result<(), LinkError> {
        match self.client.request(msg)? {
            Message::Ack => Ok(()),
            Message::Error { reason } => Err(LinkError::Refused(reason)),
            other => Err(LinkError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Sends an IKE message (the dataplane routes it and resolves the next hop).
    pub fn send_ike(&mut self, datagram: &IkeDatagram) -> Result<(), LinkError> {
        self.expect_ack(&Message::SendIke {
            packet: datagram.to_packet(),
        })
    }

    /// Sends an IP packet that is not an IKE message (a NAT keepalive), routed like one.
    pub fn send_packet(&mut self, packet: Vec<u8>) -> Result<(), LinkError> {
        self.expect_ack(&Message::SendIke { packet })
    }

    /// A fresh inbound SPI, owned by `owner` (a worker) or by whichever the dataplane picks.
    pub fn allocate_spi(&mut self, owner: Option<u16>) -> Result<u32, LinkError> {
        match self.client.request(&Message::AllocateSpi { owner })? {
            Message::SpiAllocated { spi, .. } => Ok(spi),
            Message::Error { reason } => Err(LinkError::Refused(reason)),
            other => Err(LinkError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Installs an SA. Outbound SAs carry the SPD id of their crypto-map entry.
    pub fn add_sa(&mut self, sa_id: u32, params: SaParams) -> Result<(), LinkError> {
        self.expect_ack(&Message::AddSa { sa_id, params })
    }

    /// Deletes an SA (inbound by SPI, outbound by SPI and SPD id).
    pub fn delete_sa(
        &mut self,
        spi: u32,
        direction: Direction,
        sa_id: u32,
    ) -> Result<(), LinkError> {
        self.expect_ack(&Message::DeleteSa {
            spi,
            direction,
            sa_id,
        })
    }

    /// Replaces the dataplane's SPD (the static crypto-map rules and the dynamic ones).
    pub fn install_spd(&mut self, rules: Vec<SpdRuleMsg>) -> Result<(), LinkError> {
        self.expect_ack(&Message::InstallSpd { rules })
    }

    /// Every SA the dataplane holds, with its counters, selectors and remaining lifetime:
    /// one snapshot, read in pages (events that come between pages are kept for
    /// [`Dataplane::next_event`]).
    pub fn sas(&mut self) -> Result<Vec<SaCountersMsg>, LinkError> {
        self.client.dump_sas().map_err(refusal)
    }

    /// Every SA's counters and remaining lifetime, and the per-lcore counters (in pages,
    /// as [`Dataplane::sas`]).
    pub fn counters(&mut self) -> Result<CountersMsg, LinkError> {
        self.client.dump_counters().map_err(refusal)
    }

    /// The next event, waiting up to the event timeout; `None` when none came.
    pub fn next_event(&mut self) -> Result<Option<Event>, LinkError> {
        self.event(true)
    }

    /// The next event, waiting up to `wait` for one (poll(2) on the socket), while the
    /// socket's own timeout ([`Dataplane::set_event_timeout`]) stays what a request waits
    /// for its reply. A short receive timeout would serve both, but then a request whose
    /// reply is late (the dataplane's main lcore descheduled on a loaded host) fails and
    /// the IKE message it carried is lost until the peer retransmits, seconds later.
    pub fn wait_event(&mut self, wait: Duration) -> Result<Option<Event>, LinkError> {
        if let Some(e) = self.event(false)? {
            return Ok(Some(e));
        }
        let mut pfd = nix::libc::pollfd {
            fd: self.client.connection().as_raw_fd(),
            events: nix::libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the channel's socket, which outlives the call.
        let r =
            unsafe { nix::libc::poll(&mut pfd, 1, wait.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                return Ok(None);
            }
            return Err(LinkError::Channel(ChannelError::Io(e)));
        }
        self.event(false)
    }

    /// An event that is already there; `None` at once otherwise (to gather a batch).
    pub fn try_event(&mut self) -> Result<Option<Event>, LinkError> {
        self.event(false)
    }

    fn event(&mut self, wait: bool) -> Result<Option<Event>, LinkError> {
        loop {
            let m = if wait {
                self.client.event()?
            } else {
                self.client.try_event()?
            };
            let Some(m) = m else {
                return Ok(None);
            };
            match m {
                Message::PuntedIke { port, packet } => match IkeDatagram::parse(&packet) {
                    Ok(datagram) => return Ok(Some(Event::Ike { port, datagram })),
                    Err(e) => {
                        self.malformed_punts += 1;
                        log::warn!("punted packet on port {port} is not IKE: {e}");
                    }
                },
                Message::Acquire {
                    sa_id,
                    source,
                    destination,
                    protocol,
                } => {
                    return Ok(Some(Event::Acquire {
                        sa_id,
                        source,
                        destination,
                        protocol,
                    }))
                }
                Message::SoftExpire {
                    spi,
                    direction,
                    by_bytes,
                } => {
                    return Ok(Some(Event::Expire {
                        spi,
                        direction,
                        hard: false,
                        by_bytes,
                    }))
                }
                Message::HardExpire {
                    spi,
                    direction,
                    by_bytes,
                } => {
                    return Ok(Some(Event::Expire {
                        spi,
                        direction,
                        hard: true,
                        by_bytes,
                    }))
                }
                other => log::debug!("dataplane event ignored: {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::channel::{Server, VERSION};

    /// A dataplane stand-in on a real socket: answers Hello, acks SendIke after checking
    /// the packet parses, allocates SPI 0x1234, and sends a punted IKE packet, a punted
    /// non-IKE packet and an Acquire as events.
    #[test]
    fn ike_both_ways_spis_and_events_over_a_real_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dp.sock");
        let server = Server::bind(&path).unwrap();
        let incoming = IkeDatagram {
            local: "10.99.0.1:500".parse().unwrap(),
            remote: "10.99.0.2:500".parse().unwrap(),
            message: vec![7; 28],
        };
        // the packet as the peer sent it
        let punted = IkeDatagram {
            local: incoming.remote,
            remote: incoming.local,
            message: incoming.message.clone(),
        }
        .to_packet();
        let t = std::thread::spawn(move || {
            let mut c = loop {
                if let Some(c) = server.accept().unwrap() {
                    break c;
                }
                std::thread::sleep(Duration::from_millis(2));
            };
            let mut sent_ike = None;
            loop {
                match c.recv(false).unwrap() {
                    Some((id, Message::Hello { .. })) => c
                        .send(
                            id,
                            &Message::Hello {
                                version: VERSION,
                                name: "dp".into(),
                            },
                        )
                        .unwrap(),
                    Some((id, Message::SendIke { packet })) => {
                        sent_ike = Some(IkeDatagram::parse(&packet).unwrap());
                        c.send(id, &Message::Ack).unwrap();
                    }
                    Some((id, Message::AllocateSpi { .. })) => {
                        // events interleaved with the reply must not be lost
                        c.send(
                            0,
                            &Message::PuntedIke {
                                port: 1,
                                packet: punted.clone(),
                            },
                        )
                        .unwrap();
                        c.send(
                            0,
                            &Message::PuntedIke {
                                port: 1,
                                packet: vec![0x45, 0],
                            },
                        )
                        .unwrap();
                        c.send(
                            0,
                            &Message::Acquire {
                                sa_id: 3,
                                source: "10.10.1.1".into(),
                                destination: "10.10.2.1".into(),
                                protocol: 1,
                            },
                        )
                        .unwrap();
                        c.send(
                            id,
                            &Message::SpiAllocated {
                                spi: 0x1234,
                                owner: 0,
                            },
                        )
                        .unwrap();
                        return sent_ike;
                    }
                    Some((id, _)) => c
                        .send(
                            id,
                            &Message::Error {
                                reason: "unexpected".into(),
                            },
                        )
                        .unwrap(),
                    None => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        let mut dp = Dataplane::connect(&path).unwrap();
        let out = IkeDatagram {
            local: "10.99.0.1:4500".parse().unwrap(),
            remote: "10.99.0.2:4500".parse().unwrap(),
            message: vec![9; 40],
        };
        dp.send_ike(&out).unwrap();
        assert_eq!(dp.allocate_spi(None).unwrap(), 0x1234);
        let sent = t.join().unwrap().expect("the dataplane got the packet");
        // as the dataplane parses our packet, its local side is the peer
        assert_eq!((sent.local, sent.remote), (out.remote, out.local));
        assert_eq!(sent.message, out.message);
        dp.set_event_timeout(Duration::from_millis(200)).unwrap();
        assert_eq!(
            dp.next_event().unwrap(),
            Some(Event::Ike {
                port: 1,
                datagram: incoming
            })
        );
        assert!(matches!(
            dp.next_event().unwrap(),
            Some(Event::Acquire { sa_id: 3, .. })
        ));
        assert_eq!(dp.malformed_punts, 1);
    }
}
