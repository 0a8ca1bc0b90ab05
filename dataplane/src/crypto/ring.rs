//! The ring backend: AES-GCM (RFC 4106) only.
//!
//! ring's AES-GCM (BoringSSL's assembly: AES-NI, PCLMULQDQ, AVX/VAES when present) is the
//! fastest AEAD available to this crate on x86-64. ring has no CBC and no DES, so the
//! non-AEAD transforms stay with [`super::rustcrypto`]. A composite "ring HMAC + RustCrypto
//! CBC" was measured and not built: ring's HMAC-SHA1 (portable SHA-1) took 3.8 us for 1428
//! bytes against 0.86 us for RustCrypto's (SHA-NI), and HMAC-SHA-256 was level (0.95 / 0.89
//! us), so it would gain nothing.
//!
//! Packets are sealed with `LessSafeKey::seal_in_place_separate_tag` over the payload, and
//! opened with `LessSafeKey::open_in_place` over payload || ICV, which ESP keeps contiguous.
//! ring authenticates while it decrypts and, on a bad tag, returns an error without handing
//! the plaintext back; the ESP layer drops the packet and never forwards those bytes.
//!
//! Key material: ring does not zeroize its expanded AES key schedule or GHASH key when a
//! `LessSafeKey` is dropped (it offers no hook for it), so the round keys of a deleted SA stay
//! in freed heap memory until it is reused. The 4-byte salt kept here is wiped on drop. Use
//! the `rustcrypto` backend where that residue matters.

use std::fmt;

use ::ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_256_GCM};
use zeroize::Zeroize;

use super::layout::{fail_closed, gcm_aad, EspRanges};
use super::rustcrypto::check_key_len;
use super::{Backend, CryptoError, Encryption, EspCipher, Integrity, Transform};

/// The ring backend (`backend = "ring"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Ring;

/// The one instance the registry hands out.
pub static RING: Ring = Ring;

impl Backend for Ring {
    fn name(&self) -> &'static str {
        "ring"
    }

    fn supports(&self, transform: Transform) -> bool {
        matches!(
            transform.encryption,
            Encryption::Gcm128 | Encryption::Gcm256
        ) && transform.integrity == Integrity::None
    }

    fn cipher(
        &self,
        transform: Transform,
        enc_key: &[u8],
        auth_key: &[u8],
    ) -> Result<Box<dyn EspCipher>, CryptoError> {
        if !self.supports(transform) {
            return Err(CryptoError::Unsupported(transform, self.name()));
        }
        check_key_len(transform.encryption.key_len(), enc_key)?;
        check_key_len(0, auth_key)?;
        let algorithm = match transform.encryption {
            Encryption::Gcm128 => &AES_128_GCM,
            _ => &AES_256_GCM,
        };
        let (aes_key, salt_bytes) = enc_key.split_at(enc_key.len() - 4);
        let key = UnboundKey::new(algorithm, aes_key).map_err(|_| CryptoError::BadKeyLength {
            want: transform.encryption.key_len(),
            got: enc_key.len(),
        })?;
        let mut salt = [0u8; 4];
        salt.copy_from_slice(salt_bytes);
        Ok(Box::new(RingGcm {
            transform,
            key: LessSafeKey::new(key),
            salt,
        }))
    }
}

/// An AES-GCM SA on ring.
struct RingGcm {
    transform: Transform,
    key: LessSafeKey,
    salt: [u8; 4],
}

impl Drop for RingGcm {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl fmt::Debug for RingGcm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ring {} <keys redacted>", self.transform)
    }
}

impl RingGcm {
    /// salt || IV. Each (key, IV) pair is used once: the ESP layer writes a fresh IV (the
    /// sequence number) into every packet.
    #[inline]
    fn nonce(&self, esp: &[u8]) -> Nonce {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.salt);
        nonce[4..].copy_from_slice(&esp[8..16]);
        Nonce::assume_unique_for_key(nonce)
    }
}

impl EspCipher for RingGcm {
    fn transform(&self) -> Transform {
        self.transform
    }

    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>) {
        let Some(r) = EspRanges::of(self.transform, esp.len()) else {
            fail_closed(esp, self.transform);
            return;
        };
        let nonce = self.nonce(esp);
        let mut aad_buf = [0u8; 12];
        let aad_len = gcm_aad(esp, esn_hi, &mut aad_buf);
        let (body, icv) = esp.split_at_mut(r.icv);
        let sealed = self.key.seal_in_place_separate_tag(
            nonce,
            Aad::from(&aad_buf[..aad_len]),
            &mut body[r.payload..],
        );
        match sealed {
            Ok(tag) => icv.copy_from_slice(tag.as_ref()),
            // Only for payloads beyond GCM's limit: cannot happen for a packet.
            Err(_) => fail_closed(esp, self.transform),
        }
    }

    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError> {
        let r = EspRanges::of(self.transform, esp.len()).ok_or(CryptoError::BadLength)?;
        let nonce = self.nonce(esp);
        let mut aad_buf = [0u8; 12];
        let aad_len = gcm_aad(esp, esn_hi, &mut aad_buf);
        self.key
            .open_in_place(nonce, Aad::from(&aad_buf[..aad_len]), &mut esp[r.payload..])
            .map(|_| ())
            .map_err(|_| CryptoError::AuthFailed)
    }
}
