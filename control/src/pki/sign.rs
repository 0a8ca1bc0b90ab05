//! The RSA signature primitives of IKEv1 `rsa-sig` authentication (RFC 2409 section 5.1).
//!
//! IKEv1 signs HASH_I / HASH_R *as they are*: the raw PRF output is padded with PKCS#1 v1.5
//! type-1 padding and raised to the private exponent, without the DigestInfo wrapper that
//! ordinary PKCS#1 signatures carry (OpenSSL `RSA_private_encrypt` with
//! `RSA_PKCS1_PADDING`). The peer raises the signature to the public exponent, removes the
//! padding and compares the result with the hash it computed. This is what IOS and
//! strongSwan do for IKEv1.
//!
//! This is the crate's one implementation: [`crate::ike::auth::pkcs1_sign_raw`] and
//! [`crate::ike::auth::pkcs1_verify_raw`] only adapt it to `AuthError`.

use openssl::error::ErrorStack;
use openssl::pkey::{HasPrivate, HasPublic, PKeyRef};
use openssl::rsa::Padding;
use openssl::x509::X509Ref;

/// Signs `hash` (HASH_I or HASH_R) with an RSA private key: PKCS#1 v1.5 type-1 padding, no
/// DigestInfo. The signature is as long as the modulus. Fails when the key is not RSA or
/// the hash does not fit the padding (longer than the modulus minus 11 bytes).
pub fn sign_hash<T: HasPrivate>(key: &PKeyRef<T>, hash: &[u8]) -> Result<Vec<u8>, ErrorStack> {
    let rsa = key.rsa()?;
    let mut out = vec![0u8; rsa.size() as usize];
    let n = rsa.private_encrypt(hash, &mut out, Padding::PKCS1)?;
    out.truncate(n);
    Ok(out)
}

/// Checks an IKEv1 RSA signature made by [`sign_hash`]: `sig` must be exactly as long as
/// the modulus and unpad (PKCS#1 type 1) to exactly `hash`. False for a non-RSA key.
pub fn verify_hash<T: HasPublic>(key: &PKeyRef<T>, hash: &[u8], sig: &[u8]) -> bool {
    let Ok(rsa) = key.rsa() else {
        return false;
    };
    let size = rsa.size() as usize;
    if sig.len() != size {
        return false;
    }
    let mut out = vec![0u8; size];
    match rsa.public_decrypt(sig, &mut out, Padding::PKCS1) {
        Ok(n) => n == hash.len() && openssl::memcmp::eq(&out[..n], hash),
        Err(_) => false,
    }
}

/// [`verify_hash`] with the public key of a certificate (the peer's end-entity certificate).
pub fn verify_hash_cert(cert: &X509Ref, hash: &[u8], sig: &[u8]) -> bool {
    match cert.public_key() {
        Ok(key) => verify_hash(&key, hash, sig),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::pkey::PKey;
    use openssl::rsa::Rsa;

    fn key(bits: u32) -> PKey<openssl::pkey::Private> {
        PKey::from_rsa(Rsa::generate(bits).unwrap()).unwrap()
    }

    #[test]
    fn sign_verify_round_trip_without_digest_info() {
        let k = key(2048);
        // A SHA-1 sized HASH_I, as with an HMAC-SHA1 PRF.
        let hash = [0x5au8; 20];
        let sig = sign_hash(&k, &hash).unwrap();
        assert_eq!(sig.len(), 256);
        assert!(verify_hash(&k, &hash, &sig));

        // The signature opens to the bare hash: PKCS#1 type 1 (00 01 FF.. 00) + hash, no
        // DigestInfo prefix.
        let rsa = k.rsa().unwrap();
        let mut raw = vec![0u8; 256];
        let n = rsa.public_decrypt(&sig, &mut raw, Padding::NONE).unwrap();
        assert_eq!(n, 256);
        assert_eq!(&raw[..2], &[0x00, 0x01]);
        assert_eq!(raw[256 - 21], 0x00);
        assert!(raw[2..256 - 21].iter().all(|&b| b == 0xff));
        assert_eq!(&raw[256 - 20..], &hash);

        // Public key only.
        let public = PKey::public_key_from_der(&k.public_key_to_der().unwrap()).unwrap();
        assert!(verify_hash(&public, &hash, &sig));
    }

    #[test]
    fn wrong_key_hash_or_length_fails() {
        let a = key(2048);
        let b = key(2048);
        let hash = [7u8; 32];
        let sig = sign_hash(&a, &hash).unwrap();
        assert!(
            !verify_hash(&b, &hash, &sig),
            "signature by A accepted with B's key"
        );
        let mut other = hash;
        other[31] ^= 1;
        assert!(!verify_hash(&a, &other, &sig));
        assert!(!verify_hash(&a, &hash[..31], &sig));
        assert!(!verify_hash(&a, &hash, &sig[1..]));
        let mut bad = sig.clone();
        bad[100] ^= 0x40;
        assert!(!verify_hash(&a, &hash, &bad));
        // Not an RSA key.
        let ec = PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .unwrap(),
            )
            .unwrap(),
        )
        .unwrap();
        assert!(!verify_hash(&ec, &hash, &sig));
        assert!(sign_hash(&ec, &hash).is_err());
    }

    #[test]
    fn hash_too_long_for_the_modulus_is_an_error() {
        let k = key(1024);
        assert!(sign_hash(&k, &[1u8; 128 - 10]).is_err());
        assert!(sign_hash(&k, &[1u8; 128 - 11]).is_ok());
    }
}
