//! The Key Exchange payload (RFC 2408 3.7): the Diffie-Hellman public value `g^x`, opaque
//! here (its length is the group's, which the exchange checks). [`Packet::body`] is `g^xi`.

opaque_payload!(
    /// A view of a KE payload.
    "KE payload",
    min_body = 1
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use crate::isakmp::{Error, PayloadType};

    #[test]
    fn round_trip() {
        // A 1024-bit (group 2) public value.
        let r = Repr {
            data: (0..128u8).collect(),
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b, PayloadType::NONCE);
        assert_eq!(&b[..4], &[10, 0, 0, 132]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.next_payload(), PayloadType::NONCE);
        assert_eq!(p.data(), &r.data[..]);
        assert_eq!(Repr::parse(&p).unwrap(), r);
        all_prefixes_fail(&b, |b| Repr::parse(&Packet::new_checked(b)?));
    }

    #[test]
    fn bad_lengths() {
        assert_eq!(
            Packet::new_checked(&[0u8, 0, 0, 4][..]).unwrap_err(),
            Error::LengthTooShort {
                what: "KE payload",
                len: 4,
                min: 5
            }
        );
        assert_eq!(
            Packet::new_checked(&[0u8, 0, 0, 9, 1, 2][..]).unwrap_err(),
            Error::LengthOverrun {
                what: "KE payload",
                len: 9,
                avail: 6
            }
        );
        // Unchecked views are re-checked by parse.
        let p = Packet::new_unchecked(&[0u8, 0, 0, 2][..]);
        assert!(Repr::parse(&p).is_err());
    }
}
