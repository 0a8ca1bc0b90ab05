//! The control process's configuration: the shared file's dataplane part ([`Config`], parsed
//! and validated by `dataplane::config`) plus the sections only the IKE daemon reads, in IOS's
//! vocabulary:
//!
//! - `[isakmp]`: `crypto isakmp identity`, `crypto isakmp keepalive` (DPD), `crypto isakmp
//!   nat keepalive`, `crypto call admission limit`, and `dh_precompute` (ours: how many
//!   Diffie-Hellman key pairs are made ahead of need);
//! - `[[isakmp.policy]]`: `crypto isakmp policy N` (phase 1 suites, IOS's default suite when
//!   none is configured);
//! - `[[isakmp.key]]`: `crypto isakmp key SECRET address A.B.C.D [MASK]`;
//! - `[trustpoint.NAME]`: `crypto pki trustpoint NAME` (CA certificates, our certificate and
//!   key, revocation checking);
//! - `[ctl]`: the `ipsec-ctl` socket, the group allowed to use it, and the metrics address.
//!
//! Dynamic crypto maps (`crypto dynamic-map`) are validated by the dataplane's config, which
//! must know which crypto map entries stand for them; see [`IkeConfig::dynamic_maps`].
//!
//! [`IkeConfig::load`] refuses a bad file before anything starts, with `FILE:LINE: reason`
//! like the dataplane's config. Certificate, key, CA and CRL files must exist and be readable
//! at load time; they are not parsed here (that is the PKI's job). Relative paths are taken
//! from the configuration file's directory. Pre-shared keys never appear in `Debug` output.

mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

pub use dataplane::config::{Config, ConfigError, DynamicMapEntry};
use dataplane::esp::Prefix;

/// Phase 1 encryption (`encryption des | 3des | aes | aes 192 | aes 256`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IkeEncryption {
    Des,
    TripleDes,
    Aes128,
    Aes192,
    Aes256,
}

impl IkeEncryption {
    /// The IOS words of the `encryption` command.
    pub fn ios_keyword(self) -> &'static str {
        match self {
            IkeEncryption::Des => "des",
            IkeEncryption::TripleDes => "3des",
            IkeEncryption::Aes128 => "aes",
            IkeEncryption::Aes192 => "aes 192",
            IkeEncryption::Aes256 => "aes 256",
        }
    }
}

/// As `show crypto isakmp policy` prints it.
impl fmt::Display for IkeEncryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IkeEncryption::Des => "DES - Data Encryption Standard (56 bit keys).",
            IkeEncryption::TripleDes => "Three key triple DES",
            IkeEncryption::Aes128 => "AES - Advanced Encryption Standard (128 bit keys).",
            IkeEncryption::Aes192 => "AES - Advanced Encryption Standard (192 bit keys).",
            IkeEncryption::Aes256 => "AES - Advanced Encryption Standard (256 bit keys).",
        })
    }
}

/// Phase 1 hash (`hash md5 | sha | sha256 | sha384`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IkeHash {
    Md5,
    Sha1,
    Sha256,
    Sha384,
}

impl IkeHash {
    pub fn ios_keyword(self) -> &'static str {
        match self {
            IkeHash::Md5 => "md5",
            IkeHash::Sha1 => "sha",
            IkeHash::Sha256 => "sha256",
            IkeHash::Sha384 => "sha384",
        }
    }
}

/// As `show crypto isakmp policy` prints it.
impl fmt::Display for IkeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IkeHash::Md5 => "Message Digest 5",
            IkeHash::Sha1 => "Secure Hash Standard",
            IkeHash::Sha256 => "Secure Hash Standard 2 (256 bit)",
            IkeHash::Sha384 => "Secure Hash Standard 2 (384 bit)",
        })
    }
}

/// Phase 1 authentication (`authentication rsa-sig | pre-share`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    RsaSig,
    PreShare,
}

impl AuthMethod {
    pub fn ios_keyword(self) -> &'static str {
        match self {
            AuthMethod::RsaSig => "rsa-sig",
            AuthMethod::PreShare => "pre-share",
        }
    }
}

/// As `show crypto isakmp policy` prints it.
impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthMethod::RsaSig => "Rivest-Shamir-Adleman Signature",
            AuthMethod::PreShare => "Pre-Shared Key",
        })
    }
}

/// A Diffie-Hellman group this gateway implements: 1, 2, 5, 14, 15, 19 or 20.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DhGroupId(u16);

impl DhGroupId {
    pub const SUPPORTED: [u16; 7] = [1, 2, 5, 14, 15, 19, 20];

    /// None for a group not in [`DhGroupId::SUPPORTED`].
    pub fn new(id: u16) -> Option<DhGroupId> {
        DhGroupId::SUPPORTED.contains(&id).then_some(DhGroupId(id))
    }

    /// The group number (IANA "Group Description").
    pub fn get(self) -> u16 {
        self.0
    }
}

/// As `show crypto isakmp policy` prints it: `#2 (1024 bit)`. (The elliptic-curve groups'
/// wording is ours; the reference output shows only MODP groups.)
impl fmt::Display for DhGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = match self.0 {
            1 => "768 bit",
            2 => "1024 bit",
            5 => "1536 bit",
            14 => "2048 bit",
            15 => "3072 bit",
            19 => "256 bit ECP",
            20 => "384 bit ECP",
            _ => unreachable!("DhGroupId holds supported groups only"),
        };
        write!(f, "#{} ({size})", self.0)
    }
}

/// `crypto isakmp identity address | hostname | dn`: which ID payload we send in phase 1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IdentityMode {
    /// ID_IPV4_ADDR: our address on the outside interface (IOS's default).
    #[default]
    Address,
    /// ID_FQDN: `hostname.domain`.
    Hostname,
    /// ID_DER_ASN1_DN: the subject of our certificate.
    Dn,
}

impl IdentityMode {
    /// The ID type (RFC 2407 section 4.6.2.1) this mode sends.
    pub fn id_type_name(self) -> &'static str {
        match self {
            IdentityMode::Address => "ID_IPV4_ADDR",
            IdentityMode::Hostname => "ID_FQDN",
            IdentityMode::Dn => "ID_DER_ASN1_DN",
        }
    }
}

/// The IOS keyword.
impl fmt::Display for IdentityMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdentityMode::Address => "address",
            IdentityMode::Hostname => "hostname",
            IdentityMode::Dn => "dn",
        })
    }
}

/// Dead peer detection (RFC 3706 R-U-THERE / R-U-THERE-ACK), from `crypto isakmp keepalive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dpd {
    /// Seconds of silence from the peer before an R-U-THERE is sent (10-3600).
    pub interval: u32,
    /// Unanswered R-U-THEREs before the peer is declared dead (1-10). Note: IOS's second
    /// number (`keepalive 10 3`) is the retry interval in seconds, and IOS gives up after 5.
    pub retries: u32,
}

/// `[isakmp]`: the global `crypto isakmp` settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IsakmpGlobal {
    pub identity: IdentityMode,
    /// None: no DPD (IOS's default).
    pub dpd: Option<Dpd>,
    /// Seconds between NAT-T keepalives (RFC 3948); None: none sent (IOS's default).
    pub nat_keepalive: Option<u32>,
    /// Cap on phase 1 SAs being negotiated at once; None: no cap (IOS's default).
    pub call_admission_limit: Option<u32>,
    /// Diffie-Hellman key pairs kept precomputed per group and per use (Main Mode, PFS);
    /// None: [`crate::ikecrypto::dh_pool::DEFAULT_PER_USE`], 0: none (ours; IOS has no
    /// such setting).
    pub dh_precompute: Option<u32>,
}

/// One `crypto isakmp policy N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IsakmpPolicy {
    /// 1-10000, lower is preferred; [`IsakmpPolicy::DEFAULT_SUITE_PRIORITY`] for IOS's
    /// default suite.
    pub priority: u32,
    pub encryption: IkeEncryption,
    pub hash: IkeHash,
    pub authentication: AuthMethod,
    pub group: DhGroupId,
    /// Seconds (60-86400); no volume limit, as in IOS.
    pub lifetime: u32,
}

impl IsakmpPolicy {
    /// The priority given to the default suite: below every configurable one (1-10000).
    pub const DEFAULT_SUITE_PRIORITY: u32 = 65535;

    /// IOS's "Default protection suite" as `show crypto isakmp policy` prints it on IOS 12.2
    /// and PIX 6.0 (see the reference output): DES, SHA, RSA signatures, group 1, 86400 s.
    /// These are also the values of a policy's omitted fields.
    pub fn default_suite() -> Vec<IsakmpPolicy> {
        vec![IsakmpPolicy {
            priority: IsakmpPolicy::DEFAULT_SUITE_PRIORITY,
            encryption: IkeEncryption::Des,
            hash: IkeHash::Sha1,
            authentication: AuthMethod::RsaSig,
            group: DhGroupId(1),
            lifetime: 86400,
        }]
    }

    pub fn is_default_suite(&self) -> bool {
        self.priority == IsakmpPolicy::DEFAULT_SUITE_PRIORITY
    }
}

/// The `show crypto isakmp policy` block of this policy.
impl fmt::Display for IsakmpPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_default_suite() {
            writeln!(f, "Default protection suite")?;
        } else {
            writeln!(f, "Protection suite of priority {}", self.priority)?;
        }
        writeln!(f, "        encryption algorithm:   {}", self.encryption)?;
        writeln!(f, "        hash algorithm:         {}", self.hash)?;
        writeln!(f, "        authentication method:  {}", self.authentication)?;
        writeln!(f, "        Diffie-Hellman group:   {}", self.group)?;
        write!(
            f,
            "        lifetime:               {} seconds, no volume limit",
            self.lifetime
        )
    }
}

/// A secret (a pre-shared key): wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// The key bytes, for SKEYID = prf(pre-shared-key, Ni_b | Nr_b).
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `crypto isakmp key SECRET address A.B.C.D [MASK]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreSharedKey {
    pub secret: Secret,
    /// The peers the key is for (a host, a network, or `0.0.0.0 0.0.0.0` for any).
    pub peer: Prefix,
}

/// `revocation-check crl | crl none | none`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RevocationCheck {
    /// A certificate is refused when no CRL can be had (IOS's default).
    #[default]
    Crl,
    /// The CRL is checked when there is one; without one, the certificate is accepted.
    CrlNone,
    /// No revocation checking.
    None,
}

/// The IOS words.
impl fmt::Display for RevocationCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RevocationCheck::Crl => "crl",
            RevocationCheck::CrlNone => "crl none",
            RevocationCheck::None => "none",
        })
    }
}

/// `crypto pki trustpoint NAME`. Paths are absolute (relative ones were taken from the
/// configuration file's directory) and were readable at load time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustpointConfig {
    /// The CA certificates this trustpoint trusts: a root and any subordinate CAs (a hub may
    /// trust several subordinates).
    pub ca_certificates: Vec<PathBuf>,
    /// Our certificate, issued by one of the CAs.
    pub certificate: PathBuf,
    /// Our RSA private key.
    pub private_key: PathBuf,
    pub revocation: RevocationCheck,
    /// A CRL read from a file; when None, CRLs come from `crl_url` or from the CRL
    /// distribution points of the certificates.
    pub crl_file: Option<PathBuf>,
    /// An HTTP URL that overrides the certificates' distribution points.
    pub crl_url: Option<String>,
}

/// The control process's validated configuration.
#[derive(Clone, Debug)]
pub struct IkeConfig {
    /// The sections both processes read (interfaces, transform sets, ACLs, crypto maps and
    /// dynamic maps).
    pub base: Config,
    /// `ip domain-name`: with the hostname, our FQDN for `isakmp identity hostname`.
    pub domain: Option<String>,
    pub isakmp: IsakmpGlobal,
    /// Phase 1 policies, lowest priority number first; IOS's default suite
    /// ([`IsakmpPolicy::default_suite`]) when the file configures none.
    pub policies: Vec<IsakmpPolicy>,
    /// Pre-shared keys in file order (see [`IkeConfig::key_for`]).
    pub keys: Vec<PreSharedKey>,
    pub trustpoints: BTreeMap<String, TrustpointConfig>,
    /// The `ipsec-ctl` socket (`[ctl] socket`).
    pub ctl_socket: PathBuf,
    /// `[ctl] group`, resolved to its gid: its members may use the socket besides root
    /// (the socket is then mode 0660 and owned by it). None: root only, mode 0600.
    pub ctl_group: Option<u32>,
    /// `[ctl] metrics`: where the Prometheus text is served over HTTP; None: not served.
    pub ctl_metrics: Option<std::net::SocketAddr>,
}

impl IkeConfig {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<IkeConfig, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            reason: format!("cannot read: {e}"),
        })?;
        IkeConfig::parse(path, &text)
    }

    /// Parses and validates configuration text; `file` names it in errors, and relative
    /// paths in it are taken from `file`'s directory.
    pub fn parse(file: impl AsRef<Path>, text: &str) -> Result<IkeConfig, ConfigError> {
        validate::parse(file.as_ref(), text)
    }

    /// `crypto dynamic-map` entries by name, in sequence order (validated with the crypto
    /// maps, in [`Config::dynamic_maps`]).
    pub fn dynamic_maps(&self) -> &BTreeMap<String, Vec<DynamicMapEntry>> {
        &self.base.dynamic_maps
    }

    /// Dynamic maps no crypto map entry references (accepted, as IOS does, but unused).
    pub fn unused_dynamic_maps(&self) -> Vec<&str> {
        self.base
            .dynamic_maps
            .keys()
            .filter(|name| {
                !self
                    .base
                    .crypto_maps
                    .values()
                    .flatten()
                    .any(|e| e.dynamic.as_deref() == Some(name.as_str()))
            })
            .map(String::as_str)
            .collect()
    }

    /// The pre-shared key for `peer`: the most specific one whose address covers it, as IOS
    /// picks it.
    pub fn key_for(&self, peer: IpAddr) -> Option<&PreSharedKey> {
        self.keys
            .iter()
            .filter(|k| k.peer.contains(peer))
            .max_by_key(|k| k.peer.len)
    }

    /// Our FQDN for `isakmp identity hostname`: `hostname.domain`, or the hostname alone.
    pub fn fqdn(&self) -> String {
        match &self.domain {
            Some(d) => format!("{}.{d}", self.base.hostname),
            None => self.base.hostname.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
