//! ESP transforms behind a trait, with more than one backend.
//!
//! An SA's keys are expanded once, when the SA is installed, into a [`EspCipher`] built by a
//! [`Backend`]. The fast path then calls [`EspCipher::seal`] / [`EspCipher::open`] on the
//! ESP part of each packet, in place, with no allocation.
//!
//! Layout of the `esp` slice handed to the cipher (RFC 4303 section 2):
//!
//! ```text
//! | SPI (4) | Seq (4) | IV (iv_len) | payload ... padding | pad len | next hdr | ICV (icv_len) |
//! ```
//!
//! The ESP layer has already written SPI, sequence number, IV, payload and trailer; the
//! cipher encrypts from the payload to the trailer and writes the ICV (seal), or checks the
//! ICV and decrypts the same range (open). With extended sequence numbers the high 32 bits
//! are given separately, because they are not on the wire: for AES-GCM they go into the AAD
//! (RFC 4106 section 5), for HMAC they are appended to the authenticated data (RFC 4303
//! section 3.3.2.1).

use std::fmt;

mod cbc_hmac;
mod constant_time;
#[cfg(feature = "dpdk")]
pub mod ipsec_mb;
mod layout;
pub mod openssl;
pub mod ring;
pub mod rustcrypto;
pub mod vaes_gcm;

/// The encryption part of a transform set, by Cisco name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Encryption {
    /// `esp-gcm 128` (RFC 4106, 16-byte ICV)
    Gcm128,
    /// `esp-gcm 256`
    Gcm256,
    /// `esp-aes 128` (AES-CBC, RFC 3602)
    AesCbc128,
    /// `esp-aes 192`
    AesCbc192,
    /// `esp-aes 256`
    AesCbc256,
    /// `esp-3des`
    TripleDes,
    /// `esp-des`
    Des,
    /// `esp-null` (RFC 2410), for tests
    Null,
}

/// The integrity part of a transform set, by Cisco name. AES-GCM carries its own ICV and
/// uses [`Integrity::None`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Integrity {
    /// No separate integrity algorithm (combined-mode cipher, or esp-null alone).
    None,
    /// `esp-sha-hmac`: HMAC-SHA1-96 (RFC 2404)
    Sha1,
    /// `esp-md5-hmac`: HMAC-MD5-96 (RFC 2403)
    Md5,
    /// `esp-sha256-hmac`: HMAC-SHA-256-128 (RFC 4868)
    Sha256,
}

/// A complete ESP transform: what one SA uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Transform {
    pub encryption: Encryption,
    pub integrity: Integrity,
}

impl Encryption {
    /// Key length in bytes as configured, including the 4-byte salt for AES-GCM.
    pub fn key_len(self) -> usize {
        match self {
            Encryption::Gcm128 => 16 + 4,
            Encryption::Gcm256 => 32 + 4,
            Encryption::AesCbc128 => 16,
            Encryption::AesCbc192 => 24,
            Encryption::AesCbc256 => 32,
            Encryption::TripleDes => 24,
            Encryption::Des => 8,
            Encryption::Null => 0,
        }
    }
    /// IV length on the wire.
    pub fn iv_len(self) -> usize {
        match self {
            Encryption::Gcm128 | Encryption::Gcm256 => 8,
            Encryption::AesCbc128 | Encryption::AesCbc192 | Encryption::AesCbc256 => 16,
            Encryption::TripleDes | Encryption::Des => 8,
            Encryption::Null => 0,
        }
    }
    /// The payload (with its trailer) is padded to a multiple of this.
    pub fn block_len(self) -> usize {
        match self {
            Encryption::AesCbc128 | Encryption::AesCbc192 | Encryption::AesCbc256 => 16,
            Encryption::TripleDes | Encryption::Des => 8,
            Encryption::Gcm128 | Encryption::Gcm256 | Encryption::Null => 4,
        }
    }
    /// True for combined-mode (AEAD) ciphers.
    pub fn is_aead(self) -> bool {
        matches!(self, Encryption::Gcm128 | Encryption::Gcm256)
    }
    /// Cisco's keyword, as in `crypto ipsec transform-set`.
    pub fn cisco_name(self) -> &'static str {
        match self {
            Encryption::Gcm128 => "esp-gcm 128",
            Encryption::Gcm256 => "esp-gcm 256",
            Encryption::AesCbc128 => "esp-aes 128",
            Encryption::AesCbc192 => "esp-aes 192",
            Encryption::AesCbc256 => "esp-aes 256",
            Encryption::TripleDes => "esp-3des",
            Encryption::Des => "esp-des",
            Encryption::Null => "esp-null",
        }
    }
}

impl Integrity {
    /// Key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            Integrity::None => 0,
            Integrity::Sha1 => 20,
            Integrity::Md5 => 16,
            Integrity::Sha256 => 32,
        }
    }
    /// Truncated ICV length on the wire.
    pub fn icv_len(self) -> usize {
        match self {
            Integrity::None => 0,
            Integrity::Sha1 | Integrity::Md5 => 12,
            Integrity::Sha256 => 16,
        }
    }
    /// Cisco's keyword.
    pub fn cisco_name(self) -> &'static str {
        match self {
            Integrity::None => "",
            Integrity::Sha1 => "esp-sha-hmac",
            Integrity::Md5 => "esp-md5-hmac",
            Integrity::Sha256 => "esp-sha256-hmac",
        }
    }
}

impl Transform {
    /// ICV length on the wire.
    pub fn icv_len(self) -> usize {
        if self.encryption.is_aead() {
            16
        } else {
            self.integrity.icv_len()
        }
    }
    /// IV length on the wire.
    pub fn iv_len(self) -> usize {
        self.encryption.iv_len()
    }
    /// True when the transform is one this dataplane accepts: an AEAD cipher has no separate
    /// integrity algorithm, and every other cipher except esp-null has one.
    pub fn is_valid(self) -> bool {
        if self.encryption.is_aead() {
            self.integrity == Integrity::None
        } else {
            self.encryption == Encryption::Null || self.integrity != Integrity::None
        }
    }
}

impl fmt::Display for Transform {
    /// Cisco's transform-set words, e.g. `esp-3des esp-md5-hmac`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encryption.cisco_name())?;
        if self.integrity != Integrity::None {
            write!(f, " {}", self.integrity.cisco_name())?;
        }
        Ok(())
    }
}

/// Why a cipher could not be built or a packet could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("the ICV does not verify")]
    AuthFailed,
    #[error("the encrypted part is not a whole number of cipher blocks")]
    BadLength,
    #[error("key of {got} bytes where {want} are needed")]
    BadKeyLength { want: usize, got: usize },
    #[error("transform {0} is not supported by backend {1}")]
    Unsupported(Transform, &'static str),
}

/// An SA's expanded keys: seals and opens ESP packets in place.
///
/// Implementations hold expanded key schedules and zeroize them on drop where the library
/// allows it (RustCrypto with its `zeroize` feature; ring does not expose that, see its
/// module note).
pub trait EspCipher: Send + Sync {
    /// The transform this cipher implements.
    fn transform(&self) -> Transform;
    /// Encrypts `esp[8 + iv_len .. len - icv_len]` in place and writes the ICV into the last
    /// `icv_len` bytes. The caller has written the header, IV and padded trailer; the
    /// encrypted range is a multiple of the block length.
    fn seal(&self, esp: &mut [u8], esn_hi: Option<u32>);
    /// Verifies the ICV over `esp` and, if it verifies, decrypts the same range as `seal` in
    /// place. On error the payload bytes are unspecified and must not be forwarded.
    fn open(&self, esp: &mut [u8], esn_hi: Option<u32>) -> Result<(), CryptoError>;
    /// Starts loading the key schedule into the cache: the fast path calls it for a whole
    /// burst before it seals or opens the first packet. `payload_hint` is at least the
    /// length of the payload the packet will seal or open (`Sa::prefetch_deps` works it out
    /// from the frame): a backend that reads other lines for long packets than for short
    /// ones picks with it, and one that guesses short for a long packet costs it a cache
    /// miss, nothing else. The default covers the value's own bytes, which is where every
    /// backend here keeps its expanded keys (a backend that keeps them behind a pointer
    /// overrides it).
    #[inline]
    fn prefetch(&self, payload_hint: usize) {
        let _ = payload_hint;
        crate::cache::value(self);
    }
}

/// A crypto library that can build [`EspCipher`]s.
pub trait Backend: Sync {
    /// Short name shown by `show crypto engine configuration` (e.g. "ring").
    fn name(&self) -> &'static str;
    /// True when this backend implements `transform`.
    fn supports(&self, transform: Transform) -> bool;
    /// Expands the keys of one SA. `enc_key` includes the salt for AES-GCM.
    fn cipher(
        &self,
        transform: Transform,
        enc_key: &[u8],
        auth_key: &[u8],
    ) -> Result<Box<dyn EspCipher>, CryptoError>;
}

// ---------------------------------------------------------------------------------------
// Backend registry
// ---------------------------------------------------------------------------------------

/// Every backend compiled in, fastest first for the transforms they share (see
/// [`default_backend`]).
// Order matters: `default_backend` takes the first that supports a transform. With the
// `dpdk` feature (which links libIPSec_MB) intel-ipsec-mb comes first: esp-gcm 128 seal took
// 96 ns / 262 ns (64 / 1420 bytes) against ring's 135 ns / 354 ns in one run of
// `cargo bench -p benches --bench crypto` (2026-11-22). Since 2026-12-02 its ciphers hand
// payloads of up to 224 bytes to the VAES kernel (when the CPU has it) and keep the library
// for longer ones, which is the best of both: min over 60 interleaved rounds, esp-gcm 128,
// the kernel alone against the library alone, seal 35 / 67-73 / 119-129 ns (64 / 512 / 1420
// bytes) against 49-50 / 63-64 / 114-120 ns, open 28-29 / 67-71 / 121-128 ns against 46-48 /
// 65-70 / 124-135 ns. The kernel alone ("vaes") comes next, ahead of ring, which it beats
// at every size (seal 35 / 70 / 120 ns against 78 / 116 / 235 ns); without the `dpdk`
// feature it comes first.
#[cfg(not(feature = "dpdk"))]
static BACKENDS: [&dyn Backend; 4] = [
    &vaes_gcm::VAES,
    &ring::RING,
    &openssl::OPENSSL,
    &rustcrypto::RUSTCRYPTO,
];
#[cfg(feature = "dpdk")]
static BACKENDS: [&dyn Backend; 5] = [
    &ipsec_mb::IPSEC_MB,
    &vaes_gcm::VAES,
    &ring::RING,
    &openssl::OPENSSL,
    &rustcrypto::RUSTCRYPTO,
];

/// The backends this dataplane can use, for `show crypto engine configuration` and for a
/// configuration that names one.
pub fn backends() -> &'static [&'static dyn Backend] {
    &BACKENDS
}

/// The backend called `name` (`"ring"`, `"openssl"`, `"rustcrypto"`, `"ipsec-mb"`, `"vaes"`), for a configuration
/// that forces one; `None` for an unknown name.
pub fn backend_by_name(name: &str) -> Option<&'static dyn Backend> {
    BACKENDS.iter().copied().find(|b| b.name() == name)
}

/// The fastest correct backend for `transform` on x86-64 with AES-NI, or `None` when no
/// backend implements it.
///
/// The order comes from `benches/benches/crypto.rs` (raw seal, 64 and 1420 bytes of payload)
/// on this project's 2-core AMD EPYC (AES-NI, VAES, SHA-NI), 2026-11-22, machine shared and
/// noisy: esp-gcm 128 seal took 99 ns / 329 ns with ring against 179 ns / 1279 ns with
/// RustCrypto (esp-gcm 256: 100 / 346 against 148 / 1507), so AES-GCM goes to ring. ring has
/// no CBC or DES, and its HMAC is no help (its SHA-1 is portable code, 4x slower than
/// RustCrypto's SHA-NI one; its HMAC-SHA-256 is level with RustCrypto's). DES and 3DES go
/// to OpenSSL's DES (with RustCrypto's HMAC): esp-3des esp-sha-hmac seal took 2.4 us / 48 us
/// against 6.3 us / 140 us with RustCrypto's `des`, esp-des esp-md5-hmac 1.2 us / 20 us
/// against 2.4 us / 48 us. Every other non-AEAD transform has only RustCrypto.
pub fn default_backend(transform: Transform) -> Option<&'static dyn Backend> {
    BACKENDS.iter().copied().find(|b| b.supports(transform))
}
