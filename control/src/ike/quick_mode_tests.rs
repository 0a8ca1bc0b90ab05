//! Quick Mode and informational exchanges between our initiator and our responder, in
//! memory, on top of established Main Mode pairs; the SAs go through the real ESP engine.

use dataplane::crypto::{self, Encryption, Integrity, Transform};
use dataplane::esp::{Direction, Lifetime, Mode, Prefix, Sa, SaParams, Selector};
use dataplane::packet::{PacketBuf, VecPacket};
use dataplane::wire::{ipv4, ipv6, proto, udp};

use super::informational::{self, InfoEvent};
use super::main_mode::{Phase1Sa, Rejection, Step};
use super::phase2::{Phase2Policy, Proxies, TransformSet};
use super::proposal::Phase1Policy;
use super::quick_mode::{ChildSa, QmI1Sent, QmResponse, QuickModeInitiator, QuickModeResponder};
use super::tests::{established_pair, established_pair_nat, p1_policy};
use super::Error;
use crate::ikecrypto::{DhGroup, HashAlg, IkeCipher};
use crate::isakmp::header::HEADER_LEN;
use crate::isakmp::notify::NotifyType;

const SPI_I: u32 = 0x3803_a0c1;
const SPI_R: u32 = 0xd740_971c;
const MID: u32 = 0xf7a2_cee7;

fn pfx(s: &str) -> Prefix {
    let (a, l) = s.split_once('/').unwrap();
    Prefix {
        addr: a.parse().unwrap(),
        len: l.parse().unwrap(),
    }
}

fn sel(src: &str, dst: &str) -> Selector {
    Selector {
        source: pfx(src),
        destination: pfx(dst),
        protocol: 0,
        source_ports: (0, 65535),
        destination_ports: (0, 65535),
    }
}

fn ts(name: &str, encryption: Encryption, integrity: Integrity, mode: Mode) -> TransformSet {
    TransformSet {
        name: name.into(),
        transform: Transform {
            encryption,
            integrity,
        },
        mode,
    }
}

fn lifetime(seconds: u64, kilobytes: u64) -> Lifetime {
    Lifetime {
        seconds,
        kilobytes,
        soft_percent: 90,
    }
}

/// The initiator's entry and the responder's mirror entry.
fn policies(sets: Vec<TransformSet>, s: Selector) -> (Phase2Policy, Phase2Policy) {
    (
        Phase2Policy::new("vpn", 10, sets.clone(), Proxies::Static(s)),
        Phase2Policy::new("vpn", 20, sets, Proxies::Static(s.mirror())),
    )
}

#[track_caller]
fn next<S: std::fmt::Debug, N>(s: Step<S, N>) -> (N, Vec<u8>) {
    match s {
        Step::Next(n, d) => (n, d),
        Step::Retransmit(st, _) => panic!("retransmit in {st:?}"),
        Step::Ignored(st, r) => panic!("ignored: {} in {st:?}", r.error),
        Step::Failed(r) => panic!("failed: {}", r.error),
    }
}

#[track_caller]
fn ignored<S, N>(s: Step<S, N>) -> (S, Rejection) {
    match s {
        Step::Ignored(st, r) => (st, r),
        Step::Next(..) => panic!("accepted"),
        Step::Retransmit(..) => panic!("retransmit"),
        Step::Failed(r) => panic!("failed: {}", r.error),
    }
}

fn respond(sa_r: &Phase1Sa, qm1: &[u8], pr: &[Phase2Policy]) -> Result<QmResponse, Rejection> {
    QuickModeResponder::on_qm1(sa_r, qm1, pr, &mut || SPI_R)
}

/// The whole exchange; checks what both sides must agree on. Returns (initiator's,
/// responder's) child SA.
fn quick_mode(
    sa_i: &Phase1Sa,
    sa_r: &Phase1Sa,
    pi: &Phase2Policy,
    pr: &[Phase2Policy],
) -> (ChildSa, ChildSa) {
    let (i1, qm1) = QuickModeInitiator::start(sa_i, pi, SPI_I, MID).unwrap();
    let resp = respond(sa_r, &qm1, pr).unwrap_or_else(|r| panic!("{}", r.error));
    assert_eq!(resp.inbound.spi, SPI_R);
    assert_eq!(resp.inbound.direction, Direction::Inbound);
    let (i3, qm3) = next(i1.on_message(sa_i, &resp.qm2));
    let inbound_r = resp.inbound.clone();
    let (child_r, nothing) = next(resp.state.on_message(sa_r, &qm3));
    assert!(nothing.is_empty());
    assert_eq!(child_r.inbound, inbound_r, "the SA installed before QM2");
    let child_i = i3.child().clone();
    check_pair(&child_i, &child_r);
    // A retransmitted QM2 gets the same QM3.
    assert_eq!(i3.on_retransmit(&resp.qm2), Some(qm3));
    (child_i, child_r)
}

fn check_pair(i: &ChildSa, r: &ChildSa) {
    assert_eq!((i.spi_in, i.spi_out), (SPI_I, SPI_R));
    assert_eq!((r.spi_in, r.spi_out), (SPI_R, SPI_I));
    assert_eq!(i.transform, r.transform);
    assert_eq!(i.mode, r.mode);
    assert_eq!(i.selector, r.selector.mirror());
    assert_eq!(i.lifetime, r.lifetime);
    assert_eq!(i.pfs, r.pfs);
    assert_eq!(i.message_id, MID);
    for (out, inb) in [(&i.outbound, &r.inbound), (&r.outbound, &i.inbound)] {
        assert_eq!(out.spi, inb.spi);
        assert_eq!(out.keys, inb.keys, "byte-identical keys");
        assert_eq!(out.transform, inb.transform);
        assert_eq!(out.direction, Direction::Outbound);
        assert_eq!(inb.direction, Direction::Inbound);
        assert_eq!(
            out.keys.encryption.len(),
            out.transform.encryption.key_len()
        );
        assert_eq!(
            out.keys.authentication.len(),
            out.transform.integrity.key_len()
        );
        assert_eq!(out.lifetime, i.lifetime);
    }
    assert_ne!(
        i.inbound.keys, i.outbound.keys,
        "each direction its own KEYMAT"
    );
    assert_eq!(i.inbound.selectors, vec![i.selector]);
    assert_eq!(i.outbound.selectors, vec![i.selector]);
    if r.outbound.udp_encap.is_none() {
        // No NAT: each sees the other's address.
        assert_eq!(i.inbound.local, r.outbound.remote);
        assert_eq!(r.inbound.local, i.outbound.remote);
    }
    // Both directions through the real ESP engine.
    esp_round_trip(&i.outbound, &r.inbound, &i.selector);
    esp_round_trip(&r.outbound, &i.inbound, &r.selector);
}

/// A host address inside a prefix.
fn host_in(p: Prefix) -> std::net::IpAddr {
    use std::net::IpAddr;
    match p.addr {
        IpAddr::V4(a) if p.len < 32 => IpAddr::V4((u32::from(a) + 5).into()),
        IpAddr::V6(a) if p.len < 128 => IpAddr::V6((u128::from(a) + 5).into()),
        a => a,
    }
}

fn inner_packet(s: &Selector, n: usize) -> Vec<u8> {
    use std::net::IpAddr;
    match (host_in(s.source), host_in(s.destination)) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut b = vec![0u8; 28 + n];
            ipv4::Repr {
                src,
                dst,
                protocol: proto::UDP,
                payload_len: 8 + n,
                ttl: 63,
                dscp_ecn: 0,
                ident: 7,
                dont_frag: false,
            }
            .emit(&mut b);
            udp::write_header(&mut b[20..], 1234, 5678, (8 + n) as u16);
            for (i, x) in b[28..].iter_mut().enumerate() {
                *x = i as u8;
            }
            b
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut b = vec![0u8; 48 + n];
            ipv6::Repr {
                src,
                dst,
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
        _ => unreachable!("mixed families"),
    }
}

/// Encapsulates with `out`, decapsulates with `inb`, checks the packet comes back.
fn esp_round_trip(out: &SaParams, inb: &SaParams, s: &Selector) {
    let b = crypto::default_backend(out.transform).expect("a backend");
    let mut o = Sa::new(out, 1, b, 0).unwrap();
    let mut i = Sa::new(inb, 2, b, 0).unwrap();
    for n in [0usize, 13, 500] {
        let inner = inner_packet(s, n);
        let mut p = VecPacket::new(&inner);
        o.encap(&mut p, 9000)
            .unwrap_or_else(|e| panic!("{}: {e:?}", out.transform));
        let outer = p.data().to_vec();
        let ip_len = if outer[0] >> 4 == 4 { 20 } else { 40 };
        let esp_at = ip_len + if out.udp_encap.is_some() { 8 } else { 0 };
        assert_eq!(
            u32::from_be_bytes(outer[esp_at..esp_at + 4].try_into().unwrap()),
            out.spi
        );
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(if outer[0] >> 4 == 4 {
            &[0x08, 0x00]
        } else {
            &[0x86, 0xdd]
        });
        f.extend_from_slice(&outer);
        let mut f = VecPacket::new(&f);
        i.decap(&mut f, 14, 14 + esp_at)
            .unwrap_or_else(|e| panic!("{} {:?}: {e:?}", out.transform, out.mode));
        assert_eq!(f.data(), &inner[..]);
    }
}

fn tunnel_sel() -> Selector {
    sel("10.1.0.0/24", "10.2.0.0/24")
}

// --- exchanges ---------------------------------------------------------------------------

/// The phase 1 suite most tests run under (aes, sha, group 2).
fn aes_sha1_p1() -> Phase1Policy {
    p1_policy(IkeCipher::Aes128, HashAlg::Sha1, DhGroup::Modp1024)
}

/// One transform set, `S`: esp-aes esp-sha-hmac in tunnel mode.
fn aes_sha1_tunnel() -> Vec<TransformSet> {
    vec![ts(
        "S",
        Encryption::AesCbc128,
        Integrity::Sha1,
        Mode::Tunnel,
    )]
}

#[test]
fn ios_reference_3des_md5_tunnel() {
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::TripleDes,
        HashAlg::Md5,
        DhGroup::Modp1024,
    ));
    let sets = vec![ts(
        "ESP-3DES-MD5",
        Encryption::TripleDes,
        Integrity::Md5,
        Mode::Tunnel,
    )];
    let (pi, pr) = policies(sets, tunnel_sel());
    let (i, r) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    assert_eq!(i.lifetime, lifetime(3600, 4_608_000));
    assert_eq!(i.transform_set, "ESP-3DES-MD5");
    assert_eq!(i.outbound.keys.encryption.len(), 24);
    assert_eq!(i.outbound.keys.authentication.len(), 16);
    assert_eq!(i.outbound.udp_encap, None);
    assert_eq!(
        (i.outbound.crypto_map.as_str(), i.outbound.crypto_map_seq),
        ("vpn", 10)
    );
    assert_eq!((r.crypto_map.as_str(), r.crypto_map_seq), ("vpn", 20));
    assert_eq!(i.outbound.local, sa_i.local.ip());
    assert_eq!(i.outbound.remote, sa_i.remote.ip());
    assert_eq!(i.pfs, None);
}

#[test]
fn gcm128_with_pfs_group14() {
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::Aes256,
        HashAlg::Sha256,
        DhGroup::Modp2048,
    ));
    let sets = vec![ts("GCM", Encryption::Gcm128, Integrity::None, Mode::Tunnel)];
    let (mut pi, mut pr) = policies(sets, tunnel_sel());
    pi.pfs = Some(DhGroup::Modp2048);
    pr.pfs = Some(DhGroup::Modp2048);
    let (i, _) = quick_mode(&sa_i, &sa_r, &pi, &[pr.clone()]);
    assert_eq!(i.pfs, Some(DhGroup::Modp2048));
    assert_eq!(i.outbound.keys.encryption.len(), 16 + 4, "key and salt");
    assert!(i.outbound.keys.authentication.is_empty());
    // Without PFS on the initiator, a responder that wants it refuses.
    pi.pfs = None;
    let (_, qm1) = QuickModeInitiator::start(&sa_i, &pi, SPI_I, MID).unwrap();
    let r = respond(&sa_r, &qm1, &[pr]).unwrap_err();
    assert!(
        matches!(r.error, Error::QmNoProposalChosen { .. }),
        "{}",
        r.error
    );
    assert_eq!(notify_of(&sa_i, &r), NotifyType::NO_PROPOSAL_CHOSEN);
}

#[test]
fn gcm256_initiator_pfs_accepted_by_a_responder_without_pfs() {
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::Aes128,
        HashAlg::Sha1,
        DhGroup::Modp2048,
    ));
    let sets = vec![ts(
        "GCM256",
        Encryption::Gcm256,
        Integrity::None,
        Mode::Tunnel,
    )];
    let (mut pi, pr) = policies(sets, tunnel_sel());
    pi.pfs = Some(DhGroup::Ecp256);
    let (i, _) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    assert_eq!(i.pfs, Some(DhGroup::Ecp256));
    assert_eq!(i.inbound.keys.encryption.len(), 32 + 4);
}

#[test]
fn aes256_sha256_transport() {
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::Aes128,
        HashAlg::Sha256,
        DhGroup::Modp2048,
    ));
    let sets = vec![ts(
        "T",
        Encryption::AesCbc256,
        Integrity::Sha256,
        Mode::Transport,
    )];
    // Host to host between the gateways (a GRE tunnel's traffic, say).
    let (pi, pr) = policies(sets, sel("10.99.0.1/32", "10.99.0.2/32"));
    let (i, r) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    assert_eq!(i.mode, Mode::Transport);
    assert_eq!(r.inbound.mode, Mode::Transport);
    assert_eq!(i.outbound.keys.encryption.len(), 32);
    assert_eq!(i.outbound.keys.authentication.len(), 32);
}

#[test]
fn des_sha1_with_ipv6_proxies_and_esp_null() {
    let (sa_i, sa_r) = established_pair(p1_policy(IkeCipher::Des, HashAlg::Sha1, DhGroup::Modp768));
    let sets = vec![ts("DES", Encryption::Des, Integrity::Sha1, Mode::Tunnel)];
    let (pi, pr) = policies(sets, sel("2001:db8:1::/48", "2001:db8:2::/48"));
    let (i, _) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    assert_eq!(i.outbound.keys.encryption.len(), 8);
    assert_eq!(i.outbound.keys.authentication.len(), 20);
    let sets = vec![ts("NULL", Encryption::Null, Integrity::Sha1, Mode::Tunnel)];
    let (pi, pr) = policies(sets, tunnel_sel());
    let (i, _) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    assert!(i.outbound.keys.encryption.is_empty());
}

#[test]
fn every_cbc_transform_interoperates() {
    let (sa_i, sa_r) = established_pair(aes_sha1_p1());
    for e in [
        Encryption::AesCbc128,
        Encryption::AesCbc192,
        Encryption::AesCbc256,
        Encryption::TripleDes,
        Encryption::Des,
    ] {
        for h in [Integrity::Sha1, Integrity::Md5, Integrity::Sha256] {
            let (pi, pr) = policies(vec![ts("X", e, h, Mode::Tunnel)], tunnel_sel());
            let (i, _) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
            assert_eq!(
                i.transform,
                Transform {
                    encryption: e,
                    integrity: h
                }
            );
        }
    }
}

#[test]
fn responder_picks_by_its_own_transform_set_order() {
    let (sa_i, sa_r) = established_pair(aes_sha1_p1());
    let a = ts(
        "AES",
        Encryption::AesCbc256,
        Integrity::Sha256,
        Mode::Tunnel,
    );
    let b = ts("3DES", Encryption::TripleDes, Integrity::Md5, Mode::Tunnel);
    let c = ts("GCM", Encryption::Gcm128, Integrity::None, Mode::Tunnel);
    let (pi, _) = policies(vec![a.clone(), b.clone()], tunnel_sel());
    let (_, pr) = policies(vec![c, b.clone(), a], tunnel_sel());
    let (i, r) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    assert_eq!(r.transform_set, "3DES");
    assert_eq!(i.transform_set, "3DES");
}

#[test]
fn responder_lifetime_is_sent_and_adopted() {
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::TripleDes,
        HashAlg::Md5,
        DhGroup::Modp1024,
    ));
    let sets = vec![ts("S", Encryption::Des, Integrity::Md5, Mode::Tunnel)];
    let (mut pi, mut pr) = policies(sets, tunnel_sel());
    pi.lifetime = lifetime(28800, 4_608_000);
    pr.lifetime = lifetime(3600, 100_000);
    let (i1, qm1) = QuickModeInitiator::start(&sa_i, &pi, SPI_I, MID).unwrap();
    let resp = respond(&sa_r, &qm1, std::slice::from_ref(&pr)).unwrap();
    let kinds = qm_payload_kinds(&sa_i, &resp.qm2, MID, &qm1);
    assert_eq!(
        kinds.last(),
        Some(&crate::isakmp::PayloadType::NOTIFY),
        "RESPONDER-LIFETIME at the end of QM2: {kinds:?}"
    );
    assert_eq!(resp.inbound.lifetime, lifetime(3600, 100_000));
    let (i3, _) = next(i1.on_message(&sa_i, &resp.qm2));
    assert_eq!(i3.child().lifetime, lifetime(3600, 100_000));
    assert_eq!(i3.child().outbound.lifetime, lifetime(3600, 100_000));
    // Equal lifetimes: no notification.
    let (pi, pr) = policies(
        vec![ts("S", Encryption::Des, Integrity::Md5, Mode::Tunnel)],
        tunnel_sel(),
    );
    let (_, qm1) = QuickModeInitiator::start(&sa_i, &pi, SPI_I, MID).unwrap();
    let resp = respond(&sa_r, &qm1, &[pr]).unwrap();
    let kinds = qm_payload_kinds(&sa_i, &resp.qm2, MID, &qm1);
    assert!(
        !kinds.contains(&crate::isakmp::PayloadType::NOTIFY),
        "{kinds:?}"
    );
    // A longer responder lifetime is not imposed: the initiator's stands.
    let (mut pi, mut pr) = policies(
        vec![ts("S", Encryption::Des, Integrity::Md5, Mode::Tunnel)],
        tunnel_sel(),
    );
    pi.lifetime = lifetime(3600, 4_608_000);
    pr.lifetime = lifetime(28800, 4_608_000);
    let (i, _) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    assert_eq!(i.lifetime.seconds, 3600);
}

/// The payload types (after HASH) of QM2, decrypted with the IV after `qm1`.
fn qm_payload_kinds(
    sa: &Phase1Sa,
    qm2: &[u8],
    mid: u32,
    qm1: &[u8],
) -> Vec<crate::isakmp::PayloadType> {
    let mut iv = crate::ikecrypto::IvChain::new(&sa.phase2_iv(mid));
    iv.advance(&qm1[HEADER_LEN..]).unwrap();
    let (h, body) = crate::isakmp::message::parse_header(qm2).unwrap();
    let pt = sa
        .policy
        .cipher
        .decrypt(sa.keys.enc_key(), iv.iv(), body)
        .unwrap();
    crate::isakmp::message::parse_body(h.next_payload, &pt, true)
        .unwrap()
        .iter()
        .map(|p| p.kind())
        .collect()
}

fn notify_of(sa: &Phase1Sa, r: &Rejection) -> NotifyType {
    let msg = r.notify.as_ref().expect("a notification");
    let info = informational::parse(sa, msg).unwrap();
    match &info.events[..] {
        [InfoEvent::Notify(n)] => n.message_type,
        other => panic!("{other:?}"),
    }
}

#[test]
fn proxy_id_mismatch_is_refused_with_invalid_id_information() {
    let (sa_i, sa_r) = established_pair(aes_sha1_p1());
    let sets = aes_sha1_tunnel();
    let (pi, _) = policies(sets.clone(), tunnel_sel());
    let (_, pr) = policies(sets.clone(), sel("10.1.0.0/24", "10.3.0.0/24"));
    let (_, qm1) = QuickModeInitiator::start(&sa_i, &pi, SPI_I, MID).unwrap();
    let mut called = false;
    let r = QuickModeResponder::on_qm1(&sa_r, &qm1, &[pr], &mut || {
        called = true;
        1
    })
    .unwrap_err();
    assert!(!called, "no SPI allocated for a refused exchange");
    assert!(
        matches!(r.error, Error::ProxyIdRefused { .. }),
        "{}",
        r.error
    );
    assert!(r.error.is_fatal());
    assert_eq!(notify_of(&sa_i, &r), NotifyType::INVALID_ID_INFORMATION);
    // Same proxies, no common transform: NO-PROPOSAL-CHOSEN.
    let (_, pr) = policies(
        vec![ts("G", Encryption::Gcm256, Integrity::None, Mode::Tunnel)],
        tunnel_sel(),
    );
    let r = respond(&sa_r, &qm1, &[pr]).unwrap_err();
    assert_eq!(notify_of(&sa_i, &r), NotifyType::NO_PROPOSAL_CHOSEN);
    // Tunnel offered, transport configured: refused too.
    let (_, pr) = policies(
        vec![ts(
            "S",
            Encryption::AesCbc128,
            Integrity::Sha1,
            Mode::Transport,
        )],
        tunnel_sel(),
    );
    assert!(respond(&sa_r, &qm1, &[pr]).is_err());
}

#[test]
fn dynamic_map_accepts_proxies_inside_its_ranges() {
    let (sa_i, sa_r) = established_pair(aes_sha1_p1());
    let sets = aes_sha1_tunnel();
    let (pi, _) = policies(sets.clone(), tunnel_sel());
    // Entry 10: a static entry for someone else; entry 65535: the dynamic map, whose second
    // range (our 10.2.0.0/16 to anything in 10/8) contains the initiator's proxies.
    let (_, other) = policies(sets.clone(), sel("172.16.0.0/24", "172.17.0.0/24"));
    let dynamic = Phase2Policy::new(
        "vpn",
        65535,
        sets.clone(),
        Proxies::Dynamic(vec![
            sel("192.168.0.0/16", "0.0.0.0/0"),
            sel("10.2.0.0/16", "10.0.0.0/8"),
        ]),
    );
    let prs = [other, dynamic];
    let (i, r) = quick_mode(&sa_i, &sa_r, &pi, &prs);
    assert_eq!((r.policy_index, r.dynamic_entry), (1, Some(1)));
    assert_eq!(r.crypto_map_seq, 65535);
    assert_eq!(
        r.selector,
        tunnel_sel().mirror(),
        "the initiator's proxies, not the range"
    );
    assert_eq!(i.dynamic_entry, None);
    // Proxies outside every range are refused.
    let (pi, _) = policies(sets, sel("10.1.0.0/24", "10.4.0.0/24"));
    let (_, qm1) = QuickModeInitiator::start(&sa_i, &pi, SPI_I, MID).unwrap();
    let r = respond(&sa_r, &qm1, &prs).unwrap_err();
    assert!(
        matches!(r.error, Error::ProxyIdRefused { .. }),
        "{}",
        r.error
    );
}

#[test]
fn bad_hashes_are_dropped_and_retransmissions_answered() {
    let (sa_i, sa_r) = established_pair(aes_sha1_p1());
    let sets = vec![ts(
        "S",
        Encryption::TripleDes,
        Integrity::Sha1,
        Mode::Tunnel,
    )];
    let (pi, pr) = policies(sets, tunnel_sel());
    let prs = [pr];
    let (i1, qm1): (QmI1Sent, Vec<u8>) = QuickModeInitiator::start(&sa_i, &pi, SPI_I, MID).unwrap();
    // A flipped bit in the HASH(1) value (first ciphertext block's CBC effect lands in the
    // second block: flip in the first block to garble the HASH payload's bytes).
    for at in [HEADER_LEN + 1, HEADER_LEN + 20, qm1.len() - 20] {
        let mut bad = qm1.clone();
        bad[at] ^= 0x40;
        let r = respond(&sa_r, &bad, &prs).unwrap_err();
        assert!(matches!(r.error, Error::BadHash { .. }), "{}", r.error);
        assert!(!r.error.is_fatal() && r.notify.is_none());
    }
    let resp = respond(&sa_r, &qm1, &prs).unwrap();
    // The exact QM1 again: the same QM2.
    let (r2, again) = match resp.state.on_message(&sa_r, &qm1) {
        Step::Retransmit(s, d) => (s, d),
        _ => panic!("not a retransmission"),
    };
    assert_eq!(again, resp.qm2);
    // A tampered QM2 is dropped by the initiator, which still takes the real one.
    let mut bad = resp.qm2.clone();
    let n = bad.len();
    bad[n - 30] ^= 1;
    let (i1, rej) = ignored(i1.on_message(&sa_i, &bad));
    assert!(matches!(rej.error, Error::BadHash { .. }), "{}", rej.error);
    let (i3, qm3) = next(i1.on_message(&sa_i, &resp.qm2));
    // A tampered QM3 is dropped; the real one completes.
    let mut bad = qm3.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    let (r2, rej) = ignored(r2.on_message(&sa_r, &bad));
    assert!(matches!(rej.error, Error::BadHash { .. }), "{}", rej.error);
    let (child_r, _) = next(r2.on_message(&sa_r, &qm3));
    check_pair(i3.child(), &child_r);
}

#[test]
fn nat_t_gives_udp_encapsulated_sas() {
    let (sa_i, sa_r) = established_pair_nat(p1_policy(
        IkeCipher::Aes128,
        HashAlg::Sha256,
        DhGroup::Modp2048,
    ));
    let sets = aes_sha1_tunnel();
    let (pi, pr) = policies(sets, tunnel_sel());
    let (i, r) = quick_mode(&sa_i, &sa_r, &pi, &[pr]);
    let enc = |l, r| {
        Some(dataplane::esp::UdpEncap {
            local_port: l,
            remote_port: r,
        })
    };
    assert_eq!(i.outbound.udp_encap, enc(4500, 4500));
    assert_eq!(r.outbound.udp_encap, enc(4500, 31001));
    assert_eq!(
        r.outbound.remote,
        "198.51.100.7".parse::<std::net::IpAddr>().unwrap()
    );
    // The encapsulation attribute is UDP-Encapsulated-Tunnel (3) with RFC 3947.
    let attrs =
        super::phase2::proposal_attributes(&pi.transform_sets[0], &pi.lifetime, None, sa_i.nat_t);
    assert!(
        attrs.contains(&crate::isakmp::attributes::Phase2Attribute::Encapsulation(
            crate::isakmp::attributes::EncapsulationMode::UDP_TUNNEL
        ))
    );
}

// --- informational -----------------------------------------------------------------------

#[test]
fn delete_and_dpd_round_trips() {
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::Aes256,
        HashAlg::Sha256,
        DhGroup::Modp2048,
    ));
    let m = informational::delete_esp(&sa_i, &[SPI_I, 0x1234]).unwrap();
    let info = informational::parse(&sa_r, &m).unwrap();
    assert_eq!(info.events, [InfoEvent::DeleteEsp(vec![SPI_I, 0x1234])]);
    assert_ne!(info.message_id, 0);
    let m = informational::delete_isakmp(&sa_r).unwrap();
    let info = informational::parse(&sa_i, &m).unwrap();
    assert_eq!(info.events, [InfoEvent::DeleteIsakmp]);
    let m = informational::r_u_there(&sa_i, 0x5a5a_0001).unwrap();
    let info = informational::parse(&sa_r, &m).unwrap();
    assert_eq!(info.events, [InfoEvent::RUThere(0x5a5a_0001)]);
    let ack = info.dpd_reply(&sa_r).expect("an ACK");
    let back = informational::parse(&sa_i, &ack).unwrap();
    assert_eq!(back.events, [InfoEvent::RUThereAck(0x5a5a_0001)]);
    assert_eq!(back.dpd_reply(&sa_i), None);
    let m = informational::initial_contact(&sa_i).unwrap();
    assert_eq!(
        informational::parse(&sa_r, &m).unwrap().events,
        [InfoEvent::InitialContact]
    );
    // Tampered anywhere: dropped as a hash failure.
    let m = informational::r_u_there(&sa_i, 7).unwrap();
    for at in [HEADER_LEN + 2, m.len() - 1] {
        let mut bad = m.clone();
        bad[at] ^= 0x80;
        let e = informational::parse(&sa_r, &bad).unwrap_err();
        assert!(matches!(e, Error::BadHash { .. }), "{e}");
    }
    // A message under another ISAKMP SA: not ours.
    let (sa_x, _) = established_pair(p1_policy(
        IkeCipher::Aes256,
        HashAlg::Sha256,
        DhGroup::Modp2048,
    ));
    let m = informational::r_u_there(&sa_x, 7).unwrap();
    assert!(matches!(
        informational::parse(&sa_r, &m),
        Err(Error::UnknownCookies { .. })
    ));
}

#[test]
fn informational_hash_with_the_wrong_key_is_refused() {
    // Same cookies and cipher key, another SKEYID_a: the HASH does not verify.
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::TripleDes,
        HashAlg::Md5,
        DhGroup::Modp1024,
    ));
    let payloads = vec![crate::isakmp::message::Payload::Notification(
        crate::isakmp::notify::Repr::r_u_there(sa_i.cookies(), 9),
    )];
    let forged = super::protected::with_hash(payloads, |_| vec![0u8; 16]).unwrap();
    let mut iv = crate::ikecrypto::IvChain::new(&sa_i.phase2_iv(77));
    let m = super::protected::seal(
        &sa_i,
        crate::isakmp::ExchangeType::INFORMATIONAL,
        77,
        &forged,
        &mut iv,
    )
    .unwrap();
    let e = informational::parse(&sa_r, &m).unwrap_err();
    assert!(matches!(e, Error::BadHash { .. }), "{e}");
}

/// A QM1 with HASH(1) over `rest`, as an initiator would send it, under `sa`.
fn custom_qm1(sa: &Phase1Sa, rest: Vec<crate::isakmp::message::Payload>) -> Vec<u8> {
    let (h, ska) = (sa.keys.hash(), sa.keys.skeyid_a());
    let all = super::protected::with_hash(rest, |after| {
        crate::ikecrypto::keys::qm_hash1(h, ska, MID, after)
    })
    .unwrap();
    let mut iv = crate::ikecrypto::IvChain::new(&sa.phase2_iv(MID));
    super::protected::seal(
        sa,
        crate::isakmp::ExchangeType::QUICK_MODE,
        MID,
        &all,
        &mut iv,
    )
    .unwrap()
}

fn esp_proposal(
    number: u8,
    attrs: &[crate::isakmp::attributes::Phase2Attribute],
) -> crate::isakmp::sa::ProposalRepr {
    crate::isakmp::sa::ProposalRepr {
        number,
        protocol: crate::isakmp::ProtocolId::IPSEC_ESP,
        spi: SPI_I.to_be_bytes().to_vec(),
        transforms: vec![crate::isakmp::sa::TransformRepr::esp(
            1,
            crate::isakmp::attributes::EspTransformId::TRIPLE_DES,
            attrs,
        )],
    }
}

#[test]
fn crafted_qm1_without_ids_udp_without_nat_and_bundles() {
    use crate::isakmp::attributes::{AuthAlgorithm, EncapsulationMode, Phase2Attribute as A};
    use crate::isakmp::message::Payload;
    use crate::isakmp::{nonce, sa as sap};
    let (sa_i, sa_r) = established_pair(p1_policy(
        IkeCipher::TripleDes,
        HashAlg::Md5,
        DhGroup::Modp1024,
    ));
    let set = ts("S", Encryption::TripleDes, Integrity::Md5, Mode::Transport);
    let gw = sel("10.99.0.2/32", "10.99.0.1/32");
    let pr = Phase2Policy::new("vpn", 10, vec![set], Proxies::Static(gw));
    let qm1 = |proposals: Vec<sap::ProposalRepr>| {
        custom_qm1(
            &sa_i,
            vec![
                Payload::Sa(sap::Repr { proposals }),
                Payload::Nonce(nonce::Repr::new(vec![7u8; 16]).unwrap()),
            ],
        )
    };
    let attrs = |m| {
        [
            A::Encapsulation(m),
            A::AuthAlgorithm(AuthAlgorithm::HMAC_MD5),
        ]
    };
    // No IDs: the proxies are the phase 1 addresses (host to host), 28800 s by default.
    let m = qm1(vec![esp_proposal(1, &attrs(EncapsulationMode::TRANSPORT))]);
    let resp = respond(&sa_r, &m, std::slice::from_ref(&pr)).unwrap();
    assert_eq!(resp.inbound.selectors, vec![gw]);
    assert_eq!(resp.inbound.lifetime, lifetime(3600, 4_608_000));
    // UDP-Encapsulated-Transport without a NAT: refused.
    let m = qm1(vec![esp_proposal(
        1,
        &attrs(EncapsulationMode::UDP_TRANSPORT),
    )]);
    let r = respond(&sa_r, &m, std::slice::from_ref(&pr)).unwrap_err();
    assert!(
        matches!(r.error, Error::QmNoProposalChosen { .. }),
        "{}",
        r.error
    );
    // A bundle (two proposals numbered 1) is skipped; proposal 2 alone is taken.
    let mut ah_like = esp_proposal(1, &attrs(EncapsulationMode::TRANSPORT));
    ah_like.protocol = crate::isakmp::ProtocolId::IPSEC_AH;
    let m = qm1(vec![
        ah_like,
        esp_proposal(1, &attrs(EncapsulationMode::TRANSPORT)),
        esp_proposal(2, &attrs(EncapsulationMode::TRANSPORT)),
    ]);
    let resp = respond(&sa_r, &m, std::slice::from_ref(&pr)).unwrap();
    let kinds = qm_payload_kinds(&sa_i, &resp.qm2, MID, &m);
    assert_eq!(kinds[1], crate::isakmp::PayloadType::SA);
    // Unknown attribute: refused.
    let odd = [
        A::Encapsulation(EncapsulationMode::TRANSPORT),
        A::AuthAlgorithm(AuthAlgorithm::HMAC_MD5),
        A::Other(crate::isakmp::Attribute::basic(999, 1)),
    ];
    let m = qm1(vec![esp_proposal(1, &odd)]);
    assert!(respond(&sa_r, &m, &[pr]).is_err());
}

#[test]
fn draft_nat_t_uses_the_draft_encapsulation_values() {
    use super::phase2::encapsulation;
    use crate::isakmp::attributes::EncapsulationMode as E;
    use crate::isakmp::vendor::KnownVendor as V;
    assert_eq!(encapsulation(Mode::Tunnel, None), E::TUNNEL);
    assert_eq!(encapsulation(Mode::Transport, None), E::TRANSPORT);
    assert_eq!(
        encapsulation(Mode::Tunnel, Some(V::NatTRfc3947)),
        E::UDP_TUNNEL
    );
    assert_eq!(
        encapsulation(Mode::Transport, Some(V::NatTRfc3947)),
        E::UDP_TRANSPORT
    );
    assert_eq!(
        encapsulation(Mode::Tunnel, Some(V::NatTDraft02N)),
        E::UDP_TUNNEL_DRAFT
    );
    assert_eq!(
        encapsulation(Mode::Transport, Some(V::NatTDraft03)),
        E::UDP_TRANSPORT_DRAFT
    );
    assert_eq!(E::UDP_TUNNEL_DRAFT.0, 61443);
}
