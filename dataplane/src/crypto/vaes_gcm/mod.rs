//! The `vaes` backend: AES-GCM (RFC 4106) in Rust with AVX-512, VAES and VPCLMULQDQ
//! intrinsics, built for small ESP packets.
//!
//! A library's one-shot GCM call pays a fixed cost per packet (dispatch, a context
//! initialised, updated, finalised and wiped) that dominates at 64 bytes, where the work is
//! only 6 AES blocks and 7 GHASH blocks. This kernel ([`kernel`]) does a packet of up to 224
//! bytes in one pass: the counter blocks, four per 512-bit register, go through the AES rounds
//! while the AAD and length blocks are multiplied by their hash-key powers; then the
//! ciphertext blocks are multiplied by theirs, everything is summed unreduced and reduced
//! once. Longer packets go 16 blocks per reduction.
//!
//! The CPU features are detected once ([`cpu_has_features`]); without them
//! [`Backend::supports`] is false and the registry falls through to the next backend. A
//! [`VaesGcm`] is only built after that check, which is what makes the kernel calls sound.
//! On other architectures the backend exists but supports nothing.
//!
//! Per SA, one 512-byte allocation, 64-byte aligned (8 cache lines):
//!
//! ```text
//! line 0      salt, transform | round keys 0..2
//! lines 0-2   AES-128 round keys 0..10   (bytes 16..192)
//! lines 0-3   AES-256 round keys 0..14   (bytes 16..256)
//! lines 4-7   hash-key powers H^16 .. H^1 (bytes 256..512; H^1 is the last 16 bytes)
//! ```
//!
//! A packet of c ciphertext blocks (c <= 14) reads H^(c+2) .. H^1, the last 16 (c + 2)
//! bytes. So a 64-byte payload (4 blocks: H^6 .. H^1, bytes 416..512, lines 6 and 7) touches
//! 5 cache lines with AES-128 (lines 0-2, 6, 7) and 6 with AES-256; anything up to 96 bytes
//! (H^8 .. H^1) the same. [`EspCipher::prefetch`] loads lines 0-3, 6 and 7 (it cannot read
//! the key size before the line holding it has arrived). A 1420-byte packet reads all 8.
//!
//! Opening computes the tag while it decrypts in place; the tag is compared in constant
//! time and, on a mismatch, the decrypted bytes are overwritten before the error is
//! returned. The expanded keys and the salt are zeroized on drop.

#[cfg(target_arch = "x86_64")]
mod kernel;

use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
use super::{
    constant_time::ct_eq,
    layout::{fail_closed, EspRanges},
    rustcrypto::check_key_len,
    Encryption, Integrity,
};
use super::{Backend, CryptoError, EspCipher, Transform};

/// The VAES backend (`backend = "vaes"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Vaes;

/// The one instance the registry hands out.
pub static VAES: Vaes = Vaes;

/// True when this CPU has everything the kernel uses (AVX-512 F/BW/VL, VAES, VPCLMULQDQ,
/// AES-NI, PCLMULQDQ). Detected once.
pub fn cpu_has_features() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx512f")
                && std::is_x86_feature_detected!("avx512bw")
                && std::is_x86_feature_detected!("avx512vl")
                && std::is_x86_feature_detected!("vaes")
                && std::is_x86_feature_detected!("vpclmulqdq")
                && std::is_x86_feature_detected!("aes")
                && std::is_x86_feature_detected!("pclmulqdq")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

impl Backend for Vaes {
    fn name(&self) -> &'static str {
        "vaes"
    }

    fn supports(&self, transform: Transform) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            matches!(
                transform.encryption,
                Encryption::Gcm128 | Encryption::Gcm256
            ) && transform.integrity == Integrity::None
                && cpu_has_features()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = transform;
            false
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
        #[cfg(target_arch = "x86_64")]
        {
            check_key_len(transform.encryption.key_len(), enc_key)?;
            check_key_len(0, auth_key)?;
            Ok(VaesGcm::new(transform, enc_key)?)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (enc_key, auth_key);
            unreachable!("supports() is false off x86-64")
        }
    }
}

/// Payloads up to this many bytes are hashed in a single pass (one GHASH reduction); above
/// it the kernel goes 16 blocks per reduction and no longer beats intel-ipsec-mb, so the
/// `ipsec-mb` backend hands it only packets up to this size (see [`super::ipsec_mb`]).
#[cfg(target_arch = "x86_64")]
pub(crate) const SMALL_MAX: usize = kernel::ONE_CHUNK;

/// An AES-GCM SA: salt, transform and whether the keys are set, then the round keys and
/// hash-key powers (see the module note for the layout and what a packet reads of it).
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
pub(crate) struct VaesGcm {
    salt: [u8; 4],
    transform: Transform,
    /// True once [`VaesGcm::set_key`] expanded a key, which it only does when
    /// [`cpu_has_features`] holds: the kernel is only ever called when this is true.
    keyed: bool,
    keys: kernel::Keys,
}

#[cfg(target_arch = "x86_64")]
const _: () = {
    assert!(std::mem::size_of::<VaesGcm>() == 512);
    assert!(std::mem::offset_of!(VaesGcm, keys) == 16);
};

#[cfg(target_arch = "x86_64")]
impl Drop for VaesGcm {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.keys.rk.zeroize();
        self.keys.h.zeroize();
        self.salt.zeroize();
    }
}

#[cfg(target_arch = "x86_64")]
impl VaesGcm {
    /// A value with no key (every seal and open refused) for `transform`, to be keyed in
    /// place by [`VaesGcm::set_key`].
    pub(crate) const fn unkeyed(transform: Transform) -> VaesGcm {
        VaesGcm {
            salt: [0; 4],
            transform,
            keyed: false,
            keys: kernel::Keys::ZERO,
        }
    }

    /// Expands `enc_key` (AES key || 4-byte salt, length already checked against the
    /// transform) in place, so that no copy of the schedule is left behind. Does nothing and
    /// returns false when the CPU lacks the kernel's features.
    pub(crate) fn set_key(&mut self, enc_key: &[u8]) -> bool {
        if !cpu_has_features() {
            return false;
        }
        let (aes_key, salt) = enc_key.split_at(enc_key.len() - 4);
        self.salt.copy_from_slice(salt);
        // SAFETY: cpu_has_features() is true, checked just above.
        unsafe { self.keys.expand(aes_key) };
        self.keyed = true;
        true
    }

    fn new(transform: Transform, enc_key: &[u8]) -> Result<Box<VaesGcm>, CryptoError> {
        let mut c = Box::new(VaesGcm::unkeyed(transform));
        if !c.set_key(enc_key) {
            return Err(CryptoError::Unsupported(transform, "vaes"));
        }
        Ok(c)
    }

    /// Runs the kernel over `data` in place and returns the tag.
    #[inline]
    fn crypt<const DEC: bool>(
        &self,
        nonce: kernel::Nonce,
        aad: kernel::Aad<'_>,
        data: &mut [u8],
    ) -> [u8; 16] {
        assert!(self.keyed, "vaes: no key");
        // SAFETY: the kernel's CPU features are present: `keyed` is only set by set_key after
        // cpu_has_features() was true, and CPU features do not go away while the process
        // runs.
        unsafe {
            match self.transform.encryption {
                Encryption::Gcm256 => kernel::gcm::<14, DEC>(&self.keys, nonce, aad, data),
                _ => kernel::gcm::<10, DEC>(&self.keys, nonce, aad, data),
            }
        }
    }

    /// The nonce (salt and IV) and AAD (SPI, [ESN high half,] sequence number, RFC 4106
    /// section 5) of the ESP packet `esp`, read as words: the encap path has just written
    /// these header fields, one store each, and a load of the same size at the same place
    /// is forwarded from the store without waiting (see [`kernel::Nonce`]). `esp` is at
    /// least header and IV long (the ranges were checked).
    #[inline]
    fn nonce_and_aad(
        &self,
        esp: &[u8],
        esn_hi: Option<u32>,
    ) -> (kernel::Nonce, kernel::Aad<'static>) {
        let word = |at: usize| u32::from_le_bytes(esp[at..at + 4].try_into().expect("4 bytes"));
        let (spi, seq) = (word(0) as u64, word(4) as u64);
        let nonce = kernel::Nonce {
            salt: u32::from_le_bytes(self.salt),
            iv: u64::from_le_bytes(esp[8..16].try_into().expect("8 bytes")),
        };
        let aad = match esn_hi {
            None => kernel::Aad::Words {
                lo: spi | seq << 32,
                hi: 0,
                len: 8,
            },
            Some(hi) => kernel::Aad::Words {
                lo: spi | (u32::from_le_bytes(hi.to_be_bytes()) as u64) << 32,
                hi: seq,
                len: 12,
            },
        };
        (nonce, aad)
    }

    /// [`EspCipher::seal`] with the ranges already computed. Panics if not keyed.
    #[inline]
    pub(crate) fn seal_ranges(&self, esp: &mut [u8], r: EspRanges, esn_hi: Option<u32>) {
        let (nonce, aad) = self.nonce_and_aad(esp, esn_hi);
        let (payload, icv) = esp[r.payload..].split_at_mut(r.icv - r.payload);
        let tag = self.crypt::<false>(nonce, aad, payload);
        icv.copy_from_slice(&tag);
    }

    /// [`EspCipher::open`] with the ranges already computed. Panics if not keyed.
    #[inline]
    pub(crate) fn open_ranges(
        &self,
        esp: &mut [u8],
        r: EspRanges,
        esn_hi: Option<u32>,
    ) -> Result<(), CryptoError> {
        let (nonce, aad) = self.nonce_and_aad(esp, esn_hi);
        let (payload, icv) = esp[r.payload..].split_at_mut(r.icv - r.payload);
        let tag = self.crypt::<true>(nonce, aad, payload);
        if !ct_eq(&tag, icv) {
            // The payload now holds the decryption of a forged packet: wipe it.
            payload.fill(0);
            return Err(CryptoError::AuthFailed);
        }
        Ok(())
    }

    /// Starts loading what a packet of up to 96 bytes reads (see the module note): salt,
    /// flags and round keys (lines 0-3: AES-128 leaves line 3 unused, but telling the two
    /// apart would mean reading the value before it is in the cache) and the last two lines
    /// of hash-key powers. 6 lines; reads nothing.
    #[inline(always)]
    pub(crate) fn prefetch_small(&self) {
        let base = self as *const VaesGcm as *const u8;
        crate::cache::lines(base, 256);
        crate::cache::lines(base.wrapping_add(512 - 128), 128);
    }
}

#[cfg(target_arch = "x86_64")]
impl EspCipher for VaesGcm {
    #[inline]
    fn transform(&self) -> Transform {
        self.transform
    }

    /// What a packet of up to 96 bytes reads; a longer one loads the remaining hash-key
    /// powers on demand (at most two lines more).
    #[inline]
    fn prefetch(&self, _payload_hint: usize) {
        self.prefetch_small();
    }

    #[inline]
    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>) {
        match EspRanges::of(self.transform, esp.len()) {
            Some(r) => self.seal_ranges(esp, r, esn_hi),
            None => fail_closed(esp, self.transform),
        }
    }

    #[inline]
    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError> {
        let r = EspRanges::of(self.transform, esp.len()).ok_or(CryptoError::BadLength)?;
        self.open_ranges(esp, r, esn_hi)
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
