//! IKE datagrams as the dataplane carries them: whole IP packets (UDP 500, or UDP 4500 with
//! the four-byte non-ESP marker of RFC 3948 section 2.2) in `PuntedIke` and `SendIke`.
//! Control works with the ISAKMP message and the two socket addresses; this module turns one
//! into the other.

use std::net::{IpAddr, SocketAddr};

use dataplane::wire::{ipv4, ipv6, proto, udp};

/// IKE's port, and the NAT-T port whose IKE messages start with the non-ESP marker.
pub const IKE_PORT: u16 = 500;
pub const NATT_PORT: u16 = 4500;
/// RFC 3948 section 2.2: four zero bytes where ESP would have its SPI.
pub const NON_ESP_MARKER: [u8; 4] = [0; 4];

/// One ISAKMP message with its addresses, as seen from this gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IkeDatagram {
    /// Our address and port (the packet's destination when received).
    pub local: SocketAddr,
    /// The peer's address and port.
    pub remote: SocketAddr,
    /// The ISAKMP message, without the non-ESP marker.
    pub message: Vec<u8>,
}

/// Why a punted packet is not an IKE datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DatagramError {
    #[error("not an IPv4 or IPv6 packet")]
    NotIp,
    #[error("truncated or inconsistent IP header")]
    BadIp,
    #[error("not UDP")]
    NotUdp,
    #[error("truncated or inconsistent UDP header")]
    BadUdp,
    #[error("UDP {0}: not an IKE port")]
    NotIkePort(u16),
    #[error("UDP 4500 without the non-ESP marker")]
    NoMarker,
}

impl IkeDatagram {
    /// Reads a punted IP packet.
    pub fn parse(packet: &[u8]) -> Result<IkeDatagram, DatagramError> {
        let (src, dst, l4) = match packet.first().map(|b| b >> 4) {
            Some(4) => {
                let p = ipv4::Packet::new_checked(packet).map_err(|_| DatagramError::BadIp)?;
                if p.protocol() != proto::UDP {
                    return Err(DatagramError::NotUdp);
                }
                let l4 = &packet[p.header_len()..p.total_len()];
                (IpAddr::V4(p.src()), IpAddr::V4(p.dst()), l4)
            }
            Some(6) => {
                let p = ipv6::Packet::new_checked(packet).map_err(|_| DatagramError::BadIp)?;
                match p.upper_layer() {
                    Ok((proto::UDP, off)) => (
                        IpAddr::V6(p.src()),
                        IpAddr::V6(p.dst()),
                        &packet[off..p.total_len()],
                    ),
                    Ok(_) => return Err(DatagramError::NotUdp),
                    Err(_) => return Err(DatagramError::BadIp),
                }
            }
            _ => return Err(DatagramError::NotIp),
        };
        let u = udp::Packet::new_checked(l4).map_err(|_| DatagramError::BadUdp)?;
        let (sport, dport) = (u.src_port(), u.dst_port());
        let payload = u.payload();
        let message = match dport {
            IKE_PORT => payload,
            NATT_PORT => match payload.strip_prefix(&NON_ESP_MARKER[..]) {
                Some(m) => m,
                None => return Err(DatagramError::NoMarker),
            },
            p => return Err(DatagramError::NotIkePort(p)),
        };
        Ok(IkeDatagram {
            local: SocketAddr::new(dst, dport),
            remote: SocketAddr::new(src, sport),
            message: message.to_vec(),
        })
    }

    /// The IP packet that carries this message from `local` to `remote` (the non-ESP marker
    /// added on the NAT-T port: when the sender's port is 4500, or the receiver's is and the
    /// sender's is not 500, as for a peer behind a NAT that rewrote its 4500), checksums
    /// filled in.
    pub fn to_packet(&self) -> Vec<u8> {
        let (l, r) = (self.local.port(), self.remote.port());
        let natt = l == NATT_PORT || (l != IKE_PORT && r == NATT_PORT);
        let marker = if natt { &NON_ESP_MARKER[..] } else { &[][..] };
        udp_packet(self.local, self.remote, &[marker, &self.message])
    }
}

/// A NAT-keepalive (RFC 3948 section 2.3: one byte 0xFF, no marker) from `local` to
/// `remote`, both on the NAT-T port, as an IP packet for the dataplane to send.
pub fn nat_keepalive_packet(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    udp_packet(local, remote, &[&[0xFF]])
}

/// An IP packet carrying a UDP datagram whose payload is `parts` in order, checksums filled
/// in; empty for a mixed IPv4/IPv6 pair (which a received datagram or a crypto map cannot
/// give).
fn udp_packet(local: SocketAddr, remote: SocketAddr, parts: &[&[u8]]) -> Vec<u8> {
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let udp_len = udp::HEADER_LEN + payload_len;
    let ip_len = match local.ip() {
        IpAddr::V4(_) => ipv4::MIN_HEADER_LEN,
        IpAddr::V6(_) => ipv6::HEADER_LEN,
    };
    let mut p = vec![0u8; ip_len + udp_len];
    match (local.ip(), remote.ip()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => ipv4::Repr {
            src,
            dst,
            protocol: proto::UDP,
            payload_len: udp_len,
            ttl: 64,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: false,
        }
        .emit(&mut p),
        (IpAddr::V6(src), IpAddr::V6(dst)) => ipv6::Repr {
            src,
            dst,
            next_header: proto::UDP,
            payload_len: udp_len,
            hop_limit: 64,
            traffic_class: 0,
        }
        .emit(&mut p),
        _ => return Vec::new(),
    }
    let u = &mut p[ip_len..];
    udp::write_header(u, local.port(), remote.port(), udp_len as u16);
    let mut at = udp::HEADER_LEN;
    for part in parts {
        u[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    udp::Packet::new_unchecked(&mut p[ip_len..]).fill_checksum(local.ip(), remote.ip());
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dg(local: &str, remote: &str) -> IkeDatagram {
        IkeDatagram {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            message: (0..40u8).collect(),
        }
    }

    /// What the peer sends is what we build with the addresses swapped.
    fn as_received(d: &IkeDatagram) -> Vec<u8> {
        IkeDatagram {
            local: d.remote,
            remote: d.local,
            message: d.message.clone(),
        }
        .to_packet()
    }

    #[test]
    fn round_trips_on_500_and_4500_v4_and_v6() {
        for (l, r) in [
            ("10.99.0.1:500", "10.99.0.2:500"),
            ("10.99.0.1:4500", "192.0.2.7:61234"),
            ("[2001:db8::1]:500", "[2001:db8::2]:500"),
            ("[2001:db8::1]:4500", "[2001:db8::2]:4500"),
        ] {
            let d = dg(l, r);
            if d.remote.port() == d.local.port() {
                // parsed from our own packet the roles swap (a NATed peer's port is no IKE
                // port, so only when both use the same one)
                let back = IkeDatagram::parse(&d.to_packet()).unwrap();
                assert_eq!(back.local, d.remote);
                assert_eq!(back.remote, d.local);
                assert_eq!(back.message, d.message);
            }
            let rx = IkeDatagram::parse(&as_received(&d)).unwrap();
            assert_eq!(rx, d);
        }
    }

    #[test]
    fn checksums_and_marker_are_on_the_wire() {
        let d = dg("10.99.0.1:4500", "10.99.0.2:4500");
        let p = d.to_packet();
        assert_eq!(
            dataplane::wire::checksum::checksum(&p[..20]),
            0,
            "IPv4 header"
        );
        let u = udp::Packet::new_checked(&p[20..]).unwrap();
        assert!(u.verify_checksum(d.local.ip(), d.remote.ip()));
        assert_eq!(&u.payload()[..4], &NON_ESP_MARKER);
        assert_eq!(&u.payload()[4..], &d.message[..]);
    }

    #[test]
    fn a_nat_keepalive_is_one_0xff_byte_without_marker() {
        let (l, r) = (
            "10.99.0.1:4500".parse().unwrap(),
            "10.99.0.2:4500".parse().unwrap(),
        );
        let p = nat_keepalive_packet(l, r);
        assert_eq!(p.len(), 20 + 8 + 1);
        let u = udp::Packet::new_checked(&p[20..]).unwrap();
        assert!(u.verify_checksum(l.ip(), r.ip()));
        assert_eq!((u.src_port(), u.dst_port()), (4500, 4500));
        assert_eq!(u.payload(), &[0xFF]);
        // what the peer's side makes of it: not IKE
        assert_eq!(IkeDatagram::parse(&p), Err(DatagramError::NoMarker));
    }

    #[test]
    fn what_is_not_ike_is_refused() {
        let ok = as_received(&dg("10.99.0.1:500", "10.99.0.2:500"));
        assert!(IkeDatagram::parse(&ok).is_ok());
        assert_eq!(IkeDatagram::parse(&[]), Err(DatagramError::NotIp));
        assert_eq!(IkeDatagram::parse(&ok[..10]), Err(DatagramError::BadIp));
        let mut tcp = ok.clone();
        tcp[9] = 6;
        assert_eq!(IkeDatagram::parse(&tcp), Err(DatagramError::NotUdp));
        let other = as_received(&dg("10.99.0.1:53", "10.99.0.2:500"));
        assert_eq!(
            IkeDatagram::parse(&other),
            Err(DatagramError::NotIkePort(53))
        );
        // ESP in UDP (a non-zero SPI where the marker would be) is not IKE
        let mut esp = dg("10.99.0.1:4500", "10.99.0.2:4500");
        esp.message.clear();
        let mut p = as_received(&esp);
        p.extend_from_slice(&[0, 0, 1, 5]);
        let n = p.len() as u16;
        p[2..4].copy_from_slice(&n.to_be_bytes());
        p[24..26].copy_from_slice(&(n - 20).to_be_bytes());
        // (the marker we wrote is followed by the SPI: drop the marker to make it ESP)
        p.drain(28..32);
        let n = p.len() as u16;
        p[2..4].copy_from_slice(&n.to_be_bytes());
        p[24..26].copy_from_slice(&(n - 20).to_be_bytes());
        assert_eq!(IkeDatagram::parse(&p), Err(DatagramError::NoMarker));
        // a UDP length past the packet
        let mut long = ok.clone();
        long[24..26].copy_from_slice(&900u16.to_be_bytes());
        assert_eq!(IkeDatagram::parse(&long), Err(DatagramError::BadUdp));
    }
}
