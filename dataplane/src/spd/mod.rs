//! The Security Policy Database: the crypto-map ACLs of the outside interfaces, compiled into
//! an immutable list that answers "what happens to this packet": protect it with an SA,
//! let it pass in clear, or discard it.
//!
//! Order is IOS's: crypto-map entries by sequence number, then ACL entries in order; the
//! first match wins. A `deny` entry in a crypto ACL means "not protected by this map entry":
//! the packet goes on to the next entries and, if none protects it, passes in clear (Bypass).
//!
//! The SPD is built once and never changed; a new configuration builds a new one that the
//! runtime swaps in between bursts (DESIGN.md rule 5).
//!
//! Lookup is indexed ([`index`]): every rule is filed under the longer of its two prefixes
//! (destination, or source when that one is longer), in a hash table of exact prefixes per
//! prefix length, so a packet probes one bucket per length in use and looks only at the rules
//! that can match it, in rule order; the lowest matching rule number is the first match. A
//! rule whose two prefixes are both /0 lands in the one /0 bucket, which is then scanned
//! like the old linear list. Building the index for 10,000 rules takes a few milliseconds
//! (control reinstalls the whole SPD when a hub gains a spoke). [`Spd::outbound_linear`] is
//! the linear reference the index is tested against.

mod index;

use std::net::IpAddr;

use crate::esp::Selector;
use index::{PrefixIndex, Word};

/// What the SPD says about a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpdAction {
    /// Protect with the outbound SA of this crypto-map entry (dense SA id).
    Protect(u32),
    /// Forward in clear.
    Bypass,
    /// Drop.
    Discard,
}

/// One compiled ACL entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpdRule {
    /// Written from the outbound point of view: source is our side.
    pub selector: Selector,
    /// `Some(sa_id)` for a permit entry, `None` for a deny entry.
    pub protect: Option<u32>,
    /// The crypto-map entry this rule belongs to: a deny ends the search in its own entry.
    /// The rules of one entry are consecutive (one ACL, in order), as the config compiler
    /// and control produce them.
    pub entry: u32,
}

/// A rule as the lookup checks it: prefixes and port ranges over address words, so that a
/// check is a few integer compares. Half a cache line for IPv4 (a line for IPv6), aligned
/// so that a rule never straddles two: the prefixes are kept with their lengths (as the
/// shift of their masks) instead of their masks, and where the search goes on after a
/// matching deny is kept apart ([`FamilyRules::entry_end`]).
#[derive(Clone, Copy, Debug)]
#[repr(C, align(32))]
struct Compiled<W> {
    src: W,
    dst: W,
    sports: (u16, u16),
    dports: (u16, u16),
    /// Permit: the SA id; deny: None.
    protect: Option<u32>,
    protocol: u8,
    /// `W::BITS` minus the prefix length.
    src_shift: u8,
    dst_shift: u8,
}

const _: () = assert!(std::mem::size_of::<Compiled<u32>>() == 32);
const _: () = assert!(std::mem::size_of::<Compiled<u128>>() == 64);

impl<W: Word> Compiled<W> {
    #[inline(always)]
    fn matches(&self, src: W, dst: W, protocol: u8, sport: u16, dport: u16) -> bool {
        src & W::mask_shifted(self.src_shift) == self.src
            && dst & W::mask_shifted(self.dst_shift) == self.dst
            && (self.protocol == 0 || self.protocol == protocol)
            && sport >= self.sports.0
            && sport <= self.sports.1
            && dport >= self.dports.0
            && dport <= self.dports.1
    }
}

fn word(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The rules of one address family, with their index.
#[derive(Clone, Debug, Default)]
struct FamilyRules<W> {
    /// In match order (the linear reference walks these).
    rules: Vec<SpdRule>,
    compiled: Vec<Compiled<W>>,
    /// For each rule, the first rule number after its crypto-map entry: where the search
    /// goes on when the rule is a matching deny.
    entry_end: Vec<u32>,
    /// Rules filed under their destination prefix.
    by_destination: PrefixIndex<W>,
    /// Rules whose source prefix is the longer one, filed under it.
    by_source: PrefixIndex<W>,
    /// Few rules, all of one family: outbound lookups walk `compiled` in order instead of
    /// probing the index (a hash probe per prefix length cost more than a handful of masked
    /// compares: encap of 64-byte packets through a one-rule SPD was ~15 % slower indexed).
    walk: bool,
}

/// Up to this many rules an outbound lookup walks them (see [`FamilyRules::walk`]).
const WALK_UP_TO: usize = 8;

impl<W: Word> FamilyRules<W> {
    fn build(rules: Vec<SpdRule>) -> FamilyRules<W> {
        let n = rules.len();
        let mut compiled = Vec::with_capacity(n);
        // The end of each entry's run of rules, filled from the back.
        let mut entry_end = vec![n as u32; n];
        for i in (0..n.saturating_sub(1)).rev() {
            entry_end[i] = if rules[i].entry == rules[i + 1].entry {
                entry_end[i + 1]
            } else {
                i as u32 + 1
            };
        }
        for r in &rules {
            let s = &r.selector;
            let (sl, dl) = (s.source.len.min(W::BITS), s.destination.len.min(W::BITS));
            compiled.push(Compiled {
                src: W::from_word(word(s.source.addr)) & W::mask(sl),
                dst: W::from_word(word(s.destination.addr)) & W::mask(dl),
                sports: s.source_ports,
                dports: s.destination_ports,
                protect: r.protect,
                protocol: s.protocol,
                src_shift: W::BITS - sl,
                dst_shift: W::BITS - dl,
            });
        }
        // A rule whose prefixes are of different families matches nothing (as in
        // `Selector::matches`): it is left out of the index, so it is never a candidate.
        let indexed = |r: &&SpdRule| {
            r.selector.source.addr.is_ipv6() == r.selector.destination.addr.is_ipv6()
        };
        let by_src = |r: &&SpdRule| r.selector.source.len > r.selector.destination.len;
        let by_destination = PrefixIndex::build(
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| indexed(r) && !by_src(r))
                .map(|(i, r)| {
                    let d = &r.selector.destination;
                    (i as u32, W::from_word(word(d.addr)), d.len)
                }),
        );
        let by_source = PrefixIndex::build(
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| indexed(r) && by_src(r))
                .map(|(i, r)| {
                    let s = &r.selector.source;
                    (i as u32, W::from_word(word(s.addr)), s.len)
                }),
        );
        let walk = rules.len() <= WALK_UP_TO && rules.iter().all(|r| indexed(&r));
        FamilyRules {
            rules,
            compiled,
            entry_end,
            by_destination,
            by_source,
            walk,
        }
    }

    /// Bytes held by the rules, their compiled form and the index.
    fn heap_bytes(&self) -> usize {
        self.rules.capacity() * std::mem::size_of::<SpdRule>()
            + self.compiled.capacity() * std::mem::size_of::<Compiled<W>>()
            + self.entry_end.capacity() * 4
            + self.by_destination.heap_bytes()
            + self.by_source.heap_bytes()
    }

    /// The lowest rule number from `from` on that matches and that `accept` takes; `NONE`
    /// if there is none.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn first(
        &self,
        from: u32,
        src: W,
        dst: W,
        protocol: u8,
        sport: u16,
        dport: u16,
        permit_only: bool,
    ) -> u32 {
        let c = &self.compiled;
        // By value: captured by reference, every compare reloaded its operand.
        let accept = move |r: u32| {
            // Rule numbers in the index are < c.len() by construction.
            let rule = &c[r as usize];
            (!permit_only || rule.protect.is_some())
                && rule.matches(src, dst, protocol, sport, dport)
        };
        let best = self.by_destination.first(dst, from, NONE, accept);
        if self.by_source.is_empty() {
            best
        } else {
            self.by_source.first(src, from, best, accept)
        }
    }

    /// Starts loading what [`FamilyRules::outbound`] of these addresses will read first.
    #[inline]
    fn prefetch_outbound(&self, src: W, dst: W) {
        // A walk reads `compiled`, a few lines that stay hot.
        if !self.walk {
            self.by_destination.prefetch(dst);
            if !self.by_source.is_empty() {
                self.by_source.prefetch(src);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn outbound(&self, src: W, dst: W, protocol: u8, sport: u16, dport: u16) -> SpdAction {
        if self.walk {
            // a few rules: in order, as the ACLs read
            let mut i = 0;
            while let Some(rule) = self.compiled.get(i) {
                if rule.matches(src, dst, protocol, sport, dport) {
                    match rule.protect {
                        Some(sa) => return SpdAction::Protect(sa),
                        None => {
                            i = self.entry_end[i] as usize;
                            continue;
                        }
                    }
                }
                i += 1;
            }
            return SpdAction::Bypass;
        }
        let mut from = 0;
        loop {
            let r = self.first(from, src, dst, protocol, sport, dport, false);
            let Some(rule) = self.compiled.get(r as usize) else {
                return SpdAction::Bypass;
            };
            match rule.protect {
                Some(sa) => return SpdAction::Protect(sa),
                // A deny ends the search in its own ACL only; IOS then tries the next map
                // entry, whose rules follow in the list.
                None => from = self.entry_end[r as usize],
            }
        }
    }
}

/// No rule.
const NONE: u32 = u32::MAX;

/// The compiled policy.
#[derive(Clone, Debug, Default)]
pub struct Spd {
    v4: FamilyRules<u32>,
    v6: FamilyRules<u128>,
}

impl Spd {
    /// Builds the SPD from rules in match order.
    pub fn new(rules: impl IntoIterator<Item = SpdRule>) -> Spd {
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for r in rules {
            match r.selector.source.addr {
                IpAddr::V4(_) => v4.push(r),
                IpAddr::V6(_) => v6.push(r),
            }
        }
        Spd {
            v4: FamilyRules::build(v4),
            v6: FamilyRules::build(v6),
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.v4.rules.len() + self.v6.rules.len()
    }

    /// True when there are no rules (everything bypasses).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held by the compiled rules and their index (the `Spd` itself aside).
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes() + self.v6.heap_bytes()
    }

    /// The rules of one family, in match order.
    fn rules(&self, v6: bool) -> &[SpdRule] {
        if v6 {
            &self.v6.rules
        } else {
            &self.v4.rules
        }
    }

    /// The action for a plaintext packet leaving through the protected interface.
    pub fn outbound(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        if src.is_ipv6() != dst.is_ipv6() {
            return SpdAction::Bypass;
        }
        self.outbound_words(src.is_ipv6(), word(src), word(dst), proto, sport, dport)
    }

    /// [`Spd::outbound`] on address words as the classifier holds them (IPv4 in the low 32
    /// bits): no `IpAddr` is built per packet.
    #[inline]
    pub fn outbound_words(
        &self,
        v6: bool,
        src: u128,
        dst: u128,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        if v6 {
            self.v6.outbound(src, dst, proto, sport, dport)
        } else {
            self.v4
                .outbound(src as u32, dst as u32, proto, sport, dport)
        }
    }

    /// Starts loading the index buckets that [`Spd::outbound_words`] of these addresses
    /// will probe, so that a burst's lookups overlap their cache misses: issued for every
    /// frame of a burst before the first lookup.
    #[inline]
    pub fn prefetch_outbound_words(&self, v6: bool, src: u128, dst: u128) {
        if v6 {
            self.v6.prefetch_outbound(src, dst)
        } else {
            self.v4.prefetch_outbound(src as u32, dst as u32)
        }
    }

    /// The meaning of [`Spd::outbound`], computed by visiting every rule in order: the
    /// reference the index is tested against, and the baseline of the scale benchmark.
    pub fn outbound_linear(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        let mut denied_entry = None;
        for r in self.rules(src.is_ipv6()) {
            if denied_entry == Some(r.entry) || !r.selector.matches(src, dst, proto, sport, dport) {
                continue;
            }
            match r.protect {
                Some(sa) => return SpdAction::Protect(sa),
                None => denied_entry = Some(r.entry),
            }
        }
        SpdAction::Bypass
    }

    /// The action for a plaintext packet arriving on the protected interface: traffic that a
    /// map entry protects must arrive as ESP, so the mirror image of a permit entry is
    /// discarded; everything else passes.
    pub fn inbound_plaintext(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        if src.is_ipv6() != dst.is_ipv6() {
            return SpdAction::Bypass;
        }
        self.inbound_plaintext_words(src.is_ipv6(), word(src), word(dst), proto, sport, dport)
    }

    /// [`Spd::inbound_plaintext`] on address words.
    #[inline]
    pub fn inbound_plaintext_words(
        &self,
        v6: bool,
        src: u128,
        dst: u128,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        // The mirror of a rule matches the packet exactly when the rule matches the packet
        // with source and destination swapped.
        let first = if v6 {
            self.v6.first(0, dst, src, proto, dport, sport, true)
        } else {
            self.v4
                .first(0, dst as u32, src as u32, proto, dport, sport, true)
        };
        if first == NONE {
            SpdAction::Bypass
        } else {
            SpdAction::Discard
        }
    }

    /// [`Spd::inbound_plaintext`] by visiting every rule (reference for the tests).
    pub fn inbound_plaintext_linear(
        &self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        sport: u16,
        dport: u16,
    ) -> SpdAction {
        for r in self.rules(src.is_ipv6()) {
            if r.protect.is_some() && r.selector.mirror().matches(src, dst, proto, sport, dport) {
                return SpdAction::Discard;
            }
        }
        SpdAction::Bypass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::esp::Prefix;

    fn sel(src: &str, dst: &str, proto: u8) -> Selector {
        let p = |s: &str| {
            let (a, l) = s.split_once('/').unwrap();
            Prefix {
                addr: a.parse().unwrap(),
                len: l.parse().unwrap(),
            }
        };
        Selector {
            source: p(src),
            destination: p(dst),
            protocol: proto,
            source_ports: (0, 65535),
            destination_ports: (0, 65535),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_match_in_order_and_deny_falls_through() {
        let spd = Spd::new([
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.5/32", 6),
                protect: None,
                entry: 0,
            },
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.0/16", 0),
                protect: Some(1),
                entry: 1,
            },
            SpdRule {
                selector: sel("10.1.0.0/16", "10.0.0.0/8", 0),
                protect: Some(2),
                entry: 2,
            },
            SpdRule {
                selector: sel("2001:db8:1::/48", "2001:db8:2::/48", 0),
                protect: Some(3),
                entry: 3,
            },
        ]);
        assert_eq!(
            spd.outbound(ip("10.1.1.1"), ip("10.2.9.9"), 17, 1, 2),
            SpdAction::Protect(1)
        );
        assert_eq!(
            spd.outbound(ip("10.1.1.1"), ip("10.3.9.9"), 17, 1, 2),
            SpdAction::Protect(2)
        );
        // denied in the first entry, protected by the next one that matches
        assert_eq!(
            spd.outbound(ip("10.1.1.1"), ip("10.2.0.5"), 6, 1, 2),
            SpdAction::Protect(1)
        );
        assert_eq!(
            spd.outbound(ip("10.9.1.1"), ip("10.2.0.5"), 6, 1, 2),
            SpdAction::Bypass
        );
        // a deny stops later permits of the same entry (rule 2 is entry 0 too)
        let same = Spd::new([
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.5/32", 0),
                protect: None,
                entry: 0,
            },
            SpdRule {
                selector: sel("10.1.0.0/16", "10.2.0.0/16", 0),
                protect: Some(1),
                entry: 0,
            },
        ]);
        assert_eq!(
            same.outbound(ip("10.1.1.1"), ip("10.2.0.5"), 6, 1, 2),
            SpdAction::Bypass
        );
        assert_eq!(
            same.outbound(ip("10.1.1.1"), ip("10.2.0.6"), 6, 1, 2),
            SpdAction::Protect(1)
        );
        assert_eq!(
            spd.outbound(ip("2001:db8:1::1"), ip("2001:db8:2::1"), 58, 0, 0),
            SpdAction::Protect(3)
        );
        assert_eq!(
            spd.inbound_plaintext(ip("10.2.9.9"), ip("10.1.1.1"), 17, 2, 1),
            SpdAction::Discard
        );
        assert_eq!(
            spd.inbound_plaintext(ip("192.168.9.9"), ip("10.1.1.1"), 17, 2, 1),
            SpdAction::Bypass
        );
    }

    /// Random rule sets and packets over a small address pool, so that prefixes nest and
    /// overlap, deny lines shadow permits, and port/protocol ranges decide: the indexed
    /// lookup must give the linear reference's answer for every packet.
    mod randomized {
        use super::*;
        use rand_chacha::rand_core::{RngCore, SeedableRng};
        use rand_chacha::ChaCha8Rng;
        use std::net::{Ipv4Addr, Ipv6Addr};

        struct Gen {
            rng: ChaCha8Rng,
            v6: bool,
        }

        impl Gen {
            fn below(&mut self, n: u32) -> u32 {
                self.rng.next_u32() % n
            }
            fn pick<T: Copy>(&mut self, from: &[T]) -> T {
                from[self.below(from.len() as u32) as usize]
            }
            /// An address of the pool: few distinct high parts, so prefixes collide.
            fn address(&mut self) -> IpAddr {
                let (a, b, c) = (self.below(3), self.below(4), self.below(8));
                if self.v6 {
                    IpAddr::V6(Ipv6Addr::new(
                        0x2001, 0xdb8, a as u16, b as u16, 0, 0, 0, c as u16,
                    ))
                } else {
                    IpAddr::V4(Ipv4Addr::new(10, a as u8, b as u8, c as u8))
                }
            }
            fn prefix(&mut self) -> Prefix {
                let lens: &[u8] = if self.v6 {
                    &[0, 32, 40, 48, 64, 100, 125, 128]
                } else {
                    &[0, 8, 14, 16, 24, 29, 30, 32]
                };
                Prefix {
                    addr: self.address(),
                    len: self.pick(lens),
                }
            }
            fn ports(&mut self) -> (u16, u16) {
                match self.below(4) {
                    0 | 1 => (0, 65535),
                    2 => {
                        let p = self.pick(&[53, 80, 443]);
                        (p, p)
                    }
                    _ => (1000, 2000),
                }
            }
            fn rules(&mut self, n: usize) -> Vec<SpdRule> {
                let mut rules = Vec::with_capacity(n);
                let mut entry = 0;
                while rules.len() < n {
                    // One crypto-map entry: its ACL lines, consecutive.
                    for _ in 0..1 + self.below(4) {
                        let selector = Selector {
                            source: self.prefix(),
                            destination: self.prefix(),
                            protocol: self.pick(&[0, 0, 6, 17]),
                            source_ports: self.ports(),
                            destination_ports: self.ports(),
                        };
                        let deny = self.below(10) < 3;
                        rules.push(SpdRule {
                            selector,
                            protect: (!deny).then_some(entry),
                            entry,
                        });
                    }
                    entry += 1;
                }
                rules
            }
            fn packet(&mut self) -> (IpAddr, IpAddr, u8, u16, u16) {
                let ports = [7, 53, 80, 443, 1000, 1500, 2000, 2001];
                (
                    self.address(),
                    self.address(),
                    self.pick(&[1, 6, 17]),
                    self.pick(&ports),
                    self.pick(&ports),
                )
            }
        }

        fn compare(seed: u64, v6: bool, rules: usize, packets: usize) -> [usize; 3] {
            let mut g = Gen {
                rng: ChaCha8Rng::seed_from_u64(seed),
                v6,
            };
            let spd = Spd::new(g.rules(rules));
            // outcomes seen: protected, bypassed, discarded inbound
            let mut seen = [0; 3];
            for _ in 0..packets {
                let (s, d, p, sp, dp) = g.packet();
                let want = spd.outbound_linear(s, d, p, sp, dp);
                assert_eq!(
                    spd.outbound(s, d, p, sp, dp),
                    want,
                    "seed {seed}, {rules} rules: outbound {s} -> {d} proto {p} {sp} -> {dp}"
                );
                let want_in = spd.inbound_plaintext_linear(s, d, p, sp, dp);
                assert_eq!(
                    spd.inbound_plaintext(s, d, p, sp, dp),
                    want_in,
                    "seed {seed}, {rules} rules: inbound {s} -> {d} proto {p} {sp} -> {dp}"
                );
                match want {
                    SpdAction::Protect(_) => seen[0] += 1,
                    _ => seen[1] += 1,
                }
                if want_in == SpdAction::Discard {
                    seen[2] += 1;
                }
            }
            seen
        }

        #[test]
        fn indexed_lookup_equals_the_linear_reference() {
            let mut total = [0; 3];
            for seed in 0..40u64 {
                for v6 in [false, true] {
                    for rules in [1, 3, 8, 9, 20, 200] {
                        let seen = compare(seed, v6, rules, 400);
                        for (t, s) in total.iter_mut().zip(seen) {
                            *t += s;
                        }
                    }
                }
            }
            // The sets must exercise every outcome, or the comparison proves little.
            assert!(total.iter().all(|&n| n > 1000), "{total:?}");
        }

        #[test]
        fn deny_lines_decide_some_packets() {
            // Packets whose first matching rule is a deny: the index must skip the rest of
            // that entry only. Count them, so that the property test above covers them.
            let mut g = Gen {
                rng: ChaCha8Rng::seed_from_u64(7),
                v6: false,
            };
            let rules = g.rules(200);
            let spd = Spd::new(rules.clone());
            let mut denied_first = 0;
            for _ in 0..2000 {
                let (s, d, p, sp, dp) = g.packet();
                let first = rules.iter().find(|r| r.selector.matches(s, d, p, sp, dp));
                if first.is_some_and(|r| r.protect.is_none()) {
                    denied_first += 1;
                    assert_eq!(
                        spd.outbound(s, d, p, sp, dp),
                        spd.outbound_linear(s, d, p, sp, dp)
                    );
                }
            }
            assert!(denied_first > 50, "{denied_first}");
        }

        #[test]
        fn ten_thousand_hub_rules_and_both_families() {
            // A hub: one rule per spoke LAN (/24 and /64), a deny for one host, a catch-all
            // permit at the end; IPv4 and IPv6 rules in one SPD.
            let mut rules = vec![SpdRule {
                selector: sel("10.0.0.0/8", "172.16.7.9/32", 0),
                protect: None,
                entry: 0,
            }];
            for i in 0..10_000u32 {
                let dst = format!("172.{}.{}.0/24", 16 + i / 256, i % 256);
                let dst6 = format!("2001:db8:{:x}::/64", i);
                rules.push(SpdRule {
                    selector: sel("10.0.0.0/8", &dst, 0),
                    protect: Some(i + 1),
                    entry: i + 1,
                });
                rules.push(SpdRule {
                    selector: sel("2001:db8:ffff::/48", &dst6, 0),
                    protect: Some(i + 1),
                    entry: i + 1,
                });
            }
            rules.push(SpdRule {
                selector: sel("0.0.0.0/0", "0.0.0.0/0", 0),
                protect: Some(99_999),
                entry: 99_999,
            });
            let spd = Spd::new(rules);
            assert_eq!(spd.len(), 20_002);
            let p = |s: &str, d: &str| spd.outbound(ip(s), ip(d), 17, 1, 2);
            assert_eq!(p("10.1.1.1", "172.16.0.5"), SpdAction::Protect(1));
            assert_eq!(p("10.1.1.1", "172.55.15.5"), SpdAction::Protect(9_999 + 1));
            // denied in entry 0, then the spoke's own entry protects it
            assert_eq!(p("10.1.1.1", "172.16.7.9"), SpdAction::Protect(8));
            assert_eq!(p("192.0.2.1", "172.16.7.9"), SpdAction::Protect(99_999));
            assert_eq!(
                p("2001:db8:ffff::1", "2001:db8:2a::1"),
                SpdAction::Protect(0x2a + 1)
            );
            assert_eq!(p("2001:db8:fffe::1", "2001:db8:2a::1"), SpdAction::Bypass);
            assert_eq!(
                spd.inbound_plaintext(ip("172.16.9.1"), ip("10.9.9.9"), 6, 80, 1000),
                SpdAction::Discard
            );
        }
    }
}
