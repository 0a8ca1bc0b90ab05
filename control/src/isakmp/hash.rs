//! The Hash payload (RFC 2408 3.11): HASH_I / HASH_R of Main Mode (RFC 2409 5) and
//! HASH(1..3) of Quick Mode (RFC 2409 5.5), and the HASH of Informational exchanges; the
//! digest is opaque here.

opaque_payload!(
    /// A view of a HASH payload.
    "HASH payload",
    min_body = 1
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use crate::isakmp::{Error, PayloadType};
    use hex_literal::hex;

    #[test]
    fn round_trip() {
        // An HMAC-MD5 HASH(1) followed by an SA.
        let wire = hex!("01 00 00 14 3f 6a 92 00 11 b0 6e 2d 88 01 9c 4e 73 5a a0 c1");
        let p = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(p.next_payload(), PayloadType::SA);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.data, &wire[4..]);
        let mut b = [0u8; 20];
        r.emit(&mut b, PayloadType::SA);
        assert_eq!(b, wire);
        all_prefixes_fail(&wire, |b| Repr::parse(&Packet::new_checked(b)?));
        assert!(matches!(
            Packet::new_checked(&hex!("00 00 00 03 00")[..]).unwrap_err(),
            Error::LengthTooShort { len: 3, .. }
        ));
    }
}
