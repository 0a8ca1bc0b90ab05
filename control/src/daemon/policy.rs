//! What the daemon negotiates, derived once from the configuration: the phase 1 suites and
//! credentials per local address (`crypto isakmp policy`, trustpoints, keys, identity), the
//! static crypto map entries keyed by IKE (peer, ACL, transform sets, PFS, lifetime) and the
//! dynamic map templates a hub answers with, in the types the exchanges take
//! ([`Phase1Policy`], [`MainModeConfig`], [`Phase2Policy`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use dataplane::channel::SpdRuleMsg;
use dataplane::config::{AceAction, MapKind};
use dataplane::esp::{Prefix, Selector};

use crate::config::{self as cfg, IkeConfig};
use crate::credentials::GatewayCredentials;
use crate::ike::proposal::AuthMethod;
use crate::ike::{
    phase2::Proxies, MainModeConfig, Phase1Policy, Phase2Policy, TransformSet as IkeTransformSet,
};
use crate::ikecrypto::dh_pool::{self, DhPool};
use crate::ikecrypto::{DhGroup, HashAlg, IkeCipher};
use crate::pki::TrustStore;

use super::sa_ids::{self, EntryKey};

/// One `crypto map NAME SEQ ipsec-isakmp` entry with a peer: what we initiate toward and
/// what we accept from that peer.
#[derive(Clone, Debug, PartialEq)]
pub struct StaticEntry {
    pub map: String,
    pub seq: u32,
    /// The SPD's id of the entry's outbound SA.
    pub sa_id: u32,
    pub peer: IpAddr,
    /// Our address on the interface the map is applied to (same family as the peer).
    pub local: IpAddr,
    pub interface: String,
    /// One Quick Mode policy per `permit` line of the ACL, in ACL order (IOS negotiates one
    /// SA pair per line; this dataplane has one outbound SA per entry, so the line that
    /// matched the first packet is the one negotiated).
    pub proposals: Vec<Phase2Policy>,
    pub reverse_route: bool,
}

impl StaticEntry {
    /// `crypto map NAME SEQ`.
    pub fn key(&self) -> EntryKey {
        (self.map.clone(), self.seq)
    }

    /// The same tunnel as `other` (peer, addresses, proposals, reverse route), whatever SA
    /// id either has: a reload leaves its SAs alone.
    pub fn same_tunnel(&self, other: &StaticEntry) -> bool {
        StaticEntry {
            sa_id: other.sa_id,
            ..self.clone()
        } == *other
    }

    /// The Quick Mode policy to initiate for a packet from `src` to `dst`: the first ACL
    /// line that covers it, or the first line.
    pub fn proposal_for(&self, src: Option<IpAddr>, dst: Option<IpAddr>) -> &Phase2Policy {
        self.proposals
            .iter()
            .find(|p| match (&p.proxies, src, dst) {
                (Proxies::Static(s), Some(a), Some(b)) => {
                    s.source.contains(a) && s.destination.contains(b)
                }
                _ => false,
            })
            .unwrap_or(&self.proposals[0])
    }
}

/// One `crypto dynamic-map` entry, reached through a `crypto map NAME SEQ ipsec-isakmp
/// dynamic DYN` entry: answers any authenticated peer whose proxies fall inside its ranges.
#[derive(Clone, Debug, PartialEq)]
pub struct DynamicEntry {
    /// The crypto map and sequence that references the dynamic map.
    pub map: String,
    pub seq: u32,
    pub dynamic_map: String,
    pub dynamic_seq: u32,
    /// The addresses of the interfaces the crypto map is applied to.
    pub locals: Vec<IpAddr>,
    /// Proxies::Dynamic with the ACL's permit ranges (any address when no ACL).
    pub policy: Phase2Policy,
    pub reverse_route: bool,
}

impl DynamicEntry {
    /// `crypto map NAME SEQ` and `crypto dynamic-map NAME SEQ`.
    pub fn key(&self) -> (String, u32, String, u32) {
        (
            self.map.clone(),
            self.seq,
            self.dynamic_map.clone(),
            self.dynamic_seq,
        )
    }
}

/// Main Mode settings of one local address: with INITIAL-CONTACT for a peer we hold no SA
/// with, without it when re-authenticating (the peer must keep our SAs).
pub struct LocalIke {
    pub first_contact: Arc<MainModeConfig>,
    pub again: Arc<MainModeConfig>,
}

/// The daemon's view of the configuration.
pub struct GatewayPolicy {
    pub hostname: String,
    /// The configuration this policy was built from, as validated: the show commands
    /// (`show crypto map`, `transform-set`, `engine configuration`) print it, and the
    /// interfaces' names and MTUs label the SAs.
    pub config: Arc<IkeConfig>,
    /// The phase 1 credentials of each local address that carries a crypto map (the same
    /// ones Main Mode uses): `show crypto pki ...` reads their trust stores and `crypto pki
    /// crl request` refreshes their CRL caches, so that what is shown is what is checked.
    pub credentials: BTreeMap<IpAddr, Arc<GatewayCredentials>>,
    pub phase1: Vec<Phase1Policy>,
    /// Main Mode settings per local address that carries a crypto map.
    pub main_mode: BTreeMap<IpAddr, LocalIke>,
    pub statics: Vec<StaticEntry>,
    pub dynamics: Vec<DynamicEntry>,
    /// The SPD of the configuration (static crypto-map ACLs), in match order.
    pub static_spd: Vec<SpdRuleMsg>,
    /// The SA id of every crypto map entry (see [`sa_ids`]: file order unless
    /// [`GatewayPolicy::renumber`] kept earlier numbers). `config`, `statics` and
    /// `static_spd` carry the same numbers.
    pub sa_ids: BTreeMap<EntryKey, u32>,
    /// The first SA id free for SAs negotiated through dynamic maps.
    pub first_dynamic_sa_id: u32,
    pub dpd: Option<cfg::Dpd>,
    pub nat_keepalive: Option<u32>,
    /// Half-open phase 1 exchanges allowed at once.
    pub admission_limit: usize,
    /// Where the exchanges take their Diffie-Hellman key pairs (every [`MainModeConfig`]
    /// here holds it); its targets are [`GatewayPolicy::dh_targets`].
    pub dh_pool: Arc<DhPool>,
}

/// Half-open phase 1 SAs allowed when `crypto call admission limit` is not set: enough for
/// a headend's spokes all starting at once, bounded so that an MM1 flood cannot exhaust
/// memory.
const DEFAULT_ADMISSION_LIMIT: usize = 4096;

fn cipher(e: cfg::IkeEncryption) -> IkeCipher {
    match e {
        cfg::IkeEncryption::Des => IkeCipher::Des,
        cfg::IkeEncryption::TripleDes => IkeCipher::TripleDes,
        cfg::IkeEncryption::Aes128 => IkeCipher::Aes128,
        cfg::IkeEncryption::Aes192 => IkeCipher::Aes192,
        cfg::IkeEncryption::Aes256 => IkeCipher::Aes256,
    }
}

fn hash(h: cfg::IkeHash) -> HashAlg {
    match h {
        cfg::IkeHash::Md5 => HashAlg::Md5,
        cfg::IkeHash::Sha1 => HashAlg::Sha1,
        cfg::IkeHash::Sha256 => HashAlg::Sha256,
        cfg::IkeHash::Sha384 => HashAlg::Sha384,
    }
}

/// `crypto isakmp policy N` as Main Mode takes it.
pub fn phase1_policy(p: &cfg::IsakmpPolicy) -> Result<Phase1Policy, String> {
    Ok(Phase1Policy {
        priority: p.priority,
        cipher: cipher(p.encryption),
        hash: hash(p.hash),
        auth: match p.authentication {
            cfg::AuthMethod::RsaSig => AuthMethod::RsaSig,
            cfg::AuthMethod::PreShare => AuthMethod::PreShare,
        },
        group: DhGroup::from_id(p.group.get())
            .ok_or_else(|| format!("DH group {} not implemented", p.group.get()))?,
        lifetime_secs: p.lifetime,
    })
}

/// `set pfs groupN`.
fn pfs_group(pfs: &Option<String>) -> Result<Option<DhGroup>, String> {
    let Some(g) = pfs else { return Ok(None) };
    g.strip_prefix("group")
        .and_then(|n| n.parse::<u16>().ok())
        .and_then(DhGroup::from_id)
        .map(Some)
        .ok_or_else(|| format!("unknown pfs group {g:?}"))
}

fn transform_sets(config: &IkeConfig, names: &[String]) -> Result<Vec<IkeTransformSet>, String> {
    names
        .iter()
        .map(|n| {
            let ts = config
                .base
                .transform_sets
                .get(n)
                .ok_or_else(|| format!("no transform set {n}"))?;
            Ok(IkeTransformSet {
                name: n.clone(),
                transform: ts.transform,
                mode: ts.mode,
            })
        })
        .collect()
}

fn any_selector(v6: bool) -> Selector {
    let any = |v6: bool| Prefix {
        addr: if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
        },
        len: 0,
    };
    Selector {
        source: any(v6),
        destination: any(v6),
        protocol: 0,
        source_ports: (0, 65535),
        destination_ports: (0, 65535),
    }
}

impl GatewayPolicy {
    /// Builds the policy; loads the trustpoints (certificates, keys, CRL files) once per
    /// local address. Errors name what is wrong. The exchanges take their key pairs from
    /// the process's Diffie-Hellman pool.
    pub fn new(config: &IkeConfig) -> Result<GatewayPolicy, String> {
        Self::with_dh_pool(config, dh_pool::process_pool())
    }

    /// [`GatewayPolicy::new`] with the exchanges taking their key pairs from `pool`.
    pub fn with_dh_pool(config: &IkeConfig, pool: Arc<DhPool>) -> Result<GatewayPolicy, String> {
        let phase1 = config
            .policies
            .iter()
            .map(phase1_policy)
            .collect::<Result<Vec<_>, _>>()?;
        let base = &config.base;
        // Interfaces by the crypto map applied to them.
        let mut map_locals: BTreeMap<&str, Vec<(IpAddr, &str)>> = BTreeMap::new();
        for i in &base.interfaces {
            if let Some(m) = &i.crypto_map {
                for a in &i.addresses {
                    map_locals
                        .entry(m.as_str())
                        .or_default()
                        .push((a.addr, i.name.as_str()));
                }
            }
        }
        let mut main_mode = BTreeMap::new();
        let mut credentials = BTreeMap::new();
        for locals in map_locals.values() {
            for &(addr, _) in locals {
                if main_mode.contains_key(&addr) {
                    continue;
                }
                let store = TrustStore::load(config.trustpoints.iter())
                    .map_err(|e| format!("trustpoints: {e}"))?;
                let creds = GatewayCredentials {
                    store,
                    keys: config.keys.clone(),
                    identity: config.isakmp.identity,
                    local: addr,
                    fqdn: config.fqdn(),
                };
                let creds: Arc<GatewayCredentials> = Arc::new(creds);
                credentials.insert(addr, creds.clone());
                let mut first_contact = MainModeConfig::new(phase1.clone(), creds.clone());
                first_contact.dh_pool = pool.clone();
                let mut again = MainModeConfig::new(phase1.clone(), creds);
                again.initial_contact = false;
                again.dh_pool = pool.clone();
                main_mode.insert(
                    addr,
                    LocalIke {
                        first_contact: Arc::new(first_contact),
                        again: Arc::new(again),
                    },
                );
            }
        }

        let mut statics = Vec::new();
        let mut dynamics = Vec::new();
        let mut max_sa_id = 0u32;
        for (map, entries) in &base.crypto_maps {
            let locals = map_locals.get(map.as_str()).cloned().unwrap_or_default();
            for e in entries {
                max_sa_id = max_sa_id.max(e.sa_id);
                if e.kind != MapKind::Isakmp {
                    continue;
                }
                if let Some(dname) = &e.dynamic {
                    let Some(dentries) = base.dynamic_maps.get(dname) else {
                        return Err(format!(
                            "crypto map {map} {}: no dynamic map {dname}",
                            e.seq
                        ));
                    };
                    for d in dentries {
                        let ranges: Vec<Selector> = match &d.match_address {
                            Some(acl) => base
                                .access_lists
                                .get(acl)
                                .ok_or_else(|| format!("no access-list {acl}"))?
                                .iter()
                                .filter(|a| a.action == AceAction::Permit)
                                .map(|a| a.selector)
                                .collect(),
                            None => vec![any_selector(false), any_selector(true)],
                        };
                        let mut p = Phase2Policy::new(
                            map,
                            e.seq,
                            transform_sets(config, &d.transform_sets)?,
                            Proxies::Dynamic(ranges),
                        );
                        p.pfs = pfs_group(&d.pfs)?;
                        p.lifetime = d.lifetime;
                        dynamics.push(DynamicEntry {
                            map: map.clone(),
                            seq: e.seq,
                            dynamic_map: dname.clone(),
                            dynamic_seq: d.seq,
                            locals: locals.iter().map(|l| l.0).collect(),
                            policy: p,
                            reverse_route: d.reverse_route,
                        });
                    }
                    continue;
                }
                let (Some(peer), Some(acl)) = (e.peer, &e.match_address) else {
                    return Err(format!(
                        "crypto map {map} {}: an ipsec-isakmp entry needs a peer and an access-list",
                        e.seq
                    ));
                };
                let Some(&(local, interface)) =
                    locals.iter().find(|(a, _)| a.is_ipv4() == peer.is_ipv4())
                else {
                    log::warn!(
                        "crypto map {map} {}: not applied to an interface with an address of \
                         peer {peer}'s family; entry unused",
                        e.seq
                    );
                    continue;
                };
                let sets = transform_sets(config, &e.transform_sets)?;
                let pfs = pfs_group(&e.pfs)?;
                let proposals: Vec<Phase2Policy> = base
                    .access_lists
                    .get(acl)
                    .ok_or_else(|| format!("no access-list {acl}"))?
                    .iter()
                    .filter(|a| a.action == AceAction::Permit)
                    .map(|a| {
                        let mut p = Phase2Policy::new(
                            map,
                            e.seq,
                            sets.clone(),
                            Proxies::Static(a.selector),
                        );
                        p.pfs = pfs;
                        p.lifetime = e.lifetime;
                        p.replay_window = e.replay_window;
                        p
                    })
                    .collect();
                if proposals.is_empty() {
                    log::warn!(
                        "crypto map {map} {}: access-list {acl} permits nothing; entry unused",
                        e.seq
                    );
                    continue;
                }
                statics.push(StaticEntry {
                    map: map.clone(),
                    seq: e.seq,
                    sa_id: e.sa_id,
                    peer,
                    local,
                    interface: interface.to_string(),
                    proposals,
                    reverse_route: e.reverse_route,
                });
            }
        }
        for m in &base.manual_sas {
            max_sa_id = max_sa_id.max(m.sa_id);
        }
        let static_spd = base
            .spd_rules
            .iter()
            .map(|r| SpdRuleMsg {
                selector: r.selector,
                protect: r.protect,
                entry: r.entry,
            })
            .collect();
        let sa_ids = base
            .crypto_maps
            .iter()
            .flat_map(|(m, es)| es.iter().map(move |e| ((m.clone(), e.seq), e.sa_id)))
            .collect();
        Ok(GatewayPolicy {
            sa_ids,
            hostname: base.hostname.clone(),
            config: Arc::new(config.clone()),
            credentials,
            phase1,
            main_mode,
            statics,
            dynamics,
            static_spd,
            first_dynamic_sa_id: max_sa_id + 1,
            dpd: config.isakmp.dpd,
            nat_keepalive: config.isakmp.nat_keepalive,
            admission_limit: config
                .isakmp
                .call_admission_limit
                .map(|l| l as usize)
                .unwrap_or(DEFAULT_ADMISSION_LIMIT),
            dh_pool: pool,
        })
    }

    /// The Diffie-Hellman key pairs to keep precomputed, per group: `dh_precompute` (by
    /// default [`dh_pool::DEFAULT_PER_USE`]) for each use a tunnel makes of the group — one
    /// if an isakmp policy has it (Main Mode, on an address that carries a crypto map), one
    /// more if a crypto map or dynamic map entry has it for PFS. So a burst of that many
    /// tunnels finds every key pair it needs made (two per tunnel with MODP-2048 in both
    /// phases, the load).
    pub fn dh_targets(&self) -> Vec<(DhGroup, usize)> {
        let per_use = self
            .config
            .isakmp
            .dh_precompute
            .map_or(dh_pool::DEFAULT_PER_USE, |n| n as usize);
        let mut uses: BTreeMap<u16, (DhGroup, usize)> = BTreeMap::new();
        let mut count = |groups: BTreeSet<u16>| {
            for id in groups {
                if let Some(g) = DhGroup::from_id(id) {
                    uses.entry(id).or_insert((g, 0)).1 += 1;
                }
            }
        };
        if !self.main_mode.is_empty() {
            count(self.phase1.iter().map(|p| p.group.id()).collect());
        }
        let pfs = self
            .statics
            .iter()
            .flat_map(|e| e.proposals.iter())
            .chain(self.dynamics.iter().map(|d| &d.policy))
            .filter_map(|p| p.pfs.map(|g| g.id()))
            .collect();
        count(pfs);
        uses.into_values()
            .filter(|_| per_use > 0)
            .map(|(g, n)| (g, n * per_use))
            .collect()
    }

    /// Renumbers the crypto map entries ([`sa_ids::assign`]): those in `keep` get that SA
    /// id, the others keep theirs unless it is kept or `taken`. Rewrites the ids wherever
    /// this policy holds them (entries, SPD, manual SAs, the configuration it shows).
    pub fn renumber(&mut self, keep: &BTreeMap<EntryKey, u32>, taken: &BTreeSet<u32>) {
        let entries: Vec<(EntryKey, u32)> =
            self.sa_ids.iter().map(|(k, id)| (k.clone(), *id)).collect();
        let ids = sa_ids::assign(&entries, keep, taken);
        let re = |id: u32| ids.get(&id).copied().unwrap_or(id);
        if ids.iter().any(|(a, b)| a != b) {
            let config = Arc::make_mut(&mut self.config);
            for e in config.base.crypto_maps.values_mut().flatten() {
                e.sa_id = re(e.sa_id);
            }
            for r in &mut config.base.spd_rules {
                r.entry = re(r.entry);
                r.protect = r.protect.map(re);
            }
            for m in &mut config.base.manual_sas {
                m.sa_id = re(m.sa_id);
            }
            for s in &mut self.statics {
                s.sa_id = re(s.sa_id);
            }
            for r in &mut self.static_spd {
                r.entry = re(r.entry);
                r.protect = r.protect.map(re);
            }
            for id in self.sa_ids.values_mut() {
                *id = re(*id);
            }
        }
        // dynamic-map SAs are numbered from here up (Daemon::next_dynamic_sa_id never goes
        // below it), so no static entry can meet one
        self.first_dynamic_sa_id = self.sa_ids.values().max().map_or(0, |m| m + 1);
    }

    /// The `ipsec-manual` entries' SAs, with their entry.
    pub fn manual_sas(&self) -> impl Iterator<Item = (EntryKey, &dataplane::config::ManualSa)> {
        self.config.base.manual_sas.iter().map(|m| {
            (
                (m.outbound.crypto_map.clone(), m.outbound.crypto_map_seq),
                m,
            )
        })
    }

    /// The static entry whose outbound SA has this SPD id.
    pub fn static_by_sa_id(&self, sa_id: u32) -> Option<&StaticEntry> {
        self.statics.iter().find(|e| e.sa_id == sa_id)
    }

    /// What we accept in Quick Mode from `peer` on `local`: the static entries naming that
    /// peer (one policy per ACL line, mirrored by the responder), then the dynamic
    /// templates of maps on that address. Each policy comes with where it came from.
    pub fn responder_policies(&self, peer: IpAddr, local: IpAddr) -> Vec<(Phase2Policy, Origin)> {
        let mut v = Vec::new();
        for (i, e) in self.statics.iter().enumerate() {
            if e.peer == peer && e.local == local {
                for p in &e.proposals {
                    v.push((p.clone(), Origin::Static(i)));
                }
            }
        }
        for (i, d) in self.dynamics.iter().enumerate() {
            if d.locals.contains(&local) {
                v.push((d.policy.clone(), Origin::Dynamic(i)));
            }
        }
        v
    }
}

/// Where a negotiated policy came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Index into [`GatewayPolicy::statics`].
    Static(usize),
    /// Index into [`GatewayPolicy::dynamics`].
    Dynamic(usize),
}
