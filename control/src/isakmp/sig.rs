//! The Signature payload (RFC 2408 3.12): SIG_I / SIG_R of Main Mode with signatures
//! (RFC 2409 5.1); the signature is opaque here (for RSA, PKCS#1 type 1 without DigestInfo).

opaque_payload!(
    /// A view of a SIG payload.
    "SIG payload",
    min_body = 1
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use crate::isakmp::PayloadType;

    #[test]
    fn round_trip() {
        let r = Repr {
            data: vec![0xa5; 256],
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b, PayloadType::NOTIFY);
        assert_eq!(&b[..4], &[11, 0, 1, 4]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload_len(), 260);
        assert_eq!(Repr::parse(&p).unwrap(), r);
        all_prefixes_fail(&b, |b| Repr::parse(&Packet::new_checked(b)?));
    }
}
