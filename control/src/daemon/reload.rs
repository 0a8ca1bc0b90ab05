//! `ipsec-ctl reload` and SIGHUP: a changed configuration applied without touching the
//! tunnels it leaves alone.
//!
//! The new file is read and validated in full first; a bad file changes nothing. Then,
//! entry by entry (`crypto map NAME SEQ`, and for hubs `crypto dynamic-map NAME SEQ`):
//! - an entry that is the same tunnel as before (peer, ACL, transform sets, PFS, lifetime)
//!   keeps its SA id and its SAs, which forward throughout;
//! - an entry that is gone or changed loses its SAs: they are deleted from the dataplane
//!   and the peer is told with DELETE (a changed entry comes back up on its next packet
//!   with the new settings, as after `clear crypto sa map`);
//! - a new entry gets an SA id no SA uses ([`super::sa_ids`]) and comes up on its first
//!   packet;
//! - `ipsec-manual` entries are installed, replaced or removed directly;
//! - the whole SPD is installed once, with the new entries and the dynamic-map rules of
//!   the spokes that stay.
//!
//! ISAKMP policies, trustpoints, DPD and keepalive settings apply to what is negotiated from
//! now on; ISAKMP SAs in place keep running, except those with a peer that has neither a
//! crypto map entry nor an IPsec SA left, which are deleted (with DELETE). What only the
//! dataplane reads at its start (interfaces, routes, ARP entries, `[dataplane]`) is
//! reported as needing a restart of `ipsec-dataplane`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dataplane::esp::Direction;

use crate::config::IkeConfig;

use super::policy::{GatewayPolicy, Origin};
use super::quick::QuickState;
use super::sa_ids::EntryKey;
use super::{Daemon, Link};

/// What happened to one crypto map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Unchanged,
    Changed,
    Removed,
    Added,
}

impl<L: Link> Daemon<L> {
    /// Re-reads the file the running configuration came from and applies it
    /// ([`Daemon::apply_config`]); a file that does not validate changes nothing.
    pub fn reload_file(&mut self) -> Result<Vec<String>, String> {
        let file = self.policy.config.base.file.clone();
        let config = IkeConfig::load(&file).map_err(|e| {
            let reason = e.to_string();
            log::warn!("%CRYPTO-4-RELOAD: configuration not applied: {reason}");
            reason
        })?;
        self.apply_config(&config)
    }

    /// Applies `config` (already validated); returns the lines to show the operator, one
    /// per change. Err only when the configuration cannot be turned into a policy (a
    /// trustpoint file that cannot be read, say): nothing was changed then.
    pub fn apply_config(&mut self, config: &IkeConfig) -> Result<Vec<String>, String> {
        let mut new = GatewayPolicy::with_dh_pool(config, self.policy.dh_pool.clone())?;
        let mut report = restart_needed(&self.policy, &new);

        // entry by entry, old against new
        let static_change = |key: &EntryKey, old: &GatewayPolicy, new: &GatewayPolicy| {
            let o = old.statics.iter().find(|e| &e.key() == key);
            let n = new.statics.iter().find(|e| &e.key() == key);
            match (o, n) {
                (Some(o), Some(n)) if o.same_tunnel(n) => Change::Unchanged,
                (Some(_), Some(_)) => Change::Changed,
                (Some(_), None) => Change::Removed,
                (None, _) => Change::Added,
            }
        };
        let gone_statics: BTreeSet<EntryKey> = self
            .policy
            .statics
            .iter()
            .map(|e| e.key())
            .filter(|k| static_change(k, &self.policy, &new) != Change::Unchanged)
            .collect();
        let gone_dynamics: BTreeSet<(String, u32, String, u32)> = self
            .policy
            .dynamics
            .iter()
            .filter(|d| !new.dynamics.contains(d))
            .map(|d| d.key())
            .collect();
        let old_manual: BTreeMap<EntryKey, dataplane::config::ManualSa> = self
            .policy
            .manual_sas()
            .map(|(k, m)| (k, m.clone()))
            .collect();
        let new_manual: BTreeMap<EntryKey, dataplane::config::ManualSa> =
            new.manual_sas().map(|(k, m)| (k, m.clone())).collect();
        let same_manual = |a: &dataplane::config::ManualSa, b: &dataplane::config::ManualSa| {
            a.inbound == b.inbound && a.outbound == b.outbound
        };

        // the SAs of entries that are gone or changed go first, with DELETE to their peers
        let is_gone = |d: &Self, o: Origin| match o {
            Origin::Static(i) => gone_statics.contains(&d.policy.statics[i].key()),
            Origin::Dynamic(i) => gone_dynamics.contains(&d.policy.dynamics[i].key()),
        };
        let doomed: Vec<(u32, IpAddr)> = self
            .children
            .by_spi
            .iter()
            .filter(|(_, c)| is_gone(self, c.origin))
            .map(|(s, c)| (*s, c.peer))
            .collect();
        let mut lost: BTreeMap<IpAddr, usize> = BTreeMap::new();
        for (spi, peer) in &doomed {
            self.delete_child_notify(*spi, "crypto map changed by reload");
            *lost.entry(*peer).or_default() += 1;
        }
        self.drop_quick_modes(|d, o| is_gone(d, o));
        let gone_ids: BTreeSet<u32> = gone_statics
            .iter()
            .filter_map(|k| self.policy.sa_ids.get(k).copied())
            .collect();
        for p1 in self.phase1.values_mut() {
            p1.waiting.retain(|w| !gone_ids.contains(&w.sa_id));
        }
        self.clear_adopted(|a| gone_ids.contains(&a.sa_id));
        for (key, m) in &old_manual {
            if new_manual.get(key).is_some_and(|n| same_manual(m, n)) {
                continue;
            }
            for p in [&m.inbound, &m.outbound] {
                if let Err(e) = self.link.delete_sa(p.spi, p.direction, m.sa_id) {
                    log::info!("IPSEC: manual SA 0x{:08x}: {e}", p.spi);
                }
            }
        }

        // numbers: what stays keeps its SA id; nothing new takes one in use
        let keep: BTreeMap<EntryKey, u32> = self
            .policy
            .sa_ids
            .iter()
            .filter(|(k, _)| new.sa_ids.contains_key(*k))
            .map(|(k, id)| (k.clone(), *id))
            .collect();
        let kept: BTreeSet<u32> = keep.values().copied().collect();
        let taken: BTreeSet<u32> = self
            .sa_ids_in_use()
            .into_iter()
            .filter(|id| !kept.contains(id))
            .collect();
        new.renumber(&keep, &taken);

        // what survives points into the new policy
        let statics: BTreeMap<EntryKey, usize> = new
            .statics
            .iter()
            .enumerate()
            .map(|(i, e)| (e.key(), i))
            .collect();
        let dynamics: BTreeMap<_, usize> = new
            .dynamics
            .iter()
            .enumerate()
            .map(|(i, d)| (d.key(), i))
            .collect();
        let remap = |old: &GatewayPolicy, o: Origin| -> Origin {
            match o {
                Origin::Static(i) => Origin::Static(statics[&old.statics[i].key()]),
                Origin::Dynamic(i) => Origin::Dynamic(dynamics[&old.dynamics[i].key()]),
            }
        };
        let origins: Vec<(u32, Origin)> = self
            .children
            .by_spi
            .iter()
            .map(|(s, c)| (*s, remap(&self.policy, c.origin)))
            .collect();
        for (spi, o) in origins {
            if let Some(c) = self.children.by_spi.get_mut(&spi) {
                c.origin = o;
            }
        }
        for p1 in self.phase1.values_mut() {
            for q in p1.quick.values_mut() {
                q.origin = remap(&self.policy, q.origin);
            }
        }

        // the report, in crypto map order
        let mut keys: BTreeSet<EntryKey> = self.policy.sa_ids.keys().cloned().collect();
        keys.extend(new.sa_ids.keys().cloned());
        for key in &keys {
            let change = if old_manual.contains_key(key) || new_manual.contains_key(key) {
                match (old_manual.get(key), new_manual.get(key)) {
                    (Some(a), Some(b)) if same_manual(a, b) => Change::Unchanged,
                    (Some(_), Some(_)) => Change::Changed,
                    (Some(_), None) => Change::Removed,
                    (None, _) => Change::Added,
                }
            } else if self.policy.statics.iter().any(|e| &e.key() == key)
                || new.statics.iter().any(|e| &e.key() == key)
            {
                static_change(key, &self.policy, &new)
            } else {
                let dyn_of = |p: &GatewayPolicy| -> Vec<_> {
                    p.dynamics
                        .iter()
                        .filter(|d| d.map == key.0 && d.seq == key.1)
                        .cloned()
                        .collect()
                };
                let (o, n) = (dyn_of(&self.policy), dyn_of(&new));
                match (
                    self.policy.sa_ids.contains_key(key),
                    new.sa_ids.contains_key(key),
                ) {
                    (true, true) if o == n => Change::Unchanged,
                    (true, true) => Change::Changed,
                    (true, false) => Change::Removed,
                    _ => Change::Added,
                }
            };
            let sas = |peer: Option<IpAddr>| match peer.and_then(|p| lost.get(&p)) {
                Some(n) => format!("; {n} IPsec SA pair(s) deleted, DELETE sent"),
                None => String::new(),
            };
            let peer_of =
                |p: &GatewayPolicy| p.statics.iter().find(|e| &e.key() == key).map(|e| e.peer);
            let line = match change {
                Change::Unchanged => continue,
                Change::Added => format!(
                    "crypto map {} {}: added{}",
                    key.0,
                    key.1,
                    if new_manual.contains_key(key) {
                        ": manual SAs installed"
                    } else {
                        ": comes up on its first packet"
                    }
                ),
                Change::Removed => format!(
                    "crypto map {} {}: removed{}",
                    key.0,
                    key.1,
                    sas(peer_of(&self.policy))
                ),
                Change::Changed => format!(
                    "crypto map {} {}: changed{}",
                    key.0,
                    key.1,
                    sas(peer_of(&self.policy))
                ),
            };
            report.push(line);
        }

        // in with the new
        let old = std::mem::replace(&mut self.policy, new);
        self.next_dynamic_sa_id = self.next_dynamic_sa_id.max(self.policy.first_dynamic_sa_id);
        for (key, m) in self
            .policy
            .manual_sas()
            .map(|(k, m)| (k, m.clone()))
            .collect::<Vec<_>>()
        {
            if old_manual.get(&key).is_some_and(|o| same_manual(o, &m)) {
                continue;
            }
            for p in [m.inbound.clone(), m.outbound.clone()] {
                let spi = p.spi;
                if let Err(e) = self.link.add_sa(m.sa_id, p) {
                    self.stats.link_errors += 1;
                    log::warn!("IPSEC: manual SA 0x{spi:08x} not installed: {e}");
                }
            }
        }
        self.install_spd();
        if old.admission_limit != self.policy.admission_limit {
            report.push(
                "crypto call admission limit: takes effect when ipsec-control restarts".into(),
            );
        }
        if old.phase1 != self.policy.phase1 {
            report.push(
                "isakmp policies changed: they apply to ISAKMP SAs negotiated from now on".into(),
            );
        }
        let dh_targets = self.policy.dh_targets();
        if old.dh_targets() != dh_targets {
            // groups no longer used lose their precomputed key pairs; new ones are made
            // when the machine is idle
            self.policy.dh_pool.set_targets(&dh_targets);
        }

        // ISAKMP SAs with peers that have nothing left here
        let mut orphans = Vec::new();
        for p1 in self.phase1.values() {
            let peer = p1.peer;
            let wanted = self.policy.statics.iter().any(|e| e.peer == peer)
                || self.children.by_spi.values().any(|c| c.peer == peer)
                || self.children.adopted.values().any(|a| a.peer == Some(peer));
            if !wanted && (lost.contains_key(&peer) || old.statics.iter().any(|e| e.peer == peer)) {
                orphans.push(p1.conn_id);
            }
        }
        for conn_id in orphans {
            self.clear_isakmp(Some(conn_id));
        }

        report.push(format!(
            "{} IPsec SA pair(s) kept",
            self.children.by_spi.len()
        ));
        log::info!(
            "%SYS-5-CONFIG_I: Configured from {} by reload",
            self.policy.config.base.file.display()
        );
        for l in &report {
            log::info!("%CRYPTO-6-RELOAD: {l}");
        }
        Ok(report)
    }

    /// Every SA id something holds: pairs, dynamic SPD rules, adopted SAs, exchanges.
    fn sa_ids_in_use(&self) -> BTreeSet<u32> {
        let mut ids: BTreeSet<u32> = self.children.by_spi.values().map(|c| c.sa_id).collect();
        ids.extend(self.children.current.keys());
        ids.extend(self.children.dynamic_rules.keys());
        ids.extend(self.children.adopted.values().map(|a| a.sa_id));
        for p1 in self.phase1.values() {
            ids.extend(p1.quick.values().map(|q| q.sa_id));
            ids.extend(p1.waiting.iter().map(|w| w.sa_id));
        }
        ids
    }

    /// Abandons the Quick Modes in progress whose origin `gone` says is gone (the inbound SA
    /// a responder installed already is removed; the peer's retransmissions then find no
    /// exchange and time out).
    fn drop_quick_modes(&mut self, gone: impl Fn(&Self, Origin) -> bool) {
        let mut doomed = Vec::new();
        for (k, p1) in &self.phase1 {
            for (mid, q) in &p1.quick {
                if gone(self, q.origin) {
                    doomed.push((*k, *mid));
                }
            }
        }
        for (k, mid) in doomed {
            let Some(p1) = self.phase1.get_mut(&k) else {
                continue;
            };
            let Some(q) = p1.quick.remove(&mid) else {
                continue;
            };
            if let Some(QuickState::R2(s)) = &q.state {
                let spi = s.child().spi_in;
                if let Err(e) = self.link.delete_sa(spi, Direction::Inbound, q.sa_id) {
                    log::info!("IPSEC: inbound SA 0x{spi:08x}: {e}");
                }
            }
        }
    }
}

/// What changed in the parts of the file only `ipsec-dataplane` reads at its start.
fn restart_needed(old: &GatewayPolicy, new: &GatewayPolicy) -> Vec<String> {
    let (a, b) = (&old.config.base, &new.config.base);
    let mut v = Vec::new();
    let mut differs = |what: &str, same: bool| {
        if !same {
            v.push(format!(
                "{what} changed: takes effect when ipsec-dataplane restarts"
            ));
        }
    };
    differs("[dataplane]", a.dataplane == b.dataplane);
    differs("interfaces", a.interfaces == b.interfaces);
    differs("routes", a.routes == b.routes);
    differs("static ARP entries", a.static_arp == b.static_arp);
    v
}
