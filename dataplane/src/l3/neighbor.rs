//! The neighbour table (ARP for IPv4, ND for IPv6): one writer, many lock-free readers.
//!
//! The main lcore learns and ages entries; the worker lcores look up the MAC of a next hop
//! for every packet they send. Readers must never block or see a torn entry, and the writer
//! must never wait for readers, so each slot is a seqlock: the writer makes the sequence odd,
//! writes the words, and makes it even again; a reader retries when the sequence was odd or
//! changed while it read. The table has a fixed capacity chosen at start-up (no allocation
//! after that) and uses open addressing with linear probing. Slots are never emptied, only
//! marked invalid, so a probe chain is never cut; an invalid slot is reused by the next insert
//! that passes over it.

use std::net::IpAddr;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use crate::pipeline::{Neighbours, PortId};

/// State bits kept beside the MAC in one word: MAC in bits 0..48, port in 48..56, state in
/// 56..64.
const STATE_VALID: u64 = 1;
const STATE_PENDING: u64 = 2;
/// Configured (`arp A.B.C.D H.H.H ARPA`): valid, never aged, never overwritten by learning.
const STATE_STATIC: u64 = 3;

#[derive(Default)]
struct Slot {
    seq: AtomicU32,
    /// The address as 128 bits (IPv4 mapped into ::ffff:0:0/96); 0 = never used.
    key_hi: AtomicU64,
    key_lo: AtomicU64,
    /// MAC | port << 48 | state << 56
    word: AtomicU64,
    /// Seconds (caller's clock) of the last confirmation or request; writer-only.
    stamp: AtomicU64,
}

fn key_of(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(a.to_ipv6_mapped()),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn hash(k: u128) -> u64 {
    let x = (k as u64) ^ ((k >> 64) as u64).rotate_left(31);
    x.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (x >> 29)
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    Reachable {
        mac: [u8; 6],
        port: PortId,
    },
    /// Being resolved: a request went out and no answer came yet.
    Pending,
    Unknown,
}

/// The shared table. The writer methods take `&self` too (the atomics make that sound), but
/// the design has exactly one writer: the main lcore.
pub struct NeighborTable {
    slots: Box<[Slot]>,
    mask: usize,
    /// Bumped after every write, so that workers know when a path they cached from this
    /// table may be stale ([`crate::pipeline::PeerPath`]).
    epoch: AtomicU64,
}

impl NeighborTable {
    /// A table for at least `capacity` neighbours (rounded up to a power of two, doubled to
    /// keep probe chains short).
    pub fn new(capacity: usize) -> NeighborTable {
        let n = (capacity.max(16) * 2).next_power_of_two();
        let slots = (0..n)
            .map(|_| Slot::default())
            .collect::<Vec<_>>()
            .into_boxed_slice();
        NeighborTable {
            slots,
            mask: n - 1,
            epoch: AtomicU64::new(0),
        }
    }

    fn read(&self, s: &Slot) -> (u128, u64) {
        loop {
            let s1 = s.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let hi = s.key_hi.load(Ordering::Relaxed);
            let lo = s.key_lo.load(Ordering::Relaxed);
            let w = s.word.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if s.seq.load(Ordering::Relaxed) == s1 {
                return (((hi as u128) << 64) | lo as u128, w);
            }
        }
    }

    fn write(&self, s: &Slot, key: u128, word: u64) {
        let seq = s.seq.load(Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        s.key_hi.store((key >> 64) as u64, Ordering::Relaxed);
        s.key_lo.store(key as u64, Ordering::Relaxed);
        s.word.store(word, Ordering::Relaxed);
        s.seq.store(seq.wrapping_add(2), Ordering::Release);
        // After the slot: a reader that sees the new epoch (Acquire) sees the new binding.
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// Looks an address up (any lcore, never blocks).
    pub fn get(&self, ip: IpAddr) -> Lookup {
        let key = key_of(ip);
        let mut i = hash(key) as usize & self.mask;
        for _ in 0..=self.mask {
            let (k, w) = self.read(&self.slots[i]);
            if k == 0 {
                return Lookup::Unknown;
            }
            if k == key {
                return match w >> 56 {
                    STATE_VALID | STATE_STATIC => Lookup::Reachable {
                        mac: (w & 0xffff_ffff_ffff).to_be_bytes()[2..8]
                            .try_into()
                            .unwrap(),
                        port: ((w >> 48) & 0xff) as PortId,
                    },
                    STATE_PENDING => Lookup::Pending,
                    _ => Lookup::Unknown,
                };
            }
            i = (i + 1) & self.mask;
        }
        Lookup::Unknown
    }

    /// Finds the slot of `key`, or the slot to put it in. Writer only.
    fn slot_for(&self, key: u128) -> Option<usize> {
        let mut i = hash(key) as usize & self.mask;
        let mut free = None;
        for _ in 0..=self.mask {
            let s = &self.slots[i];
            let k = ((s.key_hi.load(Ordering::Relaxed) as u128) << 64)
                | s.key_lo.load(Ordering::Relaxed) as u128;
            if k == key {
                return Some(i);
            }
            let state = s.word.load(Ordering::Relaxed) >> 56;
            if k == 0 {
                return Some(free.unwrap_or(i));
            }
            if state != STATE_VALID
                && state != STATE_PENDING
                && state != STATE_STATIC
                && free.is_none()
            {
                free = Some(i);
            }
            i = (i + 1) & self.mask;
        }
        free
    }

    /// Records a binding learned from an ARP reply/request or an NA (main lcore only).
    /// Returns false when the table is full.
    pub fn learn(&self, ip: IpAddr, mac: [u8; 6], port: PortId, now: u64) -> bool {
        self.put(ip, mac, port, now, STATE_VALID)
    }

    /// Adds a configured entry, which never ages and which learning does not replace.
    pub fn add_static(&self, ip: IpAddr, mac: [u8; 6], port: PortId) -> bool {
        self.put(ip, mac, port, 0, STATE_STATIC)
    }

    fn put(&self, ip: IpAddr, mac: [u8; 6], port: PortId, now: u64, state: u64) -> bool {
        let key = key_of(ip);
        let Some(i) = self.slot_for(key) else {
            return false;
        };
        let s = &self.slots[i];
        if state != STATE_STATIC && s.word.load(Ordering::Relaxed) >> 56 == STATE_STATIC {
            // A configured entry wins over what the wire says.
            return true;
        }
        let mut m = [0u8; 8];
        m[2..].copy_from_slice(&mac);
        let word = u64::from_be_bytes(m) | ((port as u64 & 0xff) << 48) | (state << 56);
        self.write(s, key, word);
        s.stamp.store(now, Ordering::Relaxed);
        true
    }

    /// Marks an address as being resolved, unless it is already known or pending (main lcore
    /// only). Returns true when the caller should send a request now.
    pub fn start_resolving(&self, ip: IpAddr, now: u64) -> bool {
        let key = key_of(ip);
        let Some(i) = self.slot_for(key) else {
            return false;
        };
        let s = &self.slots[i];
        let k = ((s.key_hi.load(Ordering::Relaxed) as u128) << 64)
            | s.key_lo.load(Ordering::Relaxed) as u128;
        let state = s.word.load(Ordering::Relaxed) >> 56;
        if k == key
            && (state == STATE_VALID
                || state == STATE_STATIC
                || (state == STATE_PENDING && now < s.stamp.load(Ordering::Relaxed) + 1))
        {
            return false;
        }
        self.write(s, key, STATE_PENDING << 56);
        s.stamp.store(now, Ordering::Relaxed);
        true
    }

    /// Invalidates entries older than `timeout` seconds, and pending ones older than 3 s
    /// (main lcore only). Returns how many were removed.
    pub fn age(&self, now: u64, timeout: u64) -> usize {
        let mut n = 0;
        for s in self.slots.iter() {
            let w = s.word.load(Ordering::Relaxed);
            let state = w >> 56;
            let age = now.saturating_sub(s.stamp.load(Ordering::Relaxed));
            if (state == STATE_VALID && age >= timeout) || (state == STATE_PENDING && age >= 3) {
                let key = ((s.key_hi.load(Ordering::Relaxed) as u128) << 64)
                    | s.key_lo.load(Ordering::Relaxed) as u128;
                self.write(s, key, 0);
                n += 1;
            }
        }
        n
    }

    /// Valid entries, for show commands.
    pub fn entries(&self) -> Vec<(IpAddr, [u8; 6], PortId)> {
        let mut out = Vec::new();
        for s in self.slots.iter() {
            let (k, w) = self.read(s);
            if k != 0 && matches!(w >> 56, STATE_VALID | STATE_STATIC) {
                let v6 = std::net::Ipv6Addr::from(k);
                let ip = match v6.to_ipv4_mapped() {
                    Some(v4) => IpAddr::V4(v4),
                    None => IpAddr::V6(v6),
                };
                let mac = (w & 0xffff_ffff_ffff).to_be_bytes()[2..8]
                    .try_into()
                    .unwrap();
                out.push((ip, mac, ((w >> 48) & 0xff) as PortId));
            }
        }
        out
    }
}

impl Neighbours for NeighborTable {
    fn lookup(&self, port: PortId, ip: IpAddr) -> Option<[u8; 6]> {
        match self.get(ip) {
            Lookup::Reachable { mac, port: p } if p == port => Some(mac),
            _ => None,
        }
    }
    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};
    use std::sync::Arc;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn learn_lookup_age() {
        let t = NeighborTable::new(8);
        assert_eq!(t.get(ip("10.0.0.1")), Lookup::Unknown);
        assert!(t.start_resolving(ip("10.0.0.1"), 100));
        assert!(!t.start_resolving(ip("10.0.0.1"), 100));
        assert_eq!(t.get(ip("10.0.0.1")), Lookup::Pending);
        assert!(t.learn(ip("10.0.0.1"), [2, 0, 0, 0, 0, 1], 1, 100));
        assert!(t.learn(ip("2001:db8::1"), [2, 0, 0, 0, 0, 2], 0, 100));
        assert_eq!(t.lookup(1, ip("10.0.0.1")), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(t.lookup(0, ip("10.0.0.1")), None, "learned on another port");
        assert_eq!(t.lookup(0, ip("2001:db8::1")), Some([2, 0, 0, 0, 0, 2]));
        assert_eq!(t.age(200, 1000), 0);
        assert_eq!(t.age(1200, 1000), 2);
        assert_eq!(t.get(ip("10.0.0.1")), Lookup::Unknown);
        // the slot is reused
        assert!(t.learn(ip("10.0.0.9"), [2, 0, 0, 0, 0, 9], 1, 1300));
        assert_eq!(t.entries().len(), 1);
        // static entries never age and are not overwritten by learning
        assert!(t.add_static(ip("10.0.0.2"), [2, 0, 0, 0, 0, 0x22], 1));
        assert!(t.learn(ip("10.0.0.2"), [2, 0, 0, 0, 0, 0x33], 1, 1300));
        assert!(!t.start_resolving(ip("10.0.0.2"), 1300));
        assert_eq!(t.age(1_000_000, 10), 1);
        assert_eq!(t.lookup(1, ip("10.0.0.2")), Some([2, 0, 0, 0, 0, 0x22]));
    }

    #[test]
    fn fills_up_without_panicking() {
        let t = NeighborTable::new(16);
        let n = (0..1000u32)
            .filter(|i| {
                t.learn(
                    IpAddr::V4((0x0a00_0000 + i).into()),
                    [2, 0, 0, 0, 0, 1],
                    0,
                    0,
                )
            })
            .count();
        assert_eq!(n, 32);
        for i in 0..32u32 {
            assert!(matches!(
                t.get(IpAddr::V4((0x0a00_0000 + i).into())),
                Lookup::Reachable { .. }
            ));
        }
    }

    #[test]
    fn readers_never_see_torn_entries() {
        // The writer flips one entry between two MACs whose bytes all differ, and changes
        // the port with it; a torn read would mix them. It keeps writing until every reader
        // has read many times (on a loaded machine the readers may start late).
        let t = Arc::new(NeighborTable::new(16));
        let stop = Arc::new(AtomicBool::new(false));
        let a = ([0x11u8; 6], 1 as PortId);
        let b = ([0x22u8; 6], 2 as PortId);
        t.learn(ip("10.0.0.1"), a.0, a.1, 0);
        let counts: Arc<Vec<AtomicU64>> = Arc::new((0..2).map(|_| AtomicU64::new(0)).collect());
        let readers: Vec<_> = (0..2)
            .map(|r| {
                let (t, stop, counts) = (t.clone(), stop.clone(), counts.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match t.get(ip("10.0.0.1")) {
                            Lookup::Reachable { mac, port } => {
                                assert!(
                                    (mac, port) == a || (mac, port) == b,
                                    "torn: {mac:?} {port}"
                                );
                                counts[r].fetch_add(1, Ordering::Relaxed);
                            }
                            other => panic!("entry vanished: {other:?}"),
                        }
                    }
                })
            })
            .collect();
        let start = std::time::Instant::now();
        let mut i = 0u64;
        while counts.iter().any(|c| c.load(Ordering::Relaxed) < 100_000)
            && start.elapsed() < std::time::Duration::from_secs(20)
        {
            let (m, p) = if i.is_multiple_of(2) { b } else { a };
            t.learn(ip("10.0.0.1"), m, p, i);
            i += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().unwrap();
        }
        assert!(i > 1000, "the writer wrote {i} times");
        for c in counts.iter() {
            assert!(c.load(Ordering::Relaxed) > 0, "a reader never read");
        }
    }
}
