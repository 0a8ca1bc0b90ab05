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

/// Mask of the `len` leading bits of an address `width` bits wide, held in the low bits of a
/// u128 (IPv4 addresses are the low 32 bits, as the classifier stores them).
#[inline]
pub(super) fn mask(len: u8, width: u8) -> u128 {
    if len == 0 {
        0
    } else {
        (u128::MAX >> (128 - width as u32)) & (u128::MAX << (width - len.min(width)) as u32)
    }
}

/// One bucket of the hash table: an exact prefix and where its rules sit in `rules`.
#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    prefix: u128,
    len: u8,
    /// Empty slot when `count` is 0.
    count: u32,
    start: u32,
    /// `rules[start]`, kept here (in what was padding) so that the common bucket, one rule,
    /// costs no load from `rules`: with thousands of tunnels each is a cache miss.
    first: u32,
}

/// Rules by one exact prefix (source or destination, chosen per rule by the SPD).
#[derive(Clone, Debug, Default)]
pub(super) struct PrefixIndex {
    /// The prefix lengths in use, each with its mask, longest first.
    lengths: Vec<(u8, u128)>,
    /// Open addressing, linear probing, a power of two at most half full.
    table: Vec<Bucket>,
    /// Rule numbers, bucket after bucket, ascending within a bucket.
    rules: Vec<u32>,
}

#[inline]
fn slot(prefix: u128, len: u8, table_mask: usize) -> usize {
    // A multiplicative (Fibonacci) hash of both halves: IPv4 prefixes live in the low word,
    // IPv6 ones mostly in the high word.
    let folded = (prefix as u64) ^ ((prefix >> 64) as u64).rotate_left(29) ^ ((len as u64) << 57);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize & table_mask
}

impl PrefixIndex {
    /// Builds the index from (rule number, prefix, length), rule numbers ascending; `width`
    /// is the address width (32 or 128). Prefix bits beyond the length are ignored.
    pub(super) fn build(entries: impl IntoIterator<Item = (u32, u128, u8)>, width: u8) -> Self {
        let mut by_prefix: HashMap<(u128, u8), Vec<u32>> = HashMap::new();
        for (rule, prefix, len) in entries {
            let len = len.min(width);
            by_prefix
                .entry((prefix & mask(len, width), len))
                .or_default()
                .push(rule);
        }
        let mut lengths: Vec<u8> = by_prefix.keys().map(|&(_, l)| l).collect();
        lengths.sort_unstable_by(|a, b| b.cmp(a));
        lengths.dedup();
        let size = (by_prefix.len() * 2).next_power_of_two().max(2);
        let mut table = vec![Bucket::default(); size];
        let mut rules = Vec::with_capacity(by_prefix.values().map(Vec::len).sum());
        // Buckets in the order of their first rule, so that the flat array follows rule
        // order as far as possible (the common case: one rule per bucket).
        let mut buckets: Vec<((u128, u8), Vec<u32>)> = by_prefix.into_iter().collect();
        buckets.sort_unstable_by_key(|(_, r)| r[0]);
        for ((prefix, len), list) in buckets {
            let mut i = slot(prefix, len, size - 1);
            while table[i].count != 0 {
                i = (i + 1) & (size - 1);
            }
            table[i] = Bucket {
                prefix,
                len,
                count: list.len() as u32,
                start: rules.len() as u32,
                first: list[0],
            };
            rules.extend(list);
        }
        PrefixIndex {
            lengths: lengths.into_iter().map(|l| (l, mask(l, width))).collect(),
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
    #[inline]
    fn bucket(&self, prefix: u128, len: u8) -> &[u32] {
        let m = self.table.len() - 1;
        let mut i = slot(prefix, len, m);
        loop {
            let b = &self.table[i];
            if b.count == 0 {
                return &[];
            }
            if b.prefix == prefix && b.len == len {
                if b.count == 1 {
                    return std::slice::from_ref(&b.first);
                }
                return &self.rules[b.start as usize..(b.start + b.count) as usize];
            }
            i = (i + 1) & m;
        }
    }

    /// The lowest rule number in `from..best` whose bucket contains `address` and for which
    /// `accept` holds, or `best` if there is none.
    #[inline]
    pub(super) fn first(
        &self,
        address: u128,
        from: u32,
        mut best: u32,
        accept: impl Fn(u32) -> bool,
    ) -> u32 {
        for &(len, m) in &self.lengths {
            let rules = self.bucket(address & m, len);
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
        self.lengths.capacity() * std::mem::size_of::<(u8, u128)>()
            + self.table.capacity() * std::mem::size_of::<Bucket>()
            + self.rules.capacity() * 4
    }
}
