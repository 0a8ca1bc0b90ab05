//! The RustCrypto backend: every ESP transform, in pure Rust.
//!
//! - AES-GCM (RFC 4106) with the `aes-gcm` crate: nonce = 4-byte salt (the last 4 bytes of the
//!   configured key) || the 8-byte IV from the packet; AAD = SPI || seq, or SPI || seq_hi ||
//!   seq_lo with extended sequence numbers; 16-byte ICV. The tag is checked before the
//!   keystream is applied.
//! - AES-CBC (RFC 3602), 3DES-CBC and DES-CBC (RFC 2451, RFC 2405) with the `aes` and `des`
//!   block ciphers and CBC done here, in place, without allocation. Decryption runs eight
//!   blocks at a time through the cipher's parallel path (AES-NI pipelines them).
//! - esp-null (RFC 2410).
//! - HMAC-SHA1-96, HMAC-MD5-96 and HMAC-SHA-256-128 (RFC 2404, 2403, 4868) as the ICV of the
//!   non-AEAD ciphers, over SPI .. end of ciphertext, with seq_hi appended when ESN is used
//!   (RFC 4303 section 3.3.2.1). The keyed inner/outer hash states are computed once per SA
//!   and cloned per packet (a copy on the stack). The ICV is verified in constant time
//!   before anything is decrypted (encrypt-then-MAC).
//!
//! An encryption-only transform (a CBC cipher with [`Integrity::None`]) is accepted here so
//! that the confidentiality-only vectors of RFC 3602 can be checked; the configuration refuses
//! it through [`Transform::is_valid`].
//!
//! Key material: `aes`, `aes-gcm` and `des` are built with their `zeroize` feature and wipe
//! their key schedules on drop; the per-SA HMAC states and the GCM salt are wiped by this
//! module. The per-packet copies of the HMAC state live on the stack only for the duration of
//! one ICV computation.

use std::fmt;

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit};
use cipher::inout::InOutBuf;
use cipher::{Block, BlockDecrypt, BlockEncrypt};
use des::{Des, TdesEde3};
use hmac::{Hmac, Mac};
use zeroize::Zeroize;

use super::cbc_hmac::{CbcEngine, CbcHmacCipher};
use super::constant_time::ct_eq;
use super::layout::{fail_closed, gcm_aad, EspRanges};
use super::{Backend, CryptoError, Encryption, EspCipher, Integrity, Transform};

/// The RustCrypto backend (`backend = "rustcrypto"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

/// The one instance the registry hands out.
pub static RUSTCRYPTO: RustCrypto = RustCrypto;

impl Backend for RustCrypto {
    fn name(&self) -> &'static str {
        "rustcrypto"
    }

    fn supports(&self, transform: Transform) -> bool {
        if transform.encryption.is_aead() {
            transform.integrity == Integrity::None
        } else {
            true
        }
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
        check_key_len(transform.integrity.key_len(), auth_key)?;
        if transform.encryption.is_aead() {
            return Ok(Box::new(GcmCipher::new(transform, enc_key)?));
        }
        let cbc = CbcKey::new(transform.encryption, enc_key)?;
        let mac = match transform.integrity {
            Integrity::None => None,
            integrity => Some(HmacIcv::new(integrity, auth_key)?),
        };
        Ok(Box::new(CbcHmacCipher::new(
            transform,
            cbc,
            mac,
            self.name(),
        )))
    }
}

/// `Err(BadKeyLength)` unless `key` is exactly `want` bytes.
pub(crate) fn check_key_len(want: usize, key: &[u8]) -> Result<(), CryptoError> {
    if key.len() == want {
        Ok(())
    } else {
        Err(CryptoError::BadKeyLength {
            want,
            got: key.len(),
        })
    }
}

// ---------------------------------------------------------------------------------------
// HMAC ICV
// ---------------------------------------------------------------------------------------

/// A keyed HMAC state, wiped on drop.
///
/// `Hmac<D>` (hmac 0.12 over sha1/sha2/md-5 0.10) stores the working, inner-pad and outer-pad
/// digest states and a block buffer: integer arrays and counters, with no heap pointer and no
/// `Drop` of its own. The crates offer no way to wipe them, so this wrapper zeroes the bytes.
struct KeyedHmac<M>(M);

impl<M> Drop for KeyedHmac<M> {
    fn drop(&mut self) {
        // SAFETY: `M` is only ever one of `Hmac<Sha1>`, `Hmac<Md5>`, `Hmac<Sha256>` (the
        // constructor below is the only one). Those are flat structs of integer arrays and
        // integers (no references, no heap data, no Drop impl), for which all-zero bytes are a
        // valid value; the pointer comes from `&mut self.0`, so it is valid and aligned, and
        // the value is not read again after this point.
        unsafe { zeroize::zeroize_flat_type(&mut self.0 as *mut M) }
    }
}

/// The precomputed HMAC of one SA, by algorithm.
enum HmacState {
    Sha1(KeyedHmac<Hmac<sha1::Sha1>>),
    Md5(KeyedHmac<Hmac<md5::Md5>>),
    Sha256(KeyedHmac<Hmac<sha2::Sha256>>),
}

/// The ESP integrity check (truncated HMAC) of one SA: the key is absorbed once, and each
/// packet clones the keyed state.
///
/// Public so that tests can run the HMAC vectors of RFC 2202 / RFC 4231, whose keys are not
/// always the length ESP uses, through the very code that computes ESP ICVs. ESP SAs get
/// their `HmacIcv` from [`RustCrypto::cipher`], which insists on the RFC key lengths.
pub struct HmacIcv {
    integrity: Integrity,
    state: HmacState,
}

impl fmt::Debug for HmacIcv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HmacIcv {{ {:?}, key: <redacted> }}", self.integrity)
    }
}

impl HmacIcv {
    /// Keys an HMAC for `integrity` with a key of any non-zero length.
    pub fn new(integrity: Integrity, key: &[u8]) -> Result<HmacIcv, CryptoError> {
        if key.is_empty() {
            return Err(CryptoError::BadKeyLength {
                want: integrity.key_len(),
                got: 0,
            });
        }
        let state = match integrity {
            Integrity::None => {
                return Err(CryptoError::Unsupported(
                    Transform {
                        encryption: Encryption::Null,
                        integrity,
                    },
                    "rustcrypto",
                ))
            }
            // `new_from_slice` cannot fail for HMAC (any key length is valid).
            Integrity::Sha1 => HmacState::Sha1(KeyedHmac(
                <Hmac<_> as Mac>::new_from_slice(key).map_err(|_| bad_hmac_key(integrity, key))?,
            )),
            Integrity::Md5 => HmacState::Md5(KeyedHmac(
                <Hmac<_> as Mac>::new_from_slice(key).map_err(|_| bad_hmac_key(integrity, key))?,
            )),
            Integrity::Sha256 => HmacState::Sha256(KeyedHmac(
                <Hmac<_> as Mac>::new_from_slice(key).map_err(|_| bad_hmac_key(integrity, key))?,
            )),
        };
        Ok(HmacIcv { integrity, state })
    }

    /// The algorithm.
    pub fn integrity(&self) -> Integrity {
        self.integrity
    }

    /// Writes the truncated ICV of `data` (followed by `esn_hi` in network order when given)
    /// into `icv`, which must be `integrity.icv_len()` bytes long.
    ///
    /// # Panics
    /// If `icv` is longer than the full HMAC output (20, 16 or 32 bytes).
    #[inline]
    pub fn compute(&self, data: &[u8], esn_hi: Option<u32>, icv: &mut [u8]) {
        let n = icv.len();
        match &self.state {
            HmacState::Sha1(k) => icv.copy_from_slice(&keyed(&k.0, data, esn_hi)[..n]),
            HmacState::Md5(k) => icv.copy_from_slice(&keyed(&k.0, data, esn_hi)[..n]),
            HmacState::Sha256(k) => icv.copy_from_slice(&keyed(&k.0, data, esn_hi)[..n]),
        }
    }

    /// True when `icv` is the ICV of `data` (constant-time comparison).
    #[inline]
    pub fn verify(&self, data: &[u8], esn_hi: Option<u32>, icv: &[u8]) -> bool {
        let mut expected = [0u8; 32];
        let expected = &mut expected[..self.integrity.icv_len()];
        self.compute(data, esn_hi, expected);
        icv.len() == expected.len() && ct_eq(expected, icv)
    }
}

fn bad_hmac_key(integrity: Integrity, key: &[u8]) -> CryptoError {
    CryptoError::BadKeyLength {
        want: integrity.key_len(),
        got: key.len(),
    }
}

/// The full HMAC of `data || esn_hi` from a keyed state.
#[inline]
fn keyed<M: Mac + Clone>(state: &M, data: &[u8], esn_hi: Option<u32>) -> hmac::digest::Output<M> {
    let mut mac = state.clone();
    mac.update(data);
    if let Some(hi) = esn_hi {
        mac.update(&hi.to_be_bytes());
    }
    mac.finalize().into_bytes()
}

// ---------------------------------------------------------------------------------------
// CBC (and null) + HMAC
// ---------------------------------------------------------------------------------------

/// The expanded key of a CBC cipher, or nothing for esp-null.
enum CbcKey {
    Null,
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
    Des(Des),
    TripleDes(TdesEde3),
}

impl CbcKey {
    fn new(encryption: Encryption, key: &[u8]) -> Result<CbcKey, CryptoError> {
        let bad = |_| CryptoError::BadKeyLength {
            want: encryption.key_len(),
            got: key.len(),
        };
        Ok(match encryption {
            Encryption::Null => CbcKey::Null,
            Encryption::AesCbc128 => CbcKey::Aes128(Aes128::new_from_slice(key).map_err(bad)?),
            Encryption::AesCbc192 => CbcKey::Aes192(Aes192::new_from_slice(key).map_err(bad)?),
            Encryption::AesCbc256 => CbcKey::Aes256(Aes256::new_from_slice(key).map_err(bad)?),
            Encryption::Des => CbcKey::Des(Des::new_from_slice(key).map_err(bad)?),
            Encryption::TripleDes => CbcKey::TripleDes(TdesEde3::new_from_slice(key).map_err(bad)?),
            Encryption::Gcm128 | Encryption::Gcm256 => {
                unreachable!("AEAD transforms are built by GcmCipher")
            }
        })
    }
}

impl CbcEngine for CbcKey {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) {
        match self {
            CbcKey::Null => {}
            CbcKey::Aes128(c) => cbc_encrypt(c, iv, data),
            CbcKey::Aes192(c) => cbc_encrypt(c, iv, data),
            CbcKey::Aes256(c) => cbc_encrypt(c, iv, data),
            CbcKey::Des(c) => cbc_encrypt(c, iv, data),
            CbcKey::TripleDes(c) => cbc_encrypt(c, iv, data),
        }
    }

    fn decrypt(&self, iv: &[u8], data: &mut [u8]) {
        match self {
            CbcKey::Null => {}
            CbcKey::Aes128(c) => cbc_decrypt(c, iv, data),
            CbcKey::Aes192(c) => cbc_decrypt(c, iv, data),
            CbcKey::Aes256(c) => cbc_decrypt(c, iv, data),
            CbcKey::Des(c) => cbc_decrypt(c, iv, data),
            CbcKey::TripleDes(c) => cbc_decrypt(c, iv, data),
        }
    }
}

/// CBC encryption in place. `iv` is one block; `data` is a whole number of blocks.
#[inline]
fn cbc_encrypt<C: BlockEncrypt>(cipher: &C, iv: &[u8], data: &mut [u8]) {
    let mut chain = Block::<C>::clone_from_slice(iv);
    for chunk in data.chunks_exact_mut(C::block_size()) {
        for (byte, prev) in chunk.iter_mut().zip(chain.iter()) {
            *byte ^= prev;
        }
        let block = Block::<C>::from_mut_slice(chunk);
        cipher.encrypt_block(block);
        chain.copy_from_slice(block);
    }
}

/// Blocks decrypted per call of the cipher's parallel path.
const CBC_DECRYPT_BATCH: usize = 8;
/// The largest block handled (AES).
const MAX_BLOCK: usize = 16;

/// CBC decryption in place. Blocks are decrypted in batches (CBC decryption has no chaining
/// dependency), keeping a copy of the batch's ciphertext on the stack for the XOR.
#[inline]
fn cbc_decrypt<C: BlockDecrypt>(cipher: &C, iv: &[u8], data: &mut [u8]) {
    let bs = C::block_size();
    let mut chain = [0u8; MAX_BLOCK];
    chain[..bs].copy_from_slice(iv);
    let mut saved = [0u8; MAX_BLOCK * CBC_DECRYPT_BATCH];
    for group in data.chunks_mut(bs * CBC_DECRYPT_BATCH) {
        let n = group.len();
        saved[..n].copy_from_slice(group);
        let (blocks, _tail) = InOutBuf::from(&mut *group).into_chunks::<C::BlockSize>();
        cipher.decrypt_blocks_inout(blocks);
        for (byte, prev) in group[..bs].iter_mut().zip(&chain[..bs]) {
            *byte ^= prev;
        }
        for (byte, prev) in group[bs..].iter_mut().zip(&saved[..n - bs]) {
            *byte ^= prev;
        }
        chain[..bs].copy_from_slice(&saved[n - bs..n]);
    }
}

// ---------------------------------------------------------------------------------------
// AES-GCM
// ---------------------------------------------------------------------------------------

/// The variants differ in size (AES-256 has more round keys); boxing the larger one would add
/// a pointer chase per packet for no gain, since the whole cipher already lives in one box.
#[allow(clippy::large_enum_variant)]
enum GcmKey {
    Aes128(Aes128Gcm),
    Aes256(Aes256Gcm),
}

/// An AES-GCM SA (RFC 4106).
struct GcmCipher {
    transform: Transform,
    key: GcmKey,
    salt: [u8; 4],
}

impl Drop for GcmCipher {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl fmt::Debug for GcmCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rustcrypto {} <keys redacted>", self.transform)
    }
}

impl GcmCipher {
    fn new(transform: Transform, enc_key: &[u8]) -> Result<GcmCipher, CryptoError> {
        let (aes_key, salt_bytes) = enc_key.split_at(enc_key.len() - 4);
        let bad = |_| CryptoError::BadKeyLength {
            want: transform.encryption.key_len(),
            got: enc_key.len(),
        };
        let key = match transform.encryption {
            Encryption::Gcm128 => GcmKey::Aes128(Aes128Gcm::new_from_slice(aes_key).map_err(bad)?),
            Encryption::Gcm256 => GcmKey::Aes256(Aes256Gcm::new_from_slice(aes_key).map_err(bad)?),
            _ => return Err(CryptoError::Unsupported(transform, "rustcrypto")),
        };
        let mut salt = [0u8; 4];
        salt.copy_from_slice(salt_bytes);
        Ok(GcmCipher {
            transform,
            key,
            salt,
        })
    }

    #[inline]
    fn nonce(&self, esp: &[u8]) -> aes_gcm::Nonce<aes_gcm::aead::consts::U12> {
        let mut nonce = aes_gcm::Nonce::default();
        nonce[..4].copy_from_slice(&self.salt);
        nonce[4..].copy_from_slice(&esp[8..16]);
        nonce
    }
}

impl EspCipher for GcmCipher {
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
        let payload = &mut body[r.payload..];
        let tag = match &self.key {
            GcmKey::Aes128(k) => k.encrypt_in_place_detached(&nonce, &aad_buf[..aad_len], payload),
            GcmKey::Aes256(k) => k.encrypt_in_place_detached(&nonce, &aad_buf[..aad_len], payload),
        };
        match tag {
            Ok(tag) => icv.copy_from_slice(&tag),
            // Only for payloads beyond GCM's 2^36-byte limit: cannot happen for a packet.
            Err(_) => fail_closed(esp, self.transform),
        }
    }

    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError> {
        let r = EspRanges::of(self.transform, esp.len()).ok_or(CryptoError::BadLength)?;
        let nonce = self.nonce(esp);
        let mut aad_buf = [0u8; 12];
        let aad_len = gcm_aad(esp, esn_hi, &mut aad_buf);
        let (body, icv) = esp.split_at_mut(r.icv);
        let payload = &mut body[r.payload..];
        let tag = aes_gcm::Tag::from_slice(icv);
        let result = match &self.key {
            GcmKey::Aes128(k) => {
                k.decrypt_in_place_detached(&nonce, &aad_buf[..aad_len], payload, tag)
            }
            GcmKey::Aes256(k) => {
                k.decrypt_in_place_detached(&nonce, &aad_buf[..aad_len], payload, tag)
            }
        };
        result.map_err(|_| CryptoError::AuthFailed)
    }
}
