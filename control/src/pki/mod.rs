//! The PKI of the IKEv1 control plane (`crypto pki trustpoint` in IOS terms), over OpenSSL:
//!
//! - [`trustpoint`]: trustpoints (CA certificates, including subordinate-CA chains; our
//!   certificate and RSA key; the revocation mode and CRL source) loaded from PEM/DER files,
//!   and the [`TrustStore`] of all of them: the CA names for CERT_REQ, the choice of our
//!   certificate for a CERT_REQ, and the check of a peer's certificate chain;
//! - [`verify`]: chain building and validation (signatures, validity against a given clock,
//!   basic constraints, key usage) and the [`CertError`] reasons, with the IOS-style
//!   `%CRYPTO-5-IKMP_INVAL_CERT` log line;
//! - [`chain_cache`]: chains already verified, so that the same certificates are parsed and
//!   checked once (revocation is checked every time);
//! - [`crl`]: the [`CrlCache`] (CRLs from files or fetched over HTTP from the distribution
//!   point, cached until nextUpdate, refreshed before it and on demand) and the revocation
//!   check per `revocation-check` mode;
//! - [`identity`]: the peer's ID payload against its certificate, and the identity we send
//!   (IOS's rule: the FQDN when the identity is the address but the certificate holds none);
//! - [`sign`]: the IKEv1 RSA signature primitives (PKCS#1 v1.5 without DigestInfo).
//!
//! Private keys are never logged nor shown by `Debug`.

pub mod chain_cache;
pub mod crl;
pub mod identity;
pub mod sign;
pub mod trustpoint;
pub mod verify;

#[cfg(test)]
mod tests;

pub use crl::{CrlCache, CrlError, CrlSource, RevocationStatus};
pub use identity::{check_identity, own_identity, IdentityClaim};
pub use sign::{sign_hash, verify_hash, verify_hash_cert};
pub use trustpoint::{PkiError, RevocationCheck, TrustStore, Trustpoint, TrustpointConfig};
pub use verify::{inval_cert_message, CertError, VerifiedPeer};

use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509NameRef;

/// Seconds since the Unix epoch (negative before it), as OpenSSL's `time_t`.
pub(crate) fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// An ASN.1 time as seconds since the Unix epoch.
pub(crate) fn asn1_unix(t: &Asn1TimeRef) -> Option<i64> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// A distinguished name in the one-line form IOS prints (`CN=hub,O=example,C=US`: most
/// specific first).
pub(crate) fn dn_string(name: &X509NameRef) -> String {
    let mut parts: Vec<String> = name
        .entries()
        .map(|e| {
            let key = e
                .object()
                .nid()
                .short_name()
                .map(str::to_owned)
                .unwrap_or_else(|_| {
                    // An OID without a short name: its dotted form.
                    e.object().to_string()
                });
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| hex::encode(e.data().as_slice()));
            format!("{key}={value}")
        })
        .collect();
    parts.reverse();
    if parts.is_empty() {
        "<empty name>".to_string()
    } else {
        parts.join(",")
    }
}

/// Whether two names are the same (OpenSSL's `X509_NAME_cmp`: canonical encodings compared,
/// so case and spacing differences in strings do not matter).
pub(crate) fn dn_eq(a: &X509NameRef, b: &X509NameRef) -> bool {
    matches!(a.try_cmp(b), Ok(std::cmp::Ordering::Equal))
}

/// Whether a DER-encoded name (from a CERT_REQ or an ID payload) names `name`. An
/// unparsable encoding only matches byte for byte.
pub(crate) fn dn_der_eq(der: &[u8], name: &X509NameRef) -> bool {
    match openssl::x509::X509Name::from_der(der) {
        Ok(parsed) => dn_eq(&parsed, name),
        Err(_) => name.to_der().map(|d| d == der).unwrap_or(false),
    }
}
