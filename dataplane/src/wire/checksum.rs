//! The Internet checksum (RFC 1071), its incremental update (RFC 1624) and the pseudo-header
//! sums of UDP/TCP/ICMPv6 over IPv4 and IPv6.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Adds `data` to a running one's-complement sum (not yet folded to 16 bits and not
/// complemented; at most 0x1_fffe when `sum` is at most 0xffff_ffff).
///
/// It adds 32-bit big-endian words into a 64-bit accumulator: since 2^16 = 1 modulo
/// 2^16 - 1, a 32-bit word counts as the sum of its two 16-bit halves, and 2^32 words of
/// 2^32 - 1 cannot overflow 64 bits, so there is no carry to handle inside the loop.
pub fn accumulate(sum: u32, data: &[u8]) -> u32 {
    let mut acc = sum as u64;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as u64;
    }
    // 0 to 3 bytes left: zero-padded on the right, as RFC 1071 pads an odd byte.
    let mut last = [0u8; 4];
    let rest = words.remainder();
    last[..rest.len()].copy_from_slice(rest);
    acc += u32::from_be_bytes(last) as u64;
    // 64 -> 32 -> 17 bits
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff) + (acc >> 16);
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u32
}

/// Folds a running sum to 16 bits and complements it: the value to put in a header.
pub fn finish(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Checksum of `data` alone.
pub fn checksum(data: &[u8]) -> u16 {
    finish(accumulate(0, data))
}

/// Pseudo-header sum for an upper-layer protocol over IPv4 (RFC 768).
pub fn pseudo_v4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: u16) -> u32 {
    let mut sum = accumulate(0, &src.octets());
    sum = accumulate(sum, &dst.octets());
    sum + protocol as u32 + len as u32
}

/// Pseudo-header sum for an upper-layer protocol over IPv6 (RFC 8200 section 8.1).
pub fn pseudo_v6(src: Ipv6Addr, dst: Ipv6Addr, protocol: u8, len: u32) -> u32 {
    let mut sum = accumulate(0, &src.octets());
    sum = accumulate(sum, &dst.octets());
    sum = accumulate(sum, &len.to_be_bytes());
    sum + protocol as u32
}

/// Updates checksum `old_sum` after a 16-bit field changed from `old` to `new` (RFC 1624
/// equation 3), e.g. when a TTL is decremented.
pub fn update(old_sum: u16, old: u16, new: u16) -> u16 {
    let sum = (!old_sum as u32) + (!old as u32) + new as u32;
    finish(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: the sum of these words is 0xddf2, so the checksum is 0x220d.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&data), !0xddf2u16);
    }

    /// RFC 1071 word by word, the definition the fast version must agree with.
    fn reference(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for c in data.chunks(2) {
            sum += ((c[0] as u64) << 8) | c.get(1).copied().unwrap_or(0) as u64;
        }
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    #[test]
    fn agrees_with_the_word_by_word_definition() {
        let mut x = 0x9e37_79b9u32;
        let mut data = vec![0u8; 1600];
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        for len in 0..200 {
            assert_eq!(checksum(&data[..len]), reference(&data[..len]), "len {len}");
        }
        assert_eq!(checksum(&data), reference(&data));
        assert_eq!(checksum(&[0xff; 1500]), reference(&[0xff; 1500]));
        // chained over slices of even length, as the pseudo-header sums do
        let chained = finish(accumulate(
            accumulate(accumulate(0, &data[..6]), &data[6..20]),
            &data[20..61],
        ));
        assert_eq!(chained, reference(&data[..61]));
        // a large running sum does not overflow
        assert_eq!(
            finish(accumulate(0xffff_ffff, &[0xff; 64])),
            finish(accumulate(accumulate(0, &[0xff; 4]), &[0xff; 64]))
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(
            checksum(&[0x12, 0x34, 0x56]),
            checksum(&[0x12, 0x34, 0x56, 0x00])
        );
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x01, 0x00, 0x00, 10, 0, 0, 1,
            10, 0, 0, 2,
        ];
        let c = checksum(&hdr);
        hdr[10..12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
        let old = u16::from_be_bytes([hdr[8], hdr[9]]);
        hdr[8] -= 1; // TTL
        let new = u16::from_be_bytes([hdr[8], hdr[9]]);
        let updated = update(c, old, new);
        hdr[10..12].copy_from_slice(&updated.to_be_bytes());
        assert_eq!(checksum(&hdr), 0);
    }
}
