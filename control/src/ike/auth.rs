//! Credentials for phase 1 authentication, abstracted so that Main Mode does not depend on
//! the PKI or the configuration: our identity, pre-shared keys by peer address, signing
//! with our private key, our certificate chain, the CA names for CERT_REQ, and the check
//! of the peer's certificate, identity and signature.
//!
//! IKEv1 RSA signatures (RFC 2409 section 5.1) are PKCS#1 v1.5 type-1 padding of the raw
//! HASH_I / HASH_R, *without* a DigestInfo. The one implementation is
//! [`crate::pki::sign`]; [`pkcs1_sign_raw`] and [`pkcs1_verify_raw`] are its adapters to
//! [`AuthError`] for whoever implements [`Credentials`] without a trustpoint.

use std::net::IpAddr;

use openssl::pkey::{HasPrivate, HasPublic, PKeyRef};
use zeroize::Zeroizing;

use crate::isakmp::id::{self, Identity};
use crate::pki::sign;

/// An identity as carried in an ID payload: type and data ([`Identity`]), protocol and
/// port (IOS sends 17 and 500 in phase 1).
pub type IdentityPayload = id::Repr;

/// Who the peer proved to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The identity from the peer's ID payload.
    pub id: Identity,
    /// The peer's end-entity certificate (DER), for rsa-sig.
    pub certificate: Option<Vec<u8>>,
}

/// Why the peer's authentication data is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The signature does not verify with the certificate's key.
    #[error("signature verification failed")]
    BadSignature,
    /// No certificate was sent and none is known for the peer.
    #[error("no certificate for the peer")]
    NoCertificate,
    /// The certificate is not acceptable (untrusted issuer, expired, revoked...): the
    /// reason, as the `is bad:` part of `%CRYPTO-5-IKMP_INVAL_CERT`.
    #[error("{0}")]
    Certificate(String),
    /// The ID payload does not match the certificate: the reason, naming the identity
    /// claimed and what the certificate holds.
    #[error("{0}")]
    IdMismatch(String),
    /// Anything else (our own key unusable, ...).
    #[error("{0}")]
    Other(String),
}

/// The credentials of one local identity (one trustpoint / keyring), as Main Mode needs
/// them. Implemented over the PKI and the configuration elsewhere; the tests have their own.
pub trait Credentials: Send + Sync {
    /// Our ID payload (MM5 / MM6).
    fn local_id(&self) -> IdentityPayload;
    /// The pre-shared key for a peer address (IOS `crypto isakmp key ... address`).
    fn preshared_key(&self, peer: IpAddr) -> Option<Zeroizing<Vec<u8>>>;
    /// Signs HASH_I or HASH_R with our private key: PKCS#1 v1.5 type 1, no DigestInfo
    /// (see [`pkcs1_sign_raw`]). The key is the one of the certificate
    /// [`Credentials::own_cert_chain`] gives for the same `requested_cas`, so that the
    /// signature verifies with the certificate sent beside it.
    fn sign(&self, hash: &[u8], requested_cas: &[Vec<u8>]) -> Result<Vec<u8>, AuthError>;
    /// Our certificate, then its chain, DER, preferring one issued by one of the CAs the
    /// peer asked for (DER names from its CERT_REQ payloads; empty: any). Only the first
    /// (end-entity) certificate is sent, as IOS does.
    fn own_cert_chain(&self, requested_cas: &[Vec<u8>]) -> Vec<Vec<u8>>;
    /// DER names of the CAs we trust, one CERT_REQ each.
    fn ca_names(&self) -> Vec<Vec<u8>>;
    /// Checks the peer's certificates (DER, end-entity first; may be empty), that `id`
    /// matches the certificate, and `sig` over `hash` (HASH_I or HASH_R) with its key.
    fn verify_peer(
        &self,
        peer: IpAddr,
        id: &IdentityPayload,
        certs: &[Vec<u8>],
        hash: &[u8],
        sig: &[u8],
    ) -> Result<PeerIdentity, AuthError>;
}

/// An IKEv1 RSA signature of `hash` ([`crate::pki::sign::sign_hash`]: PKCS#1 v1.5 type 1,
/// no DigestInfo), with its failure as [`AuthError::Other`].
pub fn pkcs1_sign_raw<T: HasPrivate>(key: &PKeyRef<T>, hash: &[u8]) -> Result<Vec<u8>, AuthError> {
    sign::sign_hash(key, hash).map_err(|e| AuthError::Other(format!("OpenSSL: {e}")))
}

/// Checks an IKEv1 RSA signature ([`crate::pki::sign::verify_hash`]);
/// [`AuthError::BadSignature`] when it does not verify.
pub fn pkcs1_verify_raw<T: HasPublic>(
    key: &PKeyRef<T>,
    hash: &[u8],
    sig: &[u8],
) -> Result<(), AuthError> {
    if sign::verify_hash(key, hash, sig) {
        Ok(())
    } else {
        Err(AuthError::BadSignature)
    }
}
