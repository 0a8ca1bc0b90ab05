//! Inbound ESP (RFC 4303 section 3.4), in place on a [`PacketBuf`].
//!
//! Order of the checks, each a counted drop: lifetime, length, anti-replay (before any
//! crypto), ICV and decryption, then the window moves; padding (bytes 1, 2, 3, ...), next
//! header, the inner packet's own length, and the inbound policy (the inner packet must be
//! traffic this SA protects, RFC 4301 section 5.2).

use super::params::Mode;
use super::replay::ReplayError;
use super::sa::{Sa, SelectorV4};
use crate::packet::PacketBuf;
use crate::pipeline::classify::{ipv4_tuple, parse_ip};
use crate::pipeline::DropReason;
use crate::wire::ethernet::{ETHERTYPE_IPV4, ETHERTYPE_IPV6};
use crate::wire::{esp, ipv4, ipv6, proto};

impl Sa {
    /// Decapsulates the frame in `pkt`, whose outer IP header is at `l3_off` and ESP header
    /// at `esp_off` (after the UDP header of NAT-T). On success `pkt` holds the inner IP
    /// packet (tunnel mode) or the rebuilt IP packet (transport mode), with no Ethernet
    /// header. On error nothing of the payload may be forwarded.
    pub fn decap<P: PacketBuf>(
        &mut self,
        pkt: &mut P,
        l3_off: usize,
        esp_off: usize,
    ) -> Result<(), DropReason> {
        let r = self.decap_inner(pkt, l3_off, esp_off);
        if let Err(reason) = r {
            self.errors.count(reason);
        }
        r
    }

    fn decap_inner<P: PacketBuf>(
        &mut self,
        pkt: &mut P,
        l3_off: usize,
        esp_off: usize,
    ) -> Result<(), DropReason> {
        if self.gate.expired {
            return Err(DropReason::LifetimeExpired);
        }
        let d = pkt.data();
        // The end of the IP packet (Ethernet may have padded the frame).
        let ip_end = match d.get(l3_off).map(|b| b >> 4) {
            Some(4) => {
                let p =
                    ipv4::Packet::new_checked(&d[l3_off..]).map_err(|_| DropReason::Malformed)?;
                l3_off + p.total_len()
            }
            Some(6) => {
                let p =
                    ipv6::Packet::new_checked(&d[l3_off..]).map_err(|_| DropReason::Malformed)?;
                l3_off + p.total_len()
            }
            _ => return Err(DropReason::Malformed),
        };
        let hdr = self.esp_header_len();
        if esp_off > ip_end || ip_end - esp_off < hdr + self.icv_len as usize + esp::TRAILER_LEN {
            return Err(DropReason::Malformed);
        }
        let enc_len = ip_end - esp_off - hdr - self.icv_len as usize;
        // block_len is a power of two (checked when the SA is built): a mask, not a division.
        if enc_len & (self.block_len as usize - 1) != 0 {
            return Err(DropReason::Malformed);
        }
        let outer_v6 = d[l3_off] >> 4 == 6;
        let seq_lo = esp::Packet::new_unchecked(&d[esp_off..]).seq();
        let seq = self.replay.check(seq_lo).map_err(|e| match e {
            ReplayError::Duplicate | ReplayError::TooOld => DropReason::Replay,
        })?;
        let esn_hi = self.esn.then_some((seq >> 32) as u32);
        let frame_len = pkt.len();
        let d = pkt.data_mut();
        self.cipher
            .open(&mut d[esp_off..ip_end], esn_hi)
            .map_err(|_| DropReason::AuthFailed)?;
        self.replay.accept(seq);

        let plain_at = esp_off + hdr;
        let plain = &d[plain_at..plain_at + enc_len];
        let trailer = esp::parse_trailer(plain).map_err(|e| match e {
            esp::TrailerError::BadPadding => DropReason::BadPadding,
            esp::TrailerError::Truncated => DropReason::Malformed,
        })?;
        let payload_len = enc_len - trailer.pad_len - esp::TRAILER_LEN;
        if trailer.next_header == proto::NO_NEXT {
            // A dummy packet (RFC 4303 section 2.6, traffic flow confidentiality): authentic,
            // and meant to be thrown away.
            self.traffic.packets += 1;
            return Err(DropReason::EspOther);
        }

        let ethertype = match self.mode {
            Mode::Tunnel => {
                let ethertype = match trailer.next_header {
                    proto::IPV4 => ETHERTYPE_IPV4,
                    proto::IPV6 => ETHERTYPE_IPV6,
                    _ => return Err(DropReason::EspOther),
                };
                // Strip everything but the inner packet, then its own padding (TFC).
                let ok = pkt.adj(plain_at) && pkt.trim(frame_len - plain_at - payload_len);
                debug_assert!(ok);
                let inner_len = match (ethertype, pkt.data().first().map(|b| b >> 4)) {
                    (ETHERTYPE_IPV4, Some(4)) => ipv4::Packet::new_checked(pkt.data())
                        .map_err(|_| DropReason::Malformed)?
                        .total_len(),
                    (ETHERTYPE_IPV6, Some(6)) => ipv6::Packet::new_checked(pkt.data())
                        .map_err(|_| DropReason::Malformed)?
                        .total_len(),
                    _ => return Err(DropReason::Malformed),
                };
                let extra = pkt.len() - inner_len;
                pkt.trim(extra);
                ethertype
            }
            Mode::Transport => {
                let v6 = outer_v6;
                let d = pkt.data_mut();
                let hl = if v6 {
                    ipv6::HEADER_LEN
                } else {
                    ipv4::Packet::new_unchecked(&d[l3_off..]).header_len()
                };
                // Slide the IP header forward so that it ends where the payload starts.
                let new_l3 = plain_at - hl;
                d.copy_within(l3_off..l3_off + hl, new_l3);
                let ok = pkt.adj(new_l3) && pkt.trim(frame_len - plain_at - payload_len);
                debug_assert!(ok);
                let total = pkt.len();
                let d = pkt.data_mut();
                if v6 {
                    let mut p = ipv6::Packet::new_unchecked(&mut d[..]);
                    p.set_payload_len((total - hl) as u16);
                    p.set_next_header(trailer.next_header);
                    ETHERTYPE_IPV6
                } else {
                    let mut p = ipv4::Packet::new_unchecked(&mut d[..]);
                    p.set_total_len(total as u16);
                    p.set_protocol(trailer.next_header);
                    p.fill_checksum();
                    ETHERTYPE_IPV4
                }
            }
        };

        if !self.inbound_allows(pkt.data(), ethertype)? {
            return Err(DropReason::PolicyMismatch);
        }
        let t = &mut self.traffic;
        t.packets += 1;
        t.bytes += payload_len as u64;
        self.gate.on_bytes(t.bytes);
        Ok(())
    }

    /// The inbound policy check (RFC 4301 section 5.2) of the IP packet `ip`: true when it
    /// matches one of the SA's selectors (mirrored), or when the SA has none. A malformed
    /// packet is an error. IPv4 goes through the precomputed masks, IPv6 through the general
    /// selectors.
    #[inline]
    fn inbound_allows(&self, ip: &[u8], ethertype: u16) -> Result<bool, DropReason> {
        if ethertype == ETHERTYPE_IPV4 {
            let (src, dst, protocol, sport, dport) = ipv4_tuple(ip)?;
            // The selectors first: a packet that matches one never reads `inbound_policy`,
            // which lies in the SA's cold part. Tested the other way round, its length cost
            // every decapsulated packet a cache miss, 11 % of the worker at 10,000 tunnels
            // (perf, benches/NOTES.md session 10).
            // The first selector alone, before anything else is read: the others (even
            // their slice's length) lie in the SA's cold part.
            let matches = |s: &SelectorV4| s.matches(src, dst, protocol, sport, dport);
            return Ok(self.inbound_v4_first.as_ref().is_some_and(matches)
                || self.inbound_v4_rest.iter().any(matches)
                || self.inbound_policy.is_empty());
        }
        let info = parse_ip(ip, 0, ethertype)?;
        Ok(self.inbound_policy.is_empty()
            || self.inbound_policy.iter().any(|s| {
                s.matches(
                    info.src(),
                    info.dst(),
                    info.protocol,
                    info.sport,
                    info.dport,
                )
            }))
    }
}
