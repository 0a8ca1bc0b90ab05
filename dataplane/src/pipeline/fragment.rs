//! IPv4 fragmentation before encapsulation (RFC 4301 section 8.1 prefers fragmenting the
//! inner packet, so that each fragment travels in its own ESP packet and the peer need not
//! reassemble ESP). Only packets without DF are fragmented; DF packets get ICMP
//! "fragmentation needed" instead.
//!
//! The split is done between two buffers: the first fragment stays in place, the remainder is
//! copied into a second buffer (from the mempool in the runtime) with a copy of the header.
//! Calling it again on the remainder gives the third fragment, and so on. IP options are
//! copied to every fragment as they are (packets with options are rare on this path).

use crate::packet::PacketBuf;
use crate::wire::ipv4;

/// Splits the IPv4 packet in `pkt` so that it holds a first fragment of at most `max_len`
/// bytes, and `tail` (which must be empty) holds the rest as a fragment with its own header.
/// False (and nothing changed) when the packet is not IPv4, has DF set, already fits, or the
/// buffers lack room.
pub fn split_ipv4<P: PacketBuf>(pkt: &mut P, max_len: usize, tail: &mut P) -> bool {
    let (hl, total, frag_word) = match ipv4::Packet::new_checked(pkt.data()) {
        Ok(p) if !p.dont_frag() && p.total_len() > max_len => {
            (p.header_len(), p.total_len(), p.frag_word())
        }
        _ => return false,
    };
    // Fragment payloads are multiples of 8 bytes, except the last.
    let first_payload = (max_len.saturating_sub(hl)) / 8 * 8;
    if first_payload == 0 || !tail.is_empty() {
        return false;
    }
    let rest = total - hl - first_payload;
    if !tail.append(hl + rest) {
        return false;
    }
    let offset_units = (frag_word & 0x1fff) as usize;
    let more = frag_word & ipv4::FLAG_MF;
    {
        let src = pkt.data();
        let dst = tail.data_mut();
        dst[..hl].copy_from_slice(&src[..hl]);
        dst[hl..].copy_from_slice(&src[hl + first_payload..total]);
    }
    // The copied header still has the original total length, so the view is unchecked
    // until that field is rewritten.
    {
        let mut t = ipv4::Packet::new_unchecked(tail.data_mut());
        t.set_total_len((hl + rest) as u16);
        t.set_frag_word(more | (offset_units + first_payload / 8) as u16);
        t.fill_checksum();
    }
    // The trim cannot fail: the packet is longer than what is removed.
    pkt.trim(pkt.len() - (hl + first_payload));
    {
        let mut h = ipv4::Packet::new_unchecked(pkt.data_mut());
        h.set_total_len((hl + first_payload) as u16);
        h.set_frag_word(ipv4::FLAG_MF | offset_units as u16);
        h.fill_checksum();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::VecPacket;
    use crate::wire::checksum;

    fn packet(payload_len: usize, df: bool) -> Vec<u8> {
        let total = 20 + payload_len;
        let mut p = vec![0u8; total];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[4..6].copy_from_slice(&0x1234u16.to_be_bytes());
        p[6] = if df { 0x40 } else { 0 };
        p[8] = 64;
        p[9] = 17;
        p[12..16].copy_from_slice(&[10, 10, 1, 1]);
        p[16..20].copy_from_slice(&[10, 10, 2, 1]);
        for (i, b) in p[20..].iter_mut().enumerate() {
            *b = i as u8;
        }
        let c = checksum::checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    #[test]
    fn three_fragments_reassemble_to_the_original() {
        let orig = packet(3000, false);
        let mut first = VecPacket::with_room(&orig, 128, 0);
        let mut frags = Vec::new();
        loop {
            let mut tail = VecPacket::with_room(&[], 128, 2048);
            if !split_ipv4(&mut first, 1400, &mut tail) {
                frags.push(first);
                break;
            }
            frags.push(first);
            first = tail;
        }
        assert_eq!(frags.len(), 3);
        let mut payload = Vec::new();
        for (i, f) in frags.iter().enumerate() {
            let p = ipv4::Packet::new_checked(f.data()).unwrap();
            assert!(p.total_len() <= 1400);
            assert!(p.verify_checksum());
            assert_eq!(p.ident(), 0x1234);
            assert_eq!(p.more_frags(), i < 2, "fragment {i}");
            assert_eq!(p.frag_offset(), payload.len(), "fragment {i}");
            payload.extend_from_slice(p.payload());
        }
        assert_eq!(payload, &orig[20..]);
    }

    #[test]
    fn df_or_small_packets_are_left_alone() {
        let mut tail = VecPacket::with_room(&[], 0, 2048);
        let mut p = VecPacket::new(&packet(2000, true));
        assert!(!split_ipv4(&mut p, 1400, &mut tail));
        let mut p = VecPacket::new(&packet(100, false));
        assert!(!split_ipv4(&mut p, 1400, &mut tail));
        assert_eq!(p.len(), 120);
        assert!(tail.is_empty());
    }
}
