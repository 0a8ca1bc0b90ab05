//! Two gateways back to back through the whole pipeline, with the real ESP engine, crypto
//! backends, SPD, route and neighbour tables: gw1 (examples/secgw-peer.toml) encapsulates
//! host A's traffic, gw2 (its mirror image) decapsulates it and delivers it to host B.
//! Hostile variants of gw1's ESP frames (replayed, tampered, unknown SPI) are dropped by gw2
//! with the right reason, and traffic with no SA never leaves in clear.

use super::tests::{
    neighbours, prefix, udp_frame, MemIo, Requests, HOST_A_MAC, IN_MAC, OUT_MAC, PEER_MAC,
};
use super::worker::{poll_once, Staging, BURST};
use super::*;
use crate::config::Config;
use crate::crypto::default_backend;
use crate::esp::{Direction, Sa, SaParams, SaShard as EspShard};
use crate::l3::route::RouteEntry;
use crate::l3::{NeighborTable, RouteTable};
use crate::packet::VecPacket;
use crate::spd::Spd;

const EXAMPLE: &str = include_str!("../../../examples/secgw-peer.toml");
const HOST_B_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0b];

/// The peer's view of one of our SAs: same keys and SPI, the other direction.
fn mirrored(p: &SaParams) -> SaParams {
    let mut m = p.clone();
    m.direction = match p.direction {
        Direction::Inbound => Direction::Outbound,
        Direction::Outbound => Direction::Inbound,
    };
    m.local = p.remote;
    m.remote = p.local;
    m.selectors = p.selectors.iter().map(|s| s.mirror()).collect();
    m
}

fn sa(p: &SaParams, sa_id: u32) -> Box<Sa> {
    let backend = default_backend(p.transform).expect("a backend for the transform");
    Box::new(Sa::new(p, sa_id, backend, 0).expect("SA builds"))
}

struct Gateway {
    ports: Vec<PortInfo>,
    local: LocalAddrs,
    routes: RouteTable,
    neighbours: NeighborTable,
    spd: Spd,
    sas: EspShard,
    requests: Requests,
    counters: LcoreCounters,
    io: MemIo,
    staging: Staging<VecPacket>,
}

impl Gateway {
    fn poll(&mut self) -> usize {
        let mut cx = Context {
            me: 0,
            ports: &self.ports,
            local: &self.local,
            routes: &self.routes,
            neighbours: &self.neighbours,
            policy: &self.spd,
            sas: &mut self.sas,
            requests: &mut self.requests,
            counters: &self.counters,
            path_epoch: 0,
            hop_cache: Default::default(),
        };
        poll_once(&mut cx, &mut self.io, &mut self.staging)
    }
}

fn gateways() -> (Gateway, Gateway) {
    let c = Config::parse("secgw-peer.toml", EXAMPLE).expect("example config");
    // gw1: as configured
    let mut sas1 = EspShard::new(0, 1);
    let mut sas2 = EspShard::new(0, 1);
    for m in &c.manual_sas {
        sas1.insert(sa(&m.inbound, m.sa_id));
        sas1.insert(sa(&m.outbound, m.sa_id));
        sas2.insert(sa(&mirrored(&m.outbound), m.sa_id));
        sas2.insert(sa(&mirrored(&m.inbound), m.sa_id));
    }
    let gw1 = Gateway {
        ports: super::tests::ports(),
        local: LocalAddrs::new(["10.10.1.254".parse().unwrap(), "10.99.0.1".parse().unwrap()]),
        routes: RouteTable::from_config(&c),
        neighbours: neighbours(&[(1, "10.99.0.2", PEER_MAC), (0, "10.10.1.1", HOST_A_MAC)]),
        spd: c.spd(),
        sas: sas1,
        requests: Requests::default(),
        counters: LcoreCounters::default(),
        io: MemIo::new(2),
        staging: Staging::new(2, 1, BURST),
    };
    // gw2: 10.99.0.2 outside, 10.10.2.254/24 inside; its SPD protects 10.10.2.0/24 -> 10.10.1.0/24
    let mut routes = RouteTable::default();
    routes.insert(
        prefix("10.10.2.0/24"),
        RouteEntry {
            port: 0,
            gateway: None,
        },
    );
    routes.insert(
        prefix("10.99.0.0/24"),
        RouteEntry {
            port: 1,
            gateway: None,
        },
    );
    routes.insert(
        prefix("10.10.1.0/24"),
        RouteEntry {
            port: 1,
            gateway: Some("10.99.0.1".parse().unwrap()),
        },
    );
    let spd2 = Spd::new(c.spd_rules.iter().map(|r| crate::spd::SpdRule {
        selector: r.selector.mirror(),
        protect: r.protect,
        entry: r.entry,
    }));
    let gw2 = Gateway {
        ports: vec![
            PortInfo {
                mac: [2, 0, 0, 0, 2, 0xa0],
                mtu: 1500,
                role: PortRole::Inside,
            },
            PortInfo {
                mac: PEER_MAC,
                mtu: 1500,
                role: PortRole::Outside,
            },
        ],
        local: LocalAddrs::new(["10.10.2.254".parse().unwrap(), "10.99.0.2".parse().unwrap()]),
        routes,
        neighbours: neighbours(&[
            (0, "10.10.2.1", HOST_B_MAC),
            (0, "10.10.2.200", HOST_B_MAC),
            (1, "10.99.0.1", OUT_MAC),
        ]),
        spd: spd2,
        sas: sas2,
        requests: Requests::default(),
        counters: LcoreCounters::default(),
        io: MemIo::new(2),
        staging: Staging::new(2, 1, BURST),
    };
    (gw1, gw2)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn gw1_encrypts_gw2_decrypts_both_sas_and_hostile_copies_are_dropped() {
    let (mut gw1, mut gw2) = gateways();
    let secret = b"attack at dawn, bring snacks";
    // 10.10.2.1 is in ACL 101 (SA id of seq 10, esp-gcm 128); 10.10.2.200 in ACL 102 (cbc+sha)
    let f1 = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 1], secret, true);
    let f2 = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 200], secret, true);
    gw1.io.rx[0].push_back(VecPacket::new(&f1));
    gw1.io.rx[0].push_back(VecPacket::new(&f2));
    gw1.io.rx[0].push_back(VecPacket::new(&f1));
    gw1.poll();
    assert_eq!(
        gw1.counters.encaps.get(),
        3,
        "{:?}",
        gw1.counters.snapshot()
    );
    let wire: Vec<Vec<u8>> = gw1.io.tx[1].iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(wire.len(), 3);
    for (f, spi) in wire.iter().zip([5u32, 6, 5]) {
        assert_eq!(&f[0..6], &PEER_MAC);
        assert_eq!(f[14 + 9], 50, "ESP");
        assert_eq!(&f[26..30], &[10, 99, 0, 1]);
        assert_eq!(&f[30..34], &[10, 99, 0, 2]);
        assert_eq!(u32::from_be_bytes(f[34..38].try_into().unwrap()), spi);
        assert!(!contains(f, secret), "plaintext leaked");
    }
    // gw2 receives the first two, a replay of the first, the third tampered (a fresh
    // sequence number, so the ICV check catches it) and one with an unknown SPI
    let mut tampered = wire[2].clone();
    let n = tampered.len();
    tampered[n - 20] ^= 1;
    let mut unknown = wire[1].clone();
    unknown[34..38].copy_from_slice(&0x999u32.to_be_bytes());
    for f in [&wire[0], &wire[1], &wire[0], &tampered, &unknown] {
        gw2.io.rx[1].push_back(VecPacket::new(f));
    }
    gw2.poll();
    let delivered: Vec<Vec<u8>> = gw2.io.tx[0].iter().map(|p| p.data().to_vec()).collect();
    assert_eq!(delivered.len(), 2, "{:?}", gw2.counters.snapshot());
    for (d, orig) in delivered.iter().zip([&f1, &f2]) {
        assert_eq!(&d[0..6], &HOST_B_MAC);
        // the inner packet arrives unchanged (the ESP path does not touch the TTL)
        assert_eq!(&d[14..], &orig[14..]);
    }
    let s = gw2.counters.snapshot();
    assert_eq!(s.decaps, 2);
    assert_eq!(s.drops[DropReason::Replay as usize], 1);
    assert_eq!(s.drops[DropReason::AuthFailed as usize], 1);
    assert_eq!(s.drops[DropReason::UnknownSpi as usize], 1);
    assert!(gw2.io.tx[1].is_empty(), "nothing goes back out");
}

#[test]
fn reply_traffic_flows_back_and_oversized_df_packets_get_frag_needed() {
    let (mut gw1, mut gw2) = gateways();
    // host B answers: gw2 encrypts with the mirror of gw1's inbound SA, gw1 decrypts
    let back = udp_frame(PEER_MAC, [10, 10, 2, 1], [10, 10, 1, 1], b"pong", true);
    gw2.io.rx[0].push_back(VecPacket::new(&back));
    gw2.poll();
    let esp = gw2.io.tx[1].pop().expect("gw2 sent ESP");
    assert_eq!(
        u32::from_be_bytes(esp.data()[34..38].try_into().unwrap()),
        105
    );
    gw1.io.rx[1].push_back(esp);
    gw1.poll();
    let d = gw1.io.tx[0].pop().expect("delivered to host A");
    assert_eq!(&d.data()[14..], &back[14..]);
    assert_eq!(&d.data()[0..6], &HOST_A_MAC);

    // 1472 bytes of UDP payload with DF: 1500 inner bytes, too big once encrypted
    let big = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 1], &[0x55; 1472], true);
    gw1.io.rx[0].push_back(VecPacket::new(&big));
    gw1.poll();
    let icmp = gw1.io.tx[0].pop().expect("ICMP back to host A");
    let d = icmp.data();
    assert_eq!(d[14 + 9], 1, "ICMP");
    assert_eq!(&d[30..34], &[10, 10, 1, 1]);
    assert_eq!((d[34], d[35]), (3, 4), "frag needed");
    let mtu = u16::from_be_bytes([d[40], d[41]]) as usize;
    assert!(
        (1400..1500).contains(&mtu),
        "MTU left after ESP overhead: {mtu}"
    );
    assert!(gw1.io.tx[1].is_empty());

    // the same without DF: fragmented, each fragment encrypted, gw2 delivers both
    let big = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 1], &[0x55; 1472], false);
    gw1.io.rx[0].push_back(VecPacket::new(&big));
    gw1.poll();
    assert_eq!(gw1.io.tx[1].len(), 2, "{:?}", gw1.counters.snapshot());
    for f in gw1.io.tx[1].drain(..) {
        assert!(f.len() <= 14 + 1500);
        gw2.io.rx[1].push_back(f);
    }
    gw2.poll();
    let frags: Vec<_> = gw2.io.tx[0].drain(..).collect();
    assert_eq!(frags.len(), 2);
    let total: usize = frags.iter().map(|f| f.len() - 14 - 20).sum();
    assert_eq!(total, 8 + 1472, "the fragments carry the whole datagram");
}

#[test]
fn protected_traffic_without_an_sa_is_dropped_and_acquired() {
    let (mut gw1, _) = gateways();
    let mut empty = EspShard::new(0, 1);
    std::mem::swap(&mut gw1.sas, &mut empty);
    let f = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 1], b"secret", true);
    gw1.io.rx[0].push_back(VecPacket::new(&f));
    gw1.poll();
    assert!(gw1.io.tx[1].is_empty() && gw1.io.tx[0].is_empty());
    assert_eq!(gw1.counters.drops_of(DropReason::NoSa), 1);
    assert_eq!(gw1.requests.acquire.len(), 1);
}

#[test]
fn an_unresolved_peer_costs_no_sequence_number() {
    let (mut gw1, _) = gateways();
    gw1.neighbours = neighbours(&[]);
    let f = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 1], b"first", true);
    gw1.io.rx[0].push_back(VecPacket::new(&f));
    gw1.poll();
    assert_eq!(gw1.counters.drops_of(DropReason::NoNeighbour), 1);
    assert_eq!(gw1.counters.encaps.get(), 0);
    assert_eq!(
        gw1.requests.resolve,
        vec![(1, "10.99.0.2".parse().unwrap())]
    );
    assert!(gw1
        .neighbours
        .learn("10.99.0.2".parse().unwrap(), PEER_MAC, 1, 0));
    gw1.io.rx[0].push_back(VecPacket::new(&f));
    gw1.poll();
    let esp = gw1.io.tx[1].pop().expect("sent once resolved");
    assert_eq!(
        u32::from_be_bytes(esp.data()[38..42].try_into().unwrap()),
        1,
        "sequence 1"
    );
}

#[test]
fn the_cached_path_to_the_peer_follows_neighbour_changes() {
    let (mut gw1, _) = gateways();
    let peer: IpAddr = "10.99.0.2".parse().unwrap();
    // learned rather than static, so that it can change and age out
    gw1.neighbours = neighbours(&[(0, "10.10.1.1", HOST_A_MAC)]);
    assert!(gw1.neighbours.learn(peer, PEER_MAC, 1, 0));
    let f = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 1], b"x", true);
    let send = |gw: &mut Gateway| {
        gw.io.rx[0].push_back(VecPacket::new(&f));
        gw.poll();
        gw.io.tx[1].pop().map(|p| p.data()[0..6].to_vec())
    };
    assert_eq!(send(&mut gw1).as_deref(), Some(&PEER_MAC[..]));
    assert_eq!(
        send(&mut gw1).as_deref(),
        Some(&PEER_MAC[..]),
        "from the cache"
    );
    // the peer's router was replaced: the next packet goes to the new MAC
    let new_mac = [2, 0, 0, 0, 0x99, 0x99];
    assert!(gw1.neighbours.learn(peer, new_mac, 1, 10));
    assert_eq!(send(&mut gw1).as_deref(), Some(&new_mac[..]));
    // aged out: dropped before encryption and resolved again, not sent to the old MAC
    assert!(gw1.neighbours.age(10_000, 300) >= 1);
    assert_eq!(send(&mut gw1), None);
    assert_eq!(gw1.counters.drops_of(DropReason::NoNeighbour), 1);
    assert_eq!(gw1.requests.resolve, vec![(1, peer)]);
    assert_eq!(gw1.counters.encaps.get(), 3);
}

/// A burst longer than one pass of the pipeline (its classify / prefetch / encapsulate passes
/// work on 32 frames at a time) with two SAs interleaved and a frame for no SA among them:
/// every frame keeps its place, each SA's sequence numbers follow the frames' order across
/// the passes, and the peer takes every packet in order (its replay window would refuse a
/// reordering beyond the window, and counts none).
#[test]
fn bursts_longer_than_a_pass_keep_order_and_sequence_numbers() {
    let (mut gw1, mut gw2) = gateways();
    gw1.staging = Staging::new(2, 1, 80);
    gw2.staging = Staging::new(2, 1, 80);
    let frames: Vec<Vec<u8>> = (0..70u8)
        .map(|i| {
            let dst = match i % 7 {
                // 10.10.3.0/24 is in neither ACL: bypassed in clear (the SPD's default)
                6 => [10, 10, 3, 9],
                k if k % 2 == 0 => [10, 10, 2, 1],
                _ => [10, 10, 2, 200],
            };
            udp_frame(IN_MAC, [10, 10, 1, 1], dst, &[i; 24], true)
        })
        .collect();
    for f in &frames {
        gw1.io.rx[0].push_back(VecPacket::new(f));
    }
    assert_eq!(gw1.poll(), 70);
    let s = gw1.counters.snapshot();
    let protected = frames.len() - 10;
    assert_eq!(s.encaps as usize, protected, "{s:?}");
    let wire: Vec<Vec<u8>> = gw1.io.tx[1].iter().map(|p| p.data().to_vec()).collect();
    let esp: Vec<&Vec<u8>> = wire.iter().filter(|f| f[14 + 9] == 50).collect();
    assert_eq!(esp.len(), protected);
    // per SPI, sequence numbers 1, 2, 3, ... in the order the frames came
    let mut next = std::collections::HashMap::new();
    for f in &esp {
        let spi = u32::from_be_bytes(f[34..38].try_into().unwrap());
        let seq = u32::from_be_bytes(f[38..42].try_into().unwrap());
        let want = next.entry(spi).or_insert(1u32);
        assert_eq!(seq, *want, "SPI {spi:#x}");
        *want += 1;
    }
    assert_eq!(next.len(), 2, "both SAs used");
    for f in &esp {
        gw2.io.rx[1].push_back(VecPacket::new(f));
    }
    gw2.poll();
    let delivered: Vec<Vec<u8>> = gw2.io.tx[0].iter().map(|p| p.data().to_vec()).collect();
    let s2 = gw2.counters.snapshot();
    assert_eq!(delivered.len(), protected, "{s2:?}");
    assert_eq!(s2.drops.iter().sum::<u64>(), 0, "{s2:?}");
    // the inner packets arrive in the order they were sent
    let sent: Vec<&Vec<u8>> = frames.iter().filter(|f| f[14 + 18] != 3).collect();
    for (d, orig) in delivered.iter().zip(sent) {
        assert_eq!(&d[14..], &orig[14..]);
    }
}

/// ESP between two other hosts passing through (a transport-mode pair behind us) whose SPI
/// is none of ours is ordinary transit: the SPD protects it like any other inside traffic,
/// so it leaves inside our own ESP to the peer.
#[test]
fn someone_elses_esp_is_transit_and_protected_by_the_spd() {
    let (mut gw1, _) = gateways();
    let mut f = udp_frame(IN_MAC, [10, 10, 1, 1], [10, 10, 2, 1], &[0x5a; 32], true);
    f[14 + 9] = 50; // ESP, SPI 1111 << 16 | 2222: not one of ours
    let mut ip = crate::wire::ipv4::Packet::new_unchecked(&mut f[14..]);
    ip.fill_checksum();
    gw1.io.rx[0].push_back(VecPacket::new(&f));
    gw1.poll();
    let s = gw1.counters.snapshot();
    assert_eq!((s.encaps, s.decaps), (1, 0), "{s:?}");
    let out = gw1.io.tx[1]
        .first()
        .expect("sent to the peer")
        .data()
        .to_vec();
    assert_eq!(out[14 + 9], 50, "ESP");
    assert_eq!(
        u32::from_be_bytes(out[34..38].try_into().unwrap()),
        5,
        "our SA's SPI"
    );
    assert!(
        !contains(&out, &[0x5a; 32]),
        "the inner ESP is not sent as it was"
    );
}

/// The payload bound that picks which lines of the key schedule a packet's prefetch loads
/// (`Sa::payload_bound`) is never below the payload the packet then seals or opens, and at
/// most the Ethernet header and a trailer above it: for gw1's outbound SAs from the
/// plaintext frame, for gw2's inbound ones from the ESP frame, over inner packets of every
/// length up to 300 bytes, AES-GCM and AES-CBC alike.
#[test]
fn the_payload_bound_covers_every_payload_and_little_more() {
    let (mut gw1, gw2) = gateways();
    for len in 0..300usize {
        for (dst, spi) in [([10, 10, 2, 1], 5u32), ([10, 10, 2, 200], 6)] {
            let plain = udp_frame(IN_MAC, [10, 10, 1, 1], dst, &vec![0x42; len], true);
            gw1.io.rx[0].push_back(VecPacket::new(&plain));
            gw1.poll();
            let wire = gw1.io.tx[1].pop().expect("encapsulated").data().to_vec();
            let find = |sas: &EspShard, direction| {
                sas.iter()
                    .find(|sa| sa.spi == spi && sa.direction == direction)
                    .expect("the SA")
                    .payload_bound(if direction == Direction::Outbound {
                        plain.len()
                    } else {
                        wire.len()
                    })
            };
            let out = gw1.sas.iter().find(|sa| sa.spi == spi).unwrap();
            let (iv, icv) = (out.transform.iv_len(), out.transform.icv_len());
            // what the cipher seals: from after the IV to before the ICV
            let payload = wire.len() - 14 - 20 - 8 - iv - icv;
            for (bound, direction) in [
                (find(&gw1.sas, Direction::Outbound), "outbound"),
                (find(&gw2.sas, Direction::Inbound), "inbound"),
            ] {
                assert!(
                    bound >= payload && bound <= payload + 14 + 16,
                    "{direction} SA 0x{spi:x}, inner {len}: bound {bound}, payload {payload}"
                );
            }
        }
    }
}
