//! The generator's test packets: plaintext IPv4/UDP flows with a stamp in the payload, the
//! peer-side SAs that encrypt and decrypt them with the dataplane's own ESP code, and the
//! checks on what comes back.
//!
//! Packet sizes are inner IP packet lengths (the plaintext packet as it enters or leaves the
//! tunnel), as in `benches/throughput.sh`; the frame on the inside link is 14 bytes longer,
//! the ESP frame on the outside link 14 + 20 + 8 + 8 + padding + 2 + 16 bytes longer.

use std::net::{IpAddr, Ipv4Addr};

use dataplane::config::ManualSa;
use dataplane::crypto::default_backend;
use dataplane::esp::{Direction, Lifetime, Sa, SaParams, Selector};

/// IPv4 + UDP headers in front of the stamp.
pub const STAMP_AT: usize = 28;
/// magic, tunnel, trial, spare (4 bytes each), then the TX timestamp (8).
pub const STAMP_LEN: usize = 24;
/// The smallest packet that holds headers and stamp.
pub const MIN_IP_LEN: usize = STAMP_AT + STAMP_LEN;
const MAGIC: u32 = 0x1b5e_c9e1;
const UDP_SPORT: u16 = 49152;
const UDP_DPORT: u16 = 9; // discard

/// What the generator writes into each packet and reads back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub tunnel: u32,
    /// The trial the packet belongs to: a late packet of an earlier trial is not counted.
    pub trial: u32,
    /// TSC at transmission.
    pub tsc: u64,
}

impl Stamp {
    /// Writes the stamp into the IP packet `ip` (at [`STAMP_AT`]).
    #[inline]
    pub fn write(&self, ip: &mut [u8]) {
        let s = &mut ip[STAMP_AT..STAMP_AT + STAMP_LEN];
        s[0..4].copy_from_slice(&MAGIC.to_be_bytes());
        s[4..8].copy_from_slice(&self.tunnel.to_be_bytes());
        s[8..12].copy_from_slice(&self.trial.to_be_bytes());
        s[12..16].copy_from_slice(&[0; 4]);
        s[16..24].copy_from_slice(&self.tsc.to_be_bytes());
    }

    /// The stamp of the IP packet `ip`, if it carries one.
    #[inline]
    pub fn read(ip: &[u8]) -> Option<Stamp> {
        let s = ip.get(STAMP_AT..STAMP_AT + STAMP_LEN)?;
        let word = |i: usize| u32::from_be_bytes([s[i], s[i + 1], s[i + 2], s[i + 3]]);
        if word(0) != MAGIC {
            return None;
        }
        let mut tsc = [0u8; 8];
        tsc.copy_from_slice(&s[16..24]);
        Some(Stamp {
            tunnel: word(4),
            trial: word(8),
            tsc: u64::from_be_bytes(tsc),
        })
    }
}

/// An IPv4/UDP packet of `len` bytes from `src` to `dst` with a zeroed stamp and a payload
/// pattern that depends on the tunnel (so a packet decrypted with the wrong SA or mixed up
/// between tunnels does not compare equal).
pub fn plaintext_ip(src: Ipv4Addr, dst: Ipv4Addr, len: usize, tunnel: u32) -> Vec<u8> {
    assert!(
        (MIN_IP_LEN..=9000).contains(&len),
        "IP length {len} outside {MIN_IP_LEN}..=9000"
    );
    let mut p = vec![0u8; len];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    p[4..6].copy_from_slice(&(tunnel as u16).to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let sum = ipv4_checksum(&p[..20]);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p[20..22].copy_from_slice(&UDP_SPORT.to_be_bytes());
    p[22..24].copy_from_slice(&UDP_DPORT.to_be_bytes());
    p[24..26].copy_from_slice(&((len - 20) as u16).to_be_bytes());
    // UDP checksum 0: none (IPv4 allows it), so the stamp can change per packet.
    for (i, b) in p[MIN_IP_LEN..].iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(31).wrapping_add(tunnel) as u8;
    }
    p
}

fn ipv4_checksum(h: &[u8]) -> u16 {
    let mut sum = 0u32;
    for w in h.chunks(2) {
        sum += u16::from_be_bytes([w[0], w[1]]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// `ip` behind an Ethernet header.
pub fn ethernet(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// True when `got` (a forwarded IP packet) is `sent` as the gateway should deliver it: the
/// same bytes except the stamp, the TTL (the same, or one less: ipsec-dataplane leaves it
/// alone on packets it encapsulates or decapsulates and decrements it on packets it forwards
/// in clear) and the header checksum that follows it.
pub fn same_plaintext(got: &[u8], sent: &[u8]) -> bool {
    got.len() == sent.len()
        && got.len() >= MIN_IP_LEN
        && got[..8] == sent[..8]
        && (got[8] == sent[8] || got[8] == sent[8].wrapping_sub(1))
        && got[9] == sent[9]
        && got[12..STAMP_AT] == sent[12..STAMP_AT]
        && got[MIN_IP_LEN..] == sent[MIN_IP_LEN..]
}

/// The plaintext flow of one tunnel: host .1 of its inside LAN to host .1 of the peer's LAN
/// (encap direction), as read from the gateway's own crypto-map selectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub inside_host: Ipv4Addr,
    pub remote_host: Ipv4Addr,
    pub peer: Ipv4Addr,
    pub gateway: Ipv4Addr,
    pub spi_out: u32,
    pub spi_in: u32,
}

impl Flow {
    /// The flow of a manually keyed tunnel with an IPv4 selector.
    pub fn of(m: &ManualSa) -> Result<Flow, String> {
        let sel = m
            .outbound
            .selectors
            .first()
            .ok_or("an SA without selectors")?;
        let v4 = |a: IpAddr| match a {
            IpAddr::V4(a) => Ok(a),
            IpAddr::V6(_) => Err(format!("SA 0x{:x}: IPv6 is not generated", m.outbound.spi)),
        };
        let host = |a: Ipv4Addr| Ipv4Addr::from(u32::from(a) + 1);
        Ok(Flow {
            inside_host: host(v4(sel.source.addr)?),
            remote_host: host(v4(sel.destination.addr)?),
            peer: v4(m.outbound.remote)?,
            gateway: v4(m.outbound.local)?,
            spi_out: m.outbound.spi,
            spi_in: m.inbound.spi,
        })
    }
}

/// The peer's side of a gateway SA: same SPI, keys and transform, the other direction, the
/// addresses swapped and the selectors mirrored. The generator keeps no anti-replay window
/// (it decrypts a sample) and no lifetime.
pub fn peer_view(gw: &SaParams) -> SaParams {
    let mut p = gw.clone();
    p.direction = match gw.direction {
        Direction::Inbound => Direction::Outbound,
        Direction::Outbound => Direction::Inbound,
    };
    p.local = gw.remote;
    p.remote = gw.local;
    p.selectors = gw.selectors.iter().map(Selector::mirror).collect();
    p.replay_window = 0;
    p.lifetime = Lifetime {
        seconds: 0,
        kilobytes: 0,
        soft_percent: 90,
    };
    p
}

/// The fast-path SA of `params`, with the backend the dataplane would pick.
pub fn build_sa(params: &SaParams, sa_id: u32) -> Result<Sa, String> {
    let backend = default_backend(params.transform)
        .ok_or_else(|| format!("no backend for {}", params.transform))?;
    Sa::new(params, sa_id, backend, 0).map_err(|e| e.to_string())
}

/// Inner packet sizes of one run: one size, or IMIX.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SizeMix {
    pub label: String,
    /// The sizes in sending order (the generator cycles through it).
    pub pattern: Vec<usize>,
}

impl SizeMix {
    /// `64`, `1420` or `imix`. IMIX is the simple 7:4:1 mix of 64, 576 and 1500-byte packets
    /// with 1420 in place of 1500, so that the ESP packet still fits a 1500-byte MTU, spread
    /// over a 12-packet cycle.
    pub fn parse(s: &str) -> Result<SizeMix, String> {
        if s.eq_ignore_ascii_case("imix") {
            let (a, b, c) = (64, 576, 1420);
            return Ok(SizeMix {
                label: "imix".into(),
                pattern: vec![a, b, a, a, b, a, c, a, b, a, b, a],
            });
        }
        let n: usize = s
            .parse()
            .map_err(|_| format!("size {s:?}: a number or imix"))?;
        if !(MIN_IP_LEN..=1420).contains(&n) {
            return Err(format!("size {n}: from {MIN_IP_LEN} to 1420 bytes"));
        }
        Ok(SizeMix {
            label: n.to_string(),
            pattern: vec![n],
        })
    }

    /// Mean inner packet length.
    pub fn mean(&self) -> f64 {
        self.pattern.iter().sum::<usize>() as f64 / self.pattern.len() as f64
    }

    /// The distinct sizes, ascending.
    pub fn distinct(&self) -> Vec<usize> {
        let mut v = self.pattern.clone();
        v.sort_unstable();
        v.dedup();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::packet::{PacketBuf, VecPacket};

    #[test]
    fn stamp_round_trip_and_payload_check() {
        let mut p = plaintext_ip(
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(100, 64, 0, 1),
            64,
            3,
        );
        assert_eq!(ipv4_checksum(&p[..20]), 0, "header checksum verifies");
        let s = Stamp {
            tunnel: 3,
            trial: 9,
            tsc: 0x0102_0304_0506_0708,
        };
        let sent = p.clone();
        s.write(&mut p);
        assert_eq!(Stamp::read(&p), Some(s));
        let mut fwd = p.clone();
        assert!(same_plaintext(&fwd, &sent));
        fwd[8] -= 1;
        assert!(same_plaintext(&fwd, &sent));
        fwd[8] -= 1;
        assert!(!same_plaintext(&fwd, &sent));
        fwd[8] += 1;
        fwd[60] ^= 1;
        assert!(!same_plaintext(&fwd, &sent));
        assert_eq!(Stamp::read(&sent), None, "a zeroed stamp has no magic");
    }

    #[test]
    fn peer_encrypts_what_the_gateway_decrypts() {
        let text = crate::lab::gateway_toml(&crate::lab::GatewaySpec {
            tunnels: 2,
            workers: 1,
            eal: vec![],
            inside_device: "net_null0".into(),
            outside_device: "net_null1".into(),
            channel: "/tmp/x.sock".into(),
            replay_window: Some(64),
            inside_next_hop_mac: [2, 0, 0, 0, 0, 2],
            outside_next_hop_mac: [2, 0, 0, 0, 1, 2],
            seed: 1,
            mbufs: 8192,
        });
        let c = dataplane::config::Config::parse("g.toml", &text).unwrap();
        let m = &c.manual_sas[1];
        let f = Flow::of(m).unwrap();
        assert_eq!(f.inside_host, Ipv4Addr::new(10, 0, 1, 1));
        // Peer -> gateway: the generator's outbound SA, the gateway's inbound one.
        let mut peer_out = build_sa(&peer_view(&m.inbound), 0).unwrap();
        let mut gw_in = build_sa(&m.inbound, 0).unwrap();
        let plain = plaintext_ip(f.remote_host, f.inside_host, 200, 1);
        let mut pkt = VecPacket::new(&plain);
        peer_out.encap(&mut pkt, 1500).unwrap();
        assert_eq!(&pkt.data()[20..24], &f.spi_in.to_be_bytes());
        gw_in
            .decap(&mut pkt, 0, 20)
            .expect("gateway opens the peer's ESP");
        assert_eq!(pkt.data(), &plain[..]);
        // Gateway -> peer, the other SA.
        let mut gw_out = build_sa(&m.outbound, 0).unwrap();
        let mut peer_in = build_sa(&peer_view(&m.outbound), 0).unwrap();
        let plain = plaintext_ip(f.inside_host, f.remote_host, 64, 1);
        let mut pkt = VecPacket::new(&plain);
        gw_out.encap(&mut pkt, 1500).unwrap();
        peer_in
            .decap(&mut pkt, 0, 20)
            .expect("peer opens the gateway's ESP");
        assert_eq!(pkt.data(), &plain[..]);
    }

    #[test]
    fn sizes() {
        assert_eq!(SizeMix::parse("128").unwrap().pattern, vec![128]);
        let imix = SizeMix::parse("IMIX").unwrap();
        assert_eq!(imix.pattern.len(), 12);
        assert_eq!(imix.pattern.iter().filter(|s| **s == 64).count(), 7);
        assert_eq!(imix.distinct(), vec![64, 576, 1420]);
        assert!(SizeMix::parse("40").is_err());
        assert!(SizeMix::parse("1500").is_err());
    }
}
