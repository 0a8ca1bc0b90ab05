//! The generic payload header (RFC 2408 3.2: next payload, reserved, payload length) and the
//! walker over a payload chain (RFC 2408 3.1, 5.2): every payload length is checked against
//! the bytes left, and the chain must end (next payload 0) exactly at the end of the message,
//! or, for a decrypted body, anywhere before it, the rest being the cipher's padding.

use super::{get_u16, set_u16, Error, PayloadType, Result};

/// The generic payload header is 4 bytes.
pub const HEADER_LEN: usize = 4;

payload_packet!(
    /// A view of any payload through its generic header only.
    Packet,
    "payload",
    HEADER_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check_body(&self) -> Result<()> {
        Ok(())
    }
}

/// The generic header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Repr {
    pub next_payload: PayloadType,
    /// The payload length, generic header included.
    pub length: u16,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            next_payload: p.next_payload(),
            length: p.payload_len() as u16,
        })
    }
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }
    pub fn emit(&self, buf: &mut [u8]) {
        buf[0] = self.next_payload.0;
        buf[1] = 0;
        set_u16(buf, 2, self.length);
    }
}

/// Checks a generic header at the start of `b`: present, length at least `min` (which
/// includes the generic header) and within `b`. Returns the payload length.
pub fn check_generic(b: &[u8], what: &'static str, min: usize) -> Result<usize> {
    if b.len() < HEADER_LEN {
        return Err(Error::Truncated {
            what,
            need: HEADER_LEN,
            have: b.len(),
        });
    }
    let len = get_u16(b, 2) as usize;
    if len < min {
        return Err(Error::LengthTooShort { what, len, min });
    }
    if len > b.len() {
        return Err(Error::LengthOverrun {
            what,
            len,
            avail: b.len(),
        });
    }
    Ok(len)
}

/// Writes a generic header (reserved 0). Panics if `len` does not fit 16 bits: callers size
/// payloads first ([`super::Message::emit`] checks and returns [`Error::TooLong`]).
pub fn emit_generic(buf: &mut [u8], next: PayloadType, len: usize) {
    let len16 = u16::try_from(len).expect("payload longer than 65535 bytes");
    Repr {
        next_payload: next,
        length: len16,
    }
    .emit(buf);
}

/// One payload of a chain, borrowed from the chain's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawPayload<'a> {
    /// This payload's type (from the previous payload's next-payload field, or the header's).
    pub kind: PayloadType,
    /// The type of the payload after it (0: none).
    pub next: PayloadType,
    /// Offset of the payload (its generic header) in the chain buffer.
    pub offset: usize,
    /// The whole payload, generic header included.
    pub bytes: &'a [u8],
}

impl<'a> RawPayload<'a> {
    /// The body as on the wire, without the generic header (`SAi_b`, `IDii_b`, ...).
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[HEADER_LEN..]
    }
    /// Offset just past the payload in the chain buffer.
    pub fn end(&self) -> usize {
        self.offset + self.bytes.len()
    }
}

/// Iterates over a payload chain, checking each length. Yields at most one error, then
/// stops.
#[derive(Clone, Debug)]
pub struct PayloadIter<'a> {
    chain: &'a [u8],
    next: PayloadType,
    offset: usize,
    padded: bool,
    what: &'static str,
    done: bool,
}

impl<'a> PayloadIter<'a> {
    /// A chain that must end exactly at the end of `chain` (a cleartext message body).
    pub fn new(first: PayloadType, chain: &'a [u8]) -> Self {
        PayloadIter {
            chain,
            next: first,
            offset: 0,
            padded: false,
            what: "payload chain",
            done: false,
        }
    }
    /// A decrypted body: bytes after the last payload (the cipher's padding) are allowed.
    pub fn padded(first: PayloadType, chain: &'a [u8]) -> Self {
        PayloadIter {
            padded: true,
            ..Self::new(first, chain)
        }
    }
    /// Names the chain in errors (e.g. "transforms of proposal").
    pub fn named(mut self, what: &'static str) -> Self {
        self.what = what;
        self
    }
    /// Where the walk stands: after the chain once the iterator is exhausted without error.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for PayloadIter<'a> {
    type Item = Result<RawPayload<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = &self.chain[self.offset..];
        if self.next == PayloadType::NONE {
            self.done = true;
            if !rest.is_empty() && !self.padded {
                return Some(Err(Error::TrailingBytes {
                    what: self.what,
                    extra: rest.len(),
                }));
            }
            return None;
        }
        if rest.is_empty() {
            self.done = true;
            return Some(Err(Error::Unterminated {
                what: self.what,
                offset: self.offset,
            }));
        }
        let len = match check_generic(rest, self.what, HEADER_LEN) {
            Ok(len) => len,
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let p = RawPayload {
            kind: self.next,
            next: PayloadType(rest[0]),
            offset: self.offset,
            bytes: &rest[..len],
        };
        self.offset += len;
        self.next = p.next;
        Some(Ok(p))
    }
}

/// A walked chain: the payloads and where the chain ends in its buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawChain<'a> {
    /// The buffer walked (a message body, possibly with padding after the chain).
    pub buffer: &'a [u8],
    pub payloads: Vec<RawPayload<'a>>,
    /// Offset just past the last payload; `buffer.len()` unless the body was padded.
    pub end: usize,
}

impl<'a> RawChain<'a> {
    /// Walks a chain. With `padded` (a decrypted body), bytes after the last payload are
    /// allowed; otherwise the chain must fill `buffer` exactly.
    pub fn walk(first: PayloadType, buffer: &'a [u8], padded: bool) -> Result<RawChain<'a>> {
        let mut it = if padded {
            PayloadIter::padded(first, buffer)
        } else {
            PayloadIter::new(first, buffer)
        };
        let mut payloads = Vec::new();
        for p in it.by_ref() {
            payloads.push(p?);
        }
        Ok(RawChain {
            buffer,
            payloads,
            end: it.offset(),
        })
    }

    /// The first payload of a type.
    pub fn find(&self, kind: PayloadType) -> Option<&RawPayload<'a>> {
        self.payloads.iter().find(|p| p.kind == kind)
    }

    /// The chain bytes after payload `index` up to the end of the last payload (padding
    /// excluded): what the Quick Mode HASH(1) and HASH(2) cover after `M-ID` when `index` is
    /// the HASH payload (RFC 2409 5.5). Empty if `index` is out of range.
    pub fn after(&self, index: usize) -> &'a [u8] {
        match self.payloads.get(index) {
            Some(p) => &self.buffer[p.end()..self.end],
            None => &[],
        }
    }

    /// The chain itself, without padding.
    pub fn chain(&self) -> &'a [u8] {
        &self.buffer[..self.end]
    }

    /// The bytes after the chain (padding of a decrypted body).
    pub fn padding(&self) -> &'a [u8] {
        &self.buffer[self.end..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use hex_literal::hex;

    // HASH(4 bytes) -> NONCE(8 bytes) -> VID(2 bytes), last.
    const CHAIN: [u8; 26] = hex!(
        "0a 00 00 08 01 02 03 04"
        "0d 00 00 0c 11 22 33 44 55 66 77 88"
        "00 00 00 06 ab cd"
    );

    #[test]
    fn walks_a_chain() {
        let c = RawChain::walk(PayloadType::HASH, &CHAIN, false).unwrap();
        let kinds: Vec<_> = c.payloads.iter().map(|p| p.kind).collect();
        assert_eq!(
            kinds,
            [
                PayloadType::HASH,
                PayloadType::NONCE,
                PayloadType::VENDOR_ID
            ]
        );
        assert_eq!(c.payloads[0].body(), hex!("01020304"));
        assert_eq!(c.payloads[1].offset, 8);
        assert_eq!(c.payloads[2].body(), hex!("abcd"));
        assert_eq!(c.end, 26);
        assert_eq!(c.after(0), &CHAIN[8..]);
        assert_eq!(c.after(2), b"");
        assert_eq!(c.after(9), b"");
        assert_eq!(c.find(PayloadType::NONCE).unwrap().bytes.len(), 12);
        assert!(c.padding().is_empty());
        // Through the view too.
        let p = Packet::new_checked(&CHAIN[8..]).unwrap();
        assert_eq!(p.next_payload(), PayloadType::VENDOR_ID);
        assert_eq!(p.payload_len(), 12);
        assert_eq!(p.body(), hex!("1122334455667788"));
        assert_eq!(p.as_bytes(), &CHAIN[8..20]);
        assert_eq!(Repr::parse(&p).unwrap().length, 12);
    }

    #[test]
    fn empty_chain() {
        let c = RawChain::walk(PayloadType::NONE, &[], false).unwrap();
        assert!(c.payloads.is_empty());
        assert_eq!(
            RawChain::walk(PayloadType::NONE, &[0], false).unwrap_err(),
            Error::TrailingBytes {
                what: "payload chain",
                extra: 1
            }
        );
    }

    #[test]
    fn every_prefix_fails() {
        all_prefixes_fail(&CHAIN, |b| {
            RawChain::walk(PayloadType::HASH, b, false).map(|c| c.end)
        });
        all_prefixes_fail(&CHAIN, |b| {
            RawChain::walk(PayloadType::HASH, b, true).map(|c| c.end)
        });
    }

    #[test]
    fn padding_only_when_told() {
        let mut padded = CHAIN.to_vec();
        padded.extend_from_slice(&[0, 0, 0, 0, 0, 5]);
        assert_eq!(
            RawChain::walk(PayloadType::HASH, &padded, false).unwrap_err(),
            Error::TrailingBytes {
                what: "payload chain",
                extra: 6
            }
        );
        let c = RawChain::walk(PayloadType::HASH, &padded, true).unwrap();
        assert_eq!(c.end, 26);
        assert_eq!(c.padding(), &[0, 0, 0, 0, 0, 5]);
        assert_eq!(c.after(0), &CHAIN[8..]);
        assert_eq!(c.chain(), &CHAIN[..]);
    }

    #[test]
    fn bad_lengths() {
        // Length past the end.
        let mut past = CHAIN;
        past[11] = 0x20;
        assert_eq!(
            RawChain::walk(PayloadType::HASH, &past, false).unwrap_err(),
            Error::LengthOverrun {
                what: "payload chain",
                len: 32,
                avail: 18
            }
        );
        // Length below the generic header, including 0 (which would loop forever).
        for l in 0..4u8 {
            let mut short = CHAIN;
            short[3] = l;
            assert_eq!(
                RawChain::walk(PayloadType::HASH, &short, true).unwrap_err(),
                Error::LengthTooShort {
                    what: "payload chain",
                    len: l as usize,
                    min: 4
                }
            );
        }
        // The last payload claims a successor that is not there.
        let mut unterminated = CHAIN;
        unterminated[20] = 13;
        assert_eq!(
            RawChain::walk(PayloadType::HASH, &unterminated, false).unwrap_err(),
            Error::Unterminated {
                what: "payload chain",
                offset: 26
            }
        );
        // An iterator yields one error and stops.
        let mut it = PayloadIter::new(PayloadType::HASH, &past);
        assert!(it.next().unwrap().is_ok());
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn generic_emit() {
        let mut b = [0xffu8; 4];
        emit_generic(&mut b, PayloadType::NAT_D, 24);
        assert_eq!(b, [20, 0, 0, 24]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_payload(PayloadType::SIG);
        p.set_payload_len(4);
        assert_eq!(b, [9, 0, 0, 4]);
        assert_eq!(PayloadType::VENDOR_ID.to_string(), "vendor id");
        assert_eq!(PayloadType(77).to_string(), "payload type 77");
        assert_eq!(format!("{:?}", PayloadType::SA), "PayloadType::SA");
    }
}
