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
//! [`crate::cache`]). The SA's salt rides in the spare bytes right after the hash-key table,
//! in the table's last line, and its key size is its type (see `ImbGcm`): a packet reads
//! nothing of the value outside the lines the library reads anyway.
//!
//! On a CPU with VAES and AVX-512, payloads of up to 224 bytes do not reach the library: they
//! go to the VAES kernel ([`super::vaes_gcm`]), whose keys live at the front of the same value
//! (`SplitGcm`; see there for the figures). Elsewhere an SA is the library's part alone.
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
/// picked for this CPU keeps the low powers of the hash key in `gcm_key_data` and leaves
/// spare bytes for the SA's salt.
struct Manager {
    mgr: *mut c_void,
    low_hash_keys: std::ops::Range<usize>,
    /// True for the AVX2 and AVX-512 code's table: 8 powers of the hash key right after the
    /// round keys, H^8 first, of which a packet of n blocks (n < 8) reads only the n last
    /// (H^n .. H^1), so a short packet's prefetch can leave out the lines of the others.
    powers_follow_round_keys: bool,
    /// Where an SA's tail ([`TAIL_LEN`]) goes in its [`KeyData`]: the end of the hash-key
    /// table.
    tail: usize,
}

// SAFETY: the manager is written once, by init_mb_mgr_auto, before it is published through the
// OnceLock; afterwards it is only read (function pointers), and the GCM calls made through it
// keep their state in per-call contexts.
unsafe impl Send for Manager {}
// SAFETY: see Send; the ranges are plain values.
unsafe impl Sync for Manager {}

/// Room for the library's `struct gcm_key_data`: 1,008 bytes in intel-ipsec-mb 1.3 (the
/// AES-256 round keys and 48 powers of the hash key for the VAES code), checked against the
/// library's own size when the manager is created, and the tail ([`TAIL_LEN`]) after it.
const KEY_DATA_ROOM: usize = 1024;

/// The expanded keys of one SA, aligned as the library requires.
#[repr(C, align(64))]
struct KeyData([u8; KEY_DATA_ROOM]);

/// Bytes of the tail: the SA's own field that a packet on the library's path reads, its
/// salt, kept in the spare bytes after the hash-key table ([`Manager::tail`]).
const TAIL_LEN: usize = 4;

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
fn manager() -> Option<&'static Manager> {
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
        let end = hash_table_end(m);
        if end + TAIL_LEN > KEY_DATA_ROOM {
            log::warn!(
                "%CRYPTO-4-IPSEC_MB: the hash-key table ends at byte {end}: no room for an SA's salt: backend disabled"
            );
            return None;
        }
        Some(Manager {
            mgr: m,
            low_hash_keys: end.saturating_sub(256).max(ROUND_KEYS)..end,
            powers_follow_round_keys: end == ROUND_KEYS + 8 * 16,
            tail: end,
        })
    })
    .as_ref()
}

/// The manager of an existing [`ImbGcm`]: one is only built once [`manager`] gave one.
#[inline(always)]
fn live_manager() -> &'static Manager {
    manager().expect("an ipsec-mb SA exists only once the manager does")
}

/// Where the manager's GCM code ends the hash-key table, found by expanding a throwaway key
/// and looking for its last written byte (rounded up to the 16-byte entry): the AVX2 and
/// AVX-512 code keeps 8 powers right after the round keys (H^8 first, ending at byte 368),
/// the SSE/AVX code 8 powers and their Karatsuba halves (ending at 496), the VAES code 48
/// (ending at 1,008, H^1 last). In all three the table ends 16 bytes short of a cache line,
/// so the tail ([`TAIL_LEN`]) placed there shares the table's last line. A packet of up to
/// 16 blocks reads at most the last 256 bytes of the table.
fn hash_table_end(mgr: *mut c_void) -> usize {
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
    end.max(ROUND_KEYS).next_multiple_of(16)
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
        match transform.encryption {
            Encryption::Gcm256 => boxed::<32>(transform, enc_key),
            _ => boxed::<16>(transform, enc_key),
        }
    }
}

/// An SA for an AES key of `KEY` bytes (`enc_key` is that key and the salt, its length
/// checked).
fn boxed<const KEY: usize>(
    transform: Transform,
    enc_key: &[u8],
) -> Result<Box<dyn EspCipher>, CryptoError> {
    // Small packets go through the VAES kernel when the CPU has it (see `SplitGcm`).
    #[cfg(target_arch = "x86_64")]
    if super::vaes_gcm::cpu_has_features() {
        // Built zeroed on the heap, then keyed in place: no copy of a key schedule is left
        // behind on the stack.
        let mut cipher = Box::new(SplitGcm {
            small: VaesGcm::unkeyed(transform),
            lib: ImbGcm::<KEY>::unkeyed(transform),
        });
        cipher.small.set_key(enc_key);
        cipher.lib.set_key(enc_key)?;
        return Ok(cipher);
    }
    let mut cipher = Box::new(ImbGcm::<KEY>::unkeyed(transform));
    cipher.set_key(enc_key)?;
    Ok(cipher)
}

/// An AES-GCM SA on intel-ipsec-mb with an AES key of `KEY` bytes (16 or 32): the library's
/// `struct gcm_key_data`, with the SA's salt in the spare bytes after its hash-key table
/// (the tail, [`TAIL_LEN`] bytes), then the transform on a line of its own (show output
/// reads it, no packet does). The key size is the type's, so that the prefetch knows which
/// lines the round keys take before any of the value has arrived.
///
/// A packet reads the round keys and the low hash-key powers, and on a CPU whose library
/// code is AVX2 or AVX-512 (8 powers after the round keys, the tail in the last powers'
/// line) nothing else: a 64-byte packet with AES-128 reads 5 lines (bytes 0..176 and
/// 288..384), a packet of 8 blocks or more 6 (0..384). Kept in a separate line, the salt and
/// key length had cost one cache miss more per packet with thousands of SAs.
#[repr(C, align(64))]
struct ImbGcm<const KEY: usize> {
    /// The library's `struct gcm_key_data`, and the tail ([`TAIL_LEN`]).
    key: KeyData,
    transform: Transform,
}

// SAFETY: `key` is owned by this value and only read by the GCM calls once built; the
// manager is the shared read-only dispatch table (see `Manager`).
unsafe impl<const KEY: usize> Send for ImbGcm<KEY> {}
// SAFETY: seal/open take &self and only read `key`; all mutable state is per call.
unsafe impl<const KEY: usize> Sync for ImbGcm<KEY> {}

impl<const KEY: usize> Drop for ImbGcm<KEY> {
    fn drop(&mut self) {
        // The round keys, the hash-key powers and the tail's salt.
        self.key.0.zeroize();
    }
}

impl<const KEY: usize> ImbGcm<KEY> {
    /// Bytes of round keys: 11 for AES-128, 15 for AES-256, 16 bytes each.
    const ROUND_KEY_BYTES: usize = (KEY / 4 + 7) * 16;

    /// The transform as a packet needs it (the key size is the type's).
    const TRANSFORM: Transform = Transform {
        encryption: if KEY == 32 {
            Encryption::Gcm256
        } else {
            Encryption::Gcm128
        },
        integrity: Integrity::None,
    };

    /// A value with no key, to be keyed in place by [`ImbGcm::set_key`].
    const fn unkeyed(transform: Transform) -> ImbGcm<KEY> {
        ImbGcm {
            key: KeyData([0; KEY_DATA_ROOM]),
            transform,
        }
    }

    /// Expands `enc_key` (AES key of KEY bytes || 4-byte salt, its length already checked
    /// against the transform) in place and writes the tail.
    fn set_key(&mut self, enc_key: &[u8]) -> Result<(), CryptoError> {
        let m = manager().ok_or(CryptoError::Unsupported(self.transform, "ipsec-mb"))?;
        let (aes_key, salt) = enc_key.split_at(enc_key.len() - 4);
        if aes_key.len() != KEY || !self.key.expand(m.mgr, aes_key) {
            return Err(CryptoError::BadKeyLength {
                want: self.transform.encryption.key_len(),
                got: enc_key.len(),
            });
        }
        // After the expansion, which writes only up to the table's end (the probe's
        // finding, and `the_tail_is_after_everything_the_library_writes` checks it again).
        self.key.0[m.tail..m.tail + TAIL_LEN].copy_from_slice(salt);
        Ok(())
    }

    /// The salt, from the tail.
    #[inline(always)]
    fn salt(&self, m: &Manager) -> [u8; 4] {
        let t = &self.key.0[m.tail..m.tail + TAIL_LEN];
        [t[0], t[1], t[2], t[3]]
    }

    /// The two byte ranges of the value that a packet with a payload of at most
    /// `payload_hint` bytes reads: the round keys, then the hash-key powers it hashes with
    /// and the tail (see `ImbGcm`).
    #[inline(always)]
    fn read_ranges(m: &Manager, payload_hint: usize) -> [std::ops::Range<usize>; 2] {
        if m.powers_follow_round_keys {
            let powers = payload_hint.div_ceil(16).clamp(1, 8);
            [
                0..Self::ROUND_KEY_BYTES,
                m.tail - 16 * powers..m.tail + TAIL_LEN,
            ]
        } else {
            [0..ROUND_KEYS, m.low_hash_keys.start..m.tail + TAIL_LEN]
        }
    }

    /// Starts loading what a packet with a payload of at most `payload_hint` bytes reads
    /// ([`ImbGcm::read_ranges`]).
    #[inline(always)]
    fn prefetch_lib(&self, payload_hint: usize) {
        let key = self.key.0.as_ptr();
        for r in Self::read_ranges(live_manager(), payload_hint) {
            crate::cache::lines(key.wrapping_add(r.start), r.len());
        }
    }

    /// Seals `esp` whose ranges `r` were checked, through the library.
    #[inline]
    fn seal_lib(&self, m: &Manager, esp: &mut [u8], r: EspRanges, esn_hi: Option<u32>) {
        let mut aad = [0u8; 12];
        let aad_len = gcm_aad(esp, esn_hi, &mut aad);
        let nonce = nonce(self.salt(m), esp);
        // The tag goes straight into the ICV field: the ICV is the last 16 bytes, right after
        // the encrypted range, so the two pointers below address disjoint parts of `esp`.
        let (payload, icv) = esp[r.payload..].split_at_mut(r.icv - r.payload);
        debug_assert_eq!(icv.len(), 16);
        // SAFETY: payload, nonce and aad are live buffers of the lengths passed, and icv holds
        // the 16 bytes the library writes the tag into (EspRanges::of left exactly icv_len =
        // 16 bytes after the payload); the key block is valid for the life of self and was
        // expanded by this manager for a key of KEY bytes (set_key checked it); encryption
        // is in place, which the library supports.
        unsafe {
            dpdk_sys::shim_imb_gcm_enc(
                m.mgr,
                KEY,
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

    /// Opens `esp` whose ranges `r` were checked, through the library.
    #[inline]
    fn open_lib(
        &self,
        m: &Manager,
        esp: &mut [u8],
        r: EspRanges,
        esn_hi: Option<u32>,
    ) -> Result<(), CryptoError> {
        let mut aad = [0u8; 12];
        let aad_len = gcm_aad(esp, esn_hi, &mut aad);
        let nonce = nonce(self.salt(m), esp);
        let mut tag = [0u8; 16];
        let payload = &mut esp[r.payload..r.icv];
        // SAFETY: as in seal_lib; decryption in place.
        unsafe {
            dpdk_sys::shim_imb_gcm_dec(
                m.mgr,
                KEY,
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

/// The GCM nonce: the SA's salt and the packet's IV.
fn nonce(salt: [u8; 4], esp: &[u8]) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(&salt);
    n[4..].copy_from_slice(&esp[8..16]);
    n
}

/// The parts of `gcm_key_data` one packet reads, as intel-ipsec-mb 1.3 lays it out: the
/// round keys first (240 bytes of room, for AES-256; AES-128 uses 176), then the powers of
/// the hash key, highest first, in a table whose length depends on the code the manager
/// picked for the CPU ([`hash_table_end`]). A packet of n 16-byte blocks hashes with the n
/// lowest powers (16 at a time for long ones), i.e. the end of the table
/// ([`Manager::low_hash_keys`]).
const ROUND_KEYS: usize = 240;

impl<const KEY: usize> EspCipher for ImbGcm<KEY> {
    fn transform(&self) -> Transform {
        self.transform
    }

    /// What a packet reads of the key schedule, the tail included: 5 to 9 lines by the
    /// packet's length and the code the library picked for the CPU.
    #[inline]
    fn prefetch(&self, payload_hint: usize) {
        self.prefetch_lib(payload_hint);
    }

    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>) {
        let Some(r) = EspRanges::of(Self::TRANSFORM, esp.len()) else {
            fail_closed(esp, Self::TRANSFORM);
            return;
        };
        self.seal_lib(live_manager(), esp, r, esn_hi);
    }

    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError> {
        let r = EspRanges::of(Self::TRANSFORM, esp.len()).ok_or(CryptoError::BadLength)?;
        self.open_lib(live_manager(), esp, r, esn_hi)
    }
}

/// An AES-GCM SA on a CPU with VAES and AVX-512: the VAES kernel for small packets, the
/// library for the rest.
///
/// The library's one-shot GCM call costs about 50 ns whatever the size up to a few hundred
/// bytes (dispatch, a context initialised, finalised and wiped): the VAES kernel
/// ([`super::vaes_gcm`]) seals a 64-byte payload in about 35 ns and opens it in about 29, but
/// above [`SMALL_MAX`] (224 bytes, where it needs more than one GHASH reduction) it is level
/// with the library or slower (768 bytes: 82 against 65 ns sealing, 2026-12-02). So payloads
/// up to `SMALL_MAX` bytes go to the kernel and longer ones to the library.
///
/// Layout: `small` (512 bytes: its salt, transform, round keys and hash-key powers; a small
/// packet reads nothing else, the transform from its first line), then the library's part.
#[cfg(target_arch = "x86_64")]
#[repr(C)]
struct SplitGcm<const KEY: usize> {
    small: VaesGcm,
    lib: ImbGcm<KEY>,
}

#[cfg(target_arch = "x86_64")]
impl<const KEY: usize> EspCipher for SplitGcm<KEY> {
    fn transform(&self) -> Transform {
        self.lib.transform
    }

    /// What the packet will read: for a short one the kernel's lines (6 of `small`'s 8),
    /// otherwise the library's ([`ImbGcm::prefetch`]). Not both: 16 lines per packet, 32 KB
    /// for a burst of 32, would fill the L1 cache.
    #[inline]
    fn prefetch(&self, payload_hint: usize) {
        if payload_hint <= SMALL_MAX {
            self.small.prefetch_small();
        } else {
            self.lib.prefetch_lib(payload_hint);
        }
    }

    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>) {
        let t = ImbGcm::<KEY>::TRANSFORM;
        let Some(r) = EspRanges::of(t, esp.len()) else {
            fail_closed(esp, t);
            return;
        };
        if r.payload_len() <= SMALL_MAX {
            self.small.seal_ranges(esp, r, esn_hi);
            return;
        }
        self.lib.seal_lib(live_manager(), esp, r, esn_hi);
    }

    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError> {
        let r = EspRanges::of(ImbGcm::<KEY>::TRANSFORM, esp.len()).ok_or(CryptoError::BadLength)?;
        if r.payload_len() <= SMALL_MAX {
            return self.small.open_ranges(esp, r, esn_hi);
        }
        self.lib.open_lib(live_manager(), esp, r, esn_hi)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hash-key powers a packet prefetches are where this CPU's code wrote them: inside
    /// the structure, after the round keys, at most 256 bytes, ending with the table's last
    /// written byte; and the tail right after them, in the same line, with nothing the
    /// library writes at or after it.
    #[test]
    fn the_tail_is_after_everything_the_library_writes() {
        let Some(m) = manager() else {
            panic!("intel-ipsec-mb has no manager on this machine");
        };
        let hash = m.low_hash_keys.clone();
        assert!(
            hash.start >= ROUND_KEYS && hash.end <= KEY_DATA_ROOM,
            "{hash:?}"
        );
        assert!(!hash.is_empty() && hash.len() <= 256, "{hash:?}");
        assert_eq!(m.tail, hash.end);
        assert_eq!(
            m.tail / 64,
            (m.tail + TAIL_LEN - 1) / 64,
            "the tail shares the table's last line"
        );
        for seed in [0xc3u8, 0x01, 0xff] {
            let mut data = Box::new(KeyData([0; KEY_DATA_ROOM]));
            assert!(data.expand(m.mgr, &[seed; 16]));
            assert_ne!(
                data.0[hash.end - 16..hash.end],
                [0; 16],
                "H^1 is the table's last entry"
            );
            // Filled with ones, the bytes from the tail on must come back untouched.
            for key_len in [16, 32] {
                let mut filled = Box::new(KeyData([0xff; KEY_DATA_ROOM]));
                assert!(filled.expand(m.mgr, &vec![seed; key_len]));
                assert!(
                    filled.0[m.tail..].iter().all(|b| *b == 0xff),
                    "{key_len}-byte key: the library wrote at or after the tail"
                );
            }
            assert!(
                data.0[hash.end..].iter().all(|b| *b == 0),
                "nothing after the table"
            );
        }
        #[cfg(target_arch = "x86_64")]
        if !super::super::vaes_gcm::cpu_has_features() {
            assert!(
                hash.end <= 496,
                "without VAES the table has 8 powers: {hash:?}"
            );
        }
    }

    /// What the prefetch loads is all a packet reads: with every other byte of the value
    /// changed, a packet of each payload length up to 10 blocks seals to the same bytes, and
    /// opens, for both key sizes (so a packet never waits for a line that was not
    /// prefetched; the cross-backend tests check the results themselves).
    #[test]
    fn a_packet_reads_only_what_its_prefetch_loads() {
        fn check<const KEY: usize>() {
            let m = manager().unwrap();
            let enc_key: Vec<u8> = (0..KEY as u8 + 4).collect();
            let keyed = || {
                let mut c = Box::new(ImbGcm::<KEY>::unkeyed(ImbGcm::<KEY>::TRANSFORM));
                c.set_key(&enc_key).unwrap();
                c
            };
            let clean = keyed();
            assert_eq!(clean.salt(m), enc_key[KEY..]);
            for payload in 1..=160usize {
                let mut poisoned = keyed();
                let read = ImbGcm::<KEY>::read_ranges(m, payload);
                for (i, b) in poisoned.key.0.iter_mut().enumerate() {
                    if !read.iter().any(|r| r.contains(&i)) {
                        *b ^= 0x5a;
                    }
                }
                let mut want: Vec<u8> = (0..16 + payload + 16).map(|i| i as u8).collect();
                want[..8].copy_from_slice(&[0, 0, 0x10, 0x01, 0, 0, 0, 7]);
                let mut got = want.clone();
                clean.seal(&mut want, None);
                poisoned.seal(&mut got, None);
                assert_eq!(got, want, "AES-{}: payload {payload}: seal", KEY * 8);
                assert_eq!(
                    poisoned.open(&mut got, None),
                    Ok(()),
                    "payload {payload}: open"
                );
            }
        }
        check::<16>();
        check::<32>();
    }
}
