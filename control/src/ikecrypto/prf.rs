//! The negotiated IKE hash and its HMAC pseudo-random function (RFC 2409 section 5: "the
//! HMAC version of the negotiated hash algorithm is used as the pseudo-random function";
//! hash algorithm attribute values from RFC 2409 Appendix A and the IANA IPsec registry:
//! MD5 1, SHA 2, SHA2-256 4, SHA2-384 5).
//!
//! The hashes and HMACs are RustCrypto's (`md-5`, `sha1`, `sha2`, `hmac`, the crates the
//! dataplane's `rustcrypto` backend uses): a phase 1 and its Quick Mode compute a few dozen
//! short HMACs, and OpenSSL 3 made each one a MAC key object and a provider lookup, about
//! as much CPU as the RSA signature of the exchange (issue 5, "IKE setup rate").

use digest::{Digest, FixedOutputReset, KeyInit, Mac};
use hmac::Hmac;
use openssl::hash::MessageDigest;

/// The Phase 1 hash algorithm (ISAKMP attribute 2, "Hash Algorithm").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HashAlg {
    Md5,
    Sha1,
    Sha256,
    Sha384,
}

impl HashAlg {
    pub const ALL: [HashAlg; 4] = [
        HashAlg::Md5,
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
    ];

    /// From the ISAKMP "Hash Algorithm" attribute value (1 MD5, 2 SHA, 4 SHA2-256,
    /// 5 SHA2-384). Tiger (3) and SHA2-512 (6) are not supported.
    pub fn from_attr(value: u16) -> Option<HashAlg> {
        match value {
            1 => Some(HashAlg::Md5),
            2 => Some(HashAlg::Sha1),
            4 => Some(HashAlg::Sha256),
            5 => Some(HashAlg::Sha384),
            _ => None,
        }
    }

    /// The ISAKMP "Hash Algorithm" attribute value.
    pub fn attr_value(self) -> u16 {
        match self {
            HashAlg::Md5 => 1,
            HashAlg::Sha1 => 2,
            HashAlg::Sha256 => 4,
            HashAlg::Sha384 => 5,
        }
    }

    /// From the IOS `hash` keyword of a `crypto isakmp policy` (md5, sha, sha256, sha384).
    pub fn from_ios_name(name: &str) -> Option<HashAlg> {
        match name {
            "md5" => Some(HashAlg::Md5),
            "sha" => Some(HashAlg::Sha1),
            "sha256" => Some(HashAlg::Sha256),
            "sha384" => Some(HashAlg::Sha384),
            _ => None,
        }
    }

    /// The IOS keyword.
    pub fn ios_name(self) -> &'static str {
        match self {
            HashAlg::Md5 => "md5",
            HashAlg::Sha1 => "sha",
            HashAlg::Sha256 => "sha256",
            HashAlg::Sha384 => "sha384",
        }
    }

    /// Digest (and prf) output length in bytes.
    pub fn output_len(self) -> usize {
        match self {
            HashAlg::Md5 => 16,
            HashAlg::Sha1 => 20,
            HashAlg::Sha256 => 32,
            HashAlg::Sha384 => 48,
        }
    }

    pub fn message_digest(self) -> MessageDigest {
        match self {
            HashAlg::Md5 => MessageDigest::md5(),
            HashAlg::Sha1 => MessageDigest::sha1(),
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
        }
    }

    /// The plain hash of `data` (used for the phase 1 and phase 2 IVs).
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        self.hash_parts(&[data])
    }

    /// The plain hash of the concatenation of `parts`.
    pub fn hash_parts(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut h = D::new();
            for p in parts {
                h.update(p);
            }
            h.finalize().to_vec()
        }
        match self {
            HashAlg::Md5 => run::<md5::Md5>(parts),
            HashAlg::Sha1 => run::<sha1::Sha1>(parts),
            HashAlg::Sha256 => run::<sha2::Sha256>(parts),
            HashAlg::Sha384 => run::<sha2::Sha384>(parts),
        }
    }

    /// `prf(key, data)`: HMAC with this hash.
    ///
    /// The output is returned in a plain `Vec`; callers that derive keys from it wrap it in
    /// [`zeroize::Zeroizing`] (see [`super::keys`]).
    pub fn prf(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        self.prf_parts(key, &[data])
    }

    /// `prf(key, part0 | part1 | ...)` without building the concatenation (so secrets such as
    /// g^xy are not copied into temporary buffers). The keyed HMAC state is wiped afterwards.
    pub fn prf_parts(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        match self {
            HashAlg::Md5 => hmac_parts::<Hmac<md5::Md5>>(key, parts),
            HashAlg::Sha1 => hmac_parts::<Hmac<sha1::Sha1>>(key, parts),
            HashAlg::Sha256 => hmac_parts::<Hmac<sha2::Sha256>>(key, parts),
            HashAlg::Sha384 => hmac_parts::<Hmac<sha2::Sha384>>(key, parts),
        }
    }
}

/// An HMAC state keyed with a PRF key, wiped on drop: it holds the digest states after the
/// key's inner and outer pads, which stand for the key.
///
/// `Hmac<D>` (hmac 0.12 over md-5, sha1 and sha2 0.10) is a flat struct of integer arrays
/// and counters, with no heap pointer and no `Drop` of its own, and the crates offer no way
/// to wipe it (the dataplane's `rustcrypto` backend does the same for its SAs' HMACs).
struct KeyedHmac<M>(M);

impl<M> Drop for KeyedHmac<M> {
    fn drop(&mut self) {
        // SAFETY: `M` is only ever `Hmac<Md5>`, `Hmac<Sha1>`, `Hmac<Sha256>` or
        // `Hmac<Sha384>` (`HashAlg::prf_parts` is the only caller of `hmac_parts`): flat
        // structs of integer arrays and integers (no references, no heap data, no Drop impl),
        // for which all-zero bytes are a valid value. The pointer comes from `&mut self.0`,
        // so it is valid and aligned, and the value is not read again after this point.
        unsafe { zeroize::zeroize_flat_type(&mut self.0 as *mut M) }
    }
}

/// HMAC of the concatenation of `parts` under `key` (any length: HMAC hashes a key longer
/// than the block and zero-pads a shorter one, an empty one included).
fn hmac_parts<M: Mac + KeyInit + FixedOutputReset>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = KeyedHmac(<M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length"));
    for p in parts {
        Mac::update(&mut m.0, p);
    }
    m.0.finalize_reset().into_bytes().to_vec()
}

/// `prf(key, data)` with the negotiated hash (free-function form of [`HashAlg::prf`]).
pub fn prf(hash: HashAlg, key: &[u8], data: &[u8]) -> Vec<u8> {
    hash.prf(key, data)
}

/// `hash(data)` with the negotiated hash (free-function form of [`HashAlg::hash`]).
pub fn hash(alg: HashAlg, data: &[u8]) -> Vec<u8> {
    alg.hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    const LONG_KEY_DATA: &[u8] = b"Test Using Larger Than Block-Size Key - Hash Key First";

    /// RFC 2202 section 2 (HMAC-MD5) test cases 1, 2, 3 and 6.
    #[test]
    fn rfc2202_hmac_md5() {
        let h = HashAlg::Md5;
        assert_eq!(
            h.prf(&[0x0b; 16], b"Hi There"),
            unhex("9294727a3638bb1c13f48ef8158bfc9d")
        );
        assert_eq!(
            h.prf(b"Jefe", b"what do ya want for nothing?"),
            unhex("750c783e6ab0b503eaa86e310a5db738")
        );
        assert_eq!(
            h.prf(&[0xaa; 16], &[0xdd; 50]),
            unhex("56be34521d144c88dbb8c733f0e8b3f6")
        );
        assert_eq!(
            h.prf(&[0xaa; 80], LONG_KEY_DATA),
            unhex("6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd")
        );
    }

    /// RFC 2202 section 3 (HMAC-SHA-1) test cases 1, 2, 3 and 6.
    #[test]
    fn rfc2202_hmac_sha1() {
        let h = HashAlg::Sha1;
        assert_eq!(
            h.prf(&[0x0b; 20], b"Hi There"),
            unhex("b617318655057264e28bc0b6fb378c8ef146be00")
        );
        assert_eq!(
            h.prf(b"Jefe", b"what do ya want for nothing?"),
            unhex("effcdf6ae5eb2fa2d27416d5f184df9c259a7c79")
        );
        assert_eq!(
            h.prf(&[0xaa; 20], &[0xdd; 50]),
            unhex("125d7342b9ac11cd91a39af48aa17b4f63f175d3")
        );
        assert_eq!(
            h.prf(&[0xaa; 80], LONG_KEY_DATA),
            unhex("aa4ae5e15272d00e95705637ce8a3b55ed402112")
        );
    }

    /// RFC 4231 section 4 test cases 1, 2 and 6 for HMAC-SHA-256 and HMAC-SHA-384.
    #[test]
    fn rfc4231_hmac_sha256_sha384() {
        let (s256, s384) = (HashAlg::Sha256, HashAlg::Sha384);
        assert_eq!(
            s256.prf(&[0x0b; 20], b"Hi There"),
            unhex("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        );
        assert_eq!(
            s384.prf(&[0x0b; 20], b"Hi There"),
            unhex(
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59c\
                 faea9ea9076ede7f4af152e8b2fa9cb6"
            )
        );
        assert_eq!(
            s256.prf(b"Jefe", b"what do ya want for nothing?"),
            unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        );
        assert_eq!(
            s384.prf(b"Jefe", b"what do ya want for nothing?"),
            unhex(
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e\
                 8e2240ca5e69e2c78b3239ecfab21649"
            )
        );
        assert_eq!(
            s256.prf(&[0xaa; 131], LONG_KEY_DATA),
            unhex("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")
        );
        assert_eq!(
            s384.prf(&[0xaa; 131], LONG_KEY_DATA),
            unhex(
                "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c6\
                 0c2ef6ab4030fe8296248df163f44952"
            )
        );
    }

    #[test]
    fn prf_parts_equals_prf_of_concatenation() {
        for h in HashAlg::ALL {
            let whole = h.prf(b"key", b"abcdefghij");
            assert_eq!(h.prf_parts(b"key", &[b"abc", b"", b"defg", b"hij"]), whole);
            assert_eq!(whole.len(), h.output_len());
            assert_eq!(prf(h, b"key", b"abcdefghij"), whole);
        }
    }

    /// FIPS 180 / RFC 1321 "abc" digests.
    #[test]
    fn hash_known_answers_and_lengths() {
        let want = [
            (HashAlg::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (HashAlg::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                HashAlg::Sha256,
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                HashAlg::Sha384,
                "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
                 8086072ba1e7cc2358baeca134c825a7",
            ),
        ];
        for (h, digest) in want {
            assert_eq!(h.hash(b"abc"), unhex(digest), "{h:?}");
            assert_eq!(hash(h, b"abc").len(), h.output_len());
            assert_eq!(h.hash_parts(&[b"a", b"bc"]), unhex(digest));
            assert_eq!(h.message_digest().size(), h.output_len());
        }
    }

    #[test]
    fn empty_key_hmac_works() {
        // OpenSSL 3 rejects a zero-length MAC key (`openssl dgst -sha1 -mac HMAC -macopt key:`
        // fails); prf_parts substitutes the equivalent one-zero-byte key. Expected value from
        // `python3 -c "import hmac,hashlib;print(hmac.new(b'',b'',hashlib.sha1).hexdigest())"`.
        assert_eq!(
            HashAlg::Sha1.prf(b"", b""),
            unhex("fbdb1d1b18aa6c08324b7d64b71fb76370690e1d")
        );
    }

    #[test]
    fn attribute_values_and_ios_names_round_trip() {
        for (h, v, name) in [
            (HashAlg::Md5, 1, "md5"),
            (HashAlg::Sha1, 2, "sha"),
            (HashAlg::Sha256, 4, "sha256"),
            (HashAlg::Sha384, 5, "sha384"),
        ] {
            assert_eq!(h.attr_value(), v);
            assert_eq!(HashAlg::from_attr(v), Some(h));
            assert_eq!(h.ios_name(), name);
            assert_eq!(HashAlg::from_ios_name(name), Some(h));
        }
        assert_eq!(HashAlg::from_attr(3), None);
        assert_eq!(HashAlg::from_attr(6), None);
        assert_eq!(HashAlg::from_ios_name("sha1"), None);
    }
}
