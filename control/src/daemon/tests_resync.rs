//! Resynchronisation at scale over the real channel: a hub of 10,000 spokes restarts, and
//! the new control reads the dataplane's 20,000 SAs — page after page, through the channel's
//! socket, client and paging code — and adopts every one of them. The dataplane's side is
//! the channel's own server pieces (`Server`, `Outbox`, `DumpPages`) answering from the
//! model of the SAD ([`super::tests::Sad`]), which the adopted SAs are then deleted from.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use dataplane::channel::outbox::Outbox;
use dataplane::channel::paging::{Dump, DumpPages};
use dataplane::channel::{Message, SaCountersMsg, Server, VERSION};
use dataplane::esp::Prefix;

use super::run::held_sas;
use super::tests::{bring_up, config, dump, hub, static_map, HUB, SPOKE};
use super::Daemon;
use crate::dplink::{Dataplane, Event};

const SPOKES: u32 = 10_000;

/// A dataplane answering one client on `server`: Hello; the first DumpSas refused as when a
/// worker reports late; the second with `sas` in pages, and an Acquire sent between two of
/// them. Returns when the dump is sent.
fn dataplane(server: Server, sas: Vec<SaCountersMsg>) {
    let conn = loop {
        if let Some(c) = server.accept().unwrap() {
            break c;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let mut conn = conn;
    let mut out = Outbox::new();
    let mut dumps = 0;
    let mut acquire_sent = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while dumps < 2 || out.wants_write() {
        assert!(
            Instant::now() < deadline,
            "the client did not read the dump"
        );
        if out.flush(&conn).unwrap() > 0 && dumps == 2 && !acquire_sent {
            out.event(Message::Acquire {
                sa_id: 7,
                source: "10.2.0.5".into(),
                destination: "10.128.0.9".into(),
                protocol: 6,
            });
            acquire_sent = true;
        }
        if out.reading_paused() {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        match conn.recv(false).unwrap() {
            Some((id, Message::Hello { .. })) => out.reply(
                id,
                &Message::Hello {
                    version: VERSION,
                    name: "ipsec-dataplane test".into(),
                },
            ),
            Some((id, Message::DumpSas)) if dumps == 0 => {
                dumps += 1;
                out.reply(
                    id,
                    &Message::Error {
                        reason: "1 of 2 workers did not report their SAs within 1000 ms; retry"
                            .into(),
                    },
                );
            }
            Some((id, Message::DumpSas)) => {
                dumps += 1;
                out.dump(DumpPages::new(id, Dump::Sas(sas.clone())));
            }
            Some((id, m)) => panic!("unexpected request {id}: {m:?}"),
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

#[test]
fn a_restarted_hub_of_10000_spokes_adopts_its_20000_sas_read_in_pages() {
    // one real spoke gives the SA pair a hub's dynamic map installs; the others are copies
    // with their own SPIs, peer, LAN and SA id
    let mut hub = hub("");
    let mut spoke = super::tests::daemon(config(
        SPOKE,
        "10.128.0.1/24",
        &static_map(HUB, "10.128.0.0/24", "10.2.0.0/24", 3600),
        "",
    ));
    bring_up(&mut spoke, &mut hub, Instant::now());
    let mut sad = std::mem::take(&mut hub.link);
    let (&first_id, out) = sad.outbound.iter().next().expect("the spoke's outbound SA");
    let out = out.clone();
    let inb = sad
        .inbound
        .values()
        .next()
        .expect("the spoke's inbound SA")
        .clone();
    sad.inbound.clear();
    sad.outbound.clear();
    for k in 0..SPOKES {
        let peer = std::net::Ipv4Addr::from(0xc612_0000 + k).into();
        let lan = Prefix {
            addr: std::net::Ipv4Addr::from(0x0a80_0000 + (k << 8)).into(),
            len: 24,
        };
        let mut o = out.clone();
        o.spi = 0x2000_0000 + k;
        o.remote = peer;
        o.selectors[0].destination = lan;
        let mut i = inb.clone();
        i.spi = 0x1000_0000 + k;
        i.remote = peer;
        i.selectors[0].source = lan;
        sad.outbound.insert(first_id + k, o);
        sad.inbound.insert(i.spi, i);
    }
    let sas = dump(&sad);
    assert_eq!(sas.len(), 2 * SPOKES as usize);

    // the dataplane keeps forwarding; a new control connects and reads its SAs
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dp.sock");
    let server = Server::bind(&path).unwrap();
    let served = sas.clone();
    let dp = std::thread::spawn(move || dataplane(server, served));
    let mut link = Dataplane::connect(&path).unwrap();
    link.set_event_timeout(Duration::from_secs(10)).unwrap();
    let held = held_sas(&mut link).expect("the dump, after one refusal");
    dp.join().unwrap();
    assert_eq!(held, sas, "every SA once, as the dataplane holds them");
    // the Acquire that came between two pages was kept
    assert!(matches!(
        link.next_event().unwrap(),
        Some(Event::Acquire { sa_id: 7, .. })
    ));

    let mut hub = Daemon::new(sad, hub.policy);
    hub.adopt(held);
    assert_eq!(hub.children.adopted.len(), 2 * SPOKES as usize);
    let spd = hub.link.spd.clone().expect("an SPD installed");
    let protected: BTreeSet<u32> = spd.iter().filter_map(|r| r.protect).collect();
    assert_eq!(
        protected,
        (first_id..first_id + SPOKES).collect::<BTreeSet<_>>(),
        "each spoke's SPD rule rebuilt"
    );
    assert_eq!(hub.next_dynamic_sa_id, first_id + SPOKES);
    // each adopted SA has its own engine connection id (show crypto engine connections
    // active listed them all as 0)
    let ids: BTreeSet<u32> = hub.children.adopted.values().map(|a| a.conn_id).collect();
    assert_eq!(ids.len(), 2 * SPOKES as usize);
    assert!(!ids.contains(&0));
    // the adopted SAs are the dataplane's: clearing one spoke's deletes its pair there
    let last: std::net::IpAddr = std::net::Ipv4Addr::from(0xc612_0000 + SPOKES - 1).into();
    assert_eq!(hub.clear_adopted(|a| a.peer == Some(last)), 2);
    assert!(!hub.link.outbound.contains_key(&(first_id + SPOKES - 1)));
    assert!(!hub.link.inbound.contains_key(&(0x1000_0000 + SPOKES - 1)));
    assert_eq!(
        hub.link.inbound.len() + hub.link.outbound.len(),
        2 * SPOKES as usize - 2
    );
    assert_eq!(hub.children.adopted.len(), 2 * SPOKES as usize - 2);
}
