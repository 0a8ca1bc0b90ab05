//! The load's sockets: one UDP socket per IKE port (500 and 4500) bound to the wildcard
//! address, which sends from any spoke's address (IP_PKTINFO on send) and tells on receipt
//! which spoke a datagram is for (IP_PKTINFO on receive); a raw socket (IPPROTO_RAW: the
//! packets carry their own IPv4 header) for the probes; and the traffic sink, a UDP socket
//! opened in another network namespace (the responder's LAN) by a thread that joins it.

use std::fs::File;
use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::libc;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    self, sendmsg, sendto, setsockopt, sockopt, AddressFamily, ControlMessage, ControlMessageOwned,
    MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn,
};

use crate::dplink::datagram::{IKE_PORT, NATT_PORT, NON_ESP_MARKER};
use crate::dplink::IkeDatagram;

/// Socket buffers: a thousand spokes answered at once must not overflow them.
const SOCKET_BUFFER: usize = 8 << 20;

fn in_addr(a: Ipv4Addr) -> libc::in_addr {
    libc::in_addr {
        s_addr: u32::from(a).to_be(),
    }
}

/// One IKE port's socket.
pub struct IkePort {
    socket: UdpSocket,
    port: u16,
}

impl IkePort {
    /// Binds 0.0.0.0:`port` with IP_PKTINFO and large buffers; reads time out after
    /// `read_timeout` (so that the reader can see a stop request).
    pub fn bind(port: u16, read_timeout: Duration) -> Result<IkePort, String> {
        let socket = UdpSocket::bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
            .map_err(|e| format!("UDP port {port}: {e}"))?;
        setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
            .map_err(|e| format!("IP_PKTINFO on port {port}: {e}"))?;
        // as root the limits of net.core.[rw]mem_max do not apply
        let _ = setsockopt(&socket, sockopt::RcvBufForce, &SOCKET_BUFFER)
            .or_else(|_| setsockopt(&socket, sockopt::RcvBuf, &SOCKET_BUFFER));
        let _ = setsockopt(&socket, sockopt::SndBufForce, &SOCKET_BUFFER)
            .or_else(|_| setsockopt(&socket, sockopt::SndBuf, &SOCKET_BUFFER));
        socket
            .set_read_timeout(Some(read_timeout))
            .map_err(|e| e.to_string())?;
        Ok(IkePort { socket, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sends an ISAKMP message from `d.local` (which must be one of this host's addresses)
    /// to `d.remote`, with the non-ESP marker on port 4500.
    pub fn send(&self, d: &IkeDatagram) -> Result<(), String> {
        let (IpAddr::V4(src), SocketAddr::V4(dst)) = (d.local.ip(), d.remote) else {
            return Err("IPv4 only".into());
        };
        let info = libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: in_addr(src),
            ipi_addr: in_addr(Ipv4Addr::UNSPECIFIED),
        };
        let marker = if self.port == NATT_PORT {
            &NON_ESP_MARKER[..]
        } else {
            &[][..]
        };
        let iov = [IoSlice::new(marker), IoSlice::new(&d.message)];
        let to = SockaddrIn::from(dst);
        sendmsg(
            self.socket.as_raw_fd(),
            &iov,
            &[ControlMessage::Ipv4PacketInfo(&info)],
            MsgFlags::empty(),
            Some(&to),
        )
        .map(|_| ())
        .map_err(|e| format!("send to {dst} from {src}: {e}"))
    }

    /// The next ISAKMP message (marker stripped on 4500; ESP in UDP and keepalives are
    /// skipped), or None after the read timeout.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<IkeDatagram>, String> {
        loop {
            let mut cmsg = nix::cmsg_space!(libc::in_pktinfo);
            let mut iov = [IoSliceMut::new(buf)];
            let r = socket::recvmsg::<SockaddrIn>(
                self.socket.as_raw_fd(),
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::empty(),
            );
            let msg = match r {
                Ok(m) => m,
                Err(nix::errno::Errno::EAGAIN) => return Ok(None),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(format!("receive on port {}: {e}", self.port)),
            };
            let len = msg.bytes;
            let Some(from) = msg.address else {
                continue;
            };
            let mut dst = None;
            if let Ok(cmsgs) = msg.cmsgs() {
                for c in cmsgs {
                    if let ControlMessageOwned::Ipv4PacketInfo(i) = c {
                        dst = Some(Ipv4Addr::from(u32::from_be(i.ipi_addr.s_addr)));
                    }
                }
            }
            let Some(dst) = dst else {
                continue;
            };
            let data = &buf[..len];
            let message = if self.port == NATT_PORT {
                match data.strip_prefix(&NON_ESP_MARKER[..]) {
                    Some(m) => m,
                    None => continue, // ESP in UDP or a NAT keepalive
                }
            } else {
                data
            };
            return Ok(Some(IkeDatagram {
                local: SocketAddr::new(IpAddr::V4(dst), self.port),
                remote: SocketAddr::V4(SocketAddrV4::new(from.ip(), from.port())),
                message: message.to_vec(),
            }));
        }
    }
}

/// The two IKE ports.
pub struct IkeSockets {
    pub main: IkePort,
    pub natt: IkePort,
}

impl IkeSockets {
    pub fn bind(read_timeout: Duration) -> Result<IkeSockets, String> {
        Ok(IkeSockets {
            main: IkePort::bind(IKE_PORT, read_timeout)?,
            natt: IkePort::bind(NATT_PORT, read_timeout)?,
        })
    }

    pub fn send(&self, d: &IkeDatagram) -> Result<(), String> {
        if d.local.port() == NATT_PORT {
            self.natt.send(d)
        } else {
            self.main.send(d)
        }
    }
}

/// A raw IPv4 socket whose packets carry their own header.
pub struct RawSender {
    fd: OwnedFd,
}

impl RawSender {
    pub fn open() -> Result<RawSender, String> {
        let fd = socket::socket(
            AddressFamily::Inet,
            SockType::Raw,
            SockFlag::empty(),
            SockProtocol::Raw,
        )
        .map_err(|e| format!("raw socket (needs root): {e}"))?;
        let _ = setsockopt(&fd, sockopt::SndBufForce, &SOCKET_BUFFER);
        Ok(RawSender { fd })
    }

    /// Sends a whole IPv4 packet to `to`.
    pub fn send(&self, to: Ipv4Addr, packet: &[u8]) -> Result<(), String> {
        let addr = SockaddrIn::from(SocketAddrV4::new(to, 0));
        sendto(self.fd.as_raw_fd(), packet, &addr, MsgFlags::empty())
            .map(|_| ())
            .map_err(|e| format!("raw send to {to}: {e}"))
    }
}

/// Binds a UDP socket in the network namespace `netns` (a name under /var/run/netns or a
/// path), from a thread that joins it: a socket stays in the namespace it was made in, so
/// the thread may then serve it from anywhere. The calling thread must be one that may
/// change namespace, i.e. a thread of its own (see [`crate::ikeload::sink`]).
pub fn bind_in_netns(netns: &str, addr: SocketAddrV4) -> Result<UdpSocket, String> {
    let path = if netns.contains('/') {
        Path::new(netns).to_path_buf()
    } else {
        Path::new("/var/run/netns").join(netns)
    };
    let f = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    setns(&f, CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("joining network namespace {}: {e}", path.display()))?;
    let s = UdpSocket::bind(addr).map_err(|e| format!("sink {addr} in {netns}: {e}"))?;
    let _ = setsockopt(&s, sockopt::RcvBufForce, &SOCKET_BUFFER);
    Ok(s)
}
