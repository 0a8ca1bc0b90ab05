//! What `ipsec-ctl` shows and does, from the daemon's live state: [`CtlBackend`] for
//! [`Daemon`].
//!
//! The views are built at the moment they are asked for, from three sources that each know
//! one part of the truth:
//! - the daemon's phase 1 SAs and installed pairs (conn-ids, states, proxies, peers);
//! - the dataplane's counter dump, fetched once per command ([`Link::counters`]) and merged
//!   by SPI: an outbound SA's encaps are the flow's `#pkts encaps`, an inbound SA's decaps
//!   its `#pkts decaps`, and the remaining k/sec lifetime is the dataplane's (it is the one
//!   that expires the SA);
//! - the configuration the policy was built from (interfaces, maps, transform sets,
//!   trustpoints).
//!
//! One [`IpsecSaView`] stands for one flow: a crypto map entry, a peer and a pair of proxy
//! identities, with every SA of that flow (after a rekey the old inbound SA is listed beside
//! the new one until it retires). SAs adopted from an earlier run of `ipsec-control` are
//! listed too, flagged `adopted`; they have no conn-id (0), since the run that numbered
//! them is gone.
//!
//! Nothing here reads key material: the views are built from SPIs, transforms, addresses
//! and counters only.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::{Instant, SystemTime};

use dataplane::channel::{CountersMsg, SaCountersMsg};
use dataplane::crypto::{Encryption, Integrity, Transform};
use dataplane::esp::{Direction, Mode, Prefix, SaParams, Selector};
use openssl::x509::{X509NameRef, X509Ref, X509};

use crate::config::IsakmpPolicy;
use crate::ctl::command::SaSelector;
use crate::ctl::view::{
    CertificateView, CrlView, CryptoMapView, DhKeyPairsView, EngineConnectionView, EngineView,
    EspSaView, IdentView, IpsecSaView, IsakmpPolicyView, IsakmpSaView, LcoreStatsView, RevokedView,
    TransformSetView, TrustpointView,
};
use crate::ctl::CtlBackend;
use crate::ike::{AuthMethod, Role};
use crate::ikecrypto::{HashAlg, IkeCipher};
use crate::isakmp::id::Identity;
use crate::pki::{CrlSource, TrustStore};

use super::children::Child;
use super::phase1::{P1State, Phase1};
use super::policy::Origin;
use super::{Daemon, Link};

/// The dataplane's per-SA counters, by what names an SA there: an inbound SA by its SPI
/// (the dataplane allocates them, so they are unique), an outbound SA by its SPD id and SPI
/// (outbound SPIs are chosen by the peers and may collide).
#[derive(Default)]
struct SaCounters {
    inbound: HashMap<u32, SaCountersMsg>,
    outbound: HashMap<(u32, u32), SaCountersMsg>,
}

impl SaCounters {
    fn new(msg: CountersMsg) -> SaCounters {
        let mut c = SaCounters::default();
        for s in msg.sas {
            match s.direction {
                Some(Direction::Inbound) => {
                    c.inbound.insert(s.spi, s);
                }
                Some(Direction::Outbound) => {
                    c.outbound.insert((s.sa_id, s.spi), s);
                }
                None => {}
            }
        }
        c
    }

    fn get(&self, direction: Direction, sa_id: u32, spi: u32) -> Option<&SaCountersMsg> {
        match direction {
            Direction::Inbound => self.inbound.get(&spi),
            Direction::Outbound => self.outbound.get(&(sa_id, spi)),
        }
    }
}

fn link_error(e: impl std::fmt::Display) -> String {
    format!("the dataplane did not answer: {e}")
}

/// `show crypto isakmp policy`'s words for the phase 1 algorithms.
fn cipher_keyword(c: IkeCipher) -> &'static str {
    match c {
        IkeCipher::Des => "des",
        IkeCipher::TripleDes => "3des",
        IkeCipher::Aes128 => "aes",
        IkeCipher::Aes192 => "aes 192",
        IkeCipher::Aes256 => "aes 256",
    }
}

fn hash_keyword(h: HashAlg) -> &'static str {
    match h {
        HashAlg::Md5 => "md5",
        HashAlg::Sha1 => "sha",
        HashAlg::Sha256 => "sha256",
        HashAlg::Sha384 => "sha384",
    }
}

fn auth_keyword(a: AuthMethod) -> &'static str {
    match a {
        AuthMethod::RsaSig => "rsa-sig",
        AuthMethod::PreShare => "pre-share",
    }
}

/// The engine's algorithm names, in the style of IOS's `HMAC_MD5+DES_56_CB`.
fn ike_algorithm(c: IkeCipher, h: HashAlg) -> String {
    let cipher = match c {
        IkeCipher::Des => "DES_56_CB",
        IkeCipher::TripleDes => "3DES_168_CB",
        IkeCipher::Aes128 => "AES_128_CB",
        IkeCipher::Aes192 => "AES_192_CB",
        IkeCipher::Aes256 => "AES_256_CB",
    };
    let hash = match h {
        HashAlg::Md5 => "HMAC_MD5",
        HashAlg::Sha1 => "HMAC_SHA",
        HashAlg::Sha256 => "HMAC_SHA256",
        HashAlg::Sha384 => "HMAC_SHA384",
    };
    format!("{hash}+{cipher}")
}

fn esp_algorithm(t: Transform) -> String {
    let cipher = match t.encryption {
        Encryption::Des => "DES_56_CB",
        Encryption::TripleDes => "3DES_168_CB",
        Encryption::AesCbc128 => "AES_128_CB",
        Encryption::AesCbc192 => "AES_192_CB",
        Encryption::AesCbc256 => "AES_256_CB",
        Encryption::Gcm128 => "AES_GCM_128",
        Encryption::Gcm256 => "AES_GCM_256",
        Encryption::Null => "NULL",
    };
    let hash = match t.integrity {
        Integrity::None => return cipher.to_string(),
        Integrity::Md5 => "HMAC_MD5",
        Integrity::Sha1 => "HMAC_SHA",
        Integrity::Sha256 => "HMAC_SHA256",
    };
    format!("{hash}+{cipher}")
}

/// The same name from the dataplane's transform words (adopted SAs know only those).
fn esp_algorithm_of_words(words: &str) -> String {
    TRANSFORMS
        .iter()
        .find(|t| t.to_string() == words)
        .map(|t| esp_algorithm(*t))
        .unwrap_or_else(|| words.to_uppercase())
}

/// Every transform the dataplane implements, for matching the words of a dump.
const TRANSFORMS: [Transform; 17] = {
    use Encryption as E;
    use Integrity as I;
    const fn t(encryption: Encryption, integrity: Integrity) -> Transform {
        Transform {
            encryption,
            integrity,
        }
    }
    [
        t(E::Gcm128, I::None),
        t(E::Gcm256, I::None),
        t(E::AesCbc128, I::Sha1),
        t(E::AesCbc128, I::Md5),
        t(E::AesCbc128, I::Sha256),
        t(E::AesCbc192, I::Sha1),
        t(E::AesCbc192, I::Sha256),
        t(E::AesCbc256, I::Sha1),
        t(E::AesCbc256, I::Md5),
        t(E::AesCbc256, I::Sha256),
        t(E::TripleDes, I::Sha1),
        t(E::TripleDes, I::Md5),
        t(E::TripleDes, I::Sha256),
        t(E::Des, I::Sha1),
        t(E::Des, I::Md5),
        t(E::Null, I::Sha1),
        t(E::Null, I::None),
    ]
};

fn mode_name(m: Mode) -> &'static str {
    match m {
        Mode::Tunnel => "Tunnel",
        Mode::Transport => "Transport",
    }
}

/// A prefix length as a mask (`255.255.255.0`, or an IPv6 mask).
fn mask_of(p: Prefix) -> IpAddr {
    match p.addr {
        IpAddr::V4(_) => {
            let m = u32::MAX
                .checked_shl(32 - u32::from(p.len.min(32)))
                .unwrap_or(0);
            IpAddr::V4(m.into())
        }
        IpAddr::V6(_) => {
            let m = u128::MAX
                .checked_shl(128 - u32::from(p.len.min(128)))
                .unwrap_or(0);
            IpAddr::V6(m.into())
        }
    }
}

/// A port range as IOS's ident shows it: 0 for any, the port for one.
fn ident_port(range: (u16, u16)) -> u16 {
    if range.0 == range.1 {
        range.0
    } else {
        0
    }
}

fn ident(p: Prefix, protocol: u8, ports: (u16, u16)) -> IdentView {
    IdentView {
        addr: p.addr,
        mask: mask_of(p),
        protocol,
        port: ident_port(ports),
    }
}

/// An ACL line as `show crypto map` prints it: `access-list 130 permit ip 1.1.1.0
/// 0.0.0.255 192.168.4.0 0.0.0.255`.
fn acl_line(name: &str, permit: bool, s: &Selector) -> String {
    let proto = match s.protocol {
        0 => "ip".to_string(),
        1 => "icmp".to_string(),
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        n => n.to_string(),
    };
    let addr = |p: Prefix| match (p.addr, p.len) {
        (IpAddr::V4(_), 0) => "any".to_string(),
        (IpAddr::V4(a), 32) => format!("host {a}"),
        (IpAddr::V4(a), len) => {
            let wildcard = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            format!("{a} {}", std::net::Ipv4Addr::from(wildcard))
        }
        (IpAddr::V6(_), 0) => "any".to_string(),
        (IpAddr::V6(a), len) => format!("{a}/{len}"),
    };
    let ports = |r: (u16, u16)| match r {
        (0, 65535) => String::new(),
        (a, b) if a == b => format!(" eq {a}"),
        (a, b) => format!(" range {a} {b}"),
    };
    format!(
        "access-list {name} {} {proto} {}{} {}{}",
        if permit { "permit" } else { "deny" },
        addr(s.source),
        ports(s.source_ports),
        addr(s.destination),
        ports(s.destination_ports)
    )
}

/// A name's RDNs as IOS lists them, most specific first: `cn=WIN2003`, `dc=amit`, ...
fn rdns(name: &X509NameRef) -> Vec<String> {
    let mut v: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map(str::to_lowercase)
                .unwrap_or_else(|_| e.object().to_string());
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| hex::encode(e.data().as_slice()));
            format!("{key}={value}")
        })
        .collect();
    v.reverse();
    v
}

fn unix_now() -> i64 {
    crate::pki::unix_secs(SystemTime::now())
}

/// IOS's `Key Usage:` of a certificate from its keyUsage extension: "Signature" when it
/// may only sign (digitalSignature, nonRepudiation, keyCertSign, cRLSign), "Encryption"
/// when it may only encipher or agree keys, "General Purpose" when both or when the
/// extension is absent (no restriction).
fn key_usage(cert: &X509Ref) -> &'static str {
    let text = cert
        .to_text()
        .map(|t| String::from_utf8_lossy(&t).into_owned())
        .unwrap_or_default();
    let mut lines = text.lines();
    let Some(bits) = lines
        .by_ref()
        .find(|l| l.trim_start().starts_with("X509v3 Key Usage:"))
        .and_then(|_| lines.next())
    else {
        return "General Purpose";
    };
    let has = |names: &[&str]| names.iter().any(|n| bits.contains(n));
    let sign = has(&[
        "Digital Signature",
        "Non Repudiation",
        "Certificate Sign",
        "CRL Sign",
    ]);
    let encrypt = has(&["Key Encipherment", "Data Encipherment", "Key Agreement"]);
    match (sign, encrypt) {
        (true, false) => "Signature",
        (false, true) => "Encryption",
        _ => "General Purpose",
    }
}

fn certificate_view(
    cert: &X509Ref,
    kind: &str,
    subject_name: Option<String>,
    trustpoint: &str,
) -> CertificateView {
    let not_before = crate::pki::asn1_unix(cert.not_before()).unwrap_or(0);
    let not_after = crate::pki::asn1_unix(cert.not_after()).unwrap_or(0);
    CertificateView {
        kind: kind.to_string(),
        status: if not_after < unix_now() {
            "Expired".into()
        } else {
            "Available".into()
        },
        serial: crate::pki::verify::serial_hex(cert),
        usage: key_usage(cert).into(),
        issuer: rdns(cert.issuer_name()),
        subject: rdns(cert.subject_name()),
        subject_name,
        crl_distribution_points: crate::pki::crl::distribution_points(cert),
        not_before,
        not_after,
        trustpoints: vec![trustpoint.to_string()],
    }
}

/// What names a flow: IOS lists the SAs of one crypto map entry, peer and pair of proxy
/// identities together.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FlowKey {
    map: String,
    seq: u32,
    peer: IpAddr,
    selector: Selector,
}

impl<L: Link> Daemon<L> {
    /// The dataplane's counters, indexed.
    fn sa_counters(&mut self) -> Result<(SaCounters, Vec<LcoreStatsView>), String> {
        let msg = self.link.counters().map_err(link_error)?;
        let lcores = msg.lcores.iter().map(LcoreStatsView::from).collect();
        Ok((SaCounters::new(msg), lcores))
    }

    /// The interface that holds `local` and its MTU.
    fn interface_of(&self, local: IpAddr) -> (String, u32) {
        self.policy
            .config
            .base
            .interfaces
            .iter()
            .find(|i| i.addresses.iter().any(|a| a.addr == local))
            .map(|i| (i.name.clone(), u32::from(i.mtu)))
            .unwrap_or_else(|| ("unknown".into(), 1500))
    }

    /// The IKE port the peer uses now (4500 after the NAT-T float).
    fn peer_ike_port(&self, peer: IpAddr) -> u16 {
        self.find_p1(peer)
            .and_then(|k| self.phase1.get(&k))
            .and_then(|p| p.established())
            .map(|sa| sa.remote.port())
            .unwrap_or(500)
    }

    fn isakmp_view(&self, p1: &Phase1, now: Instant) -> Option<IsakmpSaView> {
        let (local, remote) = p1.addresses()?;
        let mut v = IsakmpSaView {
            dst: remote.ip(),
            src: local.ip(),
            initiator: true,
            state: p1.ios_state().to_string(),
            conn_id: p1.conn_id,
            status: "ACTIVE".into(),
            local_port: local.port(),
            remote_port: remote.port(),
            peer_identity: None,
            encryption: None,
            hash: None,
            authentication: None,
            dh_group: None,
            lifetime_remaining: None,
            capabilities: Vec::new(),
        };
        match &p1.state {
            P1State::Negotiating {
                negotiation: Some(n),
                ..
            } => v.initiator = n.role() == Role::Initiator,
            P1State::Negotiating { .. } => {}
            P1State::Established { sa, .. } => {
                v.initiator = sa.role == Role::Initiator;
                v.peer_identity = Some(match (&sa.peer.id, &sa.peer.certificate) {
                    (Identity::DerAsn1Dn(_), Some(der)) => X509::from_der(der)
                        .map(|c| crate::pki::dn_string(c.subject_name()))
                        .unwrap_or_else(|_| sa.peer.id.to_string()),
                    (id, _) => id.to_string(),
                });
                v.encryption = Some(cipher_keyword(sa.policy.cipher).into());
                v.hash = Some(hash_keyword(sa.policy.hash).into());
                v.authentication = Some(auth_keyword(sa.policy.auth).into());
                v.dh_group = Some(sa.policy.group.id());
                v.lifetime_remaining = Some(sa.expires().saturating_duration_since(now).as_secs());
                if sa.peer_vendors.dpd && self.policy.dpd.is_some() {
                    v.capabilities.push("D".into());
                }
                if sa.nat_detected() {
                    v.capabilities.push("N".into());
                }
            }
        }
        if !v.initiator {
            std::mem::swap(&mut v.dst, &mut v.src);
        }
        Some(v)
    }

    fn esp_view(
        &self,
        p: &SaParams,
        conn_id: u32,
        sa_id: u32,
        counters: &SaCounters,
        age_secs: u64,
    ) -> EspSaView {
        let c = counters.get(p.direction, sa_id, p.spi);
        EspSaView {
            spi: p.spi,
            transform: p.transform.to_string(),
            mode: mode_name(p.mode).into(),
            udp_encapsulated: p.udp_encap.is_some(),
            conn_id,
            flow_id: sa_id,
            crypto_map: p.crypto_map.clone(),
            remaining_kilobytes: c
                .map(|c| c.remaining_kilobytes)
                .unwrap_or(p.lifetime.kilobytes),
            remaining_seconds: c
                .map(|c| c.remaining_seconds)
                .unwrap_or_else(|| p.lifetime.seconds.saturating_sub(age_secs)),
            iv_size: p.transform.iv_len() as u32,
            replay_detection: p.replay_window > 0,
            status: if c.is_some() {
                "ACTIVE".into()
            } else {
                "NOT IN DATAPLANE".into()
            },
            packets: c
                .map(|c| match p.direction {
                    Direction::Inbound => c.decaps,
                    Direction::Outbound => c.encaps,
                })
                .unwrap_or(0),
            bytes: c.map(|c| c.bytes).unwrap_or(0),
            drops: c.map(|c| c.drops.clone()).unwrap_or_default(),
        }
    }

    /// A new flow for a pair: `local` and `remote` are the SA's outer addresses.
    fn flow_view(
        &self,
        key: &FlowKey,
        local: IpAddr,
        remote: IpAddr,
        flags: Vec<String>,
    ) -> IpsecSaView {
        let (map, seq, peer, selector) = (&key.map, key.seq, key.peer, &key.selector);
        let (interface, mtu) = self.interface_of(local);
        IpsecSaView {
            interface,
            crypto_map: map.to_string(),
            crypto_map_seq: seq,
            local_addr: local,
            local_ident: ident(selector.source, selector.protocol, selector.source_ports),
            remote_ident: ident(
                selector.destination,
                selector.protocol,
                selector.destination_ports,
            ),
            current_peer: peer,
            peer_port: self.peer_ike_port(peer),
            flags,
            pkts_encaps: 0,
            pkts_encrypt: 0,
            pkts_digest: 0,
            pkts_decaps: 0,
            pkts_decrypt: 0,
            pkts_verify: 0,
            send_errors: 0,
            recv_errors: 0,
            local_crypto_endpt: local,
            remote_crypto_endpt: remote,
            path_mtu: mtu,
            ip_mtu: mtu,
            current_outbound_spi: None,
            inbound_esp: Vec::new(),
            outbound_esp: Vec::new(),
        }
    }

    /// Adds one SA's counters to its flow's.
    fn add_counts(flow: &mut IpsecSaView, direction: Direction, c: Option<&SaCountersMsg>) {
        let Some(c) = c else { return };
        match direction {
            Direction::Outbound => {
                flow.pkts_encaps += c.encaps;
                flow.pkts_encrypt += c.encrypt;
                flow.pkts_digest += c.digest;
                flow.send_errors += c.send_errors;
            }
            Direction::Inbound => {
                flow.pkts_decaps += c.decaps;
                flow.pkts_decrypt += c.decrypt;
                flow.pkts_verify += c.verify;
                flow.recv_errors += c.recv_errors;
            }
        }
    }

    fn is_current(&self, c: &Child) -> bool {
        self.children.current.get(&c.sa_id) == Some(&c.sa.spi_in)
    }

    /// Every flow, by crypto map, sequence, peer and proxies.
    fn build_ipsec_sas(&self, counters: &SaCounters, now: Instant) -> Vec<IpsecSaView> {
        let mut flows: Vec<IpsecSaView> = Vec::new();
        let mut index: HashMap<FlowKey, usize> = HashMap::new();
        let mut flow_of = |key: FlowKey, local, remote, flags| -> usize {
            if let Some(&i) = index.get(&key) {
                return i;
            }
            flows.push(self.flow_view(&key, local, remote, flags));
            index.insert(key, flows.len() - 1);
            flows.len() - 1
        };
        let mut slots: Vec<(usize, &Child)> = Vec::new();
        for c in self.children.by_spi.values() {
            let flags = match c.origin {
                Origin::Static(_) => vec!["origin_is_acl".to_string()],
                Origin::Dynamic(_) => Vec::new(),
            };
            let key = FlowKey {
                map: c.sa.crypto_map.clone(),
                seq: c.sa.crypto_map_seq,
                peer: c.peer,
                selector: c.sa.selector,
            };
            let i = flow_of(key, c.sa.outbound.local, c.sa.outbound.remote, flags);
            slots.push((i, c));
        }
        let mut adopted_slots = Vec::new();
        for a in self.children.adopted.values() {
            let (Some(local), Some(peer)) = (a.local, a.peer) else {
                continue;
            };
            let any = |addr| Prefix { addr, len: 0 };
            let selector = a.selectors.first().copied().unwrap_or(Selector {
                source: any(local),
                destination: any(peer),
                protocol: 0,
                source_ports: (0, 65535),
                destination_ports: (0, 65535),
            });
            let key = FlowKey {
                map: a.crypto_map.clone(),
                seq: a.crypto_map_seq,
                peer,
                selector,
            };
            let i = flow_of(key, local, peer, vec!["adopted".to_string()]);
            adopted_slots.push((i, a));
        }
        for (i, c) in slots {
            let age = now.saturating_duration_since(c.established).as_secs();
            let f = &mut flows[i];
            let inbound = self.esp_view(&c.sa.inbound, c.conn_in, c.sa_id, counters, age);
            Self::add_counts(
                f,
                Direction::Inbound,
                counters.get(Direction::Inbound, c.sa_id, c.sa.spi_in),
            );
            f.inbound_esp.push(inbound);
            if self.is_current(c) {
                let outbound = self.esp_view(&c.sa.outbound, c.conn_out, c.sa_id, counters, age);
                Self::add_counts(
                    f,
                    Direction::Outbound,
                    counters.get(Direction::Outbound, c.sa_id, c.sa.spi_out),
                );
                f.current_outbound_spi = Some(c.sa.spi_out);
                f.outbound_esp.push(outbound);
            }
        }
        for (i, a) in adopted_slots {
            let c = counters.get(a.direction, a.sa_id, a.spi);
            let f = &mut flows[i];
            Self::add_counts(f, a.direction, c);
            let v = EspSaView {
                spi: a.spi,
                transform: a.transform.clone(),
                mode: "Tunnel".into(),
                udp_encapsulated: false,
                conn_id: 0,
                flow_id: a.sa_id,
                crypto_map: a.crypto_map.clone(),
                remaining_kilobytes: c.map(|c| c.remaining_kilobytes).unwrap_or(0),
                remaining_seconds: c.map(|c| c.remaining_seconds).unwrap_or(0),
                iv_size: TRANSFORMS
                    .iter()
                    .find(|t| t.to_string() == a.transform)
                    .map(|t| t.iv_len() as u32)
                    .unwrap_or(0),
                replay_detection: true,
                status: if a.retire_at.is_some() {
                    "RETIRING".into()
                } else {
                    "ACTIVE".into()
                },
                packets: c
                    .map(|c| match a.direction {
                        Direction::Inbound => c.decaps,
                        Direction::Outbound => c.encaps,
                    })
                    .unwrap_or(0),
                bytes: c.map(|c| c.bytes).unwrap_or(0),
                drops: c.map(|c| c.drops.clone()).unwrap_or_default(),
            };
            match a.direction {
                Direction::Inbound => f.inbound_esp.push(v),
                Direction::Outbound => {
                    if f.current_outbound_spi.is_none() {
                        f.current_outbound_spi = Some(a.spi);
                    }
                    f.outbound_esp.push(v);
                }
            }
        }
        flows.sort_by(|a, b| {
            (
                &a.interface,
                &a.crypto_map,
                a.crypto_map_seq,
                a.current_peer,
            )
                .cmp(&(
                    &b.interface,
                    &b.crypto_map,
                    b.crypto_map_seq,
                    b.current_peer,
                ))
                .then_with(|| a.local_ident.addr.cmp(&b.local_ident.addr))
                .then_with(|| a.remote_ident.addr.cmp(&b.remote_ident.addr))
        });
        flows
    }

    fn build_engine_connections(&self, counters: &SaCounters) -> Vec<EngineConnectionView> {
        let mut rows = Vec::new();
        for p1 in self.phase1.values() {
            let Some((local, _)) = p1.addresses() else {
                continue;
            };
            let (interface, _) = self.interface_of(local.ip());
            let (state, algorithm) = match p1.established() {
                Some(sa) => ("set", ike_algorithm(sa.policy.cipher, sa.policy.hash)),
                None => ("alloc", "NONE".to_string()),
            };
            rows.push(EngineConnectionView {
                id: p1.conn_id,
                interface,
                ip_address: local.ip(),
                state: state.into(),
                algorithm,
                encrypt: 0,
                decrypt: 0,
            });
        }
        for c in self.children.by_spi.values() {
            let local = c.sa.inbound.local;
            let (interface, _) = self.interface_of(local);
            let algorithm = esp_algorithm(c.sa.transform);
            let decrypt = counters
                .get(Direction::Inbound, c.sa_id, c.sa.spi_in)
                .map(|m| m.decaps)
                .unwrap_or(0);
            rows.push(EngineConnectionView {
                id: c.conn_in,
                interface: interface.clone(),
                ip_address: local,
                state: "set".into(),
                algorithm: algorithm.clone(),
                encrypt: 0,
                decrypt,
            });
            if self.is_current(c) {
                let encrypt = counters
                    .get(Direction::Outbound, c.sa_id, c.sa.spi_out)
                    .map(|m| m.encaps)
                    .unwrap_or(0);
                rows.push(EngineConnectionView {
                    id: c.conn_out,
                    interface,
                    ip_address: local,
                    state: "set".into(),
                    algorithm,
                    encrypt,
                    decrypt: 0,
                });
            }
        }
        for a in self.children.adopted.values() {
            let Some(local) = a.local else { continue };
            let (interface, _) = self.interface_of(local);
            let c = counters.get(a.direction, a.sa_id, a.spi);
            let (encrypt, decrypt) = match a.direction {
                Direction::Outbound => (c.map(|c| c.encaps).unwrap_or(0), 0),
                Direction::Inbound => (0, c.map(|c| c.decaps).unwrap_or(0)),
            };
            rows.push(EngineConnectionView {
                id: a.conn_id,
                interface,
                ip_address: local,
                state: "set".into(),
                algorithm: esp_algorithm_of_words(&a.transform),
                encrypt,
                decrypt,
            });
        }
        rows.sort_by_key(|r| r.id);
        rows
    }

    /// The trust store the show commands read: every local address has its own copy of
    /// the same trustpoints; the first stands for all.
    fn store(&self) -> Option<&TrustStore> {
        self.policy.credentials.values().next().map(|c| &c.store)
    }

    /// `clear crypto sa map NAME`: deletes the IPsec SAs of that crypto map and tells the
    /// peers.
    pub fn clear_sa_map(&mut self, map: &str) -> usize {
        let spis: Vec<u32> = self
            .children
            .by_spi
            .iter()
            .filter(|(_, c)| c.sa.crypto_map == map)
            .map(|(s, _)| *s)
            .collect();
        for &s in &spis {
            self.delete_child_notify(s, "clear crypto sa map");
        }
        spis.len()
    }

    /// `clear crypto sa spi N`: deletes the pair that has this SPI in either direction and
    /// tells the peer.
    pub fn clear_sa_spi(&mut self, spi: u32) -> usize {
        let pair = if self.children.by_spi.contains_key(&spi) {
            Some(spi)
        } else {
            self.children.by_outbound_spi(spi)
        };
        match pair {
            Some(s) => {
                self.delete_child_notify(s, "clear crypto sa spi");
                1
            }
            None => 0,
        }
    }
}

impl<L: Link> CtlBackend for Daemon<L> {
    fn hostname(&mut self) -> String {
        self.policy.hostname.clone()
    }

    fn isakmp_sas(&mut self) -> Result<Vec<IsakmpSaView>, String> {
        let now = Instant::now();
        let mut v: Vec<IsakmpSaView> = self
            .phase1
            .values()
            .filter_map(|p| self.isakmp_view(p, now))
            .collect();
        v.sort_by_key(|s| s.conn_id);
        Ok(v)
    }

    fn isakmp_policies(&mut self) -> Result<Vec<IsakmpPolicyView>, String> {
        let mut v: Vec<IsakmpPolicyView> = self
            .policy
            .config
            .policies
            .iter()
            .map(IsakmpPolicyView::from)
            .collect();
        if !self
            .policy
            .config
            .policies
            .iter()
            .any(|p| p.is_default_suite())
        {
            v.extend(
                IsakmpPolicy::default_suite()
                    .iter()
                    .map(IsakmpPolicyView::from),
            );
        }
        Ok(v)
    }

    fn ipsec_sas(&mut self) -> Result<Vec<IpsecSaView>, String> {
        let (counters, _) = self.sa_counters()?;
        Ok(self.build_ipsec_sas(&counters, Instant::now()))
    }

    fn transform_sets(&mut self) -> Result<Vec<TransformSetView>, String> {
        Ok(self
            .policy
            .config
            .base
            .transform_sets
            .iter()
            .map(|(name, t)| {
                let mut transforms = vec![t.transform.encryption.cisco_name().to_string()];
                if t.transform.integrity != Integrity::None {
                    transforms.push(t.transform.integrity.cisco_name().to_string());
                }
                TransformSetView {
                    name: name.clone(),
                    transforms,
                    mode: mode_name(t.mode).into(),
                }
            })
            .collect())
    }

    fn crypto_maps(&mut self) -> Result<Vec<CryptoMapView>, String> {
        let base = &self.policy.config.base;
        let mut out = Vec::new();
        for (name, entries) in &base.crypto_maps {
            let interfaces: Vec<String> = base
                .interfaces
                .iter()
                .filter(|i| i.crypto_map.as_deref() == Some(name.as_str()))
                .map(|i| i.name.clone())
                .collect();
            for e in entries {
                let acl_entries = e
                    .match_address
                    .as_ref()
                    .and_then(|acl| base.access_lists.get(acl).map(|aces| (acl, aces)))
                    .map(|(acl, aces)| {
                        aces.iter()
                            .map(|a| {
                                acl_line(
                                    acl,
                                    a.action == dataplane::config::AceAction::Permit,
                                    &a.selector,
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let current_peer =
                    self.children
                        .current_of(e.sa_id)
                        .map(|c| c.peer)
                        .or_else(|| {
                            self.children
                                .adopted
                                .values()
                                .find(|a| a.sa_id == e.sa_id)
                                .and_then(|a| a.peer)
                        });
                out.push(CryptoMapView {
                    name: name.clone(),
                    seq: e.seq,
                    kind: match e.kind {
                        dataplane::config::MapKind::Manual => "ipsec-manual".into(),
                        dataplane::config::MapKind::Isakmp => "ipsec-isakmp".into(),
                    },
                    dynamic: e.dynamic.clone(),
                    peers: e.peer.into_iter().collect(),
                    acl_name: e.match_address.clone(),
                    acl_entries,
                    current_peer,
                    lifetime_kilobytes: e.lifetime.kilobytes,
                    lifetime_seconds: e.lifetime.seconds,
                    pfs_group: e
                        .pfs
                        .as_deref()
                        .and_then(|g| g.strip_prefix("group"))
                        .and_then(|n| n.parse().ok()),
                    transform_sets: e.transform_sets.clone(),
                    interfaces: interfaces.clone(),
                });
            }
        }
        Ok(out)
    }

    fn engine_connections(&mut self) -> Result<Vec<EngineConnectionView>, String> {
        let (counters, _) = self.sa_counters()?;
        Ok(self.build_engine_connections(&counters))
    }

    fn engine(&mut self) -> Result<EngineView, String> {
        let counters = self.link.counters().ok();
        let connected = counters.is_some();
        let cfg = &self.policy.config.base;
        // the library each transform's SAs use, as the dataplane reports it; for a transform
        // with no SA yet, what the configuration forces or that the dataplane picks the
        // fastest when it installs the first one
        let mut in_use: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for s in counters.iter().flat_map(|c| c.sas.iter()) {
            if !s.backend.is_empty() {
                in_use
                    .entry(s.transform.clone())
                    .or_default()
                    .insert(s.backend.clone());
            }
        }
        let mut backends = BTreeMap::new();
        for t in cfg.transform_sets.values() {
            let word = t
                .transform
                .encryption
                .cisco_name()
                .split_whitespace()
                .next()
                .unwrap_or_default();
            let name = t.transform.to_string();
            let backend = match (in_use.get(&name), cfg.dataplane.backend.get(word)) {
                (Some(libs), _) => libs.iter().cloned().collect::<Vec<_>>().join(", "),
                (None, Some(forced)) => format!("{forced} (configured)"),
                (None, None) => "fastest available (chosen at the first SA)".into(),
            };
            backends.insert(name, backend);
        }
        for (t, libs) in &in_use {
            backends
                .entry(t.clone())
                .or_insert_with(|| libs.iter().cloned().collect::<Vec<_>>().join(", "));
        }
        let mut capabilities: Vec<String> = vec![
            "esp-gcm 128".into(),
            "esp-gcm 256".into(),
            "esp-aes 128/192/256".into(),
            "esp-3des".into(),
            "esp-des".into(),
            "esp-sha-hmac".into(),
            "esp-sha256-hmac".into(),
            "esp-md5-hmac".into(),
        ];
        capabilities.extend(
            ["Tunnel", "Transport", "UDP-encaps", "anti-replay", "ESN"]
                .iter()
                .map(|s| s.to_string()),
        );
        let used = (self.phase1.len()
            + self.children.by_spi.len()
            + self.children.current.len()
            + self.children.adopted.len()) as u64;
        Ok(EngineView {
            name: "ipsec-dataplane".into(),
            engine_type: "software (DPDK)".into(),
            state: if connected {
                "installed".into()
            } else {
                "not connected".into()
            },
            version: self
                .link
                .engine_name()
                .filter(|n| connected && !n.is_empty()),
            main_lcore: Some(cfg.dataplane.main_lcore),
            worker_lcores: cfg.dataplane.worker_lcores.clone(),
            backends,
            capabilities,
            connections_used: used,
            connections_max: None,
        })
    }

    fn lcore_stats(&mut self) -> Result<Vec<LcoreStatsView>, String> {
        Ok(self.sa_counters()?.1)
    }

    fn dh_key_pairs(&mut self) -> Result<Vec<DhKeyPairsView>, String> {
        Ok(self
            .policy
            .dh_pool
            .stats()
            .into_iter()
            .map(|s| DhKeyPairsView {
                group: s.group.id(),
                target: s.target as u64,
                ready: s.ready as u64,
                precomputed: s.precomputed,
                taken: s.taken,
                on_demand: s.on_demand,
            })
            .collect())
    }

    fn certificates(&mut self) -> Result<Vec<CertificateView>, String> {
        let Some(store) = self.store() else {
            return Ok(Vec::new());
        };
        let mut out: Vec<CertificateView> = Vec::new();
        let mut cas: Vec<(X509, CertificateView)> = Vec::new();
        for tp in store.trustpoints() {
            let cert = tp.cert();
            let name = crate::pki::identity::cert_fqdns(cert).into_iter().next();
            out.push(certificate_view(cert, "Certificate", name, &tp.name));
            for ca in &tp.ca_certs {
                match cas
                    .iter_mut()
                    .find(|(c, _)| c.to_der().ok() == ca.to_der().ok())
                {
                    Some((_, v)) => v.trustpoints.push(tp.name.clone()),
                    None => cas.push((
                        ca.clone(),
                        certificate_view(ca, "CA Certificate", None, &tp.name),
                    )),
                }
            }
        }
        out.extend(cas.into_iter().map(|(_, v)| v));
        Ok(out)
    }

    fn trustpoints(&mut self) -> Result<Vec<TrustpointView>, String> {
        let Some(store) = self.store() else {
            return Ok(Vec::new());
        };
        Ok(store
            .trustpoints()
            .iter()
            .map(|tp| {
                let ca = tp.ca_certs.first();
                TrustpointView {
                    name: tp.name.clone(),
                    ca_subject: ca.map(|c| rdns(c.subject_name())).unwrap_or_default(),
                    ca_serial: ca
                        .map(|c| crate::pki::verify::serial_hex(c))
                        .unwrap_or_default(),
                    certificate_configured: true,
                    revocation_check: tp.revocation.to_string(),
                    crl_source: match (&tp.crl_file, &tp.crl_url) {
                        (Some(f), _) => Some(f.display().to_string()),
                        (None, Some(u)) => Some(u.clone()),
                        (None, None) => None,
                    },
                }
            })
            .collect())
    }

    fn crls(&mut self) -> Result<Vec<CrlView>, String> {
        let Some(store) = self.store() else {
            return Ok(Vec::new());
        };
        let crls = store.crls();
        let mut out: Vec<CrlView> = Vec::new();
        for tp in store.trustpoints() {
            for ca in &tp.ca_certs {
                let issuer = ca.subject_name();
                let name = crate::pki::dn_string(issuer);
                if !crls.holds(issuer) || out.iter().any(|c| c.issuer == name) {
                    continue;
                }
                // the list the checks use, wherever it came from (file or HTTP)
                let Some((crl, from)) = crls.crl(issuer) else {
                    continue;
                };
                let source = match from {
                    CrlSource::File(_) => format!("File: {from}"),
                    CrlSource::Http(u) => format!("HTTP: {u}"),
                    other => other.to_string(),
                };
                out.push(CrlView {
                    issuer: name,
                    last_update: crate::pki::asn1_unix(crl.last_update()).unwrap_or(0),
                    next_update: crls.next_update(issuer),
                    retrieved_from: source,
                    revoked: crl
                        .get_revoked()
                        .map(|list| {
                            list.iter()
                                .map(|r| RevokedView {
                                    serial: r
                                        .serial_number()
                                        .to_bn()
                                        .ok()
                                        .and_then(|b| b.to_hex_str().ok().map(|s| s.to_string()))
                                        .unwrap_or_default(),
                                    revoked_at: crate::pki::asn1_unix(r.revocation_date())
                                        .unwrap_or(0),
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                });
            }
        }
        Ok(out)
    }

    fn clear_sa(&mut self, which: &SaSelector) -> Result<String, String> {
        match which {
            SaSelector::All => {
                self.clear_sa_all();
            }
            SaSelector::Peer(p) => {
                self.clear_sa_peer(*p);
            }
            SaSelector::Map(m) => {
                if !self.policy.config.base.crypto_maps.contains_key(m) {
                    return Err(format!("crypto map {m} does not exist"));
                }
                self.clear_sa_map(m);
            }
            SaSelector::Spi(spi) => {
                if self.clear_sa_spi(*spi) == 0 {
                    return Err(format!("no IPsec SA with spi 0x{spi:X}({spi})"));
                }
            }
        }
        Ok(String::new())
    }

    fn clear_isakmp(&mut self, conn_id: Option<u32>) -> Result<String, String> {
        if let Some(c) = conn_id {
            if !self.phase1.values().any(|p| p.conn_id == c) {
                return Err(format!("no ISAKMP SA with conn-id {c}"));
            }
        }
        Daemon::clear_isakmp(self, conn_id);
        Ok(String::new())
    }

    fn crl_request(&mut self, trustpoint: &str) -> Result<String, String> {
        let stores: Vec<_> = self.policy.credentials.values().cloned().collect();
        let Some(first) = stores.first() else {
            return Err(format!("trustpoint {trustpoint} does not exist"));
        };
        let Some(tp) = first.store.trustpoint(trustpoint) else {
            return Err(format!("trustpoint {trustpoint} does not exist"));
        };
        let (file, url) = (tp.crl_file.clone(), tp.crl_url.clone());
        let subjects: Vec<openssl::x509::X509Name> = tp
            .ca_certs
            .iter()
            .filter_map(|c| c.subject_name().to_owned().ok())
            .collect();
        let mut errors = Vec::new();
        let mut refreshed = Vec::new();
        for creds in &stores {
            let mut crls = creds.store.crls();
            let held: Vec<_> = subjects.iter().filter(|s| crls.holds(s)).collect();
            let results = if !held.is_empty() {
                held.into_iter().map(|s| crls.refresh(s)).collect()
            } else if let Some(f) = &file {
                vec![crls.load_file(f.clone())]
            } else if let Some(u) = &url {
                vec![crls.fetch(u)]
            } else {
                errors.push(format!(
                    "no CRL of trustpoint {trustpoint} is held yet; it is fetched from the \
                     certificates' distribution points when a peer's certificate is checked"
                ));
                Vec::new()
            };
            for r in results {
                match r {
                    Ok(issuer) => refreshed.push(issuer),
                    Err(e) => errors.push(e.to_string()),
                }
            }
        }
        refreshed.sort();
        refreshed.dedup();
        for issuer in &refreshed {
            log::info!(
                "%PKI-6-CRL_UPDATED: CRL request for trustpoint {trustpoint} returned success: \
                 CRL of {issuer} refreshed"
            );
        }
        if errors.is_empty() {
            Ok(String::new())
        } else {
            errors.dedup();
            for e in &errors {
                log::warn!("%PKI-3-CRL_FETCH_FAIL: trustpoint {trustpoint}: {e}");
            }
            Err(errors.join("; "))
        }
    }

    fn reload(&mut self) -> Result<String, String> {
        self.reload_file().map(|lines| lines.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    #[test]
    fn key_usage_reads_like_ios() {
        use openssl::x509::extension::KeyUsage;
        let cert = |ku: Option<KeyUsage>| {
            let key =
                openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap()).unwrap();
            let mut b = openssl::x509::X509::builder().unwrap();
            let mut name = openssl::x509::X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", "t").unwrap();
            let name = name.build();
            b.set_subject_name(&name).unwrap();
            b.set_issuer_name(&name).unwrap();
            b.set_pubkey(&key).unwrap();
            if let Some(mut ku) = ku {
                b.append_extension(ku.critical().build().unwrap()).unwrap();
            }
            b.sign(&key, openssl::hash::MessageDigest::sha256())
                .unwrap();
            b.build()
        };
        let mut sig = KeyUsage::new();
        sig.digital_signature();
        let mut enc = KeyUsage::new();
        enc.key_encipherment();
        let mut both = KeyUsage::new();
        both.digital_signature().key_encipherment();
        let mut ca = KeyUsage::new();
        ca.key_cert_sign().crl_sign();
        assert_eq!(super::key_usage(&cert(None)), "General Purpose");
        assert_eq!(super::key_usage(&cert(Some(sig))), "Signature");
        assert_eq!(super::key_usage(&cert(Some(enc))), "Encryption");
        assert_eq!(super::key_usage(&cert(Some(both))), "General Purpose");
        assert_eq!(super::key_usage(&cert(Some(ca))), "Signature");
    }

    use super::super::tests::{bring_up, static_pair, HUB, SPOKE};
    use super::*;
    use crate::ctl::execute::{execute_line, DebugSet};

    fn run(d: &mut dyn CtlBackend, line: &str) -> String {
        let o = execute_line(line, false, d, &mut DebugSet::default());
        assert_eq!(o.exit_code, 0, "{line}: {}", o.output);
        o.output
    }

    #[test]
    fn two_gateways_show_their_tunnel_as_ios_does() {
        let (mut a, mut b) = static_pair(3600);
        let now = Instant::now();
        bring_up(&mut a, &mut b, now);
        let ca = a.children.by_spi.values().next().unwrap();
        let (a_in, a_out, a_conn_in, a_conn_out) =
            (ca.sa.spi_in, ca.sa.spi_out, ca.conn_in, ca.conn_out);
        let a_p1 = a.phase1.values().next().unwrap().conn_id;
        let b_p1 = b.phase1.values().next().unwrap().conn_id;

        // sh cr isa sa: A initiated, so on both sides dst is the hub (the responder)
        let out = run(&mut a, "sh cr isa sa");
        let row = format!("{:<15} {:<15} {:<14} {:>8}", HUB, SPOKE, "QM_IDLE", a_p1);
        assert!(out.contains(&row), "{out}");
        let out = run(&mut b, "sh cr isa sa");
        let row = format!("{:<15} {:<15} {:<14} {:>8}", HUB, SPOKE, "QM_IDLE", b_p1);
        assert!(out.contains(&row), "{out}");
        let sas = a.isakmp_sas().unwrap();
        assert!(sas[0].initiator);
        assert_eq!(sas[0].authentication.as_deref(), Some("pre-share"));
        assert_eq!(sas[0].peer_identity.as_deref(), Some(HUB));
        assert!(!b.isakmp_sas().unwrap()[0].initiator);

        // sh cr ipsec sa: the SPIs cross over, the proxies mirror each other
        let out = run(&mut a, "sh cr ipsec sa");
        assert!(out.contains("interface: outside"), "{out}");
        assert!(out.contains(&format!("Crypto map tag: vpn, local addr {SPOKE}")));
        assert!(out.contains("local  ident (addr/mask/prot/port): (10.1.0.0/255.255.255.0/0/0)"));
        assert!(out.contains("remote ident (addr/mask/prot/port): (10.2.0.0/255.255.255.0/0/0)"));
        assert!(out.contains(&format!("current_peer {HUB} port 500")));
        assert!(out.contains("#pkts encaps: 0, #pkts encrypt: 0, #pkts digest: 0"));
        assert!(out.contains(&format!("current outbound spi: 0x{a_out:X}({a_out})")));
        assert!(out.contains(&format!("spi: 0x{a_in:X}({a_in})")));
        assert!(out.contains(&format!("conn id: {a_conn_in}, flow_id: SW:")));
        assert!(out.contains("transform: esp-aes 128 esp-sha-hmac ,"));
        assert!(out.contains("in use settings ={Tunnel, }"));
        assert!(
            out.contains("remaining key lifetime (k/sec): (4608000/3600)"),
            "{out}"
        );
        assert!(out.contains("path mtu 1500, ip mtu 1500, ip mtu idb outside"));
        let flows = b.ipsec_sas().unwrap();
        assert_eq!(flows.len(), 1);
        assert_eq!(flows[0].inbound_esp[0].spi, a_out);
        assert_eq!(flows[0].outbound_esp[0].spi, a_in);
        assert_eq!(flows[0].current_peer, ip_of(SPOKE));
        assert_eq!(flows[0].flags, ["origin_is_acl"]);

        // sh cr en conn ac: the IKE SA and both ESP SAs
        let out = run(&mut a, "sh cr en conn ac");
        for (id, alg) in [
            (a_p1, "HMAC_SHA+AES_128_CB"),
            (a_conn_in, "HMAC_SHA+AES_128_CB"),
            (a_conn_out, "HMAC_SHA+AES_128_CB"),
        ] {
            let row = format!(
                "{id:>4} {:<15} {:<15} {:<6} {alg:<18}",
                "outside", SPOKE, "set"
            );
            assert!(out.contains(&row), "{row:?} not in\n{out}");
        }
        assert_eq!(a.engine_connections().unwrap().len(), 3);

        // the configuration's views
        let out = run(&mut a, "sh cr map");
        assert!(out.contains(&format!("Current peer: {HUB}")), "{out}");
        assert!(out.contains("access-list 101 permit ip 10.1.0.0 0.0.0.255 10.2.0.0 0.0.0.255"));
        let pol = a.isakmp_policies().unwrap();
        assert_eq!(pol.len(), 2);
        assert_eq!(pol[1].priority, None, "IOS's default suite last");
        assert_eq!(
            a.transform_sets().unwrap()[0].transforms,
            ["esp-aes 128", "esp-sha-hmac"]
        );
        assert_eq!(a.engine().unwrap().state, "installed");
    }

    fn ip_of(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn clear_crypto_sa_peer_removes_the_sas_on_both_sides() {
        let (mut a, mut b) = static_pair(3600);
        let now = Instant::now();
        bring_up(&mut a, &mut b, now);
        assert_eq!(run(&mut a, &format!("clear crypto sa peer {HUB}")), "");
        super::super::tests::pump(&mut a, &mut b, now, &mut super::super::tests::no_loss);
        assert!(a.children.by_spi.is_empty() && b.children.by_spi.is_empty());
        assert!(a.link.inbound.is_empty() && a.link.outbound.is_empty());
        assert!(b.link.inbound.is_empty() && b.link.outbound.is_empty());
        assert!(a.ipsec_sas().unwrap().is_empty());
        assert!(b.ipsec_sas().unwrap().is_empty());
        // the ISAKMP SA stays (QM_IDLE), as in IOS
        assert_eq!(a.engine_connections().unwrap().len(), 1);
        // an unknown SPI, conn-id or map is an error
        let mut d = DebugSet::default();
        assert_ne!(
            execute_line("clear crypto sa spi 7", false, &mut a, &mut d).exit_code,
            0
        );
        assert_ne!(
            execute_line("clear crypto isakmp 999", false, &mut a, &mut d).exit_code,
            0
        );
        assert_ne!(
            execute_line("clear crypto sa map nope", false, &mut a, &mut d).exit_code,
            0
        );
        // the next packet brings it back
        bring_up(&mut a, &mut b, now);
        assert_eq!(b.ipsec_sas().unwrap().len(), 1);
        // clear by SPI (the peer's outbound SPI) and clear isakmp by conn-id
        let spi = a.ipsec_sas().unwrap()[0].current_outbound_spi.unwrap();
        run(&mut a, &format!("clear crypto sa spi {spi}"));
        super::super::tests::pump(&mut a, &mut b, now, &mut super::super::tests::no_loss);
        assert!(b.children.by_spi.is_empty());
        let c = a.isakmp_sas().unwrap()[0].conn_id;
        run(&mut a, &format!("clear crypto isakmp {c}"));
        super::super::tests::pump(&mut a, &mut b, now, &mut super::super::tests::no_loss);
        assert!(a.phase1.is_empty() && b.phase1.is_empty());
    }

    #[test]
    fn acl_lines_and_masks_read_like_ios() {
        let p = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Prefix {
                addr: a.parse().unwrap(),
                len: l.parse().unwrap(),
            }
        };
        let s = Selector {
            source: p("1.1.1.0/24"),
            destination: p("192.168.4.7/32"),
            protocol: 6,
            source_ports: (0, 65535),
            destination_ports: (443, 443),
        };
        assert_eq!(
            acl_line("130", true, &s),
            "access-list 130 permit tcp 1.1.1.0 0.0.0.255 host 192.168.4.7 eq 443"
        );
        assert_eq!(mask_of(p("10.0.0.0/8")), ip_of("255.0.0.0"));
        assert_eq!(mask_of(p("0.0.0.0/0")), ip_of("0.0.0.0"));
        assert_eq!(
            esp_algorithm_of_words("esp-3des esp-md5-hmac"),
            "HMAC_MD5+3DES_168_CB"
        );
    }
}
