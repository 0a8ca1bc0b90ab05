//! ESP encapsulation and decapsulation on plain buffers: every transform, tunnel (IPv4, IPv6,
//! mixed families) and transport mode, NAT-T; the output checked field by field with the wire
//! views; hostile input dropped with the right reason and counted.

use std::net::IpAddr;

use dataplane::crypto::{self, Encryption, Integrity, Transform};
use dataplane::esp::{Direction, Keys, Lifetime, Mode, Prefix, Sa, SaParams, Selector, UdpEncap};
use dataplane::packet::{PacketBuf, VecPacket};
use dataplane::pipeline::{DropReason, EncapError};
use dataplane::wire::{checksum, esp, ipv4, ipv6, proto, udp};

const ETH: usize = 14;

fn transforms() -> Vec<Transform> {
    use Encryption::*;
    use Integrity::*;
    let mut v = vec![
        Transform {
            encryption: Gcm128,
            integrity: None,
        },
        Transform {
            encryption: Gcm256,
            integrity: None,
        },
        Transform {
            encryption: Null,
            integrity: Sha1,
        },
    ];
    for e in [AesCbc128, AesCbc192, AesCbc256, TripleDes, Des] {
        for i in [Sha1, Md5, Sha256] {
            v.push(Transform {
                encryption: e,
                integrity: i,
            });
        }
    }
    v
}

fn prefix(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix {
        addr: a.parse().unwrap(),
        len: l.parse().unwrap(),
    }
}

fn selector(src: &str, dst: &str) -> Selector {
    Selector {
        source: prefix(src),
        destination: prefix(dst),
        protocol: 0,
        source_ports: (0, 65535),
        destination_ports: (0, 65535),
    }
}

struct Case {
    t: Transform,
    mode: Mode,
    outer: (&'static str, &'static str),
    sel: Selector,
    udp: Option<UdpEncap>,
    esn: bool,
}

fn params(c: &Case, dir: Direction) -> SaParams {
    let key = |n: usize, seed: u8| {
        (0..n)
            .map(|i| seed.wrapping_add(i as u8 * 7))
            .collect::<Vec<_>>()
    };
    let (local, remote) = match dir {
        Direction::Outbound => (c.outer.0, c.outer.1),
        Direction::Inbound => (c.outer.1, c.outer.0),
    };
    SaParams {
        spi: 0x1001,
        direction: dir,
        transform: c.t,
        keys: Keys {
            encryption: key(c.t.encryption.key_len(), 3),
            authentication: key(c.t.integrity.key_len(), 91),
        },
        mode: c.mode,
        local: local.parse().unwrap(),
        remote: remote.parse().unwrap(),
        // The receiving gateway's SA is written from its own outbound view: mirror it.
        selectors: vec![if dir == Direction::Outbound {
            c.sel
        } else {
            c.sel.mirror()
        }],
        lifetime: Lifetime::default(),
        replay_window: 64,
        esn: c.esn,
        udp_encap: c.udp,
        crypto_map: "vpn".into(),
        crypto_map_seq: 10,
    }
}

fn pair(c: &Case) -> (Sa, Sa) {
    let b = crypto::default_backend(c.t).expect("a backend for every valid transform");
    let out = Sa::new(&params(c, Direction::Outbound), 1, b, 0).unwrap();
    let inb = Sa::new(&params(c, Direction::Inbound), 1, b, 0).unwrap();
    (out, inb)
}

/// An IPv4 UDP packet src -> dst with `n` bytes of payload.
fn udp4(src: &str, dst: &str, n: usize) -> Vec<u8> {
    let (s, d): (std::net::Ipv4Addr, std::net::Ipv4Addr) =
        (src.parse().unwrap(), dst.parse().unwrap());
    let mut b = vec![0u8; 20 + 8 + n];
    ipv4::Repr {
        src: s,
        dst: d,
        protocol: proto::UDP,
        payload_len: 8 + n,
        ttl: 63,
        dscp_ecn: 0xb8,
        ident: 7,
        dont_frag: true,
    }
    .emit(&mut b);
    udp::write_header(&mut b[20..], 1234, 5678, (8 + n) as u16);
    for (i, x) in b[28..].iter_mut().enumerate() {
        *x = i as u8;
    }
    b
}

fn udp6(src: &str, dst: &str, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; 40 + 8 + n];
    ipv6::Repr {
        src: src.parse().unwrap(),
        dst: dst.parse().unwrap(),
        next_header: proto::UDP,
        payload_len: 8 + n,
        hop_limit: 63,
        traffic_class: 0,
    }
    .emit(&mut b);
    udp::write_header(&mut b[40..], 1234, 5678, (8 + n) as u16);
    for (i, x) in b[48..].iter_mut().enumerate() {
        *x = (i * 3) as u8;
    }
    b
}

/// Puts an Ethernet header in front, as the receiving port would see the frame.
fn framed(ip: &[u8]) -> VecPacket {
    let mut f = vec![0u8; ETH];
    f[12] = if ip[0] >> 4 == 4 { 0x08 } else { 0x86 };
    f[13] = if ip[0] >> 4 == 4 { 0x00 } else { 0xdd };
    f.extend_from_slice(ip);
    VecPacket::new(&f)
}

/// Offset of the ESP header in an outer packet (no Ethernet).
fn esp_offset(outer: &[u8], udp: bool) -> usize {
    let ip = if outer[0] >> 4 == 4 {
        ipv4::Packet::new_checked(outer).unwrap().header_len()
    } else {
        40
    };
    ip + if udp { 8 } else { 0 }
}

/// Encapsulates `inner`, checks the outer packet, decapsulates it, and returns the result.
fn round_trip(c: &Case, out: &mut Sa, inb: &mut Sa, inner: &[u8]) -> Vec<u8> {
    let mut p = VecPacket::new(inner);
    out.encap(&mut p, 9000)
        .unwrap_or_else(|e| panic!("{:?} {:?}: {e:?}", c.t, c.mode));
    let o = p.data().to_vec();
    let e_at = esp_offset(&o, c.udp.is_some());
    // Outer header
    match o[0] >> 4 {
        4 => {
            let ip = ipv4::Packet::new_checked(&o[..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(ip.total_len(), o.len());
            assert_eq!(
                ip.protocol(),
                if c.udp.is_some() {
                    proto::UDP
                } else {
                    proto::ESP
                }
            );
            if c.mode == Mode::Tunnel {
                assert_eq!(IpAddr::V4(ip.src()), out.local());
                assert_eq!(IpAddr::V4(ip.dst()), out.remote());
                assert_eq!(ip.ttl(), 64);
                if inner[0] >> 4 == 4 {
                    assert!(ip.dont_frag(), "DF copied from the inner header");
                    assert_eq!(ip.dscp_ecn(), inner[1], "DSCP/ECN copied");
                }
            }
        }
        _ => {
            let ip = ipv6::Packet::new_checked(&o[..]).unwrap();
            assert_eq!(ip.total_len(), o.len());
            assert_eq!(
                ip.next_header(),
                if c.udp.is_some() {
                    proto::UDP
                } else {
                    proto::ESP
                }
            );
        }
    }
    if let Some(u) = c.udp {
        let up = udp::Packet::new_checked(&o[e_at - 8..]).unwrap();
        assert_eq!(
            (up.src_port(), up.dst_port()),
            (u.local_port, u.remote_port)
        );
        assert_eq!(up.len(), o.len() - (e_at - 8));
        let (s, d) = if o[0] >> 4 == 6 {
            let ip = ipv6::Packet::new_checked(&o[..]).unwrap();
            (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()))
        } else {
            let ip = ipv4::Packet::new_checked(&o[..]).unwrap();
            (IpAddr::V4(ip.src()), IpAddr::V4(ip.dst()))
        };
        assert!(up.verify_checksum(s, d));
        assert_eq!(esp::classify_natt(up.payload()), esp::NattPayload::Esp);
    }
    // ESP header and sizes
    let e = esp::Packet::new_checked(&o[e_at..]).unwrap();
    assert_eq!(e.spi(), 0x1001);
    assert_eq!(e.seq() as u64, out.sequence() & 0xffff_ffff);
    let enc = o.len() - e_at - 8 - c.t.iv_len() - c.t.icv_len();
    assert_eq!(enc % c.t.encryption.block_len(), 0, "padded to the block");
    if c.t.encryption.is_aead() {
        assert_eq!(
            &o[e_at + 8..e_at + 16],
            &out.sequence().to_be_bytes(),
            "GCM IV is the sequence number"
        );
    }
    // Decapsulate
    let mut f = framed(&o);
    inb.decap(&mut f, ETH, ETH + e_at)
        .unwrap_or_else(|e| panic!("{:?} {:?}: {e:?}", c.t, c.mode));
    f.data().to_vec()
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for t in transforms() {
        v.push(Case {
            t,
            mode: Mode::Tunnel,
            outer: ("192.0.2.1", "192.0.2.2"),
            sel: selector("10.1.0.0/24", "10.2.0.0/24"),
            udp: None,
            esn: false,
        });
        v.push(Case {
            t,
            mode: Mode::Tunnel,
            outer: ("2001:db8::1", "2001:db8::2"),
            sel: selector("2001:db8:1::/48", "2001:db8:2::/48"),
            udp: None,
            esn: true,
        });
        v.push(Case {
            t,
            mode: Mode::Transport,
            outer: ("10.1.0.5", "10.2.0.5"),
            sel: selector("10.1.0.5/32", "10.2.0.5/32"),
            udp: None,
            esn: false,
        });
        v.push(Case {
            t,
            mode: Mode::Tunnel,
            outer: ("192.0.2.1", "192.0.2.2"),
            sel: selector("10.1.0.0/24", "10.2.0.0/24"),
            udp: Some(UdpEncap {
                local_port: 4500,
                remote_port: 4500,
            }),
            esn: false,
        });
    }
    v
}

#[test]
fn every_transform_and_mode_round_trips() {
    for c in cases() {
        let (mut out, mut inb) = pair(&c);
        for n in [0usize, 1, 13, 64, 500, 1400] {
            let inner = if c.sel.source.addr.is_ipv4() {
                if c.mode == Mode::Transport {
                    udp4("10.1.0.5", "10.2.0.5", n)
                } else {
                    udp4("10.1.0.7", "10.2.0.9", n)
                }
            } else {
                udp6("2001:db8:1::7", "2001:db8:2::9", n)
            };
            let back = round_trip(&c, &mut out, &mut inb, &inner);
            assert_eq!(back, inner, "{:?} {:?} {} bytes", c.t, c.mode, n);
        }
        assert_eq!(out.counters().encaps, 6);
        assert_eq!(inb.counters().decaps, 6);
        assert_eq!(inb.counters().verify, 6);
    }
}

#[test]
fn mixed_families_and_ipv6_transport_and_ipv6_natt() {
    let t = Transform {
        encryption: Encryption::Gcm128,
        integrity: Integrity::None,
    };
    let v4_in_v6 = Case {
        t,
        mode: Mode::Tunnel,
        outer: ("2001:db8::1", "2001:db8::2"),
        sel: selector("10.1.0.0/24", "10.2.0.0/24"),
        udp: None,
        esn: false,
    };
    let (mut o, mut i) = pair(&v4_in_v6);
    let inner = udp4("10.1.0.1", "10.2.0.1", 100);
    assert_eq!(round_trip(&v4_in_v6, &mut o, &mut i, &inner), inner);

    let v6_in_v4 = Case {
        t,
        mode: Mode::Tunnel,
        outer: ("192.0.2.1", "192.0.2.2"),
        sel: selector("2001:db8:1::/48", "2001:db8:2::/48"),
        udp: None,
        esn: false,
    };
    let (mut o, mut i) = pair(&v6_in_v4);
    let inner = udp6("2001:db8:1::1", "2001:db8:2::1", 100);
    assert_eq!(round_trip(&v6_in_v4, &mut o, &mut i, &inner), inner);

    let t6 = Case {
        t,
        mode: Mode::Transport,
        outer: ("2001:db8:1::1", "2001:db8:2::1"),
        sel: selector("2001:db8:1::1/128", "2001:db8:2::1/128"),
        udp: None,
        esn: false,
    };
    let (mut o, mut i) = pair(&t6);
    let inner = udp6("2001:db8:1::1", "2001:db8:2::1", 77);
    assert_eq!(round_trip(&t6, &mut o, &mut i, &inner), inner);

    let n6 = Case {
        t,
        mode: Mode::Tunnel,
        outer: ("2001:db8::1", "2001:db8::2"),
        sel: selector("2001:db8:1::/48", "2001:db8:2::/48"),
        udp: Some(UdpEncap {
            local_port: 4500,
            remote_port: 4501,
        }),
        esn: false,
    };
    let (mut o, mut i) = pair(&n6);
    let inner = udp6("2001:db8:1::1", "2001:db8:2::1", 10);
    assert_eq!(round_trip(&n6, &mut o, &mut i, &inner), inner);
}

#[test]
fn transport_mode_rebuilds_a_valid_header() {
    let t = Transform {
        encryption: Encryption::AesCbc128,
        integrity: Integrity::Sha1,
    };
    let c = Case {
        t,
        mode: Mode::Transport,
        outer: ("10.1.0.5", "10.2.0.5"),
        sel: selector("10.1.0.5/32", "10.2.0.5/32"),
        udp: None,
        esn: false,
    };
    let (mut o, mut i) = pair(&c);
    let inner = udp4("10.1.0.5", "10.2.0.5", 40);
    let mut p = VecPacket::new(&inner);
    o.encap(&mut p, 1500).unwrap();
    let ip = ipv4::Packet::new_checked(p.data()).unwrap();
    assert_eq!(ip.protocol(), proto::ESP);
    assert_eq!(
        (ip.src(), ip.dst()),
        ("10.1.0.5".parse().unwrap(), "10.2.0.5".parse().unwrap())
    );
    assert_eq!(checksum::checksum(&p.data()[..20]), 0);
    let mut f = framed(p.data());
    i.decap(&mut f, ETH, ETH + 20).unwrap();
    assert_eq!(f.data(), &inner[..]);
    assert_eq!(checksum::checksum(&f.data()[..20]), 0);
}

#[test]
fn too_big_reports_the_mtu_left_after_esp() {
    let t = Transform {
        encryption: Encryption::AesCbc128,
        integrity: Integrity::Sha1,
    };
    let c = Case {
        t,
        mode: Mode::Tunnel,
        outer: ("192.0.2.1", "192.0.2.2"),
        sel: selector("10.1.0.0/24", "10.2.0.0/24"),
        udp: None,
        esn: false,
    };
    let (mut o, mut i) = pair(&c);
    let max = o.max_inner_len(1500);
    // 1500 - 20 (IP) - 8 (ESP) - 16 (IV) - 12 (ICV) = 1444 -> 1440 whole blocks -> 1438 inner
    assert_eq!(max, 1438);
    let fits = udp4("10.1.0.1", "10.2.0.1", max - 28);
    let mut p = VecPacket::new(&fits);
    o.encap(&mut p, 1500).unwrap();
    assert_eq!(
        p.len(),
        1496,
        "the largest packet that fits: 1440 whole blocks"
    );
    let mut f = framed(p.data());
    i.decap(&mut f, ETH, ETH + 20).unwrap();
    let big = udp4("10.1.0.1", "10.2.0.1", max - 27);
    let mut p = VecPacket::new(&big);
    assert_eq!(
        o.encap(&mut p, 1500),
        Err(EncapError::TooBig { max_inner: 1438 })
    );
    assert_eq!(p.data(), &big[..], "a refused packet is untouched");
    assert_eq!(o.counters().send_errors, 1);
}

/// Makes a valid ESP frame for the inbound SA, for the hostile tests to spoil.
fn esp_frame(out: &mut Sa, inner: &[u8]) -> Vec<u8> {
    let mut p = VecPacket::new(inner);
    out.encap(&mut p, 9000).unwrap();
    framed(p.data()).data().to_vec()
}

#[test]
fn hostile_input_is_dropped_and_counted() {
    let t = Transform {
        encryption: Encryption::Gcm128,
        integrity: Integrity::None,
    };
    let c = Case {
        t,
        mode: Mode::Tunnel,
        outer: ("192.0.2.1", "192.0.2.2"),
        sel: selector("10.1.0.0/24", "10.2.0.0/24"),
        udp: None,
        esn: false,
    };
    let (mut o, mut i) = pair(&c);
    let good = udp4("10.1.0.1", "10.2.0.1", 50);
    let at = ETH + 20;

    // replay
    let f1 = esp_frame(&mut o, &good);
    i.decap(&mut VecPacket::new(&f1), ETH, at).unwrap();
    assert_eq!(
        i.decap(&mut VecPacket::new(&f1), ETH, at),
        Err(DropReason::Replay)
    );

    // bad ICV (one flipped bit in the ciphertext), and the window did not move
    let mut f2 = esp_frame(&mut o, &good);
    f2[at + 20] ^= 1;
    assert_eq!(
        i.decap(&mut VecPacket::new(&f2), ETH, at),
        Err(DropReason::AuthFailed)
    );
    f2[at + 20] ^= 1;
    i.decap(&mut VecPacket::new(&f2), ETH, at).unwrap();

    // truncated: shorter than header + IV + ICV, and a length that lies
    let f3 = esp_frame(&mut o, &good);
    let mut short = f3[..at + 20].to_vec();
    let l = (short.len() - ETH) as u16;
    short[ETH + 2..ETH + 4].copy_from_slice(&l.to_be_bytes());
    short[ETH + 10..ETH + 12].fill(0);
    let cs = checksum::checksum(&short[ETH..ETH + 20]);
    short[ETH + 10..ETH + 12].copy_from_slice(&cs.to_be_bytes());
    assert_eq!(
        i.decap(&mut VecPacket::new(&short), ETH, at),
        Err(DropReason::Malformed)
    );
    assert_eq!(
        i.decap(&mut VecPacket::new(&f3[..f3.len() - 1]), ETH, at),
        Err(DropReason::Malformed)
    );

    // inner packet outside the SA's policy (sent by an SA whose selectors are wider)
    let wide = Case {
        sel: selector("10.0.0.0/8", "10.0.0.0/8"),
        ..c
    };
    let (mut o2, _) = pair(&wide);
    let f4 = esp_frame(&mut o2, &udp4("10.9.0.1", "10.2.0.1", 10));
    // o2 shares keys and SPI with o (same seeds), but its sequence restarts at 1: use a
    // fresh receiver so replay does not hide the policy check.
    let (_, mut i2) = pair(&c);
    assert_eq!(
        i2.decap(&mut VecPacket::new(&f4), ETH, at),
        Err(DropReason::PolicyMismatch)
    );

    assert_eq!(i.counters().recv_errors, 4);
    let names: Vec<_> = i.counters().drops_by_name().collect();
    assert!(names.contains(&("replay", 1)), "{names:?}");
    assert!(names.contains(&("auth-failed", 1)), "{names:?}");
    assert!(names.contains(&("malformed", 2)), "{names:?}");
    assert_eq!(
        i2.counters().drops_by_name().collect::<Vec<_>>(),
        vec![("policy-mismatch", 1)]
    );
}

#[test]
fn bad_padding_is_refused_after_authentication() {
    // esp-null + HMAC lets the test write its own trailer and a valid ICV.
    let t = Transform {
        encryption: Encryption::Null,
        integrity: Integrity::Sha1,
    };
    let c = Case {
        t,
        mode: Mode::Tunnel,
        outer: ("192.0.2.1", "192.0.2.2"),
        sel: selector("10.1.0.0/24", "10.2.0.0/24"),
        udp: None,
        esn: false,
    };
    let (mut o, mut i) = pair(&c);
    // 30-byte inner packet: 30 + 2 = 32, no padding; use 29 so that one pad byte is written
    let inner = udp4("10.1.0.1", "10.2.0.1", 1);
    let mut p = VecPacket::new(&inner);
    o.encap(&mut p, 1500).unwrap();
    let mut f = framed(p.data()).data().to_vec();
    let icv_at = f.len() - 12;
    // trailer: [pad 1][pad len 1][next 4]; make the pad byte 9
    assert_eq!(&f[icv_at - 3..icv_at], &[1, 1, 4]);
    f[icv_at - 3] = 9;
    // recompute the ICV with the same keys: seal again through a second outbound SA
    let key: Vec<u8> = (0..20).map(|i| 91u8.wrapping_add(i as u8 * 7)).collect();
    let b = crypto::default_backend(t).unwrap();
    let cipher = b.cipher(t, &[], &key).unwrap();
    cipher.seal(&mut f[ETH + 20..], None);
    assert_eq!(
        i.decap(&mut VecPacket::new(&f), ETH, ETH + 20),
        Err(DropReason::BadPadding)
    );
}

#[test]
fn sequence_exhaustion_and_hard_lifetime_stop_the_sa() {
    let t = Transform {
        encryption: Encryption::Gcm128,
        integrity: Integrity::None,
    };
    let c = Case {
        t,
        mode: Mode::Tunnel,
        outer: ("192.0.2.1", "192.0.2.2"),
        sel: selector("10.1.0.0/24", "10.2.0.0/24"),
        udp: None,
        esn: false,
    };
    let mut p = params(&c, Direction::Outbound);
    p.lifetime = Lifetime {
        seconds: 0,
        kilobytes: 1,
        soft_percent: 50,
    };
    let mut o = Sa::new(&p, 1, crypto::default_backend(t).unwrap(), 0).unwrap();
    let inner = udp4("10.1.0.1", "10.2.0.1", 600);
    o.encap(&mut VecPacket::new(&inner), 1500).unwrap();
    assert_eq!(
        o.poll_lifetime(1),
        Some(dataplane::esp::lifetime::LifetimeEvent::Soft { by_bytes: true })
    );
    o.encap(&mut VecPacket::new(&inner), 1500).unwrap(); // crosses 1 KB
    assert_eq!(
        o.encap(&mut VecPacket::new(&inner), 1500),
        Err(EncapError::Drop(DropReason::LifetimeExpired))
    );
    assert_eq!(
        o.poll_lifetime(2),
        Some(dataplane::esp::lifetime::LifetimeEvent::Hard { by_bytes: true })
    );
}
