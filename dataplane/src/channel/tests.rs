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
        Message::Sas {
            sas: vec![SaCountersMsg {
                spi: 5,
                encaps: 3,
                ..Default::default()
            }],
        },
        Message::DumpCounters,
        Message::Counters(CountersMsg {
            sas: vec![SaCountersMsg {
                drops: [("replay".to_string(), 2)].into_iter().collect(),
                ..Default::default()
            }],
            lcores: vec![LcoreCountersMsg {
                rx: 10,
                ..Default::default()
            }],
        }),
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
                Some((id, Message::DumpCounters)) => {
                    c.send(
                        0,
                        &Message::SoftExpire {
                            spi: 9,
                            direction: Direction::Inbound,
                            by_bytes: false,
                        },
                    )
                    .unwrap();
                    c.send(id, &Message::Counters(CountersMsg::default()))
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
        client.request(&Message::DumpCounters).unwrap(),
        Message::Counters(CountersMsg::default())
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
