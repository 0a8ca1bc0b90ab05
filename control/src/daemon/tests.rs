//! Two daemons talking to each other through an in-memory model of the dataplane's SAD
//! (inbound SAs by SPI, outbound SAs by SPD id, replaced in one step, as
//! `dataplane::runtime::sa_intake` keys them): tunnels come up from an Acquire, both sides
//! hold matching keys, rekeying is make-before-break, clears and DELETEs reach the peer,
//! retransmissions recover a lost message, DPD clears a dead peer, a hub accepts spokes
//! through a dynamic map with SPD rules of their own, and the admission limit holds.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dataplane::channel::{CountersMsg, SaCountersMsg, SpdRuleMsg};
use dataplane::esp::{Direction, SaParams};

use super::policy::GatewayPolicy;
use super::{Daemon, Link, RETIRE_GRACE};
use crate::config::IkeConfig;
use crate::dplink::{Event, IkeDatagram, LinkError};

/// The dataplane's SA store as seen through the channel.
#[derive(Default)]
pub(super) struct Sad {
    out: Vec<IkeDatagram>,
    /// Other packets sent (NAT keepalives).
    packets: Vec<Vec<u8>>,
    pub(super) inbound: BTreeMap<u32, SaParams>,
    pub(super) outbound: BTreeMap<u32, SaParams>,
    pub(super) spd: Option<Vec<SpdRuleMsg>>,
    /// InstallSpd requests received.
    spd_installs: usize,
    next_spi: u32,
    deleted: Vec<(u32, Direction)>,
    /// SAs installed (AddSa messages), replacements included.
    pub(super) adds: usize,
}

impl Link for Sad {
    fn send_ike(&mut self, d: &IkeDatagram) -> Result<(), LinkError> {
        self.out.push(d.clone());
        Ok(())
    }
    fn send_packet(&mut self, packet: Vec<u8>) -> Result<(), LinkError> {
        self.packets.push(packet);
        Ok(())
    }
    fn allocate_spi(&mut self) -> Result<u32, LinkError> {
        self.next_spi += 1;
        Ok(0x1000_0000 + self.next_spi)
    }
    fn add_sa(&mut self, sa_id: u32, p: SaParams) -> Result<(), LinkError> {
        self.adds += 1;
        match p.direction {
            Direction::Inbound => self.inbound.insert(p.spi, p),
            Direction::Outbound => self.outbound.insert(sa_id, p),
        };
        Ok(())
    }
    fn delete_sa(&mut self, spi: u32, dir: Direction, sa_id: u32) -> Result<(), LinkError> {
        let gone = match dir {
            Direction::Inbound => self.inbound.remove(&spi).is_some(),
            Direction::Outbound => self.outbound.remove(&sa_id).is_some(),
        };
        if !gone {
            return Err(LinkError::Refused(format!("no {dir:?} SA spi 0x{spi:x}")));
        }
        self.deleted.push((spi, dir));
        Ok(())
    }
    fn install_spd(&mut self, rules: Vec<SpdRuleMsg>) -> Result<(), LinkError> {
        self.spd = Some(rules);
        self.spd_installs += 1;
        Ok(())
    }
    /// The SAs held, with zero counts and their whole lifetime left.
    fn counters(&mut self) -> Result<CountersMsg, LinkError> {
        let sas = dump(self)
            .into_iter()
            .map(|mut s| {
                let p = match s.direction {
                    Some(Direction::Inbound) => self.inbound.get(&s.spi),
                    _ => self.outbound.get(&s.sa_id),
                };
                if let Some(p) = p {
                    s.remaining_seconds = p.lifetime.seconds;
                    s.remaining_kilobytes = p.lifetime.kilobytes;
                }
                s
            })
            .collect();
        Ok(CountersMsg {
            sas,
            lcores: Vec::new(),
        })
    }
}

pub(super) const SPOKE: &str = "192.0.2.2";
pub(super) const HUB: &str = "192.0.2.1";

/// A gateway config: `addr` on the outside, LAN `lan`, and either a static crypto map
/// toward `peer` protecting lan -> peer_lan, or (peer None) a dynamic map accepting
/// `dyn_range` as the remote side.
pub(super) fn config(addr: &str, lan: &str, crypto: &str, extra_isakmp: &str) -> IkeConfig {
    let plen = if addr.contains(':') { 64 } else { 24 };
    let text = format!(
        r#"
hostname = "gw-{addr}"
domain = "example.net"
[dataplane]
eal = ["--no-huge"]
lcores = {{ main = 0, workers = [1] }}
channel = "/tmp/none.sock"
[[interface]]
name = "inside"
role = "inside"
device = "net_null0"
address = ["{lan}"]
[[interface]]
name = "outside"
role = "outside"
device = "net_null1"
address = ["{addr}/{plen}"]
crypto_map = "vpn"
[transform_set.ts]
esp = ["esp-aes", "esp-sha-hmac"]
[isakmp]
{extra_isakmp}
[[isakmp.policy]]
priority = 10
encryption = "aes"
hash = "sha"
authentication = "pre-share"
group = 2
lifetime = 3600
[[isakmp.key]]
key = "s3cret"
address = "0.0.0.0/0"
[[isakmp.key]]
key = "s3cret"
address = "::/0"
{crypto}
"#
    );
    IkeConfig::parse("/tmp/test.toml", &text).unwrap_or_else(|e| panic!("{e}"))
}

pub(super) fn static_map(peer: &str, src: &str, dst: &str, seconds: u64) -> String {
    format!(
        r#"
[access_list]
101 = [ {{ action = "permit", protocol = "ip", source = "{src}", destination = "{dst}" }} ]
[[crypto_map.vpn]]
seq = 10
type = "ipsec-isakmp"
peer = "{peer}"
transform_set = "ts"
match_address = "101"
lifetime = {{ seconds = {seconds}, kilobytes = 4608000 }}
"#
    )
}

pub(super) fn dynamic_map(range_src: &str, range_dst: &str) -> String {
    format!(
        r#"
[access_list]
150 = [ {{ action = "permit", protocol = "ip", source = "{range_src}", destination = "{range_dst}" }} ]
[[crypto_map.vpn]]
seq = 65535
type = "ipsec-isakmp"
dynamic = "DYN"
[[dynamic_map.DYN]]
seq = 10
transform_set = ["ts"]
match_address = "150"
reverse_route = true
"#
    )
}

/// A hub at HUB with LAN 10.2.0.0/24 and a dynamic map accepting spokes' LANs inside
/// 10.128.0.0/9.
pub(super) fn hub(extra_isakmp: &str) -> Daemon<Sad> {
    daemon(config(
        HUB,
        "10.2.0.1/24",
        &dynamic_map("10.2.0.0/16", "10.128.0.0/9"),
        extra_isakmp,
    ))
}

/// Spoke `i`: 192.0.2.(10 + i), LAN 10.128.i.0/24, a static map toward the hub.
fn spoke(i: u8) -> Daemon<Sad> {
    daemon(config(
        &format!("192.0.2.{}", 10 + i),
        &format!("10.128.{i}.1/24"),
        &static_map(HUB, &format!("10.128.{i}.0/24"), "10.2.0.0/24", 3600),
        "",
    ))
}

pub(super) fn daemon(cfg: IkeConfig) -> Daemon<Sad> {
    Daemon::new(Sad::default(), GatewayPolicy::new(&cfg).unwrap())
}

/// Delivers every queued datagram between the two until both are quiet; `drop` decides
/// (by sequence number of delivery) which to lose.
pub(super) fn pump(
    a: &mut Daemon<Sad>,
    b: &mut Daemon<Sad>,
    now: Instant,
    drop: &mut dyn FnMut(usize) -> bool,
) {
    pump_nat(a, b, now, drop, &|x| x, &|x| x)
}

/// [`pump`] with `a` behind a NAT: `out` rewrites the source of what `a` sends, `back` the
/// destination of what `b` sends to it.
fn pump_nat(
    a: &mut Daemon<Sad>,
    b: &mut Daemon<Sad>,
    now: Instant,
    drop: &mut dyn FnMut(usize) -> bool,
    out: &dyn Fn(std::net::SocketAddr) -> std::net::SocketAddr,
    back: &dyn Fn(std::net::SocketAddr) -> std::net::SocketAddr,
) {
    let mut n = 0;
    for _ in 0..100 {
        let from_a = std::mem::take(&mut a.link.out);
        let from_b = std::mem::take(&mut b.link.out);
        if from_a.is_empty() && from_b.is_empty() {
            return;
        }
        for d in from_a {
            n += 1;
            if !drop(n) {
                let d = IkeDatagram {
                    local: d.remote,
                    remote: out(d.local),
                    message: d.message,
                };
                b.on_ike(d, now);
            }
        }
        for d in from_b {
            n += 1;
            if !drop(n) {
                let d = IkeDatagram {
                    local: back(d.remote),
                    remote: d.local,
                    message: d.message,
                };
                a.on_ike(d, now);
            }
        }
    }
    panic!("the daemons never went quiet");
}

pub(super) fn no_loss(_: usize) -> bool {
    false
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Each side's outbound SA is the other's inbound SA, with the same keys.
fn assert_pair_matches(a: &Sad, a_sa_id: u32, b: &Sad) {
    let out = a.outbound.get(&a_sa_id).expect("outbound SA installed");
    let peer_in = b.inbound.get(&out.spi).expect("peer holds the inbound SA");
    assert_eq!(out.keys, peer_in.keys, "keys of SPI 0x{:x} differ", out.spi);
    assert_eq!(out.transform, peer_in.transform);
    assert_eq!(out.local, peer_in.remote);
    assert_eq!(out.remote, peer_in.local);
}

pub(super) fn static_pair(seconds: u64) -> (Daemon<Sad>, Daemon<Sad>) {
    let a = daemon(config(
        SPOKE,
        "10.1.0.1/24",
        &static_map(HUB, "10.1.0.0/24", "10.2.0.0/24", seconds),
        "",
    ));
    let b = daemon(config(
        HUB,
        "10.2.0.1/24",
        &static_map(SPOKE, "10.2.0.0/24", "10.1.0.0/24", seconds),
        "",
    ));
    (a, b)
}

pub(super) fn bring_up(a: &mut Daemon<Sad>, b: &mut Daemon<Sad>, now: Instant) -> u32 {
    let sa_id = a.policy.statics[0].sa_id;
    a.on_acquire(sa_id, Some(ip("10.1.0.5")), Some(ip("10.2.0.9")), None, now);
    pump(a, b, now, &mut no_loss);
    sa_id
}

#[test]
fn acquire_brings_the_tunnel_up_with_matching_keys_on_both_sides() {
    let (mut a, mut b) = static_pair(3600);
    let now = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, now);
    assert_eq!(a.stats.phase1_established, 1);
    assert_eq!(b.stats.phase1_established, 1);
    assert_eq!((a.children.by_spi.len(), b.children.by_spi.len()), (1, 1));
    assert_pair_matches(&a.link, sa_id, &b.link);
    assert_pair_matches(&b.link, b.policy.statics[0].sa_id, &a.link);
    // the initiator's proxies are the ACL line; the responder's are their mirror
    let ca = a.children.by_spi.values().next().unwrap();
    let cb = b.children.by_spi.values().next().unwrap();
    assert_eq!(ca.sa.selector.source, cb.sa.selector.destination);
    assert_eq!(ca.sa.selector.source.to_string(), "10.1.0.0/24");
    assert!(ca.initiator && !cb.initiator);
    assert_eq!(a.phase1.values().next().unwrap().ios_state(), "QM_IDLE");
    // a second Acquire for the same entry (more packets before the SA was in) does nothing
    a.on_acquire(sa_id, None, None, None, now);
    assert!(a.link.out.is_empty());
}

#[test]
fn acquires_during_negotiation_start_one_exchange() {
    let (mut a, mut b) = static_pair(3600);
    let now = Instant::now();
    let sa_id = a.policy.statics[0].sa_id;
    for _ in 0..50 {
        a.on_acquire(sa_id, None, None, None, now);
    }
    assert_eq!(a.link.out.len(), 1, "one MM1");
    pump(&mut a, &mut b, now, &mut no_loss);
    assert_eq!(a.children.by_spi.len(), 1);
    assert_eq!(b.children.by_spi.len(), 1);
}

#[test]
fn a_lost_message_is_retransmitted_and_the_exchange_completes() {
    for lost in 1..=9 {
        let (mut a, mut b) = static_pair(3600);
        let t0 = Instant::now();
        let sa_id = a.policy.statics[0].sa_id;
        a.on_acquire(sa_id, None, None, None, t0);
        pump(&mut a, &mut b, t0, &mut |n| n == lost);
        let mut t = t0;
        for _ in 0..10 {
            t += Duration::from_secs(3);
            a.tick(t);
            b.tick(t);
            pump(&mut a, &mut b, t, &mut no_loss);
        }
        assert_eq!(
            (a.children.by_spi.len(), b.children.by_spi.len()),
            (1, 1),
            "message {lost} lost: the tunnel did not come up"
        );
        assert_pair_matches(&a.link, sa_id, &b.link);
    }
}

#[test]
fn a_peer_that_never_answers_is_given_up_and_the_admission_slot_returned() {
    let (mut a, _) = static_pair(3600);
    let t0 = Instant::now();
    a.on_acquire(a.policy.statics[0].sa_id, None, None, None, t0);
    assert_eq!(a.admission.in_negotiation(), 1);
    assert_eq!(std::mem::take(&mut a.link.out).len(), 1, "MM1");
    let mut t = t0;
    let mut sent = 0;
    // 2, 4, 8, 16 and 32 s between transmissions, then 32 s more for the last answer
    for _ in 0..100 {
        t += Duration::from_secs(1);
        a.tick(t);
        sent += std::mem::take(&mut a.link.out).len();
    }
    assert_eq!(sent, 5, "MM1 retransmitted 5 times");
    assert!(a.phase1.is_empty());
    assert_eq!(a.admission.in_negotiation(), 0);
    assert_eq!(a.stats.phase1_failed, 1);
}

#[test]
fn rekey_is_make_before_break_and_the_old_pair_goes_after_the_grace() {
    let (mut a, mut b) = static_pair(3600);
    let t0 = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, t0);
    let old_out = a.link.outbound[&sa_id].spi;
    let old_in = *a.children.current.get(&sa_id).unwrap();
    // the dataplane reports the soft lifetime of our outbound SA
    let t1 = t0 + Duration::from_secs(3240);
    a.on_expire(old_out, Direction::Outbound, false, t1);
    pump(&mut a, &mut b, t1, &mut no_loss);
    let new_out = a.link.outbound[&sa_id].spi;
    assert_ne!(new_out, old_out, "the new outbound SA took over the SA id");
    assert_pair_matches(&a.link, sa_id, &b.link);
    assert_pair_matches(&b.link, b.policy.statics[0].sa_id, &a.link);
    // both old inbound SAs are still there: packets in flight still decrypt
    assert!(a.link.inbound.contains_key(&old_in));
    assert!(b.link.inbound.contains_key(&old_out));
    assert_eq!(a.link.inbound.len(), 2);
    // after the grace, A deletes its old inbound SA and tells B, which deletes its own
    let t2 = t1 + RETIRE_GRACE + Duration::from_millis(1);
    a.tick(t2);
    pump(&mut a, &mut b, t2, &mut no_loss);
    assert!(!a.link.inbound.contains_key(&old_in));
    assert!(!b.link.inbound.contains_key(&old_out));
    assert_eq!((a.link.inbound.len(), b.link.inbound.len()), (1, 1));
    assert_eq!((a.children.by_spi.len(), b.children.by_spi.len()), (1, 1));
    // the current pair is untouched
    assert_pair_matches(&a.link, sa_id, &b.link);
    assert_pair_matches(&b.link, b.policy.statics[0].sa_id, &a.link);
}

#[test]
fn clear_crypto_sa_peer_deletes_both_sides_and_traffic_brings_it_back() {
    let (mut a, mut b) = static_pair(3600);
    let t0 = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, t0);
    assert_eq!(a.clear_sa_peer(ip(HUB)), 1);
    pump(&mut a, &mut b, t0, &mut no_loss);
    assert!(a.link.inbound.is_empty() && a.link.outbound.is_empty());
    assert!(b.link.inbound.is_empty() && b.link.outbound.is_empty());
    assert!(b.children.by_spi.is_empty());
    // the next packet: Acquire, Quick Mode under the ISAKMP SA that is still up
    a.on_acquire(sa_id, None, None, None, t0);
    pump(&mut a, &mut b, t0, &mut no_loss);
    assert_eq!(a.stats.phase1_established, 1, "no new Main Mode");
    assert_pair_matches(&a.link, sa_id, &b.link);
}

#[test]
fn hard_expiry_deletes_the_pair_on_both_sides() {
    let (mut a, mut b) = static_pair(3600);
    let t0 = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, t0);
    let in_spi = *b.children.current.get(&b.policy.statics[0].sa_id).unwrap();
    b.on_expire(in_spi, Direction::Inbound, true, t0);
    pump(&mut a, &mut b, t0, &mut no_loss);
    assert!(b.link.inbound.is_empty() && b.link.outbound.is_empty());
    assert!(a.link.inbound.is_empty() && !a.link.outbound.contains_key(&sa_id));
}

#[test]
fn dpd_declares_a_silent_peer_dead_and_clears_its_sas() {
    let keepalive = "keepalive = { seconds = 10, retries = 3 }";
    let mut a = daemon(config(
        SPOKE,
        "10.1.0.1/24",
        &static_map(HUB, "10.1.0.0/24", "10.2.0.0/24", 3600),
        keepalive,
    ));
    let mut b = daemon(config(
        HUB,
        "10.2.0.1/24",
        &static_map(SPOKE, "10.2.0.0/24", "10.1.0.0/24", 3600),
        keepalive,
    ));
    let t0 = Instant::now();
    bring_up(&mut a, &mut b, t0);
    // B answers R-U-THERE while it is alive
    let t1 = t0 + Duration::from_secs(11);
    a.tick(t1);
    assert_eq!(a.link.out.len(), 1, "R-U-THERE");
    pump(&mut a, &mut b, t1, &mut no_loss);
    assert_eq!(a.children.by_spi.len(), 1);
    assert_eq!(a.stats.dead_peers, 0);
    // then B goes silent
    let mut t = t1;
    for _ in 0..40 {
        t += Duration::from_secs(1);
        a.tick(t);
        a.link.out.clear();
    }
    assert_eq!(a.stats.dead_peers, 1);
    assert!(a.children.by_spi.is_empty());
    assert!(a.link.inbound.is_empty() && a.link.outbound.is_empty());
    assert!(a.phase1.is_empty());
}

#[test]
fn a_hub_with_a_dynamic_map_gives_each_spoke_its_own_sa_id_and_spd_rule() {
    let mut hub = hub("");
    let first_dyn = hub.policy.first_dynamic_sa_id;
    let mut spokes: Vec<Daemon<Sad>> = (0..3).map(spoke).collect();
    let now = Instant::now();
    for s in spokes.iter_mut() {
        bring_up(s, &mut hub, now);
    }
    assert_eq!(hub.children.by_spi.len(), 3);
    let spd = hub.link.spd.clone().expect("SPD installed");
    assert_eq!(
        spd.len(),
        3,
        "one protect rule per spoke (the config has no static rules)"
    );
    for (i, s) in spokes.iter().enumerate() {
        let id = first_dyn + i as u32;
        let rule = spd.iter().find(|r| r.protect == Some(id)).expect("rule");
        assert_eq!(rule.selector.source.to_string(), "10.2.0.0/24");
        assert_eq!(
            rule.selector.destination.to_string(),
            format!("10.128.{i}.0/24")
        );
        assert_pair_matches(&hub.link, id, &s.link);
        assert_pair_matches(&s.link, s.policy.statics[0].sa_id, &hub.link);
    }
    // a spoke outside the allowed range is refused
    let mut rogue = daemon(config(
        "192.0.2.50",
        "172.16.0.1/24",
        &static_map(HUB, "172.16.0.0/24", "10.2.0.0/24", 3600),
        "",
    ));
    bring_up(&mut rogue, &mut hub, now);
    assert!(rogue.children.by_spi.is_empty());
    assert_eq!(hub.children.by_spi.len(), 3);
    // clearing a spoke removes its rule
    hub.clear_sa_peer(ip("192.0.2.11"));
    let spd = hub.link.spd.clone().unwrap();
    assert_eq!(spd.len(), 2);
    assert!(spd.iter().all(|r| r.protect != Some(first_dyn + 1)));
}

/// Runs `s` (which starts from an Acquire) against `hub` until `s` has its SA pair, and
/// returns what `s` sent last and the hub has not received: its QM3.
fn up_to_qm3(s: &mut Daemon<Sad>, hub: &mut Daemon<Sad>, now: Instant) -> Vec<IkeDatagram> {
    let flip = |d: IkeDatagram| IkeDatagram {
        local: d.remote,
        remote: d.local,
        message: d.message,
    };
    let sa_id = s.policy.statics[0].sa_id;
    s.on_acquire(
        sa_id,
        Some(ip("10.128.0.5")),
        Some(ip("10.2.0.9")),
        None,
        now,
    );
    for _ in 0..10 {
        let from_s = std::mem::take(&mut s.link.out);
        if !s.children.by_spi.is_empty() {
            return from_s;
        }
        for d in from_s {
            hub.on_ike(flip(d), now);
        }
        for d in std::mem::take(&mut hub.link.out) {
            s.on_ike(flip(d), now);
        }
    }
    panic!("the spoke's Quick Mode did not complete");
}

#[test]
fn a_batch_of_spokes_coming_up_installs_the_hubs_spd_once() {
    let mut hub = hub("");
    let now = Instant::now();
    let mut spokes: Vec<Daemon<Sad>> = (0..4).map(spoke).collect();
    let qm3s: Vec<Event> = spokes
        .iter_mut()
        .flat_map(|s| up_to_qm3(s, &mut hub, now))
        .map(|d| Event::Ike {
            port: 1,
            datagram: IkeDatagram {
                local: d.remote,
                remote: d.local,
                message: d.message,
            },
        })
        .collect();
    assert_eq!(qm3s.len(), 4);
    assert!(hub.children.by_spi.is_empty(), "no pair before QM3");
    let before = hub.link.spd_installs;
    hub.on_events(qm3s, now);
    assert_eq!(hub.children.by_spi.len(), 4);
    assert_eq!(
        hub.link.spd_installs,
        before + 1,
        "one InstallSpd for the batch"
    );
    assert_eq!(
        hub.link.spd.as_ref().unwrap().len(),
        4,
        "with every spoke's rule"
    );
    // outside a batch, a change is installed at once
    hub.clear_sa_peer(ip("192.0.2.11"));
    assert_eq!(hub.link.spd_installs, before + 2);
    assert_eq!(hub.link.spd.as_ref().unwrap().len(), 3);
}

#[test]
fn qm1s_of_several_spokes_in_one_batch_are_answered_in_parallel_with_matching_keys() {
    let flip = |d: IkeDatagram| IkeDatagram {
        local: d.remote,
        remote: d.local,
        message: d.message,
    };
    let mut hub = hub("");
    let first_dyn = hub.policy.first_dynamic_sa_id;
    let now = Instant::now();
    let mut spokes: Vec<Daemon<Sad>> = (0..4).map(spoke).collect();
    // each spoke runs Main Mode with the hub; its QM1 is held back
    let mut qm1s = Vec::new();
    for s in spokes.iter_mut() {
        let sa_id = s.policy.statics[0].sa_id;
        s.on_acquire(
            sa_id,
            Some(ip("10.128.0.5")),
            Some(ip("10.2.0.9")),
            None,
            now,
        );
        for _ in 0..10 {
            let from_s = std::mem::take(&mut s.link.out);
            if s.phase1.values().any(|p| p.established().is_some()) {
                qm1s.extend(from_s);
                break;
            }
            for d in from_s {
                hub.on_ike(flip(d), now);
            }
            for d in std::mem::take(&mut hub.link.out) {
                s.on_ike(flip(d), now);
            }
        }
    }
    assert_eq!(qm1s.len(), 4, "one QM1 per spoke");
    let batch = qm1s
        .into_iter()
        .map(|d| Event::Ike {
            port: 1,
            datagram: flip(d),
        })
        .collect();
    hub.on_events(batch, now);
    assert_eq!(
        hub.link.inbound.len(),
        4,
        "an inbound SA per QM1, before QM2"
    );
    // QM2s to their spokes (by address), QM3s back
    for d in std::mem::take(&mut hub.link.out) {
        let s = spokes
            .iter_mut()
            .find(|s| s.policy.main_mode.contains_key(&d.remote.ip()))
            .expect("a QM2 for one of the spokes");
        s.on_ike(flip(d), now);
    }
    for s in spokes.iter_mut() {
        pump(s, &mut hub, now, &mut no_loss);
    }
    assert_eq!(hub.children.by_spi.len(), 4);
    assert_eq!(hub.stats.quick_established, 4);
    for (i, s) in spokes.iter().enumerate() {
        assert_eq!(s.children.by_spi.len(), 1, "spoke {i}");
        // SA ids are given in the batch's order
        let id = first_dyn + i as u32;
        assert_pair_matches(&hub.link, id, &s.link);
        assert_pair_matches(&s.link, s.policy.statics[0].sa_id, &hub.link);
    }
}

#[test]
fn a_spoke_rekeying_keeps_its_sa_id_at_the_hub() {
    let mut hub = hub("");
    let mut spoke = daemon(config(
        SPOKE,
        "10.128.0.1/24",
        &static_map(HUB, "10.128.0.0/24", "10.2.0.0/24", 3600),
        "",
    ));
    let t0 = Instant::now();
    let sa_id = bring_up(&mut spoke, &mut hub, t0);
    let out = spoke.link.outbound[&sa_id].spi;
    spoke.on_expire(out, Direction::Outbound, false, t0);
    pump(&mut spoke, &mut hub, t0, &mut no_loss);
    let id = hub.policy.first_dynamic_sa_id;
    assert_eq!(hub.link.outbound.len(), 1);
    assert_pair_matches(&hub.link, id, &spoke.link);
    assert_eq!(hub.link.spd.as_ref().unwrap().len(), 1);
}

#[test]
fn the_admission_limit_refuses_mm1_beyond_it() {
    let mut hub = hub("call_admission_limit = 2");
    let now = Instant::now();
    for i in 0..4 {
        let mut s = spoke(i);
        s.on_acquire(s.policy.statics[0].sa_id, None, None, None, now);
        for d in std::mem::take(&mut s.link.out) {
            hub.on_ike(
                IkeDatagram {
                    local: d.remote,
                    remote: d.local,
                    message: d.message,
                },
                now,
            );
        }
    }
    assert_eq!(hub.phase1.len(), 2);
    assert_eq!(hub.stats.refused_admission, 2);
    assert_eq!(hub.admission.in_negotiation(), 2);
}

#[test]
fn malformed_and_unknown_messages_are_counted_and_dropped() {
    let (_, mut b) = static_pair(3600);
    let now = Instant::now();
    let from = |m: Vec<u8>| IkeDatagram {
        local: format!("{HUB}:500").parse().unwrap(),
        remote: format!("{SPOKE}:500").parse().unwrap(),
        message: m,
    };
    b.on_ike(from(vec![1, 2, 3]), now);
    let mut qm = vec![0u8; 28];
    qm[0] = 7; // CKY-I
    qm[8] = 9; // CKY-R: not an initiation
    qm[17] = 0x10;
    qm[18] = 32; // Quick Mode
    qm[27] = 28;
    b.on_ike(from(qm), now);
    assert_eq!(b.stats.malformed, 1);
    assert_eq!(b.stats.no_sa, 1);
    assert!(b.phase1.is_empty() && b.link.out.is_empty());
}

/// What `DumpSas` would return for this SAD.
pub(super) fn dump(sad: &Sad) -> Vec<SaCountersMsg> {
    let msg = |sa_id: u32, p: &SaParams| SaCountersMsg {
        spi: p.spi,
        direction: Some(p.direction),
        sa_id,
        crypto_map: p.crypto_map.clone(),
        crypto_map_seq: p.crypto_map_seq,
        local: p.local.to_string(),
        remote: p.remote.to_string(),
        transform: p.transform.to_string(),
        selectors: p.selectors.clone(),
        ..Default::default()
    };
    let mut v: Vec<SaCountersMsg> = sad.outbound.iter().map(|(id, p)| msg(*id, p)).collect();
    // inbound SAs carry their pair's SA id in the dataplane (the first outbound SA to
    // their peer)
    let mut by_peer: BTreeMap<IpAddr, u32> = BTreeMap::new();
    for (id, o) in sad.outbound.iter().rev() {
        by_peer.insert(o.remote, *id);
    }
    v.extend(
        sad.inbound
            .values()
            .map(|p| msg(by_peer.get(&p.remote).copied().unwrap_or(0), p)),
    );
    v
}

#[test]
fn a_restarted_control_adopts_the_sas_and_replaces_them_at_their_soft_lifetime() {
    let (mut a, mut b) = static_pair(3600);
    let t0 = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, t0);
    let old_out = a.link.outbound[&sa_id].spi;
    let old_in = *a.children.current.get(&sa_id).unwrap();
    // control A restarts: a new daemon over the same dataplane
    let sad = std::mem::take(&mut a.link);
    let sas = dump(&sad);
    let mut a = Daemon::new(sad, a.policy);
    a.adopt(sas);
    assert_eq!(a.children.adopted.len(), 2);
    assert!(a.link.outbound.contains_key(&sa_id), "still forwarding");
    // its outbound SA's soft lifetime: a new Main Mode (without INITIAL-CONTACT, so that B
    // keeps the SAs in use) and Quick Mode
    let t1 = t0 + Duration::from_secs(3240);
    a.on_expire(old_out, Direction::Outbound, false, t1);
    pump(&mut a, &mut b, t1, &mut no_loss);
    assert_eq!(b.stats.phase1_established, 2);
    assert_ne!(a.link.outbound[&sa_id].spi, old_out);
    assert_pair_matches(&a.link, sa_id, &b.link);
    assert_pair_matches(&b.link, b.policy.statics[0].sa_id, &a.link);
    assert!(
        a.link.inbound.contains_key(&old_in),
        "old inbound kept for the grace"
    );
    let t2 = t1 + RETIRE_GRACE + Duration::from_millis(1);
    a.tick(t2);
    b.tick(t2);
    pump(&mut a, &mut b, t2, &mut no_loss);
    assert!(!a.link.inbound.contains_key(&old_in));
    assert!(a.children.adopted.is_empty());
    assert_eq!(a.link.inbound.len(), 1);
}

#[test]
fn a_restarted_hub_rebuilds_the_spd_rules_of_its_spokes() {
    let mut hub = hub("");
    let mut spoke = daemon(config(
        SPOKE,
        "10.128.0.1/24",
        &static_map(HUB, "10.128.0.0/24", "10.2.0.0/24", 3600),
        "",
    ));
    let now = Instant::now();
    bring_up(&mut spoke, &mut hub, now);
    let rules = hub.link.spd.clone().unwrap();
    let sad = std::mem::take(&mut hub.link);
    let sas = dump(&sad);
    let mut hub = Daemon::new(sad, hub.policy);
    hub.adopt(sas);
    assert_eq!(
        hub.link.spd.as_ref(),
        Some(&rules),
        "the spoke's rule is kept"
    );
    assert_eq!(hub.next_dynamic_sa_id, hub.policy.first_dynamic_sa_id + 1);
    // clear crypto sa removes adopted SAs too, and their SPD rule
    assert_eq!(hub.clear_sa_peer(ip(SPOKE)), 2);
    assert!(hub.link.inbound.is_empty() && hub.link.outbound.is_empty());
    assert!(hub.link.spd.as_ref().unwrap().is_empty());
}

#[test]
fn a_spoke_behind_a_nat_floats_to_4500_and_sends_keepalives() {
    let mut hub = hub("");
    let mut spoke = daemon(config(
        SPOKE,
        "10.128.0.1/24",
        &static_map(HUB, "10.128.0.0/24", "10.2.0.0/24", 3600),
        "nat_keepalive = 20",
    ));
    // the NAT: 192.0.2.2:500 <-> 203.0.113.9:1500, 192.0.2.2:4500 <-> 203.0.113.9:14500
    let public: IpAddr = ip("203.0.113.9");
    let out = |x: std::net::SocketAddr| {
        std::net::SocketAddr::new(public, if x.port() == 500 { 1500 } else { 14500 })
    };
    let back = |x: std::net::SocketAddr| {
        std::net::SocketAddr::new(ip(SPOKE), if x.port() == 1500 { 500 } else { 4500 })
    };
    let t0 = Instant::now();
    let sa_id = spoke.policy.statics[0].sa_id;
    spoke.on_acquire(sa_id, None, None, None, t0);
    pump_nat(&mut spoke, &mut hub, t0, &mut no_loss, &out, &back);
    let (s_out, h_out) = (
        &spoke.link.outbound[&sa_id],
        &hub.link.outbound[&hub.policy.first_dynamic_sa_id],
    );
    let s_udp = s_out.udp_encap.expect("UDP-encapsulated on the spoke");
    let h_udp = h_out.udp_encap.expect("UDP-encapsulated at the hub");
    assert_eq!((s_udp.local_port, s_udp.remote_port), (4500, 4500));
    assert_eq!(
        (h_udp.local_port, h_udp.remote_port),
        (4500, 14500),
        "the NAT's port"
    );
    assert_eq!(h_out.remote, public);
    let p1 = spoke.phase1.values().next().unwrap().established().unwrap();
    assert!(p1.nat_local && !p1.nat_remote);
    // keepalives from the spoke (behind the NAT) every 20 s, none from the hub
    for i in 1..=50 {
        let t = t0 + Duration::from_secs(i);
        spoke.tick(t);
        hub.tick(t);
    }
    assert_eq!(spoke.link.packets.len(), 3, "at 1, 21 and 41 s");
    assert!(spoke
        .link
        .packets
        .iter()
        .all(|p| p.len() == 29 && p[28] == 0xFF));
    assert!(hub.link.packets.is_empty());
}

#[test]
fn an_ipv6_tunnel_comes_up_with_ipv6_proxies() {
    let mut a = daemon(config(
        "2001:db8:99::2",
        "2001:db8:1::1/64",
        &static_map("2001:db8:99::1", "2001:db8:1::/64", "2001:db8:2::/64", 3600),
        "",
    ));
    let mut b = daemon(config(
        "2001:db8:99::1",
        "2001:db8:2::1/64",
        &static_map("2001:db8:99::2", "2001:db8:2::/64", "2001:db8:1::/64", 3600),
        "",
    ));
    let now = Instant::now();
    let sa_id = a.policy.statics[0].sa_id;
    a.on_acquire(
        sa_id,
        Some(ip("2001:db8:1::5")),
        Some(ip("2001:db8:2::9")),
        None,
        now,
    );
    pump(&mut a, &mut b, now, &mut no_loss);
    assert_pair_matches(&a.link, sa_id, &b.link);
    let out = &a.link.outbound[&sa_id];
    assert_eq!(out.remote, ip("2001:db8:99::1"));
    assert_eq!(out.selectors[0].source.to_string(), "2001:db8:1::/64");
    assert_eq!(out.selectors[0].destination.to_string(), "2001:db8:2::/64");
}

#[test]
fn the_initiator_re_authenticates_phase_1_before_it_expires_and_keeps_the_sas() {
    let (mut a, mut b) = static_pair(3600);
    let t0 = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, t0);
    let spi = a.link.outbound[&sa_id].spi;
    // the policies' phase 1 lifetime is 3600 s: re-authentication at 90 %
    let t1 = t0 + Duration::from_secs(3241);
    a.tick(t1);
    b.tick(t1);
    pump(&mut a, &mut b, t1, &mut no_loss);
    assert_eq!(a.stats.phase1_established, 2, "a second ISAKMP SA");
    assert_eq!(
        a.link.outbound[&sa_id].spi, spi,
        "the IPsec SAs are untouched"
    );
    assert_eq!(
        b.children.by_spi.len(),
        1,
        "no INITIAL-CONTACT: B keeps them"
    );
    // the old ISAKMP SA expires; the new one carries on (a clear reaches B through it)
    let t2 = t0 + Duration::from_secs(3601);
    a.tick(t2);
    b.tick(t2);
    pump(&mut a, &mut b, t2, &mut no_loss);
    assert_eq!(a.phase1.len(), 1);
    assert_eq!(b.phase1.len(), 1);
    a.clear_sa_peer(ip(HUB));
    pump(&mut a, &mut b, t2, &mut no_loss);
    assert!(b.link.inbound.is_empty() && b.link.outbound.is_empty());
}

#[test]
fn a_hub_steps_many_main_modes_at_once_with_the_same_outcome() {
    let mut hub = hub("");
    let mut spokes: Vec<Daemon<Sad>> = (0..8).map(spoke).collect();
    let now = Instant::now();
    for s in spokes.iter_mut() {
        s.on_acquire(s.policy.statics[0].sa_id, None, None, None, now);
    }
    // every round, the hub takes what all spokes sent as one batch (as the run loop does
    // with what the dataplane queued): MM3s and MM5s are stepped in parallel
    for _ in 0..10 {
        let batch: Vec<Event> = spokes
            .iter_mut()
            .flat_map(|s| std::mem::take(&mut s.link.out))
            .map(|d| Event::Ike {
                port: 1,
                datagram: IkeDatagram {
                    local: d.remote,
                    remote: d.local,
                    message: d.message,
                },
            })
            .collect();
        hub.on_events(batch, now);
        for d in std::mem::take(&mut hub.link.out) {
            let s = spokes
                .iter_mut()
                .find(|s| s.policy.statics[0].local == d.remote.ip())
                .unwrap();
            s.on_ike(
                IkeDatagram {
                    local: d.remote,
                    remote: d.local,
                    message: d.message,
                },
                now,
            );
        }
    }
    assert_eq!(hub.stats.phase1_established, 8);
    assert_eq!(hub.children.by_spi.len(), 8);
    for s in &spokes {
        assert_pair_matches(&s.link, s.policy.statics[0].sa_id, &hub.link);
        let id = hub
            .children
            .by_spi
            .values()
            .find(|c| c.peer == s.policy.statics[0].local)
            .map(|c| c.sa_id)
            .unwrap();
        assert_pair_matches(&hub.link, id, &s.link);
    }
}

#[test]
fn exchanges_take_their_key_pairs_from_the_pool() {
    use crate::ikecrypto::{DhGroup, DhPool};
    use std::sync::Arc;
    let with_pfs = |m: String| m.replace("match_address", "pfs = \"group2\"\nmatch_address");
    let make = |cfg: IkeConfig, pool: &Arc<DhPool>| {
        Daemon::new(
            Sad::default(),
            GatewayPolicy::with_dh_pool(&cfg, pool.clone()).unwrap(),
        )
    };
    let (pool_a, pool_b) = (Arc::new(DhPool::new()), Arc::new(DhPool::new()));
    let spoke_map = with_pfs(static_map(HUB, "10.1.0.0/24", "10.2.0.0/24", 3600));
    let hub_map = with_pfs(static_map(SPOKE, "10.2.0.0/24", "10.1.0.0/24", 3600));
    let mut a = make(
        config(SPOKE, "10.1.0.1/24", &spoke_map, "dh_precompute = 3"),
        &pool_a,
    );
    let mut b = make(
        config(HUB, "10.2.0.1/24", &hub_map, "dh_precompute = 3"),
        &pool_b,
    );
    // group 2 serves Main Mode and PFS: two uses of 3
    assert_eq!(b.policy.dh_targets(), vec![(DhGroup::Modp1024, 6)]);
    assert_eq!(pool_b.stats()[0].target, 6, "Daemon::new sets the targets");
    assert_eq!(pool_b.fill(2).unwrap(), 6);
    // the spoke's pool is left empty: it makes its key pairs during the exchanges
    let now = Instant::now();
    let sa_id = bring_up(&mut a, &mut b, now);
    assert_pair_matches(&a.link, sa_id, &b.link);
    assert_pair_matches(&b.link, b.policy.statics[0].sa_id, &a.link);
    let child = b.children.by_spi.values().next().unwrap();
    assert_eq!(child.sa.pfs, Some(DhGroup::Modp1024));
    // one key pair for Main Mode and one for PFS on each side
    let hub = pool_b.stats()[0];
    assert_eq!((hub.taken, hub.on_demand, hub.ready), (2, 0, 4));
    let spoke = pool_a.stats()[0];
    assert_eq!((spoke.taken, spoke.on_demand, spoke.ready), (0, 2, 0));
}

#[test]
fn dh_targets_follow_the_groups_in_use() {
    // default: 1024 per use; group 2 in Main Mode only (no PFS)
    let a = spoke(1);
    assert_eq!(
        a.policy.dh_targets(),
        vec![(crate::ikecrypto::DhGroup::Modp1024, 1024)]
    );
    // none
    let hub = hub("dh_precompute = 0");
    assert!(hub.policy.dh_targets().is_empty());
}
