//! The Nonce payload (RFC 2408 3.13). RFC 2409 5 requires the nonce to be between 8 and 256
//! bytes inclusive; a checked view enforces it. [`Packet::body`] is `Ni_b` / `Nr_b`.

use super::payload;
use super::{Error, PayloadType, Result};

/// The shortest nonce RFC 2409 allows.
pub const MIN_NONCE_LEN: usize = 8;
/// The longest nonce RFC 2409 allows.
pub const MAX_NONCE_LEN: usize = 256;

payload_packet!(
    /// A view of a NONCE payload.
    Packet,
    "NONCE payload",
    payload::HEADER_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check_body(&self) -> Result<()> {
        check_nonce_len(self.body().len())
    }
    /// The nonce.
    pub fn data(&self) -> &[u8] {
        self.body()
    }
}

fn check_nonce_len(n: usize) -> Result<()> {
    if (MIN_NONCE_LEN..=MAX_NONCE_LEN).contains(&n) {
        Ok(())
    } else {
        Err(Error::NonceLength(n))
    }
}

/// A nonce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repr {
    pub data: Vec<u8>,
}

impl Repr {
    /// A nonce of a valid length.
    pub fn new(data: Vec<u8>) -> Result<Repr> {
        check_nonce_len(data.len())?;
        Ok(Repr { data })
    }
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            data: p.data().to_vec(),
        })
    }
    pub fn buffer_len(&self) -> usize {
        payload::HEADER_LEN + self.data.len()
    }
    /// Writes the payload. The length is not re-checked here ([`Repr::new`] and
    /// [`super::Message::emit`] check it).
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        buf[payload::HEADER_LEN..len].copy_from_slice(&self.data);
    }
    /// The RFC 2409 length rule.
    pub fn check(&self) -> Result<()> {
        check_nonce_len(self.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;

    fn wire(n: usize) -> Vec<u8> {
        let r = Repr {
            data: (0..n).map(|i| i as u8).collect(),
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b, PayloadType::ID);
        b
    }

    #[test]
    fn lengths_8_to_256() {
        for n in [8, 16, 20, 255, 256] {
            let b = wire(n);
            let p = Packet::new_checked(&b[..]).unwrap();
            assert_eq!(p.next_payload(), PayloadType::ID);
            let r = Repr::parse(&p).unwrap();
            assert_eq!(r.data.len(), n);
            assert_eq!(Repr::new(r.data.clone()).unwrap(), r);
            all_prefixes_fail(&b, |b| Repr::parse(&Packet::new_checked(b)?));
        }
        for n in [0, 1, 7, 257, 1000] {
            let b = wire(n);
            assert_eq!(
                Packet::new_checked(&b[..]).unwrap_err(),
                Error::NonceLength(n)
            );
            assert_eq!(Repr::new(vec![0; n]).unwrap_err(), Error::NonceLength(n));
            assert!(Repr { data: vec![0; n] }.check().is_err());
        }
    }

    #[test]
    fn length_past_buffer() {
        let mut b = wire(16);
        b[3] = 40;
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap_err(),
            Error::LengthOverrun {
                what: "NONCE payload",
                len: 40,
                avail: 20
            }
        );
    }
}
