//! Outbound ESP (RFC 4303 section 3.3), in place on a [`PacketBuf`].
//!
//! Tunnel mode wraps the whole inner packet (IPv4 or IPv6, in an IPv4 or IPv6 outer header):
//!
//! ```text
//! | outer IP | [UDP 4500] | SPI | seq | IV | inner packet | pad | pad len | 4 or 41 | ICV |
//! ```
//!
//! Transport mode inserts ESP after the IP header and protects its payload (a GRE packet of
//! a DMVPN spoke, say). The outer IPv4 header copies DF and DSCP from the inner packet (IOS's
//! defaults) and the ECN field as RFC 6040's normal mode does; TTL is 64.

use std::net::IpAddr;

use super::params::Mode;
use super::sa::Sa;
use crate::packet::PacketBuf;
use crate::pipeline::{DropReason, EncapError};
use crate::wire::{esp, ipv4, ipv6, proto, udp};

impl Sa {
    /// Encapsulates the IP packet held by `pkt` (no Ethernet header). On success `pkt` holds
    /// the outer packet, at most `mtu` bytes long. On error `pkt` is unchanged, except after
    /// `NoRoom` on a buffer whose tailroom was taken back (its length is then restored).
    pub fn encap<P: PacketBuf>(&mut self, pkt: &mut P, mtu: usize) -> Result<(), EncapError> {
        let r = match self.mode {
            Mode::Tunnel => self.encap_tunnel(pkt, mtu),
            Mode::Transport => self.encap_transport(pkt, mtu),
        };
        if let Err(e) = r {
            self.errors.count(match e {
                EncapError::TooBig { .. } => DropReason::TooBig,
                EncapError::Drop(r) => r,
            });
        }
        r
    }

    /// The next sequence number, or the reason the SA can send no more.
    fn take_seq(&mut self) -> Result<u64, EncapError> {
        if self.gate.expired {
            return Err(EncapError::Drop(DropReason::LifetimeExpired));
        }
        let limit = if self.esn { u64::MAX } else { u32::MAX as u64 };
        if self.seq >= limit {
            // Without ESN the sequence number must not wrap (RFC 4303 section 3.3.3): the SA
            // is hard-expired and the control plane is told by the lifetime poll.
            self.gate.seq_exhausted = true;
            self.gate.expired = true;
            return Err(EncapError::Drop(DropReason::LifetimeExpired));
        }
        self.seq += 1;
        Ok(self.seq)
    }

    /// Writes SPI, sequence number, IV and trailer around `payload_len` bytes that start at
    /// `esp_at + 8 + iv_len`, then seals. `d` is the whole packet.
    fn write_esp_and_seal(
        &mut self,
        d: &mut [u8],
        esp_at: usize,
        payload_len: usize,
        pad: usize,
        next: u8,
        seq: u64,
    ) {
        let hdr = self.esp_header_len();
        let trailer_at = esp_at + hdr + payload_len;
        esp::write_trailer(
            &mut d[trailer_at..trailer_at + pad + esp::TRAILER_LEN],
            next,
        );
        let mut e = esp::Packet::new_unchecked(&mut d[esp_at..]);
        e.set_spi(self.spi);
        e.set_seq(seq as u32);
        // Written in place, one store for an AEAD's 8 bytes: the cipher reads them back at
        // once, and a load of exactly what one store wrote is forwarded without waiting.
        let iv_at = esp_at + 8;
        self.next_iv(&mut d[iv_at..iv_at + self.iv_len as usize], seq);
        let esn_hi = self.esn.then_some((seq >> 32) as u32);
        self.cipher.seal(&mut d[esp_at..], esn_hi);
    }

    fn count_sent(&mut self, plain: usize) {
        let t = &mut self.traffic;
        t.packets += 1;
        t.bytes += plain as u64;
        self.gate.on_bytes(t.bytes);
    }

    fn encap_tunnel<P: PacketBuf>(&mut self, pkt: &mut P, mtu: usize) -> Result<(), EncapError> {
        let inner_len = pkt.len();
        let inner = pkt.data();
        let (next, tos, df) = match inner.first().map(|b| b >> 4) {
            Some(4) if inner_len >= ipv4::MIN_HEADER_LEN => {
                (proto::IPV4, inner[1], inner[6] & 0x40 != 0)
            }
            Some(6) if inner_len >= ipv6::HEADER_LEN => {
                (proto::IPV6, (inner[0] << 4) | (inner[1] >> 4), false)
            }
            _ => return Err(EncapError::Drop(DropReason::Malformed)),
        };
        let pad = self.pad_len(inner_len);
        let outer = self.outer_len();
        let hdr = self.esp_header_len();
        let tail = pad + esp::TRAILER_LEN + self.icv_len as usize;
        let total = outer + hdr + inner_len + tail;
        if total > mtu {
            return Err(EncapError::TooBig {
                max_inner: self.max_inner_len(mtu),
            });
        }
        if pkt.headroom() < outer + hdr || pkt.tailroom() < tail {
            return Err(EncapError::Drop(DropReason::NoRoom));
        }
        let seq = self.take_seq()?;
        let grown = pkt.append(tail) && pkt.prepend(outer + hdr);
        debug_assert!(grown, "room was checked");
        let d = pkt.data_mut();
        self.write_esp_and_seal(d, outer, inner_len, pad, next, seq);
        self.write_outer(d, tos, df);
        self.count_sent(inner_len);
        Ok(())
    }

    /// Writes the outer IP header (and UDP header) at the start of `d`, the whole packet.
    fn write_outer(&mut self, d: &mut [u8], tos: u8, df: bool) {
        let total = d.len();
        let udp_at;
        // IPv4 reads only the SA's first line; the addresses (cold) only over IPv6.
        if let Some(t) = self.outer_v4 {
            // The header prepared when the SA was built, see `ipv4::Template`.
            self.ip_id = self.ip_id.wrapping_add(1);
            t.emit(d, tos, total as u16, self.ip_id, df);
            udp_at = ipv4::MIN_HEADER_LEN;
        } else {
            let (IpAddr::V6(src), IpAddr::V6(dst)) = (self.local, self.remote) else {
                // SaParams with mixed outer families are refused when the SA is built, and
                // an IPv4 pair always has its template.
                unreachable!("outer addresses of one family")
            };
            ipv6::Repr {
                src,
                dst,
                next_header: if self.udp.is_some() {
                    proto::UDP
                } else {
                    proto::ESP
                },
                payload_len: total - ipv6::HEADER_LEN,
                hop_limit: 64,
                traffic_class: tos,
            }
            .emit(d);
            udp_at = ipv6::HEADER_LEN;
        }
        if let Some(u) = self.udp {
            udp::write_header(
                &mut d[udp_at..],
                u.local_port,
                u.remote_port,
                (total - udp_at) as u16,
            );
            if self.outer_v4.is_none() {
                // IPv6 has no header checksum: UDP's is mandatory (RFC 8200 section 8.1).
                let mut p = udp::Packet::new_unchecked(&mut d[udp_at..]);
                p.fill_checksum(self.local, self.remote);
            }
        }
    }

    fn encap_transport<P: PacketBuf>(&mut self, pkt: &mut P, mtu: usize) -> Result<(), EncapError> {
        let len = pkt.len();
        let d = pkt.data();
        let (hl, next) = match d.first().map(|b| b >> 4) {
            Some(4) => {
                let p = ipv4::Packet::new_checked(d)
                    .map_err(|_| EncapError::Drop(DropReason::Malformed))?;
                (p.header_len(), p.protocol())
            }
            Some(6) => {
                let p = ipv6::Packet::new_checked(d)
                    .map_err(|_| EncapError::Drop(DropReason::Malformed))?;
                match p.upper_layer() {
                    // ESP goes after the fixed header; extension headers would have to stay in
                    // front of it, which this path does not do.
                    Ok((nh, ipv6::HEADER_LEN)) => (ipv6::HEADER_LEN, nh),
                    _ => return Err(EncapError::Drop(DropReason::Unsupported)),
                }
            }
            _ => return Err(EncapError::Drop(DropReason::Malformed)),
        };
        let payload_len = len - hl;
        let pad = self.pad_len(payload_len);
        let udp_len = if self.udp.is_some() {
            udp::HEADER_LEN
        } else {
            0
        };
        let hdr = self.esp_header_len();
        let tail = pad + esp::TRAILER_LEN + self.icv_len as usize;
        if len + udp_len + hdr + tail > mtu {
            let room = mtu.saturating_sub(hl + udp_len + hdr + self.icv_len as usize);
            let max =
                hl + (room / self.block_len as usize * self.block_len as usize).saturating_sub(2);
            return Err(EncapError::TooBig { max_inner: max });
        }
        if pkt.headroom() < udp_len + hdr || pkt.tailroom() < tail {
            return Err(EncapError::Drop(DropReason::NoRoom));
        }
        let seq = self.take_seq()?;
        let grown = pkt.append(tail) && pkt.prepend(udp_len + hdr);
        debug_assert!(grown, "room was checked");
        let d = pkt.data_mut();
        // Move the IP header back to the front, over the room just made.
        d.copy_within(udp_len + hdr..udp_len + hdr + hl, 0);
        let esp_at = hl + udp_len;
        self.write_esp_and_seal(d, esp_at, payload_len, pad, next, seq);
        let total = d.len();
        let outer_proto = if self.udp.is_some() {
            proto::UDP
        } else {
            proto::ESP
        };
        if hl == ipv6::HEADER_LEN && d[0] >> 4 == 6 {
            let mut p = ipv6::Packet::new_unchecked(&mut d[..]);
            p.set_payload_len((total - hl) as u16);
            p.set_next_header(outer_proto);
        } else {
            let mut p = ipv4::Packet::new_unchecked(&mut d[..]);
            p.set_total_len(total as u16);
            p.set_protocol(outer_proto);
            p.fill_checksum();
        }
        if let Some(u) = self.udp {
            udp::write_header(
                &mut d[hl..],
                u.local_port,
                u.remote_port,
                (total - hl) as u16,
            );
            if d[0] >> 4 == 6 {
                let ip = ipv6::Packet::new_unchecked(&d[..]);
                let (s, t) = (IpAddr::V6(ip.src()), IpAddr::V6(ip.dst()));
                let mut p = udp::Packet::new_unchecked(&mut d[hl..]);
                p.fill_checksum(s, t);
            }
        }
        self.count_sent(payload_len);
        Ok(())
    }
}
