//! The control-process sections as written, before validation. Every field that can be wrong
//! on its own is `Spanned`, so that an error names its line. The other sections are ignored
//! here: the dataplane's config has already checked them (and refused unknown ones).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
pub struct RawControl {
    pub domain: Option<Spanned<String>>,
    /// Not `Spanned`: `[[isakmp.policy]]` without an `[isakmp]` header creates the table
    /// implicitly, and toml has no span to give it.
    pub isakmp: Option<RawIsakmp>,
    #[serde(default)]
    pub trustpoint: BTreeMap<String, Spanned<RawTrustpoint>>,
    pub ctl: Option<Spanned<RawCtl>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIsakmp {
    pub identity: Option<Spanned<String>>,
    pub keepalive: Option<Spanned<RawKeepalive>>,
    pub nat_keepalive: Option<Spanned<u32>>,
    pub call_admission_limit: Option<Spanned<u32>>,
    pub dh_precompute: Option<Spanned<u32>>,
    #[serde(default)]
    pub policy: Vec<Spanned<RawPolicy>>,
    #[serde(default)]
    pub key: Vec<Spanned<RawKey>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeepalive {
    pub seconds: Spanned<u32>,
    pub retries: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub priority: Spanned<u32>,
    pub encryption: Option<Spanned<String>>,
    pub hash: Option<Spanned<String>>,
    pub authentication: Option<Spanned<String>>,
    pub group: Option<Spanned<u32>>,
    pub lifetime: Option<Spanned<u32>>,
}

/// `crypto isakmp key SECRET address A.B.C.D [MASK]`. No Debug: it holds a key.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKey {
    pub key: Spanned<String>,
    pub address: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustpoint {
    /// A list even for one file, so that each entry keeps its own line.
    pub ca_certificates: Spanned<Vec<Spanned<String>>>,
    pub certificate: Spanned<String>,
    pub private_key: Spanned<String>,
    pub revocation_check: Option<Spanned<String>>,
    pub crl_file: Option<Spanned<String>>,
    pub crl_url: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCtl {
    pub socket: Option<Spanned<String>>,
    /// A group (name or number) whose members may use the socket besides root.
    pub group: Option<Spanned<String>>,
    /// `ADDRESS:PORT` of the Prometheus endpoint.
    pub metrics: Option<Spanned<String>>,
}
