//! Certificate chain building and validation against the trusted CAs, and the reasons a
//! certificate is refused ([`CertError`]).
//!
//! The chain is built and checked by OpenSSL (`X509_verify_cert`): the peer's end-entity
//! certificate, the intermediates it sent plus the subordinate CAs configured in the
//! trustpoints as untrusted helpers, the configured CAs as trust anchors. The check time is
//! given by the caller (`X509_VERIFY_PARAM_set_time`), so expiry is deterministic in tests.
//! OpenSSL checks the signatures, the validity periods and the basic constraints of every
//! issuer (CA:TRUE, path length, keyCertSign when a key usage is present); the key usage of
//! the end-entity certificate is checked here: when the extension is present it must allow
//! digitalSignature, the only use IKEv1 `rsa-sig` makes of the key.
//!
//! Revocation is checked afterwards by [`crate::pki::crl`] on the chain returned here.
//! Refusals are logged in the spirit of IOS's `%CRYPTO-5-IKMP_INVAL_CERT` (see
//! [`inval_cert_message`]).

use std::fmt;
use std::net::IpAddr;

use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::{X509VerifyFlags, X509VerifyParam};
use openssl::x509::{X509KeyUsage, X509Ref, X509StoreContext, X509};

use super::{dn_eq, dn_string};

// X509_V_ERR_* codes (x509_vfy.h; stable across OpenSSL 1.1 and 3.x unless noted).
const UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const UNABLE_TO_DECRYPT_CERT_SIGNATURE: i32 = 4;
const UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: i32 = 6;
const CERT_SIGNATURE_FAILURE: i32 = 7;
const CERT_NOT_YET_VALID: i32 = 9;
const CERT_HAS_EXPIRED: i32 = 10;
const DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const CERT_REVOKED: i32 = 23;
/// X509_V_ERR_INVALID_CA in OpenSSL 1.1 (X509_V_ERR_NO_ISSUER_PUBLIC_KEY in 3.x).
const INVALID_CA_OLD: i32 = 24;
const PATH_LENGTH_EXCEEDED: i32 = 25;
const INVALID_PURPOSE: i32 = 26;
const CERT_UNTRUSTED: i32 = 27;
const CERT_REJECTED: i32 = 28;
const KEYUSAGE_NO_CERTSIGN: i32 = 32;
const INVALID_NON_CA: i32 = 37;
const KEYUSAGE_NO_DIGITAL_SIGNATURE: i32 = 39;
/// X509_V_ERR_INVALID_CA in OpenSSL 3.x.
const INVALID_CA: i32 = 79;
const KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA: i32 = 82;

/// Why a peer's certificate is refused. `Display` gives the reason in IOS's words (the text
/// after `is bad:` in [`inval_cert_message`]); the details name the certificate concerned.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// A certificate of the chain is past its notAfter.
    #[error("certificate expired ({subject}, notAfter {not_after})")]
    Expired { subject: String, not_after: String },
    /// A certificate of the chain is before its notBefore.
    #[error("certificate not yet valid ({subject}, notBefore {not_before})")]
    NotYetValid { subject: String, not_before: String },
    /// The chain does not lead to a CA of any trustpoint.
    #[error("certificate issued by an unknown CA ({issuer})")]
    UnknownCa { issuer: String },
    /// A signature in the chain does not verify with its issuer's key.
    #[error("bad certificate signature ({subject})")]
    BadSignature { subject: String },
    /// The certificate is listed in its issuer's CRL.
    #[error("certificate revoked (serial {serial}, {subject})")]
    Revoked { serial: String, subject: String },
    /// `revocation-check crl` and no valid CRL of this issuer could be had.
    #[error("no valid CRL for issuer {issuer} (revocation-check crl)")]
    NoValidCrl { issuer: String },
    /// An issuer of the chain is not a CA (basic constraints, path length, keyCertSign).
    #[error("issuer is not a CA ({subject}: {detail})")]
    NotCa { subject: String, detail: String },
    /// The end-entity key usage does not allow digital signatures.
    #[error("key usage not acceptable ({subject}: {detail})")]
    BadKeyUsage { subject: String, detail: String },
    /// The certificate cannot be parsed or is otherwise unusable.
    #[error("malformed certificate: {reason}")]
    Malformed { reason: String },
    /// The peer's ID payload does not match the certificate.
    #[error("peer identity {claimed} does not match the certificate ({cert})")]
    IdMismatch { claimed: String, cert: String },
}

impl CertError {
    /// The short reason without details (`certificate expired`, ...).
    pub fn reason(&self) -> &'static str {
        match self {
            CertError::Expired { .. } => "certificate expired",
            CertError::NotYetValid { .. } => "certificate not yet valid",
            CertError::UnknownCa { .. } => "unknown CA",
            CertError::BadSignature { .. } => "bad signature",
            CertError::Revoked { .. } => "certificate revoked",
            CertError::NoValidCrl { .. } => "no valid CRL",
            CertError::NotCa { .. } => "issuer is not a CA",
            CertError::BadKeyUsage { .. } => "bad key usage",
            CertError::Malformed { .. } => "malformed certificate",
            CertError::IdMismatch { .. } => "identity does not match the certificate",
        }
    }

    /// Logs the refusal (warning level) with [`inval_cert_message`].
    pub fn log(&self, peer: IpAddr) {
        log::warn!("{}", inval_cert_message(peer, self));
    }
}

/// The log line for a refused certificate, as IOS words it:
/// `%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10.0.0.2 is bad: certificate
/// expired (...)`.
pub fn inval_cert_message(peer: IpAddr, err: &CertError) -> String {
    format!("%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from {peer} is bad: {err}")
}

/// A peer certificate that passed every check.
#[derive(Clone)]
pub struct VerifiedPeer {
    /// The end-entity certificate.
    pub cert: X509,
    /// The validated chain, end-entity first, up to and including the trust anchor.
    pub chain: Vec<X509>,
    /// The trustpoint whose CA anchors the chain.
    pub trustpoint: String,
    /// The end-entity subject, IOS's one-line form.
    pub subject: String,
    /// What the revocation check found.
    pub revocation: crate::pki::RevocationStatus,
}

impl fmt::Debug for VerifiedPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedPeer")
            .field("subject", &self.subject)
            .field("chain_len", &self.chain.len())
            .field("trustpoint", &self.trustpoint)
            .field("revocation", &self.revocation)
            .finish()
    }
}

/// Whether a certificate is self-issued (subject = issuer): a root.
pub(crate) fn self_issued(cert: &X509Ref) -> bool {
    dn_eq(cert.subject_name(), cert.issuer_name())
}

fn ssl_err(e: openssl::error::ErrorStack) -> CertError {
    CertError::Malformed {
        reason: format!("OpenSSL: {e}"),
    }
}

/// Builds and validates the chain of `peer[0]` at `now` (seconds since the epoch).
///
/// `anchors` are trusted (the trustpoints' CAs whose issuer is not configured: roots, or a
/// subordinate CA configured alone, which then ends the chain); `intermediates` are
/// configured subordinate CAs that chain to an anchor, used like the ones the peer sent
/// (`peer[1..]`). Returns the chain, end-entity first, anchor last.
pub fn verify_chain(
    anchors: &[X509],
    intermediates: &[X509],
    peer: &[X509],
    now: i64,
    check_time: bool,
) -> Result<Vec<X509>, CertError> {
    let Some(leaf) = peer.first() else {
        return Err(CertError::Malformed {
            reason: "no certificate".into(),
        });
    };
    let mut store = X509StoreBuilder::new().map_err(ssl_err)?;
    let mut partial = false;
    for a in anchors {
        partial |= !self_issued(a);
        // A duplicate (the same CA in two trustpoints) is not an error.
        let _ = store.add_cert(a.clone());
    }
    let mut param = X509VerifyParam::new().map_err(ssl_err)?;
    let mut flags = X509VerifyFlags::empty();
    if partial {
        flags |= X509VerifyFlags::PARTIAL_CHAIN;
    }
    if check_time {
        param.set_time(now as _);
    } else {
        flags |= X509VerifyFlags::NO_CHECK_TIME;
    }
    param.set_flags(flags).map_err(ssl_err)?;
    store.set_param(&param).map_err(ssl_err)?;
    let store = store.build();

    let mut untrusted = Stack::new().map_err(ssl_err)?;
    for c in peer[1..].iter().chain(intermediates) {
        untrusted.push(c.clone()).map_err(ssl_err)?;
    }

    let mut ctx = X509StoreContext::new().map_err(ssl_err)?;
    let outcome = ctx
        .init(&store, leaf, &untrusted, |c| {
            if c.verify_cert()? {
                let chain = c
                    .chain()
                    .map(|s| s.iter().map(|x| x.to_owned()).collect::<Vec<X509>>())
                    .unwrap_or_default();
                Ok(Ok(chain))
            } else {
                let cur = c.current_cert().map(|x| x.to_owned());
                Ok(Err(map_verify_error(
                    c.error().as_raw(),
                    c.error().error_string(),
                    cur.as_deref().unwrap_or(leaf),
                )))
            }
        })
        .map_err(ssl_err)?;
    let chain = outcome?;

    if let Some(ku) = leaf.key_usage() {
        if !ku.contains(X509KeyUsage::DIGITAL_SIGNATURE) {
            return Err(CertError::BadKeyUsage {
                subject: dn_string(leaf.subject_name()),
                detail: "keyUsage present without digitalSignature".into(),
            });
        }
    }
    Ok(chain)
}

/// Maps an OpenSSL verification error on `cert` to a [`CertError`].
fn map_verify_error(code: i32, text: &str, cert: &X509Ref) -> CertError {
    let subject = dn_string(cert.subject_name());
    match code {
        CERT_HAS_EXPIRED => CertError::Expired {
            subject,
            not_after: cert.not_after().to_string(),
        },
        CERT_NOT_YET_VALID => CertError::NotYetValid {
            subject,
            not_before: cert.not_before().to_string(),
        },
        UNABLE_TO_GET_ISSUER_CERT
        | UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | DEPTH_ZERO_SELF_SIGNED_CERT
        | SELF_SIGNED_CERT_IN_CHAIN
        | CERT_UNTRUSTED
        | CERT_REJECTED => CertError::UnknownCa {
            issuer: dn_string(cert.issuer_name()),
        },
        UNABLE_TO_DECRYPT_CERT_SIGNATURE
        | UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY
        | CERT_SIGNATURE_FAILURE => CertError::BadSignature { subject },
        INVALID_CA
        | INVALID_CA_OLD
        | INVALID_NON_CA
        | PATH_LENGTH_EXCEEDED
        | KEYUSAGE_NO_CERTSIGN
        | KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA => CertError::NotCa {
            subject,
            detail: text.to_string(),
        },
        INVALID_PURPOSE | KEYUSAGE_NO_DIGITAL_SIGNATURE => CertError::BadKeyUsage {
            subject,
            detail: text.to_string(),
        },
        CERT_REVOKED => CertError::Revoked {
            serial: serial_hex(cert),
            subject,
        },
        _ => CertError::Malformed {
            reason: format!("{subject}: {text}"),
        },
    }
}

/// A certificate's serial number in hex, as IOS shows it.
pub(crate) fn serial_hex(cert: &X509Ref) -> String {
    cert.serial_number()
        .to_bn()
        .ok()
        .and_then(|bn| bn.to_hex_str().ok().map(|s| s.to_string()))
        .unwrap_or_else(|| "?".into())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn log_line_in_ios_words() {
        let e = CertError::Expired {
            subject: "CN=spoke".into(),
            not_after: "Jan  1 00:00:00 2020 GMT".into(),
        };
        let line = inval_cert_message("10.0.0.2".parse().unwrap(), &e);
        assert!(
            line.starts_with(
                "%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from 10.0.0.2 is bad: \
                 certificate expired"
            ),
            "{line}"
        );
        assert_eq!(e.reason(), "certificate expired");
    }

    #[test]
    fn empty_chain_is_malformed() {
        let e = verify_chain(&[], &[], &[], 0, true).unwrap_err();
        assert!(matches!(e, CertError::Malformed { .. }), "{e}");
    }
}
