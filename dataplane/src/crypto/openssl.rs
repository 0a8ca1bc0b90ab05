//! The OpenSSL backend: DES-CBC and 3DES-CBC (esp-des, esp-3des) from the system libcrypto.
//!
//! RustCrypto's `des` is a portable, bit-sliced-style implementation; OpenSSL's DES is three
//! to four times faster on the same core (see `default_backend`), and the reference
//! configurations run `esp-des`/`esp-3des esp-md5-hmac`. Only DES is taken from OpenSSL:
//! AES-GCM is faster in ring, AES-CBC is AES-NI-bound in RustCrypto already, and the HMACs
//! stay RustCrypto's (SHA-NI), through the shared encrypt-then-MAC composition.
//!
//! OpenSSL's `EVP` interface needs a mutable context per operation, which would mean a
//! context per packet or a lock per SA. The `DES_*` functions (deprecated in OpenSSL 3 but
//! still exported by libcrypto.so.3) work from an immutable key schedule expanded once per
//! SA, like every other backend here; the IV is a per-call copy on the stack.
//!
//! Key material: the key schedules are wiped on drop.

use std::ffi::{c_int, c_long};
use std::fmt;

use zeroize::Zeroize;

use super::cbc_hmac::{CbcEngine, CbcHmacCipher};
use super::rustcrypto::{check_key_len, HmacIcv};
use super::{Backend, CryptoError, Encryption, EspCipher, Integrity, Transform};

/// OpenSSL's `DES_key_schedule`: 16 round keys of 8 bytes (`DES_LONG` is `unsigned int`).
#[repr(C)]
#[derive(Clone, Copy)]
struct DesKeySchedule {
    ks: [[u32; 2]; 16],
}

const DES_ENCRYPT: c_int = 1;
const DES_DECRYPT: c_int = 0;

#[link(name = "crypto")]
extern "C" {
    fn DES_set_key_unchecked(key: *const [u8; 8], schedule: *mut DesKeySchedule);
    fn DES_ncbc_encrypt(
        input: *const u8,
        output: *mut u8,
        length: c_long,
        schedule: *mut DesKeySchedule,
        ivec: *mut [u8; 8],
        enc: c_int,
    );
    fn DES_ede3_cbc_encrypt(
        input: *const u8,
        output: *mut u8,
        length: c_long,
        ks1: *mut DesKeySchedule,
        ks2: *mut DesKeySchedule,
        ks3: *mut DesKeySchedule,
        ivec: *mut [u8; 8],
        enc: c_int,
    );
}

/// The OpenSSL backend (`backend = "openssl"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenSsl;

/// The one instance the registry hands out.
pub static OPENSSL: OpenSsl = OpenSsl;

impl Backend for OpenSsl {
    fn name(&self) -> &'static str {
        "openssl"
    }

    fn supports(&self, transform: Transform) -> bool {
        matches!(
            transform.encryption,
            Encryption::Des | Encryption::TripleDes
        )
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
        let mac = match transform.integrity {
            Integrity::None => None,
            integrity => Some(HmacIcv::new(integrity, auth_key)?),
        };
        let mut schedules = DesSchedules {
            triple: transform.encryption == Encryption::TripleDes,
            ks: [DesKeySchedule { ks: [[0; 2]; 16] }; 3],
        };
        for (schedule, key) in schedules.ks.iter_mut().zip(enc_key.chunks_exact(8)) {
            let mut block = [0u8; 8];
            block.copy_from_slice(key);
            // SAFETY: both pointers come from live, exclusively borrowed locals of the exact
            // C types (`const_DES_cblock *` is 8 bytes, `DES_key_schedule *` is #[repr(C)]
            // with the header's layout); the function writes only the schedule.
            unsafe { DES_set_key_unchecked(&block, schedule) };
            block.zeroize();
        }
        Ok(Box::new(CbcHmacCipher::new(
            transform,
            schedules,
            mac,
            self.name(),
        )))
    }
}

/// One (DES) or three (3DES EDE) expanded keys.
struct DesSchedules {
    triple: bool,
    ks: [DesKeySchedule; 3],
}

impl Drop for DesSchedules {
    fn drop(&mut self) {
        for schedule in &mut self.ks {
            schedule.ks.zeroize();
        }
    }
}

impl fmt::Debug for DesSchedules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DesSchedules { <redacted> }")
    }
}

impl DesSchedules {
    #[inline]
    fn run(&self, iv: &[u8], data: &mut [u8], enc: c_int) {
        debug_assert!(data.len().is_multiple_of(8) && iv.len() == 8);
        let mut ivec = [0u8; 8];
        ivec.copy_from_slice(iv);
        let ptr = data.as_mut_ptr();
        let len = data.len() as c_long;
        // OpenSSL takes the schedules as non-const pointers but only reads them.
        let ks = |i: usize| &self.ks[i] as *const DesKeySchedule as *mut DesKeySchedule;
        if self.triple {
            // SAFETY: `ptr`/`len` describe the caller's exclusively borrowed slice, a whole
            // number of 8-byte blocks (checked by CbcHmacCipher before calling); OpenSSL's CBC
            // reads each input block before writing the same output block, so in place
            // (input == output) is supported. The schedules are initialised and only read.
            // `ivec` is a live local the function updates.
            unsafe { DES_ede3_cbc_encrypt(ptr, ptr, len, ks(0), ks(1), ks(2), &mut ivec, enc) };
        } else {
            // SAFETY: as above, with one schedule.
            unsafe { DES_ncbc_encrypt(ptr, ptr, len, ks(0), &mut ivec, enc) };
        }
    }
}

impl CbcEngine for DesSchedules {
    fn encrypt(&self, iv: &[u8], data: &mut [u8]) {
        self.run(iv, data, DES_ENCRYPT);
    }

    fn decrypt(&self, iv: &[u8], data: &mut [u8]) {
        self.run(iv, data, DES_DECRYPT);
    }
}
