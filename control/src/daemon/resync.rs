//! Resynchronisation with a dataplane that kept running while `ipsec-control` restarted
//! (DESIGN.md "Control <-> dataplane"): the SAs the dataplane holds are adopted, so that
//! they keep forwarding, are shown, and are replaced or removed in order:
//!
//! - the crypto map entries with SAs keep those SAs' ids, and the SPD is installed with them;
//! - the SPD rules of dynamic-map SAs are rebuilt from their selectors (installing a new SPD
//!   without them would let the spokes' traffic leave in clear), and new dynamic SA ids start
//!   above the adopted ones;
//! - a new pair negotiated for an adopted SA's SA id takes over its outbound SA in one step,
//!   and the adopted inbound SA goes after the usual grace;
//! - an adopted outbound SA of a static entry that reaches its soft lifetime starts a new
//!   Main Mode and Quick Mode (the old ISAKMP SA's keys died with the old process);
//! - a hard lifetime removes the SA.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Instant;

use dataplane::channel::{SaCountersMsg, SpdRuleMsg};
use dataplane::esp::Direction;

use super::children::Adopted;
use super::sa_ids::EntryKey;
use super::{Daemon, Link, RETIRE_GRACE};

impl<L: Link> Daemon<L> {
    /// Adopts the SAs of a dataplane dump (at start, before any event), and installs the
    /// SPD.
    ///
    /// The crypto map entries whose SAs the dataplane holds keep the SA ids those SAs have
    /// (an earlier run may have reloaded a file with entries added in front of them, so the
    /// file's numbering is not theirs); see [`super::sa_ids`].
    pub fn adopt(&mut self, sas: Vec<SaCountersMsg>) {
        let entries: BTreeSet<EntryKey> = self
            .policy
            .statics
            .iter()
            .map(|e| e.key())
            .chain(self.policy.manual_sas().map(|(k, _)| k))
            .collect();
        let of_entry = |s: &SaCountersMsg| {
            let k = (s.crypto_map.clone(), s.crypto_map_seq);
            entries.contains(&k).then_some(k)
        };
        let mut keep: BTreeMap<EntryKey, u32> = BTreeMap::new();
        let mut taken = BTreeSet::new();
        for s in sas.iter().filter(|s| s.direction.is_some()) {
            match of_entry(s) {
                Some(k) => {
                    if !keep.values().any(|&id| id == s.sa_id) {
                        keep.entry(k).or_insert(s.sa_id);
                    }
                }
                None => {
                    taken.insert(s.sa_id);
                }
            }
        }
        taken.retain(|id| !keep.values().any(|k| k == id));
        self.policy.renumber(&keep, &taken);
        self.next_dynamic_sa_id = self.next_dynamic_sa_id.max(self.policy.first_dynamic_sa_id);

        let mut rules = 0;
        for s in sas {
            let Some(direction) = s.direction else {
                continue;
            };
            let inbound = direction == Direction::Inbound;
            if !inbound && of_entry(&s).is_none() {
                if let Some(sel) = s.selectors.first() {
                    self.children.dynamic_rules.insert(
                        s.sa_id,
                        SpdRuleMsg {
                            selector: *sel,
                            protect: Some(s.sa_id),
                            entry: s.sa_id,
                        },
                    );
                    rules += 1;
                }
            }
            if s.sa_id >= self.next_dynamic_sa_id {
                self.next_dynamic_sa_id = s.sa_id + 1;
            }
            // the engine connection id `show crypto engine connections active` lists, kept
            // if this SA was adopted before
            let conn_id = match self.children.adopted.get(&(s.spi, inbound)) {
                Some(a) => a.conn_id,
                None => self.conn_id(),
            };
            self.children.adopted.insert(
                (s.spi, inbound),
                Adopted {
                    conn_id,
                    spi: s.spi,
                    direction,
                    sa_id: s.sa_id,
                    local: s.local.parse().ok(),
                    peer: s.remote.parse().ok(),
                    crypto_map: s.crypto_map,
                    crypto_map_seq: s.crypto_map_seq,
                    transform: s.transform,
                    selectors: s.selectors,
                    retire_at: None,
                },
            );
        }
        if !self.children.adopted.is_empty() {
            log::info!(
                "%CRYPTO-6-RESYNC: adopted {} SAs from the dataplane ({} dynamic-map SPD rules \
                 rebuilt); they forward until replaced or expired",
                self.children.adopted.len(),
                rules
            );
        }
        self.install_spd();
    }

    /// A new pair holds `sa_id` now: the adopted outbound SA of that id was replaced in the
    /// dataplane, the adopted inbound ones go after the grace.
    pub(super) fn supersede_adopted(&mut self, sa_id: u32, peer: IpAddr, now: Instant) {
        self.children
            .adopted
            .retain(|(_, inbound), a| *inbound || a.sa_id != sa_id);
        for a in self.children.adopted.values_mut() {
            if a.sa_id == sa_id && a.peer == Some(peer) && a.retire_at.is_none() {
                a.retire_at = Some(now + RETIRE_GRACE);
            }
        }
    }

    /// Removes an adopted SA from the dataplane (and its dynamic SPD rule with the outbound
    /// one).
    fn drop_adopted(&mut self, key: (u32, bool), reason: &str) {
        let Some(a) = self.children.adopted.remove(&key) else {
            return;
        };
        if let Err(e) = self.link.delete_sa(a.spi, a.direction, a.sa_id) {
            log::info!("IPSEC: adopted SA 0x{:08x}: {e}", a.spi);
        }
        if a.direction == Direction::Outbound
            && !self.children.current.contains_key(&a.sa_id)
            && self.children.dynamic_rules.remove(&a.sa_id).is_some()
        {
            self.install_spd();
        }
        log::info!(
            "IPSEC(delete_sa): deleting adopted SA, (sa) sa_dest= {}, sa_proto= 50, sa_spi= \
             0x{:X}({}) ({reason})",
            match a.direction {
                Direction::Inbound => a.local,
                Direction::Outbound => a.peer,
            }
            .map(|x| x.to_string())
            .unwrap_or_default(),
            a.spi,
            a.spi
        );
    }

    /// A lifetime event for an adopted SA; false when the SPI is not one.
    pub(super) fn adopted_expire(
        &mut self,
        spi: u32,
        direction: Direction,
        hard: bool,
        now: Instant,
    ) -> bool {
        let key = (spi, direction == Direction::Inbound);
        let Some(a) = self.children.adopted.get(&key).cloned() else {
            return false;
        };
        if hard {
            self.drop_adopted(key, "lifetime expired");
        } else if direction == Direction::Outbound && self.policy.static_by_sa_id(a.sa_id).is_some()
        {
            log::info!(
                "IPSEC: adopted SA 0x{spi:08x} reached its soft lifetime: negotiating its \
                 replacement"
            );
            let sel = a.selectors.first().copied();
            self.on_acquire(
                a.sa_id,
                sel.map(|s| s.source.addr),
                sel.map(|s| s.destination.addr),
                None,
                now,
            );
        }
        true
    }

    /// The peer deleted the SA it sends on (our adopted outbound `spi`): drop that pair.
    pub(super) fn adopted_deleted_by_peer(&mut self, spi: u32) -> bool {
        let Some(a) = self.children.adopted.get(&(spi, false)).cloned() else {
            return false;
        };
        self.drop_adopted((spi, false), "deleted by peer");
        let inbound: Vec<(u32, bool)> = self
            .children
            .adopted
            .iter()
            .filter(|((_, i), b)| *i && b.sa_id == a.sa_id && b.peer == a.peer)
            .map(|(k, _)| *k)
            .collect();
        for k in inbound {
            self.drop_adopted(k, "deleted by peer");
        }
        true
    }

    /// `clear crypto sa` for adopted SAs: removes those `which` selects from the dataplane
    /// (their ISAKMP SA died with the earlier process, so the peer is not told). Returns how
    /// many.
    pub(super) fn clear_adopted(&mut self, which: impl Fn(&Adopted) -> bool) -> usize {
        let keys: Vec<(u32, bool)> = self
            .children
            .adopted
            .iter()
            .filter(|(_, a)| which(a))
            .map(|(k, _)| *k)
            .collect();
        for &k in &keys {
            self.drop_adopted(k, "clear crypto sa");
        }
        keys.len()
    }

    /// Deletes adopted inbound SAs whose replacement has had its grace.
    pub(super) fn retire_adopted(&mut self, now: Instant) {
        let due: Vec<(u32, bool)> = self
            .children
            .adopted
            .iter()
            .filter(|(_, a)| a.retire_at.is_some_and(|t| now >= t))
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            self.drop_adopted(k, "replaced");
        }
    }
}
