//! Encrypt-then-MAC ESP: a CBC (or null) cipher followed by a truncated HMAC ICV, shared by
//! the backends that bring only the block cipher.
//!
//! Seal encrypts the payload range in place with the IV from the packet, then writes the ICV
//! over SPI .. end of ciphertext (|| seq_hi with ESN). Open checks the lengths, verifies the
//! ICV in constant time, and only then decrypts (RFC 4303 section 3.4.4).

use std::fmt;

use super::layout::{fail_closed, EspRanges};
use super::rustcrypto::HmacIcv;
use super::{CryptoError, Encryption, EspCipher, Transform};

/// A block cipher in CBC mode with the SA's key expanded, working in place.
pub(crate) trait CbcEngine: Send + Sync {
    /// Encrypts `data` (a whole number of blocks) with `iv` (one block).
    fn encrypt(&self, iv: &[u8], data: &mut [u8]);
    /// Decrypts `data` (a whole number of blocks) with `iv` (one block).
    fn decrypt(&self, iv: &[u8], data: &mut [u8]);
}

/// A non-AEAD SA: CBC (or null) encryption followed by an optional truncated HMAC.
pub(crate) struct CbcHmacCipher<E> {
    transform: Transform,
    cbc: E,
    mac: Option<HmacIcv>,
    backend: &'static str,
}

impl<E> fmt::Debug for CbcHmacCipher<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} <keys redacted>", self.backend, self.transform)
    }
}

impl<E: CbcEngine> CbcHmacCipher<E> {
    /// `mac` must be `Some` exactly when `transform.integrity` is not `None`.
    pub(crate) fn new(
        transform: Transform,
        cbc: E,
        mac: Option<HmacIcv>,
        backend: &'static str,
    ) -> Self {
        debug_assert_eq!(mac.is_some(), transform.icv_len() > 0);
        CbcHmacCipher {
            transform,
            cbc,
            mac,
            backend,
        }
    }

    /// The ranges of `esp`, if its length fits the transform (room for header, IV and ICV,
    /// and a whole number of cipher blocks to encrypt).
    #[inline]
    fn ranges(&self, esp_len: usize) -> Option<EspRanges> {
        let r = EspRanges::of(self.transform, esp_len)?;
        let block = match self.transform.encryption {
            Encryption::Null => 1,
            e => e.block_len(),
        };
        r.payload_len().is_multiple_of(block).then_some(r)
    }
}

impl<E: CbcEngine> EspCipher for CbcHmacCipher<E> {
    fn transform(&self) -> Transform {
        self.transform
    }

    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>) {
        let Some(r) = self.ranges(esp.len()) else {
            fail_closed(esp, self.transform);
            return;
        };
        let (head, rest) = esp.split_at_mut(r.payload);
        let iv = &head[8..];
        self.cbc.encrypt(iv, &mut rest[..r.payload_len()]);
        if let Some(mac) = &self.mac {
            let (authenticated, icv) = esp.split_at_mut(r.icv);
            mac.compute(authenticated, esn_hi, icv);
        }
    }

    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError> {
        let r = self.ranges(esp.len()).ok_or(CryptoError::BadLength)?;
        if let Some(mac) = &self.mac {
            let (authenticated, icv) = esp.split_at(r.icv);
            if !mac.verify(authenticated, esn_hi, icv) {
                return Err(CryptoError::AuthFailed);
            }
        }
        let (head, rest) = esp.split_at_mut(r.payload);
        let iv = &head[8..];
        self.cbc.decrypt(iv, &mut rest[..r.payload_len()]);
        Ok(())
    }
}
