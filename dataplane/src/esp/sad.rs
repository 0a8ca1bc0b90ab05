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

use super::params::Direction;
use super::sa::Sa;
use crate::l3::route::IntHasher;
use crate::packet::PacketBuf;
use crate::pipeline::{DropReason, EncapError, PeerPath, WorkerId};

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

/// One worker's SAs.
pub struct SaShard {
    me: WorkerId,
    /// `key % workers`: the owner of an SPI or an SA id.
    owner: FastMod,
    inbound: IntMap<Box<Sa>>,
    outbound: IntMap<Box<Sa>>,
}

impl SaShard {
    pub fn new(me: WorkerId, workers: u16) -> SaShard {
        SaShard {
            me,
            owner: FastMod::new(workers.max(1) as u32),
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
            .outbound
            .get_mut(&sa)
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
