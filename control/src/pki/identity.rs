//! The peer's identity (its phase 1 ID payload) against its certificate, and the identity
//! we send with ours.
//!
//! A claim matches when the certificate carries it:
//!
//! - an address (ID_IPV4_ADDR / ID_IPV6_ADDR): a subjectAltName iPAddress, or the subject's
//!   `unstructuredAddress` (PKCS#9, 1.2.840.113549.1.9.8), where IOS enrollment puts the
//!   router's address;
//! - an FQDN (ID_FQDN): a subjectAltName dNSName, the subject's `unstructuredName` (PKCS#9,
//!   1.2.840.113549.1.9.2, where IOS puts `hostname.domain`), or the subject's CN; compared
//!   without case and without a trailing dot;
//! - a user FQDN (ID_USER_FQDN): a subjectAltName rfc822Name or the subject's emailAddress,
//!   without case;
//! - a DN (ID_DER_ASN1_DN): the subject, compared as OpenSSL compares names (canonical
//!   encodings, so case and spacing in strings do not matter).
//!
//! IOS's rule for the identity we send ([`own_identity`]): with `crypto isakmp identity
//! address`, when our certificate does not hold our address, send the FQDN instead, so that
//! the peer can match our ID against our certificate.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use openssl::nid::Nid;
use openssl::x509::{X509NameRef, X509Ref};

use super::verify::CertError;
use super::{dn_der_eq, dn_string};
use crate::config::IdentityMode;

/// An identity as a peer claims it in its ID payload (or as we claim ours).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IdentityClaim {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Fqdn(String),
    UserFqdn(String),
    /// A DER-encoded X.500 name.
    Dn(Vec<u8>),
}

impl fmt::Display for IdentityClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityClaim::Ipv4(a) => write!(f, "{a}"),
            IdentityClaim::Ipv6(a) => write!(f, "{a}"),
            IdentityClaim::Fqdn(s) => write!(f, "{s}"),
            IdentityClaim::UserFqdn(s) => write!(f, "{s}"),
            IdentityClaim::Dn(der) => match openssl::x509::X509Name::from_der(der) {
                Ok(n) => write!(f, "{}", dn_string(&n)),
                Err(_) => write!(f, "DN {}", hex::encode(der)),
            },
        }
    }
}

impl From<IpAddr> for IdentityClaim {
    fn from(a: IpAddr) -> IdentityClaim {
        match a {
            IpAddr::V4(a) => IdentityClaim::Ipv4(a),
            IpAddr::V6(a) => IdentityClaim::Ipv6(a),
        }
    }
}

/// The string values of a name's attributes of type `nid`.
fn attr_strings(name: &X509NameRef, nid: Nid) -> Vec<String> {
    name.entries_by_nid(nid)
        .filter_map(|e| e.data().to_string().ok())
        .collect()
}

fn fqdn_eq(a: &str, b: &str) -> bool {
    a.trim_end_matches('.')
        .eq_ignore_ascii_case(b.trim_end_matches('.'))
}

/// The addresses a certificate holds: subjectAltName iPAddress entries, then the subject's
/// unstructuredAddress attributes that parse as addresses.
pub fn cert_addresses(cert: &X509Ref) -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for gn in &sans {
            match gn.ipaddress() {
                Some(b) if b.len() == 4 => {
                    out.push(IpAddr::from(<[u8; 4]>::try_from(b).unwrap()));
                }
                Some(b) if b.len() == 16 => {
                    out.push(IpAddr::from(<[u8; 16]>::try_from(b).unwrap()));
                }
                _ => {}
            }
        }
    }
    for s in attr_strings(cert.subject_name(), Nid::PKCS9_UNSTRUCTUREDADDRESS) {
        if let Ok(a) = s.trim().parse::<IpAddr>() {
            out.push(a);
        }
    }
    out
}

/// The host names a certificate holds: subjectAltName dNSName entries, then the subject's
/// unstructuredName attributes (IOS: `hostname.domain`), then its common names.
pub fn cert_fqdns(cert: &X509Ref) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        out.extend(sans.iter().filter_map(|g| g.dnsname().map(str::to_owned)));
    }
    out.extend(attr_strings(
        cert.subject_name(),
        Nid::PKCS9_UNSTRUCTUREDNAME,
    ));
    out.extend(attr_strings(cert.subject_name(), Nid::COMMONNAME));
    out
}

/// The e-mail addresses a certificate holds: subjectAltName rfc822Name entries, then the
/// subject's emailAddress attributes.
pub fn cert_emails(cert: &X509Ref) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        out.extend(sans.iter().filter_map(|g| g.email().map(str::to_owned)));
    }
    out.extend(attr_strings(cert.subject_name(), Nid::PKCS9_EMAILADDRESS));
    out
}

/// Checks that `cert` carries the identity the peer claims (see the module documentation).
/// A mismatch is [`CertError::IdMismatch`], naming the claim and what the certificate holds.
pub fn check_identity(cert: &X509Ref, claim: &IdentityClaim) -> Result<(), CertError> {
    let ok = match claim {
        IdentityClaim::Ipv4(a) => cert_addresses(cert).contains(&IpAddr::V4(*a)),
        IdentityClaim::Ipv6(a) => cert_addresses(cert).contains(&IpAddr::V6(*a)),
        IdentityClaim::Fqdn(name) => cert_fqdns(cert).iter().any(|n| fqdn_eq(n, name)),
        IdentityClaim::UserFqdn(mail) => cert_emails(cert)
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mail)),
        IdentityClaim::Dn(der) => dn_der_eq(der, cert.subject_name()),
    };
    if ok {
        Ok(())
    } else {
        Err(CertError::IdMismatch {
            claimed: format!("{} ({})", claim, claim_kind(claim)),
            cert: describe(cert),
        })
    }
}

fn claim_kind(claim: &IdentityClaim) -> &'static str {
    match claim {
        IdentityClaim::Ipv4(_) => "ID_IPV4_ADDR",
        IdentityClaim::Ipv6(_) => "ID_IPV6_ADDR",
        IdentityClaim::Fqdn(_) => "ID_FQDN",
        IdentityClaim::UserFqdn(_) => "ID_USER_FQDN",
        IdentityClaim::Dn(_) => "ID_DER_ASN1_DN",
    }
}

/// The subject and alternative names of a certificate, for log lines.
fn describe(cert: &X509Ref) -> String {
    let mut s = format!("subject {}", dn_string(cert.subject_name()));
    let mut alt: Vec<String> = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for g in &sans {
            if let Some(d) = g.dnsname() {
                alt.push(format!("DNS:{d}"));
            } else if let Some(e) = g.email() {
                alt.push(format!("email:{e}"));
            } else if let Some(ip) = g.ipaddress() {
                let a = match ip.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(ip).unwrap()).to_string(),
                    16 => IpAddr::from(<[u8; 16]>::try_from(ip).unwrap()).to_string(),
                    _ => hex::encode(ip),
                };
                alt.push(format!("IP:{a}"));
            }
        }
    }
    if !alt.is_empty() {
        s.push_str(&format!(", altnames {}", alt.join(" ")));
    }
    s
}

/// The identity we send in phase 1 for `crypto isakmp identity MODE`, with our certificate.
///
/// - `Address`: our address, as long as our certificate holds it; otherwise (IOS's rule) the
///   FQDN: `fqdn` (IOS's `hostname.domain`) when the certificate carries it, else the first
///   dotted host name the certificate holds (dNSName, unstructuredName, CN), else `fqdn`
///   anyway. "Holds our address" means a subjectAltName iPAddress or an unstructuredAddress
///   equal to `local`.
/// - `Hostname`: `fqdn`.
/// - `Dn`: the subject of our certificate.
pub fn own_identity(
    cert: &X509Ref,
    mode: IdentityMode,
    local: IpAddr,
    fqdn: &str,
) -> IdentityClaim {
    match mode {
        IdentityMode::Address => {
            if cert_addresses(cert).contains(&local) {
                IdentityClaim::from(local)
            } else {
                let configured = IdentityClaim::Fqdn(fqdn.to_string());
                if !fqdn.is_empty() && check_identity(cert, &configured).is_ok() {
                    configured
                } else if let Some(n) = cert_fqdns(cert).into_iter().find(|n| n.contains('.')) {
                    IdentityClaim::Fqdn(n)
                } else {
                    configured
                }
            }
        }
        IdentityMode::Hostname => IdentityClaim::Fqdn(fqdn.to_string()),
        IdentityMode::Dn => IdentityClaim::Dn(cert.subject_name().to_der().unwrap_or_default()),
    }
}
