//! ESP (RFC 4303): the header view, the trailer of a decrypted payload, and the classification
//! of UDP/4500 payloads (RFC 3948).

use super::{get_u32, set_u32, Error, Result};

/// SPI and sequence number.
pub const HEADER_LEN: usize = 8;
/// Pad length and next header.
pub const TRAILER_LEN: usize = 2;

/// A view of an ESP packet: header, then IV, ciphertext and ICV (whose lengths depend on the
/// SA, so this view knows only the header).
#[derive(Debug)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Checks that the header is there; the SA checks the rest (IV + ICV lengths).
    pub fn new_checked(buffer: T) -> Result<Self> {
        if buffer.as_ref().len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        Ok(Packet { buffer })
    }
    pub fn spi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 0)
    }
    /// The low 32 bits of the sequence number (the high 32 bits of an ESN are not sent).
    pub fn seq(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_spi(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 0, v);
    }
    pub fn set_seq(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 4, v);
    }
}

/// The trailer at the end of a decrypted ESP payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    pub pad_len: usize,
    pub next_header: u8,
}

/// Why a decrypted trailer is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrailerError {
    /// The pad length runs past the start of the payload.
    Truncated,
    /// The padding bytes are not 1, 2, 3, ... (RFC 4303 section 2.4).
    BadPadding,
}

/// Reads and checks the trailer at the end of `plain` (the decrypted payload with padding,
/// pad length and next header; no IV, no ICV).
pub fn parse_trailer(plain: &[u8]) -> core::result::Result<Trailer, TrailerError> {
    let n = plain.len();
    if n < TRAILER_LEN {
        return Err(TrailerError::Truncated);
    }
    let pad_len = plain[n - 2] as usize;
    let next_header = plain[n - 1];
    if pad_len + TRAILER_LEN > n {
        return Err(TrailerError::Truncated);
    }
    let pad = &plain[n - 2 - pad_len..n - 2];
    for (i, &b) in pad.iter().enumerate() {
        if b as usize != i + 1 {
            return Err(TrailerError::BadPadding);
        }
    }
    Ok(Trailer {
        pad_len,
        next_header,
    })
}

/// Writes padding 1, 2, 3, ... then pad length and next header into `tail`, whose length is
/// the padding plus 2.
pub fn write_trailer(tail: &mut [u8], next_header: u8) {
    let pad_len = tail.len() - TRAILER_LEN;
    for (i, b) in tail[..pad_len].iter_mut().enumerate() {
        *b = (i + 1) as u8;
    }
    tail[pad_len] = pad_len as u8;
    tail[pad_len + 1] = next_header;
}

/// What a UDP datagram to port 4500 carries (RFC 3948 section 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NattPayload {
    /// ESP: the first four bytes (the SPI) are not zero.
    Esp,
    /// IKE: a four-byte zero non-ESP marker precedes the ISAKMP header.
    Ike,
    /// A NAT-keepalive: one byte, 0xFF.
    Keepalive,
    /// Anything else: dropped and counted.
    Invalid,
}

/// Classifies the payload of a UDP/4500 datagram.
pub fn classify_natt(payload: &[u8]) -> NattPayload {
    match payload {
        [0xff] => NattPayload::Keepalive,
        [0, 0, 0, 0, ..] => NattPayload::Ike,
        p if p.len() >= HEADER_LEN => NattPayload::Esp,
        _ => NattPayload::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailer_round_trip_and_bad_padding() {
        let mut b = [0xaau8; 10];
        write_trailer(&mut b[3..], 4);
        assert_eq!(&b[3..], &[1, 2, 3, 4, 5, 5, 4]);
        let t = parse_trailer(&b).unwrap();
        assert_eq!(
            t,
            Trailer {
                pad_len: 5,
                next_header: 4
            }
        );
        b[5] = 9;
        assert_eq!(parse_trailer(&b).unwrap_err(), TrailerError::BadPadding);
        assert_eq!(parse_trailer(&[7, 4]).unwrap_err(), TrailerError::Truncated);
        assert_eq!(parse_trailer(&[4]).unwrap_err(), TrailerError::Truncated);
    }

    #[test]
    fn natt_classification() {
        assert_eq!(classify_natt(&[0xff]), NattPayload::Keepalive);
        assert_eq!(classify_natt(&[0, 0, 0, 0, 1, 2]), NattPayload::Ike);
        assert_eq!(
            classify_natt(&[0, 0, 1, 5, 0, 0, 0, 1, 9]),
            NattPayload::Esp
        );
        assert_eq!(classify_natt(&[0, 0, 1]), NattPayload::Invalid);
        assert_eq!(classify_natt(&[]), NattPayload::Invalid);
    }

    #[test]
    fn header_fields() {
        let mut b = [0u8; 12];
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_spi(0x105);
        p.set_seq(7);
        assert_eq!((p.spi(), p.seq()), (0x105, 7));
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
    }
}
