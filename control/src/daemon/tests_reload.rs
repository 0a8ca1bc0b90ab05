//! `reload` between two daemons over the model of the SAD ([`super::tests`]): the SAs of an
//! unchanged crypto map entry stay as they are (same SPIs, same SA id, same keys), a
//! removed entry's SAs are deleted on both sides, a new entry added in front of the others
//! gets an SA id nothing uses and comes up on its first packet, a control process started
//! after such a reload keeps the SA ids the dataplane's SAs have, and a reconnect installs
//! only what the dataplane lost.

use std::time::Instant;

use super::tests::{
    bring_up, config, daemon, dump, ip, no_loss, pump, static_pair, Sad, HUB, SPOKE,
};
use super::Daemon;
use crate::config::IkeConfig;

/// A crypto map entry `vpn SEQ` toward `peer` protecting `src` -> `dst` with ACL `acl`.
fn entry(seq: u32, peer: &str, acl: u32) -> String {
    format!(
        r#"
[[crypto_map.vpn]]
seq = {seq}
type = "ipsec-isakmp"
peer = "{peer}"
transform_set = "ts"
match_address = "{acl}"
"#
    )
}

fn acl(n: u32, src: &str, dst: &str) -> String {
    format!(
        r#"{n} = [ {{ action = "permit", protocol = "ip", source = "{src}", destination = "{dst}" }} ]
"#
    )
}

/// Gateway A (SPOKE, LANs 10.1.N.0/24) or its mirror B (HUB, LANs 10.2.N.0/24), with the
/// entries `seqs`: entry seq S protects 10.1.(S/10) <-> 10.2.(S/10) with ACL 100 + S.
fn gateway(a_side: bool, seqs: &[u32]) -> IkeConfig {
    let mut acls = String::from("[access_list]\n");
    let mut maps = String::new();
    for &s in seqs {
        let (mine, theirs) = if a_side { ("1", "2") } else { ("2", "1") };
        let n = s / 10;
        acls += &acl(
            100 + s,
            &format!("10.{mine}.{n}.0/24"),
            &format!("10.{theirs}.{n}.0/24"),
        );
        maps += &entry(s, if a_side { HUB } else { SPOKE }, 100 + s);
    }
    let (addr, lan) = if a_side {
        (SPOKE, "10.1.0.1/16")
    } else {
        (HUB, "10.2.0.1/16")
    };
    config(addr, lan, &(acls + &maps), "")
}

fn up(a: &mut Daemon<Sad>, b: &mut Daemon<Sad>, seq: u32, now: Instant) -> u32 {
    let sa_id = a.policy.sa_ids[&("vpn".to_string(), seq)];
    let n = seq / 10;
    a.on_acquire(
        sa_id,
        Some(ip(&format!("10.1.{n}.5"))),
        Some(ip(&format!("10.2.{n}.9"))),
        None,
        now,
    );
    pump(a, b, now, &mut no_loss);
    assert!(
        a.children.current.contains_key(&sa_id),
        "crypto map vpn {seq} came up"
    );
    sa_id
}

#[test]
fn reload_keeps_unchanged_tunnels_deletes_removed_ones_and_numbers_new_ones_apart() {
    let mut a = daemon(gateway(true, &[10, 20]));
    let mut b = daemon(gateway(false, &[10, 20]));
    let now = Instant::now();
    let id10 = up(&mut a, &mut b, 10, now);
    let id20 = up(&mut a, &mut b, 20, now);
    assert_ne!(id10, id20);
    let out10 = a.link.outbound[&id10].clone();
    let in10 = a.children.current[&id10];
    let out20 = a.link.outbound[&id20].spi;
    let p1_before = a.phase1.len();

    // A's new file: vpn 5 in front (its file number is 0, which vpn 10 holds), vpn 20 gone
    let report = a.apply_config(&gateway(true, &[5, 10])).unwrap();
    assert!(
        report
            .iter()
            .any(|l| l == "crypto map vpn 5: added: comes up on its first packet"),
        "{report:?}"
    );
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("crypto map vpn 20: removed; 1 IPsec SA pair")),
        "{report:?}"
    );
    assert!(!report.iter().any(|l| l.contains("vpn 10")), "{report:?}");

    // vpn 10: the same SAs under the same id
    assert_eq!(a.policy.sa_ids[&("vpn".to_string(), 10)], id10);
    assert_eq!(a.link.outbound[&id10], out10);
    assert!(a.link.inbound.contains_key(&in10));
    // vpn 20: gone from A, and B deleted its side on A's DELETE
    pump(&mut a, &mut b, now, &mut no_loss);
    assert!(!a.link.outbound.values().any(|p| p.spi == out20));
    assert!(!b.link.inbound.contains_key(&out20), "B got the DELETE");
    assert_eq!(b.children.by_spi.len(), 1);
    // vpn 5: a number nothing uses, and the SPD names it and keeps vpn 10's
    let id5 = a.policy.sa_ids[&("vpn".to_string(), 5)];
    assert_ne!(id5, id10);
    let spd = a.link.spd.clone().unwrap();
    let protect = |src: &str| {
        spd.iter()
            .find(|r| r.selector.source.to_string() == src)
            .and_then(|r| r.protect)
    };
    assert_eq!(protect("10.1.0.0/24"), Some(id5));
    assert_eq!(protect("10.1.1.0/24"), Some(id10));
    assert_eq!(
        protect("10.1.2.0/24"),
        None,
        "vpn 20's traffic is no longer protected"
    );
    // the ISAKMP SA stays (vpn 10 and 5 still name the peer)
    assert_eq!(a.phase1.len(), p1_before);

    // B gets the mirror file; then vpn 5 comes up on its first packet
    let report_b = b.apply_config(&gateway(false, &[5, 10])).unwrap();
    assert!(
        report_b
            .iter()
            .any(|l| l.starts_with("crypto map vpn 20: removed")),
        "{report_b:?}"
    );
    assert_eq!(b.children.by_spi.len(), 1, "B's vpn 10 pair kept");
    assert_eq!(up(&mut a, &mut b, 5, now), id5);
    assert_eq!(a.link.outbound[&id10], out10, "vpn 10 untouched");
    assert_eq!(a.children.by_spi.len(), 2);
}

#[test]
fn a_changed_entry_is_torn_down_and_a_removed_peer_loses_its_isakmp_sa() {
    let mut a = daemon(gateway(true, &[10]));
    let mut b = daemon(gateway(false, &[10]));
    let now = Instant::now();
    let id10 = up(&mut a, &mut b, 10, now);
    // vpn 10 now toward another peer: the old tunnel goes, with its ISAKMP SA
    let mut moved = gateway(true, &[10]);
    moved.base.crypto_maps.get_mut("vpn").unwrap()[0].peer = Some(ip("192.0.2.77"));
    let report = a.apply_config(&moved).unwrap();
    assert!(
        report
            .iter()
            .any(|l| l.starts_with("crypto map vpn 10: changed; 1 IPsec SA pair")),
        "{report:?}"
    );
    assert!(a.link.outbound.is_empty() && a.link.inbound.is_empty());
    assert!(a.phase1.is_empty(), "no entry names the old peer any more");
    pump(&mut a, &mut b, now, &mut no_loss);
    assert!(b.children.by_spi.is_empty(), "B deleted its side");
    assert!(b.link.inbound.is_empty() && b.link.outbound.is_empty());
    assert_eq!(a.policy.sa_ids[&("vpn".to_string(), 10)], id10);
}

#[test]
fn a_control_started_after_a_reload_keeps_the_sa_ids_of_the_dataplane() {
    let mut a = daemon(gateway(true, &[10]));
    let mut b = daemon(gateway(false, &[10]));
    let now = Instant::now();
    let id10 = up(&mut a, &mut b, 10, now);
    a.apply_config(&gateway(true, &[5, 10])).unwrap();
    b.apply_config(&gateway(false, &[5, 10])).unwrap();
    let id5 = up(&mut a, &mut b, 5, now);
    // the file numbers them vpn 5 = 0, vpn 10 = 1; the dataplane has them the other way
    let fresh = gateway(true, &[5, 10]);
    assert_eq!(fresh.base.crypto_maps["vpn"][0].sa_id, 0);
    assert_ne!((id5, id10), (0, 1));
    let sad = std::mem::take(&mut a.link);
    let sas = dump(&sad);
    let mut a2 = Daemon::new(sad, super::policy::GatewayPolicy::new(&fresh).unwrap());
    a2.adopt(sas);
    assert_eq!(a2.policy.sa_ids[&("vpn".to_string(), 10)], id10);
    assert_eq!(a2.policy.sa_ids[&("vpn".to_string(), 5)], id5);
    let spd = a2.link.spd.clone().expect("SPD installed at start");
    let protect = |src: &str| {
        spd.iter()
            .find(|r| r.selector.source.to_string() == src)
            .and_then(|r| r.protect)
    };
    assert_eq!(protect("10.1.1.0/24"), Some(id10));
    assert_eq!(protect("10.1.0.0/24"), Some(id5));
}

#[test]
fn a_reconnect_installs_only_what_the_dataplane_lost() {
    let (mut a, mut b) = static_pair(3600);
    let now = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, now);
    let out = a.link.outbound[&sa_id].clone();
    // the channel broke but the dataplane kept running: nothing is installed again (that
    // would start the outbound sequence numbers over, and the peer would drop them as
    // replays)
    let held = dump(&a.link);
    let adds = a.link.adds;
    a.reinstall(&held);
    assert_eq!(a.link.adds, adds, "no SA installed again");
    assert!(a.link.spd.is_some(), "the SPD is installed in any case");
    // the dataplane restarted: everything comes back
    a.link = Sad::default();
    a.reinstall(&[]);
    assert_eq!(a.link.outbound[&sa_id], out);
    assert_eq!((a.link.inbound.len(), a.link.outbound.len()), (1, 1));
}

#[test]
fn reload_sets_the_dh_pool_to_the_groups_now_in_use() {
    use crate::ikecrypto::{DhGroup, DhPool};
    use std::sync::Arc;
    let pool = Arc::new(DhPool::new());
    let cfg = |pfs: &str, extra: &str| {
        let mut maps = format!("[access_list]\n{}", acl(110, "10.1.1.0/24", "10.2.1.0/24"));
        maps += &entry(10, HUB, 110).replace("match_address", &format!("{pfs}match_address"));
        config(SPOKE, "10.1.0.1/16", &maps, extra)
    };
    let mut a = Daemon::new(
        Sad::default(),
        super::policy::GatewayPolicy::with_dh_pool(&cfg("", "dh_precompute = 4"), pool.clone())
            .unwrap(),
    );
    let targets = |p: &DhPool| {
        p.stats()
            .iter()
            .filter(|s| s.target > 0)
            .map(|s| (s.group, s.target))
            .collect::<Vec<_>>()
    };
    assert_eq!(targets(&pool), vec![(DhGroup::Modp1024, 4)]);
    pool.fill(1).unwrap();
    // PFS group 5 added: a second group, from the same pool
    a.apply_config(&cfg("pfs = \"group5\"\n", "dh_precompute = 4"))
        .unwrap();
    assert!(Arc::ptr_eq(&a.policy.dh_pool, &pool));
    assert_eq!(
        targets(&pool),
        vec![(DhGroup::Modp1024, 4), (DhGroup::Modp1536, 4)]
    );
    assert_eq!(pool.stats()[0].ready, 4, "group 2's key pairs stay");
    // precomputation off: the key pairs made are dropped
    a.apply_config(&cfg("", "dh_precompute = 0")).unwrap();
    assert!(targets(&pool).is_empty());
    assert!(pool.stats().iter().all(|s| s.ready == 0));
}
