//! The SA database of one worker lcore: its shard of the SAs (DESIGN.md rules 1 and 2).
//!
//! Ownership is a function of the key alone, so that any lcore can tell where a packet
//! belongs without a shared table:
//! - inbound SAs by SPI: [`owner_of_spi`] is `spi % workers`. Static SAs from the config keep
//!   the SPIs the operator chose; SPIs the dataplane allocates for IKE are picked so that
//!   `spi % workers` is the wanted owner ([`spi_for_owner`]).
//! - outbound SAs by the SPD's SA id: [`owner_of_sa`] is `sa_id % workers`. A worker that
//!   matches a packet to an SA it does not own hands it to the owner, which alone knows
//!   whether the SA is installed (if not, it raises the Acquire).

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::net::IpAddr;

use super::lifetime::LifetimeEvent;
use super::params::Direction;
use super::sa::Sa;
use crate::l3::route::IntHasher;
use crate::packet::PacketBuf;
use crate::pipeline::{DropReason, EncapError, Inbound, PeerPath, SaRef, WorkerId};

type IntMap<V> = HashMap<u32, V, BuildHasherDefault<IntHasher>>;

/// The worker that owns the inbound SA with this SPI.
pub fn owner_of_spi(spi: u32, workers: u16) -> WorkerId {
    (spi % workers.max(1) as u32) as WorkerId
}

/// The worker that owns the outbound SA with this SPD id.
pub fn owner_of_sa(sa_id: u32, workers: u16) -> WorkerId {
    (sa_id % workers.max(1) as u32) as WorkerId
}

/// The SPI nearest above `candidate` that `owner` owns (SPIs below 256 are reserved).
pub fn spi_for_owner(candidate: u32, owner: WorkerId, workers: u16) -> u32 {
    let n = workers.max(1) as u32;
    let base = candidate.max(256);
    let r = base % n;
    let want = owner as u32 % n;
    base - r + want + if want < r { n } else { 0 }
}

/// `x % d` for a divisor fixed at start-up, without a division instruction (Lemire, Kaser
/// and Kurz, "Faster remainder by direct computation", 2019): a 32-bit `div` costs tens of
/// cycles and the owner of every packet's SA is such a remainder.
#[derive(Clone, Copy, Debug)]
pub struct FastMod {
    d: u32,
    m: u64,
}

impl FastMod {
    pub fn new(d: u32) -> FastMod {
        let d = d.max(1);
        FastMod {
            d,
            m: (u64::MAX / d as u64).wrapping_add(1),
        }
    }

    #[inline]
    pub fn of(self, x: u32) -> u32 {
        let low = self.m.wrapping_mul(x as u64);
        ((low as u128 * self.d as u128) >> 64) as u32
    }
}

/// Outbound SA ids below this are kept in a table indexed by the id; larger ones in a hash
/// map. SA ids are dense (config entries in order, then one per dynamic peer), so the table
/// holds every id a gateway uses: 20,000 tunnels are 160 KB of pointers per worker, and a
/// lookup is a bounds check and one load where a hash probe is a chain of dependent ones.
/// The bound only keeps a stray huge id from allocating gigabytes (8 MB at most).
const DIRECT_SA_IDS: u32 = 1 << 20;

/// One worker's SAs.
pub struct SaShard {
    me: WorkerId,
    /// `key % workers`: the owner of an SPI or an SA id.
    owner: FastMod,
    /// Inbound SAs by SPI. SPIs are the peer's choice for static SAs and spread over 32 bits
    /// for allocated ones, so a hash map (multiplicative hash, one probe in the common case).
    inbound: IntMap<Box<Sa>>,
    /// Outbound SAs with ids below [`DIRECT_SA_IDS`], by id. It grows by doubling when an
    /// install needs a larger id (on the worker, while it links an SA in: once per doubling,
    /// never per packet).
    outbound_direct: Vec<Option<Box<Sa>>>,
    /// How many slots of `outbound_direct` hold an SA.
    outbound_direct_count: usize,
    /// Outbound SAs with larger ids.
    outbound: IntMap<Box<Sa>>,
    /// Every SA of the shard, in no order (each SA knows its place: `Sa::roster_slot`), so
    /// that the lifetime sweep can visit them a few at a time across poll iterations. A
    /// sweep of all of them at once (20,000 SAs, two cold lines each) held the worker for
    /// milliseconds once a second, and the frames that arrived meanwhile overflowed the
    /// receive rings: the zero-loss rate at 10,000 tunnels was what a ring holds over that
    /// pause.
    roster: Vec<RosterEntry>,
    /// The lifetime sweep: the next roster place to check, and how many SAs are left to
    /// check in this sweep.
    sweep_at: usize,
    sweep_left: usize,
}

/// An SA of the roster, by the key the shard files it under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RosterEntry {
    key: u32,
    inbound: bool,
}

/// Inbound slots reserved up front, so that the first thousand SAs never rehash.
const INBOUND_RESERVED: usize = 1024;

impl SaShard {
    pub fn new(me: WorkerId, workers: u16) -> SaShard {
        let mut inbound = IntMap::default();
        inbound.reserve(INBOUND_RESERVED);
        SaShard {
            me,
            owner: FastMod::new(workers.max(1) as u32),
            inbound,
            outbound_direct: Vec::new(),
            outbound_direct_count: 0,
            outbound: IntMap::default(),
            roster: Vec::with_capacity(2 * INBOUND_RESERVED),
            sweep_at: 0,
            sweep_left: 0,
        }
    }

    /// Installs an SA, returning the one it replaces (same SPI inbound, same SA id outbound).
    pub fn insert(&mut self, mut sa: Box<Sa>) -> Option<Box<Sa>> {
        let entry = RosterEntry {
            inbound: sa.direction == Direction::Inbound,
            key: if sa.direction == Direction::Inbound {
                sa.spi
            } else {
                sa.sa_id
            },
        };
        // A replacement takes the place of the SA it replaces; a new SA goes at the end.
        sa.roster_slot = match self.get_mut(entry.key, entry.inbound) {
            Some(old) => old.roster_slot,
            None => {
                self.roster.push(entry);
                (self.roster.len() - 1) as u32
            }
        };
        self.insert_in_table(sa)
    }

    fn get_mut(&mut self, key: u32, inbound: bool) -> Option<&mut Sa> {
        if inbound {
            self.inbound(key)
        } else {
            self.outbound_sa(key)
        }
    }

    fn insert_in_table(&mut self, sa: Box<Sa>) -> Option<Box<Sa>> {
        match sa.direction {
            Direction::Inbound => self.inbound.insert(sa.spi, sa),
            Direction::Outbound if sa.sa_id < DIRECT_SA_IDS => {
                let i = sa.sa_id as usize;
                if self.outbound_direct.len() <= i {
                    let grown = (self.outbound_direct.len() * 2)
                        .max(i + 1)
                        .min(DIRECT_SA_IDS as usize);
                    self.outbound_direct.resize_with(grown, || None);
                }
                let old = self.outbound_direct[i].replace(sa);
                if old.is_none() {
                    self.outbound_direct_count += 1;
                }
                old
            }
            Direction::Outbound => self.outbound.insert(sa.sa_id, sa),
        }
    }

    /// Removes the inbound SA with SPI `key`, or the outbound SA with SA id `key`.
    pub fn remove(&mut self, key: u32, inbound: bool) -> Option<Box<Sa>> {
        let old = self.remove_from_table(key, inbound)?;
        // The last SA of the roster takes the removed one's place.
        let slot = old.roster_slot as usize;
        self.roster.swap_remove(slot);
        if let Some(&moved) = self.roster.get(slot) {
            if let Some(sa) = self.get_mut(moved.key, moved.inbound) {
                sa.roster_slot = slot as u32;
            }
        }
        Some(old)
    }

    /// Starts a new sweep of every SA's lifetime (the worker does once a second): the next
    /// calls of [`SaShard::poll_lifetimes`] check each SA once.
    pub fn start_lifetime_sweep(&mut self) {
        self.sweep_left = self.roster.len();
    }

    /// Checks the lifetimes of at most `max` SAs of the current sweep at `now` (seconds), in
    /// roster order from where the last call stopped; each crossing is reported once through
    /// `emit` as (SPI, direction, hard, by_bytes). Cheap when the sweep is done.
    pub fn poll_lifetimes(
        &mut self,
        now: u64,
        max: usize,
        emit: &mut dyn FnMut(u32, Direction, bool, bool),
    ) {
        let n = max.min(self.sweep_left);
        self.sweep_left -= n;
        for _ in 0..n {
            if self.sweep_at >= self.roster.len() {
                self.sweep_at = 0;
            }
            let Some(&RosterEntry { key, inbound }) = self.roster.get(self.sweep_at) else {
                return;
            };
            self.sweep_at += 1;
            let Some(sa) = self.get_mut(key, inbound) else {
                continue;
            };
            match sa.poll_lifetime(now) {
                Some(LifetimeEvent::Soft { by_bytes }) => {
                    emit(sa.spi, sa.direction, false, by_bytes)
                }
                Some(LifetimeEvent::Hard { by_bytes }) => {
                    emit(sa.spi, sa.direction, true, by_bytes)
                }
                None => {}
            }
        }
    }

    /// The SAs from the `from`-th of the roster on, at most `max` of them, and where the
    /// next slice starts (`None`: that was the last). The order stays put while no SA is
    /// added or removed.
    pub fn roster_slice(
        &self,
        from: usize,
        max: usize,
    ) -> (impl Iterator<Item = &Sa>, Option<usize>) {
        let end = from.saturating_add(max).min(self.roster.len());
        let next = (end < self.roster.len()).then_some(end);
        let sas = self
            .roster
            .get(from..end)
            .unwrap_or(&[])
            .iter()
            .filter_map(|e| self.get(e.key, e.inbound));
        (sas, next)
    }

    fn get(&self, key: u32, inbound: bool) -> Option<&Sa> {
        if inbound {
            self.by_ref(SaRef::Inbound(key))
        } else {
            self.by_ref(SaRef::Outbound(key))
        }
    }

    fn remove_from_table(&mut self, key: u32, inbound: bool) -> Option<Box<Sa>> {
        if inbound {
            self.inbound.remove(&key)
        } else if key < DIRECT_SA_IDS {
            let old = self.outbound_direct.get_mut(key as usize)?.take();
            if old.is_some() {
                self.outbound_direct_count -= 1;
            }
            old
        } else {
            self.outbound.remove(&key)
        }
    }

    /// Bytes of table this shard holds beyond the SAs themselves: the direct table, and the
    /// hash maps' slots (key, pointer and a control byte each).
    pub fn table_bytes(&self) -> usize {
        let slot = std::mem::size_of::<(u32, Box<Sa>)>() + 1;
        self.outbound_direct.capacity() * std::mem::size_of::<Option<Box<Sa>>>()
            + (self.inbound.capacity() + self.outbound.capacity()) * slot
    }

    pub fn inbound(&mut self, spi: u32) -> Option<&mut Sa> {
        self.inbound.get_mut(&spi).map(|b| &mut **b)
    }

    #[inline]
    pub fn outbound_sa(&mut self, sa_id: u32) -> Option<&mut Sa> {
        if sa_id < DIRECT_SA_IDS {
            self.outbound_direct.get_mut(sa_id as usize)?.as_deref_mut()
        } else {
            self.outbound.get_mut(&sa_id).map(|b| &mut **b)
        }
    }

    /// The SA a burst's first pass found for a frame, if this shard holds it.
    #[inline(always)]
    fn by_ref(&self, sa: SaRef) -> Option<&Sa> {
        match sa {
            SaRef::Inbound(spi) => self.inbound.get(&spi).map(|b| &**b),
            SaRef::Outbound(id) if id < DIRECT_SA_IDS => {
                self.outbound_direct.get(id as usize)?.as_deref()
            }
            SaRef::Outbound(id) => self.outbound.get(&id).map(|b| &**b),
        }
    }

    /// Every SA of this shard.
    pub fn iter(&self) -> impl Iterator<Item = &Sa> {
        self.inbound
            .values()
            .chain(self.outbound_direct.iter().flatten())
            .chain(self.outbound.values())
            .map(|b| &**b)
    }

    /// Every SA of this shard, mutable (lifetime polling).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Sa> {
        self.inbound
            .values_mut()
            .chain(self.outbound_direct.iter_mut().flatten())
            .chain(self.outbound.values_mut())
            .map(|b| &mut **b)
    }

    pub fn len(&self) -> usize {
        self.inbound.len() + self.outbound_direct_count + self.outbound.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn me(&self) -> WorkerId {
        self.me
    }
}

impl<P: PacketBuf> crate::pipeline::SaShard<P> for SaShard {
    fn owner_of_spi(&self, spi: u32) -> Option<WorkerId> {
        let owner = self.owner.of(spi) as WorkerId;
        // On its owner, an SPI with no SA is unknown; elsewhere the owner decides.
        if owner == self.me && !self.inbound.contains_key(&spi) {
            return None;
        }
        Some(owner)
    }

    fn owner_of_sa(&self, sa: u32) -> WorkerId {
        self.owner.of(sa) as WorkerId
    }

    #[inline(always)]
    fn prefetch_sa(&self, sa: SaRef) {
        let direction = match sa {
            SaRef::Inbound(_) => Direction::Inbound,
            SaRef::Outbound(_) => Direction::Outbound,
        };
        if let Some(sa) = self.by_ref(sa) {
            sa.prefetch(direction);
        }
    }

    #[inline(always)]
    fn prefetch_sa_deps(&self, sa: SaRef, frame_len: usize) {
        if let Some(sa) = self.by_ref(sa) {
            sa.prefetch_deps(frame_len);
        }
    }

    fn decap(
        &mut self,
        pkt: &mut P,
        l3_off: usize,
        esp_off: usize,
        _udp: bool,
    ) -> Result<(), DropReason> {
        let spi = pkt
            .data()
            .get(esp_off..esp_off + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
            .ok_or(DropReason::Malformed)?;
        let sa = self.inbound.get_mut(&spi).ok_or(DropReason::UnknownSpi)?;
        sa.decap(pkt, l3_off, esp_off)
    }

    /// One hash lookup where `owner_of_spi` then `decap` made two.
    #[inline]
    fn inbound(
        &mut self,
        me: WorkerId,
        pkt: &mut P,
        l3_off: usize,
        esp_off: usize,
        spi: u32,
        _udp: bool,
    ) -> Inbound {
        let owner = self.owner.of(spi) as WorkerId;
        if owner != me {
            return Inbound::Handoff(owner);
        }
        match self.inbound.get_mut(&spi) {
            None => Inbound::Unknown,
            Some(sa) => match sa.decap(pkt, l3_off, esp_off) {
                Ok(()) => Inbound::Decapsulated,
                Err(r) => Inbound::Drop(r),
            },
        }
    }

    fn encap<F>(
        &mut self,
        pkt: &mut P,
        sa: u32,
        epoch: u64,
        resolve: F,
    ) -> Result<PeerPath, EncapError>
    where
        F: FnOnce(IpAddr) -> Result<PeerPath, DropReason>,
    {
        let sa = self
            .outbound_sa(sa)
            .ok_or(EncapError::Drop(DropReason::NoSa))?;
        let path = match sa.path {
            Some(p) if p.epoch == epoch => p,
            _ => {
                let p = resolve(sa.remote()).map_err(EncapError::Drop)?;
                sa.path = Some(p);
                p
            }
        };
        sa.encap(pkt, path.mtu as usize)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_is_a_function_of_the_key() {
        for workers in 1..=5u16 {
            for owner in 0..workers {
                for cand in [0u32, 255, 256, 1000, 0xffff_0000] {
                    let spi = spi_for_owner(cand, owner, workers);
                    assert!(spi >= 256 && spi >= cand);
                    assert_eq!(owner_of_spi(spi, workers), owner);
                }
            }
        }
        assert_eq!(owner_of_sa(7, 2), 1);
    }

    /// An esp-null esp-sha-hmac SA of crypto map `map` 10 (cheap keys for many SAs).
    fn null_sha1(spi: u32, direction: Direction, map: &str) -> crate::esp::SaParams {
        use crate::crypto::{Encryption, Integrity, Transform};
        use crate::esp::{Keys, Lifetime, Mode, SaParams};
        SaParams {
            spi,
            direction,
            transform: Transform {
                encryption: Encryption::Null,
                integrity: Integrity::Sha1,
            },
            keys: Keys {
                encryption: vec![],
                authentication: vec![9; 20],
            },
            mode: Mode::Tunnel,
            local: "192.0.2.1".parse().unwrap(),
            remote: "192.0.2.2".parse().unwrap(),
            selectors: vec![],
            lifetime: Lifetime::default(),
            replay_window: 64,
            esn: false,
            udp_encap: None,
            crypto_map: map.into(),
            crypto_map_seq: 10,
        }
    }

    #[test]
    fn outbound_sas_with_dense_and_sparse_ids() {
        use crate::crypto::rustcrypto::RUSTCRYPTO;
        let sa = |spi: u32, direction: Direction, sa_id: u32| {
            let p = null_sha1(spi, direction, "vpn");
            Box::new(Sa::new(&p, sa_id, &RUSTCRYPTO, 0).unwrap())
        };
        let mut shard = SaShard::new(0, 1);
        let ids = [0, 7, DIRECT_SA_IDS - 1, DIRECT_SA_IDS, 0xffff_fff0];
        for (i, &id) in ids.iter().enumerate() {
            assert!(shard
                .insert(sa(0x100 + i as u32, Direction::Outbound, id))
                .is_none());
        }
        assert!(shard.insert(sa(0x200, Direction::Inbound, 7)).is_none());
        assert_eq!(shard.len(), ids.len() + 1);
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(shard.outbound_sa(id).map(|s| s.spi), Some(0x100 + i as u32));
        }
        assert!(shard.outbound_sa(8).is_none());
        assert!(shard.outbound_sa(DIRECT_SA_IDS + 1).is_none());
        // a new SA for an id replaces the old one, in either table
        let old = shard.insert(sa(0x300, Direction::Outbound, 7)).unwrap();
        assert_eq!(old.spi, 0x101);
        let old = shard
            .insert(sa(0x301, Direction::Outbound, DIRECT_SA_IDS))
            .unwrap();
        assert_eq!(old.spi, 0x103);
        assert_eq!(shard.len(), ids.len() + 1);
        let mut spis: Vec<u32> = shard.iter().map(|s| s.spi).collect();
        spis.sort();
        assert_eq!(spis, [0x100, 0x102, 0x104, 0x200, 0x300, 0x301]);
        assert_eq!(shard.iter_mut().count(), 6);
        assert_eq!(shard.remove(7, false).map(|s| s.spi), Some(0x300));
        assert!(shard.remove(7, false).is_none());
        assert!(shard.remove(9999, false).is_none());
        assert_eq!(
            shard.remove(DIRECT_SA_IDS, false).map(|s| s.spi),
            Some(0x301)
        );
        assert!(
            shard.remove(7, true).is_none(),
            "inbound SAs are keyed by SPI"
        );
        assert_eq!(shard.remove(0x200, true).map(|s| s.spi), Some(0x200));
        assert_eq!(shard.len(), 3);
    }

    /// Every SA is in the roster once, at the place it says.
    fn assert_roster(shard: &mut SaShard) {
        assert_eq!(shard.roster.len(), shard.len());
        for (i, e) in shard.roster.clone().into_iter().enumerate() {
            let sa = shard
                .get_mut(e.key, e.inbound)
                .expect("a roster entry names an SA");
            assert_eq!(sa.roster_slot as usize, i, "{e:?}");
        }
    }

    #[test]
    fn the_lifetime_sweep_checks_each_sa_once_a_few_at_a_time() {
        use crate::crypto::rustcrypto::RUSTCRYPTO;
        use crate::esp::Lifetime;
        let sa = |spi: u32, direction: Direction, sa_id: u32| {
            let mut p = null_sha1(spi, direction, "vpn");
            p.lifetime = Lifetime {
                seconds: 100,
                kilobytes: 0,
                soft_percent: 90,
            };
            Box::new(Sa::new(&p, sa_id, &RUSTCRYPTO, 0).unwrap())
        };
        let mut shard = SaShard::new(0, 1);
        for i in 0..40u32 {
            let id = if i % 10 == 9 { DIRECT_SA_IDS + i } else { i };
            assert!(shard
                .insert(sa(0x1000 + i, Direction::Outbound, id))
                .is_none());
            assert!(shard
                .insert(sa(0x2000 + i, Direction::Inbound, id))
                .is_none());
        }
        assert_roster(&mut shard);
        // Removals from the middle, the end and the sparse table; replacements in place.
        for (key, inbound) in [
            (0, false),
            (0x2027, true),
            (DIRECT_SA_IDS + 19, false),
            (5, false),
        ] {
            assert!(shard.remove(key, inbound).is_some());
            assert_roster(&mut shard);
        }
        assert!(shard.insert(sa(0x3000, Direction::Outbound, 7)).is_some());
        assert!(shard.insert(sa(0x2003, Direction::Inbound, 3)).is_some());
        assert!(shard.remove(0x4000, true).is_none());
        assert_roster(&mut shard);
        let total = shard.len();
        assert_eq!(total, 76);

        // Past the soft lifetime (90 s): each SA reports once, 16 per call.
        let sweep = |shard: &mut SaShard, now: u64| {
            shard.start_lifetime_sweep();
            let mut events = Vec::new();
            let mut calls = 0;
            while calls < 100 {
                let before = events.len();
                shard.poll_lifetimes(now, 16, &mut |spi, dir, hard, _| {
                    events.push((spi, dir, hard))
                });
                calls += 1;
                if shard.sweep_left == 0 && events.len() == before {
                    break;
                }
            }
            events
        };
        let soft = sweep(&mut shard, 95);
        assert_eq!(soft.len(), total, "every SA once");
        assert!(soft.iter().all(|e| !e.2));
        let mut spis: Vec<u32> = soft.iter().map(|e| e.0).collect();
        spis.sort();
        spis.dedup();
        assert_eq!(spis.len(), total, "no SA twice");
        assert!(sweep(&mut shard, 96).is_empty(), "reported once");
        let hard = sweep(&mut shard, 100);
        assert_eq!(hard.len(), total);
        assert!(hard.iter().all(|e| e.2));
        // Slices of the roster (an SA dump, a slice per poll iteration) cover each SA once.
        let mut seen = Vec::new();
        let mut from = Some(0);
        while let Some(f) = from {
            let (sas, next) = shard.roster_slice(f, 16);
            seen.extend(sas.map(|sa| (sa.spi, sa.direction == Direction::Inbound)));
            from = next;
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), total);
        // A sweep checks at most what it was asked to, per call.
        shard.start_lifetime_sweep();
        shard.poll_lifetimes(200, 16, &mut |_, _, _, _| {});
        assert_eq!(shard.sweep_left, total - 16);
    }

    #[test]
    fn twenty_thousand_sas_in_one_shard() {
        use crate::crypto::rustcrypto::RUSTCRYPTO;
        let params = |spi: u32, direction: Direction| null_sha1(spi, direction, "hub");
        let mut shard = SaShard::new(0, 1);
        for id in 0..10_000u32 {
            let spi = 0x1000_0000 + id * 7;
            for (spi, d) in [(spi, Direction::Inbound), (id, Direction::Outbound)] {
                let sa = Sa::new(&params(spi, d), id, &RUSTCRYPTO, 0).unwrap();
                assert!(shard.insert(Box::new(sa)).is_none());
            }
        }
        assert_eq!(shard.len(), 20_000);
        for id in (0..10_000u32).step_by(97) {
            assert_eq!(shard.outbound_sa(id).map(|s| s.sa_id), Some(id));
            assert_eq!(
                shard.inbound(0x1000_0000 + id * 7).map(|s| s.sa_id),
                Some(id)
            );
        }
        assert!(shard.outbound_sa(10_000).is_none());
        assert!(shard.inbound(0x1000_0000 + 1).is_none());
        // the direct table grew by doubling, not one slot per install
        assert!(shard.outbound_direct.capacity() < 2 * 16_384);
        assert_eq!(shard.remove(9_999, false).map(|s| s.sa_id), Some(9_999));
        assert_eq!(shard.len(), 19_999);
    }

    #[test]
    fn fast_remainder_equals_the_division() {
        let mut x = 0x1234_5678u32;
        for d in 1..=67u32 {
            let f = FastMod::new(d);
            for v in [0, 1, d - 1, d, d + 1, u32::MAX, u32::MAX - 1, 0x8000_0000] {
                assert_eq!(f.of(v), v % d, "{v} % {d}");
            }
            for _ in 0..1000 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                assert_eq!(f.of(x), x % d, "{x} % {d}");
            }
        }
        assert_eq!(owner_of_spi(105, 1), 0);
    }
}
