use super::*;
use crate::crypto::{Encryption, Integrity, Transform};
use crate::esp::{Keys, Lifetime, Mode, Prefix};

fn params() -> SaParams {
    let p = |s: &str, l| Prefix {
        addr: s.parse().unwrap(),
        len: l,
    };
    SaParams {
        spi: 0x1234,
        direction: Direction::Outbound,
        transform: Transform {
            encryption: Encryption::AesCbc128,
            integrity: Integrity::Sha1,
        },
        keys: Keys {
            encryption: vec![7; 16],
            authentication: vec![9; 20],
        },
        mode: Mode::Tunnel,
        local: "192.0.2.1".parse().unwrap(),
        remote: "192.0.2.2".parse().unwrap(),
        selectors: vec![Selector {
            source: p("10.1.0.0", 24),
            destination: p("10.2.0.0", 24),
            protocol: 0,
            source_ports: (0, 65535),
            destination_ports: (0, 65535),
        }],
        lifetime: Lifetime::default(),
        replay_window: 64,
        esn: true,
        udp_encap: None,
        crypto_map: "vpn".into(),
        crypto_map_seq: 10,
    }
}

fn all_messages() -> Vec<Message> {
    vec![
        Message::Hello {
            version: VERSION,
            name: "t".into(),
        },
        Message::AllocateSpi { owner: Some(1) },
        Message::SpiAllocated { spi: 5, owner: 1 },
        Message::AddSa {
            sa_id: 3,
            params: params(),
        },
        Message::UpdateSa {
            sa_id: 3,
            params: params(),
        },
        Message::DeleteSa {
            spi: 5,
            direction: Direction::Inbound,
            sa_id: 3,
        },
        Message::InstallSpd {
            rules: vec![SpdRuleMsg {
                selector: params().selectors[0],
                protect: Some(3),
                entry: 0,
            }],
        },
        Message::DumpSas,
        Message::SasPage {
            page: PageInfo {
                index: 0,
                total: 1,
                last: true,
            },
            sas: vec![SaCountersMsg {
                spi: 5,
                encaps: 3,
                ..Default::default()
            }],
        },
        Message::DumpCounters,
        Message::CountersPage {
            page: PageInfo {
                index: 2,
                total: 900,
                last: false,
            },
            sas: vec![SaCountersMsg {
                drops: [("replay".to_string(), 2)].into_iter().collect(),
                ..Default::default()
            }],
            lcores: vec![LcoreCountersMsg {
                rx: 10,
                ..Default::default()
            }],
        },
        Message::Ack,
        Message::Error {
            reason: "no".into(),
        },
        Message::Acquire {
            sa_id: 1,
            source: "10.1.0.1".into(),
            destination: "10.2.0.1".into(),
            protocol: 1,
        },
        Message::SoftExpire {
            spi: 1,
            direction: Direction::Inbound,
            by_bytes: false,
        },
        Message::HardExpire {
            spi: 1,
            direction: Direction::Outbound,
            by_bytes: true,
        },
        Message::PuntedIke {
            port: 1,
            packet: vec![1, 2, 3],
        },
        Message::SendIke { packet: vec![4, 5] },
    ]
}

#[test]
fn every_message_round_trips() {
    for (i, m) in all_messages().into_iter().enumerate() {
        let f = encode(i as u32, &m);
        let (id, back) = decode(&f).unwrap();
        assert_eq!(id, i as u32);
        assert_eq!(back, m);
    }
}

#[test]
fn bad_frames_are_errors_not_panics() {
    let good = encode(
        7,
        &Message::AddSa {
            sa_id: 1,
            params: params(),
        },
    );
    assert!(matches!(decode(&good[..10]), Err(Error::Truncated)));
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(matches!(decode(&bad), Err(Error::BadMagic)));
    let mut bad = good.clone();
    bad[5] = 9;
    assert!(matches!(decode(&bad), Err(Error::Version(_))));
    assert!(matches!(
        decode(&good[..good.len() - 1]),
        Err(Error::BadLength(_))
    ));
    let mut bad = good.clone();
    bad[7] = 1; // kind says Hello
    assert!(matches!(decode(&bad), Err(Error::KindMismatch(1))));
    // garbage payloads of every length never panic
    for n in 0..64 {
        let mut f = encode(1, &Message::Ack);
        f.truncate(HEADER_LEN);
        f[12..16].copy_from_slice(&(n as u32).to_be_bytes());
        f.extend((0..n).map(|i| (i * 37 + 11) as u8));
        let _ = decode(&f);
    }
}

#[test]
fn keys_are_redacted_in_debug() {
    let s = format!(
        "{:?}",
        Message::AddSa {
            sa_id: 1,
            params: params()
        }
    );
    assert!(s.contains("<16 bytes>") && !s.contains("[7, 7"), "{s}");
}

#[test]
fn request_reply_over_a_real_socket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dp.sock");
    let server = Server::bind(&path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let t = std::thread::spawn(move || {
        let mut c = loop {
            if let Some(c) = server.accept().unwrap() {
                break c;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let mut served = 0;
        while served < 2 {
            match c.recv(false).unwrap() {
                Some((id, Message::Hello { .. })) => {
                    c.send(
                        id,
                        &Message::Hello {
                            version: VERSION,
                            name: "dp".into(),
                        },
                    )
                    .unwrap();
                    served += 1;
                }
                Some((id, Message::AllocateSpi { .. })) => {
                    c.send(
                        0,
                        &Message::SoftExpire {
                            spi: 9,
                            direction: Direction::Inbound,
                            by_bytes: false,
                        },
                    )
                    .unwrap();
                    c.send(id, &Message::SpiAllocated { spi: 7, owner: 1 })
                        .unwrap();
                    served += 1;
                }
                Some((id, _)) => c
                    .send(
                        id,
                        &Message::Error {
                            reason: "unexpected".into(),
                        },
                    )
                    .unwrap(),
                None => std::thread::sleep(std::time::Duration::from_millis(1)),
            }
        }
    });
    let mut client = Client::connect(&path, "test").unwrap();
    assert_eq!(
        client
            .request(&Message::AllocateSpi { owner: None })
            .unwrap(),
        Message::SpiAllocated { spi: 7, owner: 1 }
    );
    // the event sent before the reply was kept, not skipped
    assert_eq!(
        client.event().unwrap(),
        Some(Message::SoftExpire {
            spi: 9,
            direction: Direction::Inbound,
            by_bytes: false,
        })
    );
    t.join().unwrap();
}

/// `n` SAs as a hub's dataplane holds them: a pair per spoke (inbound and outbound), each
/// with its own SPI, SA id, peer and selector, counters and remaining lifetime.
pub(crate) fn sample_sas(n: u32) -> Vec<SaCountersMsg> {
    (0..n)
        .map(|i| {
            let spoke = i / 2;
            let inbound = i % 2 == 0;
            let peer = std::net::Ipv4Addr::from(0xc612_0000 + spoke);
            let lan = std::net::Ipv4Addr::from(0xac10_0000 + (spoke << 8));
            SaCountersMsg {
                spi: if inbound { 0x1000_0000 } else { 0x2000_0000 } + spoke,
                direction: Some(if inbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                }),
                sa_id: 100 + spoke,
                crypto_map: "dynmap".into(),
                crypto_map_seq: 10,
                local: "10.99.0.1".into(),
                remote: peer.to_string(),
                transform: "esp-gcm 128".into(),
                selectors: vec![Selector {
                    source: Prefix {
                        addr: "10.0.0.0".parse().unwrap(),
                        len: 8,
                    },
                    destination: Prefix {
                        addr: lan.into(),
                        len: 24,
                    },
                    protocol: 0,
                    source_ports: (0, 65535),
                    destination_ports: (0, 65535),
                }],
                backend: "ring".into(),
                owner: (i % 4) as u16,
                encaps: i as u64,
                encrypt: i as u64,
                decaps: 2 * i as u64,
                bytes: 1500 * i as u64,
                remaining_seconds: 3600,
                remaining_kilobytes: 4_608_000,
                ..Default::default()
            }
        })
        .collect()
}

fn pages_of(dump: paging::Dump) -> Vec<Message> {
    let mut pages = paging::DumpPages::new(5, dump);
    std::iter::from_fn(|| pages.next_message()).collect()
}

#[test]
fn a_dump_of_25000_sas_is_cut_into_bounded_pages_and_put_back_together() {
    let sas = sample_sas(25_000);
    let mut pages = paging::DumpPages::new(9, paging::Dump::Sas(sas.clone()));
    let mut frames = Vec::new();
    while let Some(f) = pages.next_frame() {
        frames.push(f);
    }
    assert!(pages.finished());
    assert!(frames.len() > 50, "{} pages", frames.len());
    let mut reader = paging::DumpReader::new();
    for (i, f) in frames.iter().enumerate() {
        assert!(
            f.len() <= HEADER_LEN + PAGE_BYTES,
            "page {i}: {} bytes",
            f.len()
        );
        let (id, m) = decode(f).unwrap();
        assert_eq!(id, 9);
        let Message::SasPage { page, .. } = &m else {
            panic!("{m:?}")
        };
        assert_eq!((page.index, page.total), (i as u32, 25_000));
        assert_eq!(page.last, i + 1 == frames.len());
        assert_eq!(reader.feed(m).unwrap(), i + 1 == frames.len());
    }
    assert_eq!(reader.finish().unwrap(), paging::Dump::Sas(sas));
}

#[test]
fn a_counters_dump_has_the_lcores_on_its_first_page_and_an_empty_dump_one_page() {
    let c = CountersMsg {
        sas: sample_sas(3000),
        lcores: vec![
            LcoreCountersMsg {
                rx: 1,
                ..Default::default()
            },
            LcoreCountersMsg {
                rx: 2,
                ..Default::default()
            },
        ],
    };
    let pages = pages_of(paging::Dump::Counters(c.clone()));
    assert!(pages.len() > 1);
    let mut reader = paging::DumpReader::new();
    for (i, p) in pages.into_iter().enumerate() {
        if let Message::CountersPage { lcores, .. } = &p {
            assert_eq!(lcores.len(), if i == 0 { 2 } else { 0 });
        }
        reader.feed(p).unwrap();
    }
    assert_eq!(reader.finish().unwrap(), paging::Dump::Counters(c));
    let empty = pages_of(paging::Dump::Sas(vec![]));
    assert_eq!(
        empty,
        vec![Message::SasPage {
            page: PageInfo {
                index: 0,
                total: 0,
                last: true
            },
            sas: vec![]
        }]
    );
}

#[test]
fn a_dump_with_a_page_missing_repeated_or_short_is_refused() {
    let pages = pages_of(paging::Dump::Sas(sample_sas(2000)));
    assert!(pages.len() >= 3);
    let feed = |ps: &[Message]| -> Result<paging::Dump, Error> {
        let mut r = paging::DumpReader::new();
        for p in ps {
            r.feed(p.clone())?;
        }
        r.finish()
    };
    assert!(feed(&pages).is_ok());
    // a page missing
    let mut missing = pages.clone();
    missing.remove(1);
    assert!(matches!(feed(&missing), Err(Error::Dump(_))));
    // a page twice
    let mut twice = pages.clone();
    twice.insert(1, pages[0].clone());
    assert!(matches!(feed(&twice), Err(Error::Dump(_))));
    // no last page
    assert!(matches!(
        feed(&pages[..pages.len() - 1]),
        Err(Error::Dump(_))
    ));
    // the last page lacks an SA its count promised
    let mut short = pages.clone();
    if let Some(Message::SasPage { sas, .. }) = short.last_mut() {
        sas.pop();
    }
    assert!(matches!(feed(&short), Err(Error::Dump(_))));
    // a refusal
    let refused = [Message::Error {
        reason: "retry".into(),
    }];
    assert!(matches!(feed(&refused), Err(Error::Refused(r)) if r == "retry"));
}

/// The dataplane's side of one connection over a real socket: requests answered through
/// an [`outbox::Outbox`], DumpSas with `sas` in pages.
fn serve_dumps(server: Server, sas: Vec<SaCountersMsg>, requests: usize) {
    let mut c = loop {
        if let Some(c) = server.accept().unwrap() {
            break c;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let mut out = outbox::Outbox::new();
    let mut served = 0;
    while served < requests || out.wants_write() {
        out.flush(&c).unwrap();
        if out.reading_paused() {
            std::thread::sleep(std::time::Duration::from_millis(1));
            continue;
        }
        match c.recv(false).unwrap() {
            Some((id, Message::Hello { .. })) => out.reply(
                id,
                &Message::Hello {
                    version: VERSION,
                    name: "dp".into(),
                },
            ),
            Some((id, Message::DumpSas)) => {
                served += 1;
                out.dump(paging::DumpPages::new(id, paging::Dump::Sas(sas.clone())))
            }
            Some((id, _)) => out.reply(
                id,
                &Message::Error {
                    reason: "unexpected".into(),
                },
            ),
            None => std::thread::sleep(std::time::Duration::from_millis(1)),
        }
    }
}

#[test]
fn twenty_five_thousand_sas_through_the_socket_each_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dp.sock");
    let server = Server::bind(&path).unwrap();
    let sas = sample_sas(25_000);
    let expect = sas.clone();
    let t = std::thread::spawn(move || serve_dumps(server, sas, 2));
    let mut client = Client::connect(&path, "test").unwrap();
    for _ in 0..2 {
        let got = client.dump_sas().unwrap();
        assert_eq!(got.len(), 25_000);
        let keys: std::collections::BTreeSet<_> = got
            .iter()
            .map(|s| (s.spi, s.direction == Some(Direction::Inbound)))
            .collect();
        assert_eq!(keys.len(), 25_000, "no SA twice");
        assert_eq!(got, expect);
    }
    t.join().unwrap();
}

#[test]
fn a_client_told_another_protocol_version_fails_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dp.sock");
    let server = Server::bind(&path).unwrap();
    // a dataplane of version 1 answering the Hello
    let t = std::thread::spawn(move || {
        let mut c = loop {
            if let Some(c) = server.accept().unwrap() {
                break c;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let (id, _) = loop {
            if let Some(m) = c.recv(false).unwrap() {
                break m;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        let mut hello = encode(
            id,
            &Message::Hello {
                version: 1,
                name: "ipsec-dataplane 0.0.1".into(),
            },
        );
        hello[4..6].copy_from_slice(&1u16.to_be_bytes());
        // what was sent stays readable after this end closes
        c.send_frame(&hello).unwrap();
    });
    let err = Client::connect(&path, "test").err().expect("refused");
    assert!(matches!(err, Error::Version(1)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("version 1") && text.contains(&format!("version {VERSION}")),
        "{text}"
    );
    drop(err);
    t.join().unwrap();
}
