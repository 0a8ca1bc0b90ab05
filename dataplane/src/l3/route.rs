//! The routing table: longest prefix match over IPv4 and IPv6, built once from the
//! interfaces' connected networks and the static routes, then read-only (a new configuration
//! builds a new table).
//!
//! Lookup walks the prefix lengths present in the table from the longest down and probes a
//! hash map per length, so its cost grows with the number of distinct lengths (a handful on
//! a gateway), not with the number of routes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use crate::config::Config;
use crate::esp::Prefix;
use crate::pipeline::{NextHop, PortId, Routes};

/// A multiplicative hasher for integer keys (the default SipHash is slow and needs no DoS
/// resistance here: the keys come from the configuration).
#[derive(Default)]
pub struct IntHasher(u64);

impl Hasher for IntHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_u32(&mut self, v: u32) {
        self.0 = (v as u64 ^ self.0).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_u128(&mut self, v: u128) {
        self.0 = ((v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ self.0)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// Where a route sends packets: a port, and the gateway (None: the destination is on the
/// port's network).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    pub port: PortId,
    pub gateway: Option<IpAddr>,
}

/// Longest-prefix-match table.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    v4: Vec<(u8, IntMap<u32, RouteEntry>)>,
    v6: Vec<(u8, IntMap<u128, RouteEntry>)>,
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

impl RouteTable {
    /// Adds a route; a later route for the same prefix replaces the earlier one.
    pub fn insert(&mut self, prefix: Prefix, entry: RouteEntry) {
        match prefix.addr {
            IpAddr::V4(a) => {
                let key = u32::from(a) & mask4(prefix.len);
                let i = match self.v4.iter().position(|(l, _)| *l == prefix.len) {
                    Some(i) => i,
                    None => {
                        self.v4.push((prefix.len, IntMap::default()));
                        self.v4.sort_by_key(|e| std::cmp::Reverse(e.0));
                        self.v4.iter().position(|(l, _)| *l == prefix.len).unwrap()
                    }
                };
                self.v4[i].1.insert(key, entry);
            }
            IpAddr::V6(a) => {
                let key = u128::from(a) & mask6(prefix.len);
                let i = match self.v6.iter().position(|(l, _)| *l == prefix.len) {
                    Some(i) => i,
                    None => {
                        self.v6.push((prefix.len, IntMap::default()));
                        self.v6.sort_by_key(|e| std::cmp::Reverse(e.0));
                        self.v6.iter().position(|(l, _)| *l == prefix.len).unwrap()
                    }
                };
                self.v6[i].1.insert(key, entry);
            }
        }
    }

    /// The most specific route to `dst`.
    pub fn lookup_entry(&self, dst: IpAddr) -> Option<RouteEntry> {
        match dst {
            IpAddr::V4(a) => {
                let a = u32::from(a);
                self.v4
                    .iter()
                    .find_map(|(l, m)| m.get(&(a & mask4(*l))).copied())
            }
            IpAddr::V6(a) => {
                let a = u128::from(a);
                self.v6
                    .iter()
                    .find_map(|(l, m)| m.get(&(a & mask6(*l))).copied())
            }
        }
    }

    /// Connected networks of every interface (port = interface index), then the static
    /// routes of the configuration.
    pub fn from_config(cfg: &Config) -> RouteTable {
        let mut t = RouteTable::default();
        for (i, iface) in cfg.interfaces.iter().enumerate() {
            for a in &iface.addresses {
                t.insert(
                    *a,
                    RouteEntry {
                        port: i as PortId,
                        gateway: None,
                    },
                );
            }
        }
        for r in &cfg.routes {
            t.insert(
                r.prefix,
                RouteEntry {
                    port: r.interface as PortId,
                    gateway: r.next_hop,
                },
            );
        }
        t
    }
}

impl Routes for RouteTable {
    fn lookup(&self, dst: IpAddr) -> Option<NextHop> {
        self.lookup_entry(dst).map(|e| NextHop {
            port: e.port,
            via: e.gateway.unwrap_or(dst),
        })
    }
    /// The table is built at start-up and never changes while workers read it.
    fn epoch(&self) -> u64 {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::{RngCore, SeedableRng};

    fn naive(routes: &[(Prefix, RouteEntry)], dst: IpAddr) -> Option<RouteEntry> {
        let mut best: Option<(u8, RouteEntry)> = None;
        for (p, e) in routes {
            if p.contains(dst) && best.is_none_or(|(l, _)| p.len >= l) {
                best = Some((p.len, *e));
            }
        }
        best.map(|(_, e)| e)
    }

    #[test]
    fn matches_a_naive_lpm_on_random_tables() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for round in 0..20 {
            let mut t = RouteTable::default();
            let mut list: Vec<(Prefix, RouteEntry)> = Vec::new();
            for i in 0..200 {
                let v6 = round % 2 == 1;
                let len = (rng.next_u32() % if v6 { 129 } else { 33 }) as u8;
                // cluster addresses so that prefixes overlap
                let addr: IpAddr = if v6 {
                    let a = (0x2001_0db8u128 << 96) | ((rng.next_u32() as u128 & 0xff) << 88);
                    IpAddr::V6(a.into())
                } else {
                    IpAddr::V4((0x0a00_0000 | (rng.next_u32() & 0x00ff_0000)).into())
                };
                let p = Prefix { addr, len };
                let e = RouteEntry {
                    port: i,
                    gateway: None,
                };
                // keep "last insert wins" identical in both: drop earlier equal prefixes
                let key = |p: &Prefix| match p.addr {
                    IpAddr::V4(a) => (u32::from(a) & mask4(p.len)) as u128,
                    IpAddr::V6(a) => u128::from(a) & mask6(p.len),
                };
                list.retain(|(q, _)| !(q.len == p.len && key(q) == key(&p)));
                list.push((p, e));
                t.insert(p, e);
            }
            for _ in 0..500 {
                let dst: IpAddr = if round % 2 == 1 {
                    let a = (0x2001_0db8u128 << 96)
                        | ((rng.next_u32() as u128 & 0xff) << 88)
                        | rng.next_u64() as u128;
                    IpAddr::V6(a.into())
                } else {
                    IpAddr::V4((0x0a00_0000 | (rng.next_u32() & 0x00ff_ffff)).into())
                };
                assert_eq!(t.lookup_entry(dst), naive(&list, dst), "dst {dst}");
            }
        }
    }

    #[test]
    fn connected_and_static_routes_from_config() {
        let cfg =
            Config::parse("t.toml", include_str!("../../../examples/secgw-peer.toml")).unwrap();
        let t = RouteTable::from_config(&cfg);
        let h = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            t.lookup(h("10.10.1.7")),
            Some(NextHop {
                port: 0,
                via: h("10.10.1.7")
            })
        );
        assert_eq!(
            t.lookup(h("10.10.2.7")),
            Some(NextHop {
                port: 1,
                via: h("10.99.0.2")
            })
        );
        assert_eq!(t.lookup(h("8.8.8.8")), None);
    }
}
