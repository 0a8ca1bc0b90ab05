//! The intel-ipsec-mb backend: AES-GCM (RFC 4106) through libIPSec_MB's direct GCM API, the
//! library under DPDK's `crypto_aesni_gcm` PMD (FFI in `dpdk-sys`, compiled with the crate's
//! `dpdk` feature).
//!
//! One process-wide `IMB_MGR` is created on first use. It is only a table of function
//! pointers chosen for this CPU (SSE, AVX2, AVX-512/VAES); the direct GCM calls keep all their
//! state in a `gcm_context_data` on the caller's stack (in the shim), so one manager is sound
//! to share between lcores. Per SA, the expanded round and hash keys (`struct gcm_key_data`)
//! live inside the cipher value itself, 64-byte aligned, and are zeroized when the SA is
//! dropped: one allocation, so that the fast path reaches the key schedule from the SA's
//! cipher pointer without a further dependent load, and can prefetch it (see
//! [`crate::cache`]).
//!
//! Payloads of up to 224 bytes do not reach the library: on a CPU with VAES and AVX-512 they
//! go to the VAES kernel ([`super::vaes_gcm`]), whose keys live at the front of the same value
//! (see `ImbGcm` for the figures).
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
#[cfg(target_arch = "x86_64")]
use super::vaes_gcm::{VaesGcm, SMALL_MAX};
use super::{Backend, CryptoError, Encryption, EspCipher, Integrity, Transform};

/// The intel-ipsec-mb backend (`backend = "ipsec-mb"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct IpsecMb;

/// The one instance the registry hands out.
pub static IPSEC_MB: IpsecMb = IpsecMb;

/// The process-wide manager (a dispatch table; see the module note), and where the code it
/// picked for this CPU keeps the low powers of the hash key in `gcm_key_data`.
struct Manager {
    mgr: *mut c_void,
    low_hash_keys: std::ops::Range<usize>,
}

// SAFETY: the manager is written once, by init_mb_mgr_auto, before it is published through the
// OnceLock; afterwards it is only read (function pointers), and the GCM calls made through it
// keep their state in per-call contexts.
unsafe impl Send for Manager {}
// SAFETY: see Send; `low_hash_keys` is a plain value.
unsafe impl Sync for Manager {}

/// Room for the library's `struct gcm_key_data`: 1,008 bytes in intel-ipsec-mb 1.3 (the
/// AES-256 round keys and 48 powers of the hash key for the VAES code), checked against the
/// library's own size when the manager is created.
const KEY_DATA_ROOM: usize = 1024;

/// The expanded keys of one SA, aligned as the library requires.
#[repr(C, align(64))]
struct KeyData([u8; KEY_DATA_ROOM]);

impl KeyData {
    /// Expands the AES key `key` (16 or 32 bytes) into this value with manager `mgr`; false
    /// when the library refuses it (another length).
    fn expand(&mut self, mgr: *mut c_void, key: &[u8]) -> bool {
        // SAFETY: `key` is a live slice of key.len() bytes; self is 64-byte aligned and
        // KEY_DATA_ROOM bytes long, at least sizeof(struct gcm_key_data) (manager_state
        // checked it before any manager is handed out), and the library writes only within
        // it. `mgr` is the initialised manager.
        let rc = unsafe {
            dpdk_sys::shim_imb_gcm_key_expand(
                mgr,
                key.as_ptr(),
                key.len(),
                self.0.as_mut_ptr() as *mut c_void,
            )
        };
        rc == 0
    }
}

/// The manager, or None when the library cannot be used (no manager, or a `gcm_key_data`
/// larger than [`KEY_DATA_ROOM`]: a newer library than this was built for).
fn manager() -> Option<*mut c_void> {
    manager_state().map(|m| m.mgr)
}

/// The bytes of `gcm_key_data` that hold the hash-key powers a packet of up to 16 blocks
/// hashes with (see [`ROUND_KEYS`]); an empty range when the library cannot be used.
#[inline(always)]
fn low_hash_keys() -> std::ops::Range<usize> {
    manager_state().map_or(0..0, |m| m.low_hash_keys.clone())
}

fn manager_state() -> Option<&'static Manager> {
    static MGR: OnceLock<Option<Manager>> = OnceLock::new();
    MGR.get_or_init(|| {
        // SAFETY: returns a compile-time constant of the library's header.
        let key_size = unsafe { dpdk_sys::shim_imb_gcm_key_size() };
        if key_size > KEY_DATA_ROOM {
            log::warn!(
                "%CRYPTO-4-IPSEC_MB: gcm_key_data of {key_size} bytes does not fit the {KEY_DATA_ROOM} reserved: backend disabled"
            );
            return None;
        }
        // SAFETY: allocates and initialises a manager; NULL on failure.
        let m = unsafe { dpdk_sys::shim_imb_gcm_mgr_new() };
        if m.is_null() {
            return None;
        }
        Some(Manager {
            mgr: m,
            low_hash_keys: hash_key_layout(m),
        })
    })
    .as_ref()
}

/// Where the manager's GCM code keeps the hash-key powers, found by expanding a throwaway
/// key and looking where the table ends: the AVX2 and AVX-512 code keeps 8 powers right
/// after the round keys (H^8 first, ending at byte 368), the SSE/AVX code 8 powers and their
/// Karatsuba halves (ending at 496), the VAES code 48 (ending at 1,008, H^1 last). A packet
/// of up to 16 blocks reads at most the last 256 bytes of the table.
fn hash_key_layout(mgr: *mut c_void) -> std::ops::Range<usize> {
    let mut probe = Box::new(KeyData([0; KEY_DATA_ROOM]));
    let end = if !probe.expand(mgr, &[0x5a; 16]) {
        KEY_DATA_ROOM
    } else {
        probe
            .0
            .iter()
            .rposition(|b| *b != 0)
            .map_or(KEY_DATA_ROOM, |i| i + 1)
    };
    let end = end.max(ROUND_KEYS);
    end.saturating_sub(256).max(ROUND_KEYS)..end
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
        let mut salt = [0u8; 4];
        salt.copy_from_slice(salt_bytes);
        // Built zeroed on the heap, then expanded in place: no copy of the key schedule is
        // left behind on the stack.
        let mut cipher = Box::new(ImbGcm {
            #[cfg(target_arch = "x86_64")]
            small: VaesGcm::unkeyed(transform),
            transform,
            mgr,
            key_len: aes_key.len(),
            salt,
            key: KeyData([0; KEY_DATA_ROOM]),
        });
        // Small packets go through the VAES kernel when the CPU has it (see `ImbGcm`).
        #[cfg(target_arch = "x86_64")]
        cipher.small.set_key(enc_key);
        if !cipher.key.expand(mgr, aes_key) {
            return Err(CryptoError::BadKeyLength {
                want: transform.encryption.key_len(),
                got: enc_key.len(),
            });
        }
        Ok(cipher)
    }
}

/// An AES-GCM SA on intel-ipsec-mb, with the VAES kernel for small packets.
///
/// The library's one-shot GCM call costs about 50 ns whatever the size up to a few hundred
/// bytes (dispatch, a context initialised, finalised and wiped): the VAES kernel
/// ([`super::vaes_gcm`]) seals a 64-byte payload in about 35 ns and opens it in about 29, but
/// above [`SMALL_MAX`] (224 bytes, where it needs more than one GHASH reduction) it is level
/// with the library or slower (768 bytes: 82 against 65 ns sealing, 2026-12-02). So payloads
/// up to `SMALL_MAX` bytes go to the kernel and longer ones to the library. On a CPU without
/// VAES/AVX-512 `small` stays unkeyed and everything goes to the library.
///
/// Layout: `small` (512 bytes: its salt, flags, round keys and hash-key powers; it reads
/// nothing else for a small packet), then one line with the fields below, then the library's
/// `struct gcm_key_data`.
#[repr(C)]
struct ImbGcm {
    #[cfg(target_arch = "x86_64")]
    small: VaesGcm,
    transform: Transform,
    mgr: *mut c_void,
    key_len: usize,
    salt: [u8; 4],
    /// The library's `struct gcm_key_data`.
    key: KeyData,
}

// SAFETY: `key` is owned by this value and only read by the GCM calls once built; `mgr` is the
// shared read-only dispatch table (see `Manager`).
unsafe impl Send for ImbGcm {}
// SAFETY: seal/open take &self and only read `key` and `mgr`; all mutable state is per call.
unsafe impl Sync for ImbGcm {}

impl Drop for ImbGcm {
    fn drop(&mut self) {
        // `small` wipes itself (VaesGcm's Drop).
        self.key.0.zeroize();
        self.salt.zeroize();
    }
}

impl ImbGcm {
    /// True when `small` is keyed, i.e. when the CPU has the VAES kernel's features. Asked of
    /// the process-wide detection, not of `small`'s flag: on a CPU without them a packet
    /// reads nothing of `small`, and [`ImbGcm::prefetch`] does not load it (with thousands
    /// of SAs, reading its flag was a cache miss on every packet: 12 % of the worker at
    /// 10,000 tunnels on an EPYC without AVX-512, 2026-12-03).
    #[inline(always)]
    fn has_small(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        return super::vaes_gcm::cpu_has_features();
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// The transform, from the line the packet's path reads anyway: `small`'s first line
    /// where the VAES kernel takes short packets, so that a short packet needs nothing of
    /// the fields line after `small` (one cache miss less per packet with thousands of SAs);
    /// the fields line otherwise, which the library's path reads.
    #[inline(always)]
    fn transform_hot(&self) -> Transform {
        #[cfg(target_arch = "x86_64")]
        if self.has_small() {
            return EspCipher::transform(&self.small);
        }
        self.transform
    }

    fn nonce(&self, esp: &[u8]) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[..4].copy_from_slice(&self.salt);
        n[4..].copy_from_slice(&esp[8..16]);
        n
    }
}

/// The parts of `gcm_key_data` one packet reads, as intel-ipsec-mb 1.3 lays it out: the
/// round keys first (240 bytes for AES-256, fewer for AES-128), then the powers of the hash
/// key, highest first, in a table whose length depends on the code the manager picked for
/// the CPU ([`hash_key_layout`]). A packet of n 16-byte blocks hashes with the n lowest
/// powers (16 at a time for long ones), i.e. the end of the table ([`low_hash_keys`]).
const ROUND_KEYS: usize = 240;

impl EspCipher for ImbGcm {
    fn transform(&self) -> Transform {
        self.transform
    }

    /// What the packet will read: for a short one with the VAES kernel (x86-64 with VAES),
    /// the kernel's lines (6 lines of the 25 the value spans; the transform is read from
    /// the kernel's first line, see [`ImbGcm::transform_hot`]); otherwise what a packet
    /// reads of the library's key schedule, and the fields (7 to 10 lines, by the code the
    /// library picked for the CPU). Not both: 16 lines
    /// per packet, 32 KB for a burst of 32, would fill the L1 cache. `len_hint` is the frame's length, which is a few dozen bytes
    /// more than the payload it holds: a packet near [`SMALL_MAX`] may get the other lines,
    /// which costs it a cache miss and nothing else.
    #[inline]
    fn prefetch(&self, len_hint: usize) {
        // Which path the packet takes is decided without reading the SA (see has_small).
        #[cfg(target_arch = "x86_64")]
        if len_hint <= SMALL_MAX && self.has_small() {
            self.small.prefetch_small();
            return;
        }
        let key = self.key.0.as_ptr();
        let hash = low_hash_keys();
        if hash.start <= ROUND_KEYS {
            // the table follows the round keys (AVX2, AVX-512 without VAES): one run of lines
            crate::cache::lines(key, hash.end);
        } else {
            crate::cache::lines(key, ROUND_KEYS);
            crate::cache::lines(key.wrapping_add(hash.start), hash.len());
        }
        crate::cache::line(&self.mgr as *const *mut c_void as *const u8);
    }

    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>) {
        let transform = self.transform_hot();
        let Some(r) = EspRanges::of(transform, esp.len()) else {
            fail_closed(esp, transform);
            return;
        };
        #[cfg(target_arch = "x86_64")]
        if r.payload_len() <= SMALL_MAX && self.has_small() {
            self.small.seal_ranges(esp, r, esn_hi);
            return;
        }
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
                self.key.0.as_ptr() as *const c_void,
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
        let r = EspRanges::of(self.transform_hot(), esp.len()).ok_or(CryptoError::BadLength)?;
        #[cfg(target_arch = "x86_64")]
        if r.payload_len() <= SMALL_MAX && self.has_small() {
            return self.small.open_ranges(esp, r, esn_hi);
        }
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
                self.key.0.as_ptr() as *const c_void,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash-key powers a packet prefetches are where this CPU's code wrote them: inside
    /// the structure, after the round keys, at most 256 bytes, ending with the table's last
    /// written byte.
    #[test]
    fn the_low_hash_keys_are_the_end_of_the_table_this_cpu_writes() {
        let Some(mgr) = manager() else {
            panic!("intel-ipsec-mb has no manager on this machine");
        };
        let hash = low_hash_keys();
        assert!(
            hash.start >= ROUND_KEYS && hash.end <= KEY_DATA_ROOM,
            "{hash:?}"
        );
        assert!(!hash.is_empty() && hash.len() <= 256, "{hash:?}");
        let mut data = Box::new(KeyData([0; KEY_DATA_ROOM]));
        assert!(data.expand(mgr, &[0xc3; 16]));
        assert_ne!(
            data.0[hash.end - 16..hash.end],
            [0; 16],
            "H^1 is the table's last entry"
        );
        assert!(
            data.0[hash.end..].iter().all(|b| *b == 0),
            "nothing after it"
        );
        #[cfg(target_arch = "x86_64")]
        if !super::super::vaes_gcm::cpu_has_features() {
            assert!(
                hash.end <= 496,
                "without VAES the table has 8 powers: {hash:?}"
            );
        }
    }
}
