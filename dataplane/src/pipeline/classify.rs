//! First look at a received frame: what it is and where it goes next.
//!
//! Classification reads only the headers (Ethernet, IPv4/IPv6, the first bytes of UDP or
//! ESP) and never touches the payload, so it is cheap enough to run on every frame of a burst
//! before any crypto. It decides between the slow path (ARP, ICMP and IKE for the gateway,
//! handed to the main lcore), the inbound ESP path, and plaintext that the SPD must judge.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::counters::DropReason;
use crate::wire::{self, esp::classify_natt, esp::NattPayload, ipv4, ipv6};

/// IPv6 fragment extension header.
const EXT_FRAGMENT: u8 = 44;

/// Ethernet header length (no VLAN tag: tagged frames are not taken by the fast path).
pub const ETH_HLEN: usize = wire::ethernet::HEADER_LEN;
pub const ETHERTYPE_IPV4: u16 = wire::ethernet::ETHERTYPE_IPV4;
pub const ETHERTYPE_ARP: u16 = wire::ethernet::ETHERTYPE_ARP;
pub const ETHERTYPE_IPV6: u16 = wire::ethernet::ETHERTYPE_IPV6;

pub const PROTO_ICMP: u8 = wire::proto::ICMP;
pub const PROTO_TCP: u8 = wire::proto::TCP;
pub const PROTO_UDP: u8 = wire::proto::UDP;
pub const PROTO_ESP: u8 = wire::proto::ESP;
pub const PROTO_ICMPV6: u8 = wire::proto::ICMPV6;
pub const PROTO_SCTP: u8 = 132;

/// IKE's port.
pub const PORT_IKE: u16 = 500;
/// IKE and ESP-in-UDP after NAT detection (RFC 3948).
pub const PORT_NATT: u16 = 4500;

/// The addresses this gateway answers for, on all its ports. A handful per gateway, so a
/// linear scan is faster than any map.
#[derive(Clone, Debug, Default)]
pub struct LocalAddrs {
    addrs: Vec<IpAddr>,
}

impl LocalAddrs {
    /// The set made of `addrs`.
    pub fn new(addrs: impl IntoIterator<Item = IpAddr>) -> Self {
        LocalAddrs {
            addrs: addrs.into_iter().collect(),
        }
    }
    /// True when `ip` is one of ours.
    #[inline]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.addrs.contains(&ip)
    }
    /// All addresses.
    pub fn iter(&self) -> impl Iterator<Item = &IpAddr> {
        self.addrs.iter()
    }
}

/// The IP-level facts of a frame that the rest of the pipeline needs.
///
/// The addresses are kept as aligned 128-bit words (IPv4 in the low 32 bits) rather than as
/// `IpAddr`s: an `IpAddr` is 17 bytes aligned to 1, and copying a struct of two of them made
/// the compiler move them byte by byte and stall on the reloads, per packet. [`Self::src`]
/// and [`Self::dst`] give them back as `IpAddr`s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IpInfo {
    src: u128,
    dst: u128,
    /// Offset of the IP header in the frame.
    pub l3_off: usize,
    /// Offset of the transport header (after IPv6 extension headers).
    pub l4_off: usize,
    /// Length of the IP packet (from its header), which may be shorter than the frame
    /// (Ethernet padding).
    pub ip_len: usize,
    /// IPv6 (else IPv4).
    pub v6: bool,
    /// Transport protocol (after IPv6 extension headers).
    pub protocol: u8,
    /// Ports for TCP/UDP/SCTP first fragments, otherwise 0 (ICMP: type and code in
    /// `sport`, as the SPD of RFC 4301 uses them).
    pub sport: u16,
    pub dport: u16,
    /// IPv4 Don't Fragment bit (always true for IPv6, which routers never fragment).
    pub dont_fragment: bool,
    /// A fragment (IPv4 MF or offset, or an IPv6 fragment header).
    pub fragment: bool,
    /// TTL or hop limit.
    pub ttl: u8,
}

impl IpInfo {
    #[inline(always)]
    pub fn src(&self) -> IpAddr {
        self.addr(self.src)
    }
    #[inline(always)]
    pub fn dst(&self) -> IpAddr {
        self.addr(self.dst)
    }
    /// The source address as a word (IPv4 in the low 32 bits): what the SPD looks up.
    #[inline(always)]
    pub fn src_word(&self) -> u128 {
        self.src
    }
    #[inline(always)]
    pub fn dst_word(&self) -> u128 {
        self.dst
    }
    #[inline(always)]
    fn addr(&self, a: u128) -> IpAddr {
        if self.v6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::from(a as u32))
        }
    }
}

/// What kind of slow-path packet the main lcore receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PuntKind {
    /// ARP request or reply.
    Arp,
    /// ICMP or ICMPv6 to one of our addresses, or IPv6 neighbour discovery to a multicast
    /// address.
    Icmp,
    /// IKE on UDP 500, or on 4500 with the non-ESP marker.
    Ike,
}

/// The outcome of classification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Slow path: hand to the main lcore.
    Punt(PuntKind),
    /// ESP for us. `esp_off` is where the SPI starts; `udp` is true for ESP-in-UDP.
    Esp {
        ip: IpInfo,
        esp_off: usize,
        spi: u32,
        udp: bool,
    },
    /// An IP packet not for us: plaintext to protect, bypass or discard, or transit.
    Transit(IpInfo),
    /// Drop it, counted under this reason.
    Drop(DropReason),
}

#[inline]
fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads the IP header starting at `l3_off` (IPv4 or IPv6 by `ethertype`).
#[inline(always)]
pub fn parse_ip(frame: &[u8], l3_off: usize, ethertype: u16) -> Result<IpInfo, DropReason> {
    let mut info = IpInfo::default();
    parse_ip_into(frame, l3_off, ethertype, &mut info)?;
    Ok(info)
}

/// [`parse_ip`] into a caller's [`IpInfo`]. The fast path keeps one per burst and lends it
/// out: an `IpInfo` returned by value inside a `Result` or a [`Class`] was copied several
/// times per packet, and those copies, wider than the stores that had filled the fields,
/// stalled on store forwarding. On error `out` holds unspecified values.
#[inline(always)]
pub fn parse_ip_into(
    frame: &[u8],
    l3_off: usize,
    ethertype: u16,
    out: &mut IpInfo,
) -> Result<(), DropReason> {
    let ip = frame.get(l3_off..).ok_or(DropReason::Malformed)?;
    match ethertype {
        ETHERTYPE_IPV4 => parse_ipv4(ip, l3_off, out),
        ETHERTYPE_IPV6 => parse_ipv6(ip, l3_off, out),
        _ => Err(DropReason::Unsupported),
    }
}

/// Ports for TCP/UDP/SCTP, type and code for ICMP, of a transport header `l4` (the rest of
/// the IP packet); (0, 0) for later fragments (`first` false) and other protocols.
#[inline(always)]
fn ports(protocol: u8, l4: &[u8], first: bool) -> Result<(u16, u16), DropReason> {
    if !first {
        return Ok((0, 0));
    }
    match protocol {
        PROTO_TCP | PROTO_UDP | PROTO_SCTP => match l4 {
            [a, b, c, d, ..] => Ok((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d]))),
            _ => Err(DropReason::Malformed),
        },
        PROTO_ICMP | PROTO_ICMPV6 => match l4 {
            [t, c, ..] => Ok((*t as u16, *c as u16)),
            _ => Err(DropReason::Malformed),
        },
        _ => Ok((0, 0)),
    }
}

fn wire_error(e: wire::Error) -> DropReason {
    match e {
        wire::Error::Unrecognized => DropReason::Unsupported,
        _ => DropReason::Malformed,
    }
}

/// The IPv4 5-tuple of the packet at the start of `ip`, with the checks [`parse_ip`] makes:
/// (source, destination, protocol, source port, destination port), the ports as in
/// [`IpInfo::sport`]. The inbound policy check of decapsulated packets needs nothing else.
#[inline(always)]
pub fn ipv4_tuple(ip: &[u8]) -> Result<(u32, u32, u8, u16, u16), DropReason> {
    let p = ipv4::Packet::new_checked(ip).map_err(wire_error)?;
    let (hl, total, protocol) = (p.header_len(), p.total_len(), p.protocol());
    let (sport, dport) = ports(protocol, &ip[hl..total], p.frag_offset() == 0)?;
    Ok((be32(ip, 12), be32(ip, 16), protocol, sport, dport))
}

#[inline(always)]
fn parse_ipv4(ip: &[u8], l3_off: usize, out: &mut IpInfo) -> Result<(), DropReason> {
    let p = ipv4::Packet::new_checked(ip).map_err(wire_error)?;
    let (hl, total, protocol) = (p.header_len(), p.total_len(), p.protocol());
    let frag = p.frag_word();
    // Ports are in the first fragment only; later fragments match the SPD with ports 0.
    let first = frag & 0x1fff == 0;
    let (sport, dport) = ports(protocol, &ip[hl..total], first)?;
    // Field by field, each store as wide as the later loads of that field.
    out.l3_off = l3_off;
    out.l4_off = l3_off + hl;
    out.ip_len = total;
    out.src = be32(ip, 12) as u128;
    out.dst = be32(ip, 16) as u128;
    out.v6 = false;
    out.protocol = protocol;
    out.sport = sport;
    out.dport = dport;
    out.dont_fragment = frag & ipv4::FLAG_DF != 0;
    out.fragment = frag & (ipv4::FLAG_MF | 0x1fff) != 0;
    out.ttl = ip[8];
    Ok(())
}

fn parse_ipv6(ip: &[u8], l3_off: usize, out: &mut IpInfo) -> Result<(), DropReason> {
    let p = ipv6::Packet::new_checked(ip).map_err(wire_error)?;
    let (mut protocol, mut l4_off) = p.upper_layer().map_err(wire_error)?;
    let mut fragment = false;
    if protocol == EXT_FRAGMENT {
        // Fragment header: next header, reserved, offset/flags, identification.
        if l4_off + 8 > p.total_len() {
            return Err(DropReason::Malformed);
        }
        protocol = ip[l4_off];
        l4_off += 8;
        fragment = true;
    }
    // IPv6 fragments carry no ports in the SPD's view, first or not.
    let (sport, dport) = ports(protocol, &ip[l4_off..p.total_len()], !fragment)?;
    *out = IpInfo {
        l3_off,
        l4_off: l3_off + l4_off,
        ip_len: p.total_len(),
        src: u128::from(p.src()),
        dst: u128::from(p.dst()),
        v6: true,
        protocol,
        sport,
        dport,
        dont_fragment: true,
        fragment,
        ttl: p.hop_limit(),
    };
    Ok(())
}

/// What [`classify_into`] found; the IP facts are in the [`IpInfo`] it filled. Small, so
/// that it comes back in registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Slow path: hand to the main lcore.
    Punt(PuntKind),
    /// ESP for us, as [`Class::Esp`].
    Esp { esp_off: u32, spi: u32, udp: bool },
    /// An IP packet not for us, as [`Class::Transit`].
    Transit,
    /// Drop it, counted under this reason.
    Drop(DropReason),
}

/// Classifies one Ethernet frame.
#[inline]
pub fn classify(frame: &[u8], local: &LocalAddrs) -> Class {
    let mut ip = IpInfo::default();
    match classify_into(frame, local, &mut ip) {
        Kind::Punt(k) => Class::Punt(k),
        Kind::Drop(r) => Class::Drop(r),
        Kind::Transit => Class::Transit(ip),
        Kind::Esp { esp_off, spi, udp } => Class::Esp {
            ip,
            esp_off: esp_off as usize,
            spi,
            udp,
        },
    }
}

/// [`classify`] for the fast path: the IP facts go into `ip` (meaningful after `Esp` and
/// `Transit`), and only a small [`Kind`] is returned.
#[inline(always)]
pub fn classify_into(frame: &[u8], local: &LocalAddrs, ip: &mut IpInfo) -> Kind {
    if frame.len() < ETH_HLEN {
        return Kind::Drop(DropReason::Malformed);
    }
    let ethertype = be16(frame, 12);
    match ethertype {
        ETHERTYPE_ARP => return Kind::Punt(PuntKind::Arp),
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => {}
        _ => return Kind::Drop(DropReason::Unsupported),
    }
    if let Err(reason) = parse_ip_into(frame, ETH_HLEN, ethertype, ip) {
        return Kind::Drop(reason);
    }
    let for_us = local.contains(ip.dst());
    // IPv6 neighbour discovery goes to solicited-node / all-nodes multicast.
    if !for_us {
        if let IpAddr::V6(d) = ip.dst() {
            if d.is_multicast() {
                return if ip.protocol == PROTO_ICMPV6 && (133..=137).contains(&ip.sport) {
                    Kind::Punt(PuntKind::Icmp)
                } else {
                    Kind::Drop(DropReason::LocalUnhandled)
                };
            }
        }
        return Kind::Transit;
    }
    if ip.fragment {
        return Kind::Drop(DropReason::Fragment);
    }
    let end = ip.l3_off + ip.ip_len;
    match ip.protocol {
        PROTO_ESP => {
            if ip.l4_off + 8 > end {
                return Kind::Drop(DropReason::Malformed);
            }
            Kind::Esp {
                esp_off: ip.l4_off as u32,
                spi: be32(frame, ip.l4_off),
                udp: false,
            }
        }
        PROTO_UDP if ip.dport == PORT_IKE => Kind::Punt(PuntKind::Ike),
        PROTO_UDP if ip.dport == PORT_NATT => {
            let payload = ip.l4_off + 8;
            if payload > end {
                return Kind::Drop(DropReason::Malformed);
            }
            match classify_natt(&frame[payload..end]) {
                NattPayload::Keepalive => Kind::Drop(DropReason::NattKeepalive),
                NattPayload::Ike => Kind::Punt(PuntKind::Ike),
                NattPayload::Esp => Kind::Esp {
                    esp_off: payload as u32,
                    spi: be32(frame, payload),
                    udp: true,
                },
                NattPayload::Invalid => Kind::Drop(DropReason::Malformed),
            }
        }
        PROTO_ICMP | PROTO_ICMPV6 => Kind::Punt(PuntKind::Icmp),
        _ => Kind::Drop(DropReason::LocalUnhandled),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn eth(ethertype: u16) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn ipv4(src: [u8; 4], dst: [u8; 4], proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = eth(ETHERTYPE_IPV4);
        let total = 20 + payload.len();
        let mut h = [0u8; 20];
        h[0] = 0x45;
        h[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        h[6] = 0x40;
        h[8] = 64;
        h[9] = proto;
        h[12..16].copy_from_slice(&src);
        h[16..20].copy_from_slice(&dst);
        f.extend_from_slice(&h);
        f.extend_from_slice(payload);
        f
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    fn local() -> LocalAddrs {
        LocalAddrs::new(["10.99.0.1".parse().unwrap(), "fd00::1".parse().unwrap()])
    }

    const US: [u8; 4] = [10, 99, 0, 1];
    const PEER: [u8; 4] = [10, 99, 0, 2];

    #[test]
    fn arp_and_icmp_are_punted() {
        assert_eq!(
            classify(&eth(ETHERTYPE_ARP), &local()),
            Class::Punt(PuntKind::Arp)
        );
        let ping = ipv4(PEER, US, PROTO_ICMP, &[8, 0, 0, 0, 0, 1, 0, 1]);
        assert_eq!(classify(&ping, &local()), Class::Punt(PuntKind::Icmp));
    }

    #[test]
    fn ike_natt_keepalive_and_esp_in_udp_are_told_apart() {
        let ike500 = ipv4(PEER, US, PROTO_UDP, &udp(500, 500, &[1; 28]));
        assert_eq!(classify(&ike500, &local()), Class::Punt(PuntKind::Ike));
        let mut marker = vec![0u8; 4];
        marker.extend_from_slice(&[7; 28]);
        let ike4500 = ipv4(PEER, US, PROTO_UDP, &udp(4500, 4500, &marker));
        assert_eq!(classify(&ike4500, &local()), Class::Punt(PuntKind::Ike));
        let ka = ipv4(PEER, US, PROTO_UDP, &udp(4500, 4500, &[0xff]));
        assert_eq!(
            classify(&ka, &local()),
            Class::Drop(DropReason::NattKeepalive)
        );
        let esp = ipv4(
            PEER,
            US,
            PROTO_UDP,
            &udp(4500, 4500, &[0, 0, 1, 5, 0, 0, 0, 1, 9, 9]),
        );
        match classify(&esp, &local()) {
            Class::Esp {
                spi, udp, esp_off, ..
            } => {
                assert_eq!(spi, 0x105);
                assert!(udp);
                assert_eq!(esp_off, 14 + 20 + 8);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn esp_to_us_is_inbound_and_to_others_is_transit() {
        let esp = ipv4(PEER, US, PROTO_ESP, &[0, 0, 0, 105, 0, 0, 0, 1, 0, 0]);
        match classify(&esp, &local()) {
            Class::Esp { spi, udp, .. } => assert_eq!((spi, udp), (105, false)),
            other => panic!("{other:?}"),
        }
        let transit = ipv4(PEER, [10, 10, 2, 1], PROTO_ESP, &[0, 0, 0, 105, 0, 0, 0, 1]);
        assert!(matches!(classify(&transit, &local()), Class::Transit(_)));
    }

    #[test]
    fn transit_carries_the_five_tuple() {
        let f = ipv4(
            [10, 10, 1, 1],
            [10, 10, 2, 1],
            PROTO_UDP,
            &udp(1234, 53, &[0; 4]),
        );
        match classify(&f, &local()) {
            Class::Transit(ip) => {
                assert_eq!(ip.src(), IpAddr::from([10, 10, 1, 1]));
                assert_eq!(ip.dst(), IpAddr::from([10, 10, 2, 1]));
                assert_eq!((ip.protocol, ip.sport, ip.dport), (PROTO_UDP, 1234, 53));
                assert!(ip.dont_fragment);
                assert_eq!(ip.ip_len, 20 + 12);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn truncated_and_lying_headers_are_dropped() {
        let mut f = ipv4(PEER, US, PROTO_ESP, &[0, 0, 0, 105, 0, 0, 0, 1]);
        f.truncate(f.len() - 2); // total length now exceeds the frame
        assert_eq!(classify(&f, &local()), Class::Drop(DropReason::Malformed));
        assert_eq!(
            classify(&[0u8; 10], &local()),
            Class::Drop(DropReason::Malformed)
        );
        let short_esp = ipv4(PEER, US, PROTO_ESP, &[0, 0, 0, 105]);
        assert_eq!(
            classify(&short_esp, &local()),
            Class::Drop(DropReason::Malformed)
        );
        let tcp_to_us = ipv4(PEER, US, PROTO_TCP, &[0; 20]);
        assert_eq!(
            classify(&tcp_to_us, &local()),
            Class::Drop(DropReason::LocalUnhandled)
        );
    }

    #[test]
    fn ipv6_neighbour_solicitation_to_multicast_is_punted() {
        let mut f = eth(ETHERTYPE_IPV6);
        let mut h = [0u8; 40];
        h[0] = 0x60;
        h[4..6].copy_from_slice(&24u16.to_be_bytes());
        h[6] = PROTO_ICMPV6;
        h[7] = 255;
        h[8..24].copy_from_slice(&"fd00::2".parse::<Ipv6Addr>().unwrap().octets());
        h[24..40].copy_from_slice(&"ff02::1:ff00:1".parse::<Ipv6Addr>().unwrap().octets());
        f.extend_from_slice(&h);
        let mut ns = [0u8; 24];
        ns[0] = 135;
        f.extend_from_slice(&ns);
        assert_eq!(classify(&f, &local()), Class::Punt(PuntKind::Icmp));
    }
}
