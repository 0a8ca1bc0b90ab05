//! Rules indexed by one of their prefixes: for each prefix length in use, the rules whose
//! indexed prefix is exactly `address/length`, in rule order.
//!
//! A packet can only match a rule whose indexed prefix contains the packet's address, and for
//! each length there is exactly one such prefix: the address masked to that length. So a
//! lookup probes one bucket per length in use (a headend has a handful: /24 LANs, /32 hosts,
//! the odd /16) instead of visiting every rule. Buckets live in one open-addressing table
//! keyed by (masked address, length) and point into one flat array of rule numbers, so the
//! structure is a few contiguous arrays, built once (DESIGN.md rule 5) and never changed.

use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;
use std::ops::BitAnd;

/// An address as the SPD holds it: IPv4 in a `u32`, IPv6 in a `u128`. IPv4 rules and their
/// index are kept in 32-bit words so that a rule is half a cache line and a bucket a quarter
/// (a u128 rule was a line and a half): with a thousand tunnels each lookup misses on both.
pub(super) trait Word: Copy + Eq + Hash + Debug + Default + BitAnd<Output = Self> {
    /// Width in bits.
    const BITS: u8;
    /// Mask of the `BITS - shift` leading bits (`shift` in `0..=BITS`; `BITS` gives 0).
    fn mask_shifted(shift: u8) -> Self;
    /// The low bits of an address word as the classifier holds it (IPv4 in the low 32).
    fn from_word(w: u128) -> Self;
    /// 64 bits of the word for the bucket hash.
    fn fold(self) -> u64;
    /// Mask of the `len` leading bits.
    #[inline]
    fn mask(len: u8) -> Self {
        Self::mask_shifted(Self::BITS - len.min(Self::BITS))
    }
}

impl Word for u32 {
    const BITS: u8 = 32;
    #[inline(always)]
    fn mask_shifted(shift: u8) -> u32 {
        // A 64-bit shift by up to 32 never overflows; the low half is the mask.
        ((u32::MAX as u64) << shift) as u32
    }
    #[inline(always)]
    fn from_word(w: u128) -> u32 {
        w as u32
    }
    #[inline(always)]
    fn fold(self) -> u64 {
        self as u64
    }
}

impl Word for u128 {
    const BITS: u8 = 128;
    #[inline(always)]
    fn mask_shifted(shift: u8) -> u128 {
        u128::MAX.checked_shl(shift as u32).unwrap_or(0)
    }
    #[inline(always)]
    fn from_word(w: u128) -> u128 {
        w
    }
    #[inline(always)]
    fn fold(self) -> u64 {
        // IPv6 prefixes live mostly in the high word.
        (self as u64) ^ ((self >> 64) as u64).rotate_left(29)
    }
}

/// Bits of [`Bucket::count_len`] that hold the rule count; the prefix length is above them.
const COUNT_BITS: u32 = 24;

/// At most this many prefix lengths get their bucket prefetched: a headend has a handful,
/// and a prefetch per length beyond that would cost more than it hides.
const PREFETCH_LENGTHS: usize = 4;

/// One bucket of the hash table: an exact prefix and where its rules sit in `rules`
/// (16 bytes for IPv4: four to a cache line).
#[derive(Clone, Copy, Debug, Default)]
struct Bucket<W> {
    prefix: W,
    /// `rules[start]`, kept here so that the common bucket, one rule, costs no load from
    /// `rules`: with thousands of tunnels each is a cache miss.
    first: u32,
    start: u32,
    /// The rule count (low [`COUNT_BITS`] bits; 0 for an empty slot) and the prefix length.
    count_len: u32,
}

impl<W: Word> Bucket<W> {
    #[inline(always)]
    fn count(&self) -> u32 {
        self.count_len & ((1 << COUNT_BITS) - 1)
    }

    /// True when this is the (non-empty) bucket of `prefix/len`.
    #[inline(always)]
    fn holds(&self, prefix: W, len: u8) -> bool {
        self.count() != 0
            && self.prefix == prefix
            && self.count_len & !((1 << COUNT_BITS) - 1) == (len as u32) << COUNT_BITS
    }
}

/// One prefix length in use.
#[derive(Clone, Copy, Debug, Default)]
struct Length<W> {
    len: u8,
    mask: W,
    /// The only prefix of this length, with its slot in the table, when there is just one.
    /// Its bucket is then found by one compare instead of a hash probe: a deny line for a
    /// host in front of a thousand /24 permits would otherwise cost every packet a probe
    /// that lands on an unrelated bucket or an empty slot, a branch that cannot be predicted.
    sole: Option<(W, u32)>,
}

/// Rules by one exact prefix (source or destination, chosen per rule by the SPD).
#[derive(Clone, Debug, Default)]
pub(super) struct PrefixIndex<W> {
    /// The prefix lengths in use, longest first.
    lengths: Vec<Length<W>>,
    /// Open addressing, linear probing, a power of two at most half full.
    table: Vec<Bucket<W>>,
    /// Rule numbers, bucket after bucket, ascending within a bucket.
    rules: Vec<u32>,
}

#[inline]
fn slot<W: Word>(prefix: W, len: u8, table_mask: usize) -> usize {
    // A multiplicative (Fibonacci) hash.
    let folded = prefix.fold() ^ ((len as u64) << 57);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & table_mask
}

impl<W: Word> PrefixIndex<W> {
    /// Builds the index from (rule number, prefix, length), rule numbers ascending. Prefix
    /// bits beyond the length are ignored.
    pub(super) fn build(entries: impl IntoIterator<Item = (u32, W, u8)>) -> Self {
        let mut by_prefix: HashMap<(W, u8), Vec<u32>> = HashMap::new();
        for (rule, prefix, len) in entries {
            let len = len.min(W::BITS);
            by_prefix
                .entry((prefix & W::mask(len), len))
                .or_default()
                .push(rule);
        }
        let mut prefixes_of_length: HashMap<u8, Vec<W>> = HashMap::new();
        for &(prefix, len) in by_prefix.keys() {
            prefixes_of_length.entry(len).or_default().push(prefix);
        }
        let size = (by_prefix.len() * 2).next_power_of_two().max(2);
        let mut table = vec![Bucket::default(); size];
        let mut rules = Vec::with_capacity(by_prefix.values().map(Vec::len).sum());
        // Buckets in the order of their first rule, so that the flat array follows rule
        // order as far as possible (the common case: one rule per bucket).
        let mut buckets: Vec<((W, u8), Vec<u32>)> = by_prefix.into_iter().collect();
        buckets.sort_unstable_by_key(|(_, r)| r[0]);
        for ((prefix, len), list) in buckets {
            let mut i = slot(prefix, len, size - 1);
            while table[i].count() != 0 {
                i = (i + 1) & (size - 1);
            }
            // An SPD holds at most one rule per ACL line of the configuration: far fewer
            // than 2^24 in one bucket.
            assert!(
                list.len() < 1 << COUNT_BITS,
                "SPD bucket of {} rules",
                list.len()
            );
            table[i] = Bucket {
                prefix,
                first: list[0],
                start: rules.len() as u32,
                count_len: list.len() as u32 | (len as u32) << COUNT_BITS,
            };
            rules.extend(list);
        }
        let mut lengths: Vec<Length<W>> = prefixes_of_length
            .into_iter()
            .map(|(len, prefixes)| Length {
                len,
                mask: W::mask(len),
                sole: match prefixes[..] {
                    [prefix] => {
                        let mut i = slot(prefix, len, size - 1);
                        while !table[i].holds(prefix, len) {
                            i = (i + 1) & (size - 1);
                        }
                        Some((prefix, i as u32))
                    }
                    _ => None,
                },
            })
            .collect();
        lengths.sort_unstable_by_key(|l| std::cmp::Reverse(l.len));
        PrefixIndex {
            lengths,
            table,
            rules,
        }
    }

    /// True when no rule is indexed here.
    #[inline]
    pub(super) fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule numbers of the bucket `address/len`, ascending (empty if none).
    #[inline(always)]
    fn bucket(&self, prefix: W, len: u8) -> &[u32] {
        let m = self.table.len() - 1;
        let mut i = slot(prefix, len, m);
        let want = (len as u32) << COUNT_BITS;
        loop {
            let b = &self.table[i];
            if b.count() == 0 {
                return &[];
            }
            if b.prefix == prefix && b.count_len & !((1 << COUNT_BITS) - 1) == want {
                return self.rules_of(b);
            }
            i = (i + 1) & m;
        }
    }

    /// The rule numbers of a non-empty bucket.
    #[inline(always)]
    fn rules_of<'a>(&'a self, b: &'a Bucket<W>) -> &'a [u32] {
        let count = b.count();
        if count == 1 {
            return std::slice::from_ref(&b.first);
        }
        &self.rules[b.start as usize..(b.start + count) as usize]
    }

    /// The rule numbers filed under the prefix of length `l` that contains `address`.
    #[inline(always)]
    fn rules_containing(&self, address: W, l: &Length<W>) -> &[u32] {
        let prefix = address & l.mask;
        match l.sole {
            // `sole` slots are valid indices by construction.
            Some((sole, i)) if sole == prefix => self.rules_of(&self.table[i as usize]),
            Some(_) => &[],
            None => self.bucket(prefix, l.len),
        }
    }

    /// Starts loading the buckets a lookup of `address` will probe first, one per prefix
    /// length (the first [`PREFETCH_LENGTHS`] lengths): with a thousand tunnels the table is
    /// out of L1, and a probe that waits for its bucket cost as much as the rest of the
    /// lookup (issue 5; benches/NOTES.md, session 10).
    #[inline]
    pub(super) fn prefetch(&self, address: W) {
        // A built index has at least two slots; only the empty default one has none, and it
        // has no lengths either, so the loop below never uses the wrapped mask.
        let m = self.table.len().wrapping_sub(1);
        // A `sole` length's bucket is the same for every packet, hence hot.
        for l in self
            .lengths
            .iter()
            .filter(|l| l.sole.is_none())
            .take(PREFETCH_LENGTHS)
        {
            // a length exists only in a built index: `m` is a valid index mask here
            let bucket = &self.table[slot(address & l.mask, l.len, m)];
            crate::cache::line(bucket as *const Bucket<W> as *const u8);
        }
    }

    /// The lowest rule number in `from..best` whose bucket contains `address` and for which
    /// `accept` holds, or `best` if there is none.
    #[inline(always)]
    pub(super) fn first(
        &self,
        address: W,
        from: u32,
        mut best: u32,
        accept: impl Fn(u32) -> bool,
    ) -> u32 {
        for l in &self.lengths {
            let rules = self.rules_containing(address, l);
            let start = if from == 0 {
                0
            } else {
                rules.partition_point(|&r| r < from)
            };
            for &r in &rules[start..] {
                if r >= best {
                    break;
                }
                if accept(r) {
                    best = r;
                    break;
                }
            }
        }
        best
    }

    /// Bytes held (for the memory report).
    pub(super) fn heap_bytes(&self) -> usize {
        self.lengths.capacity() * std::mem::size_of::<Length<W>>()
            + self.table.capacity() * std::mem::size_of::<Bucket<W>>()
            + self.rules.capacity() * 4
    }
}

const _: () = assert!(std::mem::size_of::<Bucket<u32>>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: [u8; 4]) -> u32 {
        u32::from_be_bytes(a)
    }

    #[test]
    fn a_length_with_one_prefix_is_found_by_compare() {
        // rule 0: the deny host 172.31.255.1/32; rules 1..=300: a /24 per spoke
        let mut entries = vec![(0, v4([172, 31, 255, 1]), 32)];
        entries.extend((1..=300u32).map(|i| (i, v4([172, 16, 0, 0]) + (i << 8), 24)));
        let index = PrefixIndex::build(entries);
        let sole: Vec<(u8, bool)> = index
            .lengths
            .iter()
            .map(|l| (l.len, l.sole.is_some()))
            .collect();
        assert_eq!(sole, [(32, true), (24, false)]);
        let all = |_| true;
        assert_eq!(index.first(v4([172, 31, 255, 1]), 0, u32::MAX, all), 0);
        assert_eq!(index.first(v4([172, 16, 7, 9]), 0, u32::MAX, all), 7);
        // the host's own /24 is no spoke's: only the /32 holds it
        assert_eq!(
            index.first(v4([172, 31, 255, 2]), 0, u32::MAX, all),
            u32::MAX
        );
        // from: rules before it are not candidates
        assert_eq!(
            index.first(v4([172, 31, 255, 1]), 1, u32::MAX, all),
            u32::MAX
        );
        // accept refuses the host's rule: the search goes on (nothing else holds it)
        assert_eq!(
            index.first(v4([172, 31, 255, 1]), 0, u32::MAX, |r| r != 0),
            u32::MAX
        );
        // prefetching any address is only a hint
        index.prefetch(v4([10, 0, 0, 1]));
        PrefixIndex::<u32>::build([]).prefetch(v4([10, 0, 0, 1]));
    }
}
