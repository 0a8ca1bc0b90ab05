//! The intel-ipsec-mb backend: AES-GCM (RFC 4106) through libIPSec_MB's direct GCM API, the
//! library under DPDK's `crypto_aesni_gcm` PMD (FFI in `dpdk-sys`, compiled with the crate's
//! `dpdk` feature).
//!
//! One process-wide `IMB_MGR` is created on first use. It is only a table of function
//! pointers chosen for this CPU (SSE, AVX2, AVX-512/VAES); the direct GCM calls keep all their
//! state in a `gcm_context_data` on the caller's stack (in the shim), so one manager is sound
//! to share between lcores. Per SA, the expanded round and hash keys live in a 64-byte aligned
//! block allocated once by the shim and wiped (`explicit_bzero`) when the SA is dropped.
//!
//! Decryption computes the tag while it decrypts in place; the tag is then compared in
//! constant time and, on a mismatch, the decrypted bytes are overwritten before the error is
//! returned, so nothing of a forged packet survives.

use std::ffi::c_void;
use std::sync::OnceLock;

use zeroize::Zeroize;

use super::constant_time::ct_eq;
use super::layout::{fail_closed, gcm_aad, EspRanges};
use super::rustcrypto::check_key_len;
use super::{Backend, CryptoError, Encryption, EspCipher, Integrity, Transform};

/// The intel-ipsec-mb backend (`backend = "ipsec-mb"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct IpsecMb;

/// The one instance the registry hands out.
pub static IPSEC_MB: IpsecMb = IpsecMb;

/// The process-wide manager (a dispatch table; see the module note).
struct Manager(*mut c_void);

// SAFETY: the manager is written once, by init_mb_mgr_auto, before it is published through the
// OnceLock; afterwards it is only read (function pointers), and the GCM calls made through it
// keep their state in per-call contexts.
unsafe impl Send for Manager {}
// SAFETY: see Send.
unsafe impl Sync for Manager {}

fn manager() -> Option<*mut c_void> {
    static MGR: OnceLock<Option<Manager>> = OnceLock::new();
    MGR.get_or_init(|| {
        // SAFETY: allocates and initialises a manager; NULL on failure.
        let m = unsafe { dpdk_sys::shim_imb_gcm_mgr_new() };
        (!m.is_null()).then_some(Manager(m))
    })
    .as_ref()
    .map(|m| m.0)
}

impl Backend for IpsecMb {
    fn name(&self) -> &'static str {
        "ipsec-mb"
    }

    fn supports(&self, transform: Transform) -> bool {
        matches!(
            transform.encryption,
            Encryption::Gcm128 | Encryption::Gcm256
        ) && transform.integrity == Integrity::None
            && manager().is_some()
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
        let mgr = manager().ok_or(CryptoError::Unsupported(transform, "ipsec-mb"))?;
        let (aes_key, salt_bytes) = enc_key.split_at(enc_key.len() - 4);
        // SAFETY: aes_key is a live slice of aes_key.len() bytes; the shim copies what it needs
        // into a block it allocates, or returns NULL.
        let key = unsafe { dpdk_sys::shim_imb_gcm_key_new(mgr, aes_key.as_ptr(), aes_key.len()) };
        if key.is_null() {
            return Err(CryptoError::BadKeyLength {
                want: transform.encryption.key_len(),
                got: enc_key.len(),
            });
        }
        let mut salt = [0u8; 4];
        salt.copy_from_slice(salt_bytes);
        Ok(Box::new(ImbGcm {
            transform,
            mgr,
            key,
            key_len: aes_key.len(),
            salt,
        }))
    }
}

/// An AES-GCM SA on intel-ipsec-mb.
struct ImbGcm {
    transform: Transform,
    mgr: *mut c_void,
    /// The shim's `struct gcm_key_data`, owned by this SA.
    key: *mut c_void,
    key_len: usize,
    salt: [u8; 4],
}

// SAFETY: `key` is owned by this value and only read by the GCM calls; `mgr` is the shared
// read-only dispatch table (see `Manager`).
unsafe impl Send for ImbGcm {}
// SAFETY: seal/open take &self and only read `key` and `mgr`; all mutable state is per call.
unsafe impl Sync for ImbGcm {}

impl Drop for ImbGcm {
    fn drop(&mut self) {
        // SAFETY: `key` came from shim_imb_gcm_key_new and is freed exactly once, here; the
        // shim wipes it first.
        unsafe { dpdk_sys::shim_imb_gcm_key_free(self.key) };
        self.salt.zeroize();
    }
}

impl ImbGcm {
    fn nonce(&self, esp: &[u8]) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(&esp[8..16]);
        n
    }
}

impl EspCipher for ImbGcm {
    fn transform(&self) -> Transform {
        self.transform
    }

    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>) {
        let Some(r) = EspRanges::of(self.transform, esp.len()) else {
            fail_closed(esp, self.transform);
            return;
        };
        let mut aad = [0u8; 12];
        let aad_len = gcm_aad(esp, esn_hi, &mut aad);
        let nonce = self.nonce(esp);
        // The tag goes straight into the ICV field: the ICV is the last 16 bytes, right after
        // the encrypted range, so the two pointers below address disjoint parts of `esp`.
        let (payload, icv) = esp[r.payload..].split_at_mut(r.icv - r.payload);
        debug_assert_eq!(icv.len(), 16);
        // SAFETY: payload, nonce and aad are live buffers of the lengths passed, and icv holds
        // the 16 bytes the library writes the tag into (EspRanges::of left exactly icv_len =
        // 16 bytes after the payload); the key block and manager are valid for the life of
        // self; encryption is in place, which the library supports.
        unsafe {
            dpdk_sys::shim_imb_gcm_enc(
                self.mgr,
                self.key_len,
                self.key,
                payload.as_mut_ptr(),
                payload.len() as u64,
                nonce.as_ptr(),
                aad.as_ptr(),
                aad_len as u64,
                icv.as_mut_ptr(),
            )
        };
    }

    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError> {
        let r = EspRanges::of(self.transform, esp.len()).ok_or(CryptoError::BadLength)?;
        let mut aad = [0u8; 12];
        let aad_len = gcm_aad(esp, esn_hi, &mut aad);
        let nonce = self.nonce(esp);
        let mut tag = [0u8; 16];
        let payload = &mut esp[r.payload..r.icv];
        // SAFETY: as in seal; decryption in place.
        unsafe {
            dpdk_sys::shim_imb_gcm_dec(
                self.mgr,
                self.key_len,
                self.key,
                payload.as_mut_ptr(),
                payload.len() as u64,
                nonce.as_ptr(),
                aad.as_ptr(),
                aad_len as u64,
                tag.as_mut_ptr(),
            )
        };
        if !ct_eq(&tag, &esp[r.icv..]) {
            // The payload now holds the decryption of a forged packet: wipe it.
            esp[r.payload..r.icv].fill(0);
            return Err(CryptoError::AuthFailed);
        }
        Ok(())
    }
}
