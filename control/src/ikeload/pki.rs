//! The load's PKI: one CA, the responder's certificate (`hub.example.net`) and one
//! certificate per spoke (`spokeN.example.net`), all RSA-2048, kept in a directory so that a
//! later run reuses them (RSA-2048 key generation is about 50-150 ms per key here, so a
//! thousand spokes take a minute or two the first time only).
//!
//! Layout of the directory:
//!
//! ```text
//! ca.key ca.pem            the CA (self-signed, serial 1)
//! hub.key hub.pem          the responder: SAN DNS hub.example.net and IP --hub-address
//! spokes/spokeN.key/.pem   spoke N (1-based): SAN DNS spokeN.example.net, serial 1000 + N
//! ```
//!
//! The cache is incremental: asking for N spokes makes only the ones missing, so the
//! thousand of one run cover the hundred of another. Every spoke has its own key; with
//! `shared_key` the spokes made by that call reuse one key (each certificate still has its
//! own subject, SAN and serial and is signed by the CA), which makes a first run fast.
//! Keys are test keys, written with mode 0600.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName, SubjectKeyIdentifier,
};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

use crate::pki::trustpoint::{read_certs, read_private_key};

/// RSA modulus size of every key (the issue's load: RSA-2048).
pub const RSA_BITS: u32 = 2048;
/// Days the certificates are valid from now.
const VALID_DAYS: u32 = 365;

/// The FQDN of spoke `n` (1-based), its certificate's SAN and its ID payload.
pub fn spoke_fqdn(n: usize) -> String {
    format!("spoke{n}.example.net")
}

/// The FQDN of the responder.
pub const HUB_FQDN: &str = "hub.example.net";

/// A key and its certificate.
pub struct Issued {
    pub key: PKey<Private>,
    pub cert: X509,
}

/// Where the files of the load's PKI are.
pub struct LabPki {
    dir: PathBuf,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("{}: {e}", path.display())
}

fn write_secret(path: &Path, data: &[u8]) -> Result<(), String> {
    fs::write(path, data).map_err(|e| io_err(path, e))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|e| io_err(path, e))
}

fn write_issued(dir: &Path, name: &str, i: &Issued) -> Result<(), String> {
    let key = i
        .key
        .private_key_to_pem_pkcs8()
        .map_err(|e| e.to_string())?;
    write_secret(&dir.join(format!("{name}.key")), &key)?;
    let pem = i.cert.to_pem().map_err(|e| e.to_string())?;
    let p = dir.join(format!("{name}.pem"));
    fs::write(&p, pem).map_err(|e| io_err(&p, e))
}

fn read_issued(dir: &Path, name: &str) -> Result<Issued, String> {
    let kp = dir.join(format!("{name}.key"));
    let cp = dir.join(format!("{name}.pem"));
    Ok(Issued {
        key: read_private_key(&kp).map_err(|e| io_err(&kp, e))?,
        cert: read_certs(&cp).map_err(|e| io_err(&cp, e))?.remove(0),
    })
}

fn new_key() -> Result<PKey<Private>, String> {
    let rsa = Rsa::generate(RSA_BITS).map_err(|e| format!("RSA key generation: {e}"))?;
    PKey::from_rsa(rsa).map_err(|e| e.to_string())
}

/// A certificate for `key`: `cn` under `O=IKE Load, C=CH`; a CA when `issuer` is None
/// (self-signed), else an end entity with a DNS (and optionally IP) subjectAltName.
fn certificate(
    cn: &str,
    key: &PKey<Private>,
    serial: u32,
    issuer: Option<&Issued>,
    ip: Option<IpAddr>,
) -> Result<X509, String> {
    let e = |e: openssl::error::ErrorStack| format!("certificate {cn}: {e}");
    let mut name = X509NameBuilder::new().map_err(e)?;
    name.append_entry_by_nid(Nid::COUNTRYNAME, "CH")
        .map_err(e)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "IKE Load")
        .map_err(e)?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn).map_err(e)?;
    let name = name.build();
    let mut b = X509Builder::new().map_err(e)?;
    b.set_version(2).map_err(e)?;
    let serial = BigNum::from_u32(serial)
        .and_then(|s| s.to_asn1_integer())
        .map_err(e)?;
    b.set_serial_number(&serial).map_err(e)?;
    b.set_subject_name(&name).map_err(e)?;
    b.set_issuer_name(issuer.map(|i| i.cert.subject_name()).unwrap_or(&name))
        .map_err(e)?;
    b.set_pubkey(key).map_err(e)?;
    // valid from yesterday: clocks of namespaces are one, but a CA made a second ago must
    // not be "not yet valid" anywhere
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let not_before = Asn1Time::from_unix(now - 86_400).map_err(e)?;
    let not_after = Asn1Time::days_from_now(VALID_DAYS).map_err(e)?;
    b.set_not_before(&not_before).map_err(e)?;
    b.set_not_after(&not_after).map_err(e)?;
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .map_err(e)?;
    b.append_extension(ski).map_err(e)?;
    match issuer {
        None => {
            b.append_extension(BasicConstraints::new().critical().ca().build().map_err(e)?)
                .map_err(e)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .map_err(e)?,
            )
            .map_err(e)?;
        }
        Some(ca) => {
            let mut san = SubjectAlternativeName::new();
            san.dns(cn);
            if let Some(ip) = ip {
                san.ip(&ip.to_string());
            }
            let san = san
                .build(&b.x509v3_context(Some(&ca.cert), None))
                .map_err(e)?;
            b.append_extension(san).map_err(e)?;
            b.append_extension(
                KeyUsage::new()
                    .digital_signature()
                    .key_encipherment()
                    .build()
                    .map_err(e)?,
            )
            .map_err(e)?;
            b.append_extension(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()
                    .map_err(e)?,
            )
            .map_err(e)?;
        }
    }
    let signer = issuer.map_or(key, |i| &i.key);
    b.sign(signer, MessageDigest::sha256()).map_err(e)?;
    Ok(b.build())
}

impl LabPki {
    pub fn new(dir: &Path) -> LabPki {
        LabPki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn spokes_dir(&self) -> PathBuf {
        self.dir.join("spokes")
    }

    /// The CA, made if missing. A new CA invalidates every certificate below it, so the
    /// hub's and the spokes' are removed then.
    pub fn ca(&self) -> Result<Issued, String> {
        if self.dir.join("ca.pem").exists() {
            return read_issued(&self.dir, "ca");
        }
        fs::create_dir_all(&self.dir).map_err(|e| io_err(&self.dir, e))?;
        let _ = fs::remove_dir_all(self.spokes_dir());
        let _ = fs::remove_file(self.dir.join("hub.pem"));
        let key = new_key()?;
        let cert = certificate("IKE Load CA", &key, 1, None, None)?;
        let ca = Issued { key, cert };
        write_issued(&self.dir, "ca", &ca)?;
        Ok(ca)
    }

    /// The responder's key and certificate (SAN DNS hub.example.net and IP `address`), made
    /// if missing or if its IP SAN is another address.
    pub fn hub(&self, ca: &Issued, address: IpAddr) -> Result<Issued, String> {
        let marker = self.dir.join("hub.address");
        let same = fs::read_to_string(&marker).is_ok_and(|a| a.trim() == address.to_string());
        if same && self.dir.join("hub.pem").exists() {
            return read_issued(&self.dir, "hub");
        }
        let key = new_key()?;
        let cert = certificate(HUB_FQDN, &key, 2, Some(ca), Some(address))?;
        let hub = Issued { key, cert };
        write_issued(&self.dir, "hub", &hub)?;
        fs::write(&marker, address.to_string()).map_err(|e| io_err(&marker, e))?;
        Ok(hub)
    }

    /// Makes spokes 1..=count that are missing, on `threads` threads; returns how many
    /// were made.
    pub fn ensure_spokes(
        &self,
        ca: &Issued,
        count: usize,
        shared_key: bool,
        threads: usize,
    ) -> Result<usize, String> {
        let sd = self.spokes_dir();
        fs::create_dir_all(&sd).map_err(|e| io_err(&sd, e))?;
        let missing: Vec<usize> = (1..=count)
            .filter(|n| !sd.join(format!("spoke{n}.pem")).exists())
            .collect();
        if missing.is_empty() {
            return Ok(0);
        }
        let shared = if shared_key { Some(new_key()?) } else { None };
        let threads = threads.clamp(1, missing.len());
        let chunks: Vec<Vec<usize>> = (0..threads)
            .map(|t| missing.iter().copied().skip(t).step_by(threads).collect())
            .collect();
        std::thread::scope(|s| {
            let handles: Vec<_> = chunks
                .into_iter()
                .map(|chunk| {
                    let (sd, shared) = (&sd, &shared);
                    s.spawn(move || -> Result<(), String> {
                        for n in chunk {
                            let key = match shared {
                                Some(k) => k.clone(),
                                None => new_key()?,
                            };
                            let cert =
                                certificate(&spoke_fqdn(n), &key, 1000 + n as u32, Some(ca), None)?;
                            write_issued(sd, &format!("spoke{n}"), &Issued { key, cert })?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().map_err(|_| "a key thread panicked".to_string())?)
        })?;
        Ok(missing.len())
    }

    /// Spoke `n`'s key and certificate.
    pub fn spoke(&self, n: usize) -> Result<Issued, String> {
        read_issued(&self.spokes_dir(), &format!("spoke{n}"))
    }
}
