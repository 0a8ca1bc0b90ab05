//! Trustpoints (`crypto pki trustpoint NAME`) and the [`TrustStore`] of all of them.
//!
//! A [`Trustpoint`] holds the CA certificates it trusts (a root, possibly with subordinate
//! CAs: a hub may trust several subordinates, as in the large-scale aggregation design),
//! our certificate with its chain up to those CAs, our RSA private key, the
//! `revocation-check` mode and the CRL source (a file, a URL, or else the distribution
//! points of the certificates). It is loaded from PEM or DER files named by a
//! [`TrustpointConfig`]; errors name the trustpoint and the file.
//!
//! The [`TrustStore`] answers what phase 1 needs: the names of the CAs we trust (one
//! CERT_REQ each), which of our certificates to send for the CAs the peer asked for, and
//! the verdict on the peer's chain (validation by [`crate::pki::verify`], then revocation by
//! [`crate::pki::crl`] per the trustpoint's mode).
//!
//! Private keys are never shown: `Debug` prints `<redacted>` in their place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use openssl::pkey::{Id, PKey, Private};
use openssl::x509::{X509Ref, X509};

use super::chain_cache::{self, CaFingerprint, ChainCache};
use super::crl::{CertStatus, CrlCache, CrlError, RevocationStatus};
use super::identity::{check_identity, IdentityClaim};
use super::verify::{self_issued, serial_hex, verify_chain, CertError, VerifiedPeer};
use super::{dn_der_eq, dn_eq, dn_string, unix_secs};

pub use crate::config::{RevocationCheck, TrustpointConfig};

/// A trustpoint or trust store that cannot be set up.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PkiError {
    /// A file cannot be read or parsed.
    #[error("trustpoint {trustpoint}: {}: {reason}", file.display())]
    File {
        trustpoint: String,
        file: PathBuf,
        reason: String,
    },
    /// The trustpoint's parts do not fit together.
    #[error("trustpoint {trustpoint}: {reason}")]
    Invalid { trustpoint: String, reason: String },
    /// The CRL file cannot be used.
    #[error("trustpoint {trustpoint}: {error}")]
    Crl { trustpoint: String, error: CrlError },
}

/// One trustpoint; see the module documentation.
pub struct Trustpoint {
    pub name: String,
    /// The CA certificates this trustpoint trusts, as configured.
    pub ca_certs: Vec<X509>,
    cert: X509,
    /// The CAs above our certificate, its issuer first, up to the trustpoint's anchor.
    chain: Vec<X509>,
    key: PKey<Private>,
    pub revocation: RevocationCheck,
    pub crl_file: Option<PathBuf>,
    /// Overrides the certificates' CRL distribution points.
    pub crl_url: Option<String>,
}

impl fmt::Debug for Trustpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trustpoint")
            .field("name", &self.name)
            .field(
                "ca_certs",
                &self
                    .ca_certs
                    .iter()
                    .map(|c| dn_string(c.subject_name()))
                    .collect::<Vec<_>>(),
            )
            .field("cert", &dn_string(self.cert.subject_name()))
            .field("key", &"<redacted>")
            .field("revocation", &self.revocation)
            .field("crl_file", &self.crl_file)
            .field("crl_url", &self.crl_url)
            .finish()
    }
}

/// Reads one or more certificates from a PEM file (any number of `CERTIFICATE` blocks) or
/// one DER certificate.
pub fn read_certs(path: &Path) -> Result<Vec<X509>, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    if data.windows(10).any(|w| w == b"-----BEGIN") {
        let certs = X509::stack_from_pem(&data).map_err(|e| format!("bad PEM certificate: {e}"))?;
        if certs.is_empty() {
            return Err("no certificate in the PEM file".into());
        }
        Ok(certs)
    } else {
        X509::from_der(&data)
            .map(|c| vec![c])
            .map_err(|e| format!("not a PEM or DER certificate: {e}"))
    }
}

/// Reads a private key: PEM (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY`, not
/// encrypted) or DER (PKCS#1 or PKCS#8). The error never quotes the file's content.
pub fn read_private_key(path: &Path) -> Result<PKey<Private>, String> {
    let data =
        zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?);
    let pem = data.windows(10).any(|w| w == b"-----BEGIN");
    let key = if pem {
        if data.windows(9).any(|w| w == b"ENCRYPTED") {
            return Err("encrypted private keys are not supported".into());
        }
        PKey::private_key_from_pem(&data).map_err(|_| "not a readable PEM private key")?
    } else {
        PKey::private_key_from_der(&data)
            .or_else(|_| PKey::private_key_from_pkcs8(&data))
            .map_err(|_| "not a readable DER private key")?
    };
    Ok(key)
}

/// Splits CA certificates into trust anchors (roots, and subordinates whose issuer is not
/// among them) and intermediates (subordinates whose issuer is among them), dropping
/// duplicates.
fn split_cas<'a>(cas: impl IntoIterator<Item = &'a X509>) -> (Vec<X509>, Vec<X509>) {
    let mut all: Vec<X509> = Vec::new();
    for c in cas {
        let der = c.to_der().unwrap_or_default();
        if !all.iter().any(|a| a.to_der().unwrap_or_default() == der) {
            all.push(c.clone());
        }
    }
    let (mut anchors, mut intermediates) = (Vec::new(), Vec::new());
    for c in &all {
        let has_issuer = !self_issued(c)
            && all
                .iter()
                .any(|o| !std::ptr::eq(o, c) && dn_eq(o.subject_name(), c.issuer_name()));
        if has_issuer {
            intermediates.push(c.clone());
        } else {
            anchors.push(c.clone());
        }
    }
    (anchors, intermediates)
}

fn same_cert(a: &X509Ref, b: &X509Ref) -> bool {
    match (a.to_der(), b.to_der()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

impl Trustpoint {
    /// Loads a trustpoint from its files.
    pub fn load(name: &str, cfg: &TrustpointConfig) -> Result<Trustpoint, PkiError> {
        let file_err = |file: &Path, reason: String| PkiError::File {
            trustpoint: name.to_string(),
            file: file.to_path_buf(),
            reason,
        };
        let mut cas = Vec::new();
        for p in &cfg.ca_certificates {
            cas.extend(read_certs(p).map_err(|r| file_err(p, r))?);
        }
        // A PEM file may carry our certificate followed by its chain: only the first is
        // used (the CAs come from the CA files, so that nothing else becomes trusted).
        let cert = read_certs(&cfg.certificate)
            .map_err(|r| file_err(&cfg.certificate, r))?
            .remove(0);
        let key = read_private_key(&cfg.private_key).map_err(|r| file_err(&cfg.private_key, r))?;
        let mut tp = Trustpoint::new(name, cas, cert, key, cfg.revocation)?;
        tp.crl_file = cfg.crl_file.clone();
        tp.crl_url = cfg.crl_url.clone();
        Ok(tp)
    }

    /// A trustpoint from certificates and a key in memory (no CRL source). Our key must be
    /// RSA and match our certificate, and our certificate must chain to `ca_certs` (its
    /// validity period is not required; a certificate not valid now is logged).
    pub fn new(
        name: &str,
        ca_certs: Vec<X509>,
        cert: X509,
        key: PKey<Private>,
        revocation: RevocationCheck,
    ) -> Result<Trustpoint, PkiError> {
        let invalid = |reason: String| PkiError::Invalid {
            trustpoint: name.to_string(),
            reason,
        };
        if ca_certs.is_empty() {
            return Err(invalid("no CA certificate".into()));
        }
        if key.id() != Id::RSA {
            return Err(invalid("the private key is not an RSA key".into()));
        }
        let public = cert
            .public_key()
            .map_err(|e| invalid(format!("our certificate's key: {e}")))?;
        if !public.public_eq(&key) {
            return Err(invalid(format!(
                "the private key does not match the certificate {}",
                dn_string(cert.subject_name())
            )));
        }
        let (anchors, intermediates) = split_cas(&ca_certs);
        let now = unix_secs(SystemTime::now());
        let chain = verify_chain(
            &anchors,
            &intermediates,
            std::slice::from_ref(&cert),
            now,
            false,
        )
        .map_err(|e| {
            invalid(format!(
                "our certificate {} is not usable with the trustpoint's CAs: {e}",
                dn_string(cert.subject_name())
            ))
        })?;
        if let Err(e) = verify_chain(
            &anchors,
            &intermediates,
            std::slice::from_ref(&cert),
            now,
            true,
        ) {
            log::warn!("PKI: trustpoint {name}: our certificate: {e}");
        }
        Ok(Trustpoint {
            name: name.to_string(),
            ca_certs,
            cert,
            chain: chain.into_iter().skip(1).collect(),
            key,
            revocation,
            crl_file: None,
            crl_url: None,
        })
    }

    /// Our certificate.
    pub fn cert(&self) -> &X509 {
        &self.cert
    }

    /// Our private key (to sign HASH_I / HASH_R with [`crate::pki::sign_hash`]).
    pub fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// The CAs above our certificate, its issuer first, up to the trust anchor.
    pub fn issuers(&self) -> &[X509] {
        &self.chain
    }

    /// Our certificate then the subordinate CAs above it (the root left out), DER: what a
    /// peer that does not hold our subordinate CA needs.
    pub fn cert_chain_der(&self) -> Vec<Vec<u8>> {
        std::iter::once(&self.cert)
            .chain(self.chain.iter().filter(|c| !self_issued(c)))
            .filter_map(|c| c.to_der().ok())
            .collect()
    }

    /// Whether our certificate chains to a CA named `dn` (DER).
    pub fn chains_to(&self, dn: &[u8]) -> bool {
        self.chain.iter().any(|c| dn_der_eq(dn, c.subject_name()))
    }

    /// Signs HASH_I / HASH_R with our key (IKEv1 RSA signature).
    pub fn sign(&self, hash: &[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        super::sign::sign_hash(&self.key, hash)
    }
}

/// All trustpoints, and the CRLs; see the module documentation.
pub struct TrustStore {
    trustpoints: Vec<Trustpoint>,
    anchors: Vec<X509>,
    intermediates: Vec<X509>,
    crls: Mutex<CrlCache>,
    /// The anchors' and intermediates' fingerprint: this store's part of a chain's key in
    /// `chains`.
    cas: CaFingerprint,
    /// Peer chains already verified (by this store or one with the same CAs).
    chains: Arc<ChainCache>,
}

impl fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustStore")
            .field("trustpoints", &self.trustpoints)
            .finish_non_exhaustive()
    }
}

impl TrustStore {
    /// A store over trustpoints, in order of preference; reads their CRL files. Verified
    /// peer chains are remembered in the process's cache ([`chain_cache::process_cache`]).
    pub fn new(trustpoints: Vec<Trustpoint>) -> Result<TrustStore, PkiError> {
        Self::with_chain_cache(trustpoints, chain_cache::process_cache())
    }

    /// [`TrustStore::new`] remembering verified chains in `chains`.
    pub fn with_chain_cache(
        trustpoints: Vec<Trustpoint>,
        chains: Arc<ChainCache>,
    ) -> Result<TrustStore, PkiError> {
        let (anchors, intermediates) = split_cas(trustpoints.iter().flat_map(|t| &t.ca_certs));
        let cas = chain_cache::ca_fingerprint(anchors.iter().chain(&intermediates));
        let mut crls = CrlCache::new();
        for tp in &trustpoints {
            if let Some(f) = &tp.crl_file {
                crls.load_file(f).map_err(|error| PkiError::Crl {
                    trustpoint: tp.name.clone(),
                    error,
                })?;
            }
        }
        Ok(TrustStore {
            trustpoints,
            anchors,
            intermediates,
            crls: Mutex::new(crls),
            cas,
            chains,
        })
    }

    /// What the cache of verified chains this store uses did so far.
    pub fn chain_cache_stats(&self) -> chain_cache::ChainCacheStats {
        self.chains.stats()
    }

    /// Loads every configured trustpoint (in the order given) and builds the store.
    pub fn load<'a>(
        configs: impl IntoIterator<Item = (&'a String, &'a TrustpointConfig)>,
    ) -> Result<TrustStore, PkiError> {
        let tps = configs
            .into_iter()
            .map(|(name, cfg)| Trustpoint::load(name, cfg))
            .collect::<Result<Vec<_>, _>>()?;
        TrustStore::new(tps)
    }

    pub fn trustpoints(&self) -> &[Trustpoint] {
        &self.trustpoints
    }

    pub fn trustpoint(&self, name: &str) -> Option<&Trustpoint> {
        self.trustpoints.iter().find(|t| t.name == name)
    }

    /// The CRL cache (to refresh on demand, or to add CRLs).
    pub fn crls(&self) -> MutexGuard<'_, CrlCache> {
        self.crls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refreshes the CRLs that are due (for a periodic timer); see
    /// [`CrlCache::refresh_due`].
    pub fn refresh_crls(&self, now: SystemTime) -> Vec<(String, Result<String, CrlError>)> {
        self.crls().refresh_due(unix_secs(now))
    }

    /// The DER subject of every CA we trust (roots and subordinates, each once, in
    /// trustpoint order): one CERT_REQ payload each.
    pub fn ca_distinguished_names(&self) -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = Vec::new();
        for c in self.trustpoints.iter().flat_map(|t| &t.ca_certs) {
            if let Ok(der) = c.subject_name().to_der() {
                if !out.contains(&der) {
                    out.push(der);
                }
            }
        }
        out
    }

    /// The trustpoint whose certificate we send for a CERT_REQ: for the first requested CA
    /// (DER names) that one of our certificates chains to, the first such trustpoint; when
    /// nothing was requested or no request matches, the first trustpoint (IOS sends its
    /// certificate anyway). None without trustpoints.
    pub fn select_own_cert(&self, requested: &[Vec<u8>]) -> Option<&Trustpoint> {
        for dn in requested {
            if let Some(tp) = self.trustpoints.iter().find(|t| t.chains_to(dn)) {
                return Some(tp);
            }
        }
        if !requested.is_empty() {
            log::debug!(
                "PKI: no certificate of ours is issued by a requested CA; sending the first"
            );
        }
        self.trustpoints.first()
    }

    /// The trustpoint that holds a CA of the validated chain, the nearest to the
    /// end-entity certificate first.
    fn trustpoint_of(&self, chain: &[X509]) -> Option<&Trustpoint> {
        chain.iter().skip(1).find_map(|c| {
            self.trustpoints
                .iter()
                .find(|t| t.ca_certs.iter().any(|a| same_cert(a, c)))
        })
    }

    /// Checks a peer's certificates (DER, end-entity first, then any intermediates it sent)
    /// at `now`: chain to a trusted CA, signatures, validity, basic constraints, key usage,
    /// then revocation per the anchoring trustpoint's `revocation-check` mode. Every
    /// certificate below the trust anchor is checked against its issuer's CRL: the
    /// end-entity certificate always, a subordinate CA when its CRL is held or it names a
    /// distribution point. With `crl`, a certificate whose CRL cannot be had is refused.
    /// The chain check of certificates seen before under the same CAs is remembered
    /// ([`chain_cache`]); the revocation check is made on every call.
    pub fn verify_peer(
        &self,
        chain: &[Vec<u8>],
        now: SystemTime,
    ) -> Result<VerifiedPeer, CertError> {
        let now = unix_secs(now);
        // the same certificates under the same CAs, still all valid: checked already (the
        // revocation check below is made every time)
        let key = ChainCache::key(&self.cas, chain);
        let path = match self.chains.get(&key, now) {
            Some(path) => path,
            None => {
                let certs = chain
                    .iter()
                    .enumerate()
                    .map(|(i, der)| {
                        X509::from_der(der).map_err(|e| CertError::Malformed {
                            reason: format!("certificate {} of {}: {e}", i + 1, chain.len()),
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let path = verify_chain(&self.anchors, &self.intermediates, &certs, now, true)?;
                self.chains.insert(key, &path);
                path
            }
        };
        let tp = self.trustpoint_of(&path).or(self.trustpoints.first());
        let (mode, url, tp_name) = match tp {
            Some(t) => (t.revocation, t.crl_url.as_deref(), t.name.clone()),
            None => (RevocationCheck::Crl, None, String::new()),
        };
        let revocation = self.check_revocation(&path, mode, url, now)?;
        Ok(VerifiedPeer {
            subject: dn_string(path[0].subject_name()),
            cert: path[0].clone(),
            chain: path,
            trustpoint: tp_name,
            revocation,
        })
    }

    /// [`TrustStore::verify_peer`], then the peer's identity against its certificate.
    pub fn verify_peer_identity(
        &self,
        chain: &[Vec<u8>],
        claim: &IdentityClaim,
        now: SystemTime,
    ) -> Result<VerifiedPeer, CertError> {
        let v = self.verify_peer(chain, now)?;
        check_identity(&v.cert, claim)?;
        Ok(v)
    }

    fn check_revocation(
        &self,
        path: &[X509],
        mode: RevocationCheck,
        url: Option<&str>,
        now: i64,
    ) -> Result<RevocationStatus, CertError> {
        if mode == RevocationCheck::None {
            return Ok(RevocationStatus::Skipped);
        }
        let mut status = RevocationStatus::Checked;
        let mut crls = self.crls();
        // The last certificate is the trust anchor: trusted as configured.
        for (i, pair) in path.windows(2).enumerate() {
            let (cert, issuer) = (&pair[0], &pair[1]);
            let required = i == 0
                || crls.holds(issuer.subject_name())
                || !super::crl::distribution_points(cert).is_empty();
            if !required {
                continue;
            }
            // Only the end-entity certificate uses the trustpoint's URL: a CRL from it is
            // of one CA.
            let override_url = if i == 0 { url } else { None };
            match crls.status(cert, issuer, override_url, now) {
                CertStatus::Good => {}
                CertStatus::Revoked { serial } => {
                    return Err(CertError::Revoked {
                        serial,
                        subject: dn_string(cert.subject_name()),
                    })
                }
                CertStatus::NoCrl if mode == RevocationCheck::Crl => {
                    return Err(CertError::NoValidCrl {
                        issuer: dn_string(issuer.subject_name()),
                    })
                }
                CertStatus::NoCrl => {
                    log::info!(
                        "PKI: no valid CRL of {}; certificate {} (serial {}) accepted unchecked \
                         (revocation-check crl none)",
                        dn_string(issuer.subject_name()),
                        dn_string(cert.subject_name()),
                        serial_hex(cert)
                    );
                    status = RevocationStatus::Unavailable;
                }
            }
        }
        Ok(status)
    }
}
