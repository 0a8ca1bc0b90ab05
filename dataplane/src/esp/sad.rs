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
use std::net::{IpAddr, Ipv4Addr};

use super::params::Direction;
use super::sa::Sa;
use crate::l3::route::IntHasher;
use crate::packet::PacketBuf;
use crate::pipeline::{DropReason, EncapError, WorkerId};

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

/// One worker's SAs.
pub struct SaShard {
    me: WorkerId,
    workers: u16,
    inbound: IntMap<Box<Sa>>,
    outbound: IntMap<Box<Sa>>,
}

impl SaShard {
    pub fn new(me: WorkerId, workers: u16) -> SaShard {
        SaShard {
            me,
            workers: workers.max(1),
            inbound: IntMap::default(),
            outbound: IntMap::default(),
        }
    }

    /// Installs an SA, returning the one it replaces (same SPI inbound, same SA id outbound).
    pub fn insert(&mut self, sa: Box<Sa>) -> Option<Box<Sa>> {
        match sa.direction {
            Direction::Inbound => self.inbound.insert(sa.spi, sa),
            Direction::Outbound => self.outbound.insert(sa.sa_id, sa),
        }
    }

    /// Removes the inbound SA with SPI `key`, or the outbound SA with SA id `key`.
    pub fn remove(&mut self, key: u32, inbound: bool) -> Option<Box<Sa>> {
        if inbound {
            self.inbound.remove(&key)
        } else {
            self.outbound.remove(&key)
        }
    }

    pub fn inbound(&mut self, spi: u32) -> Option<&mut Sa> {
        self.inbound.get_mut(&spi).map(|b| &mut **b)
    }

    pub fn outbound_sa(&mut self, sa_id: u32) -> Option<&mut Sa> {
        self.outbound.get_mut(&sa_id).map(|b| &mut **b)
    }

    /// Every SA of this shard.
    pub fn iter(&self) -> impl Iterator<Item = &Sa> {
        self.inbound
            .values()
            .chain(self.outbound.values())
            .map(|b| &**b)
    }

    /// Every SA of this shard, mutable (lifetime polling).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Sa> {
        self.inbound
            .values_mut()
            .chain(self.outbound.values_mut())
            .map(|b| &mut **b)
    }

    pub fn len(&self) -> usize {
        self.inbound.len() + self.outbound.len()
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
        let owner = owner_of_spi(spi, self.workers);
        // On its owner, an SPI with no SA is unknown; elsewhere the owner decides.
        if owner == self.me && !self.inbound.contains_key(&spi) {
            return None;
        }
        Some(owner)
    }

    fn outbound(&self, sa: u32) -> Option<(WorkerId, IpAddr)> {
        let owner = owner_of_sa(sa, self.workers);
        if owner != self.me {
            return Some((owner, IpAddr::V4(Ipv4Addr::UNSPECIFIED)));
        }
        self.outbound.get(&sa).map(|s| (owner, s.remote()))
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

    fn encap(&mut self, pkt: &mut P, sa: u32, mtu: usize) -> Result<(), EncapError> {
        let sa = self
            .outbound
            .get_mut(&sa)
            .ok_or(EncapError::Drop(DropReason::NoSa))?;
        sa.encap(pkt, mtu)
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
        assert_eq!(owner_of_spi(105, 1), 0);
    }
}
