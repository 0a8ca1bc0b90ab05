//! IKEv1 cryptographic building blocks (RFC 2409, "The Internet Key Exchange").
//!
//! One concept per module:
//! - [`prf`]: the negotiated hash (RFC 2409 section 4 / Appendix A "Hash Algorithm") and the
//!   HMAC pseudo-random function built on it (RFC 2409 section 5, "prf").
//! - [`dh`]: the Diffie-Hellman groups (RFC 2409 section 6, RFC 3526, RFC 5903).
//! - [`dh_pool`]: Diffie-Hellman key pairs made ahead of need, per group.
//! - [`keys`]: the phase 1 key schedule, the authentication hashes, the IVs, the Quick Mode
//!   hashes and the phase 2 KEYMAT (RFC 2409 sections 5, 5.5 and Appendix B).
//! - [`cipher`]: the CBC encryption of ISAKMP messages after the key exchange and the IV
//!   chaining between them (RFC 2409 Appendix B, RFC 2408 section 3.1 / 4.x).
//!
//! Everything here is a pure function of its inputs (apart from the random private values in
//! [`dh`] and the pool of them in [`dh_pool`]); the state machines that feed it live
//! elsewhere. Secrets are held in [`zeroize::Zeroizing`] buffers or in structs that zeroize
//! on drop, and their `Debug` output is `<redacted>`.

pub mod cipher;
pub mod dh;
pub mod dh_pool;
pub mod keys;
pub mod prf;

pub use cipher::{IkeCipher, IvChain};
pub use dh::{DhGroup, DhPrivate, PeerPublic};
pub use dh_pool::{DhPool, DhPoolStats};
pub use keys::{AuthInputs, EspKeys, KeymatInputs, Phase1Keys};
pub use prf::HashAlg;

/// Errors from the IKE crypto layer. None of them carries secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum IkeCryptoError {
    #[error("OpenSSL: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("unsupported Diffie-Hellman group {0}")]
    UnsupportedGroup(u16),
    #[error("invalid Diffie-Hellman public value: {0}")]
    InvalidPublicValue(&'static str),
    #[error("invalid Diffie-Hellman private value: {0}")]
    InvalidPrivateValue(&'static str),
    #[error("{what} is {got} bytes, expected {expected}")]
    BadLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("{len} bytes is not a multiple of the {block}-byte cipher block")]
    NotBlockMultiple { len: usize, block: usize },
    #[error("cipher {0} is not available from OpenSSL (legacy provider missing?)")]
    CipherUnavailable(&'static str),
}

/// Result alias for this module.
pub type Result<T> = std::result::Result<T, IkeCryptoError>;
