//! The TOML file as written, before validation. Every field that can be wrong on its own is
//! `Spanned`, so that an error names the line it is on.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

// `domain` and the control-process sections are accepted so that both processes read one file;
// the dataplane does not use them.
#[allow(dead_code)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub hostname: Option<Spanned<String>>,
    pub domain: Option<String>,
    pub dataplane: Option<Spanned<RawDataplane>>,
    #[serde(default)]
    pub interface: Vec<Spanned<RawInterface>>,
    #[serde(default)]
    pub route: Vec<Spanned<RawRoute>>,
    #[serde(default)]
    pub arp: Vec<Spanned<RawArp>>,
    #[serde(default)]
    pub transform_set: BTreeMap<String, Spanned<RawTransformSet>>,
    #[serde(default)]
    pub access_list: BTreeMap<String, Vec<Spanned<RawAce>>>,
    #[serde(default)]
    pub crypto_map: BTreeMap<String, Vec<Spanned<RawMapEntry>>>,
    /// `crypto dynamic-map NAME SEQ`: templates for hubs, referenced from crypto map entries.
    #[serde(default)]
    pub dynamic_map: BTreeMap<String, Vec<Spanned<RawDynamicMapEntry>>>,
    // Sections that belong to the control process (issue 3). Kept as values here so that the
    // dataplane accepts the one shared file; the control process validates them.
    pub isakmp: Option<toml::Value>,
    pub trustpoint: Option<toml::Value>,
    pub ctl: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDataplane {
    #[serde(default)]
    pub eal: Vec<String>,
    pub lcores: Option<Spanned<RawLcores>>,
    pub burst: Option<Spanned<u32>>,
    pub mbufs: Option<Spanned<u32>>,
    pub channel: Option<String>,
    pub arp_timeout: Option<Spanned<u64>>,
    pub rx_mode: Option<Spanned<String>>,
    /// Crypto backend per transform keyword, e.g. `{ "esp-gcm" = "rustcrypto" }`.
    #[serde(default)]
    pub backend: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLcores {
    pub main: u32,
    pub workers: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInterface {
    pub name: Spanned<String>,
    pub role: Spanned<String>,
    pub device: String,
    pub address: Spanned<OneOrMany>,
    pub mtu: Option<Spanned<u32>>,
    pub crypto_map: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(|s| s.as_str()).collect(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub prefix: Spanned<String>,
    pub next_hop: Option<Spanned<String>>,
    pub interface: Option<Spanned<String>>,
}

/// `arp A.B.C.D H.H.H ARPA` (and the IPv6 equivalent, `ipv6 neighbor`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawArp {
    pub address: Spanned<String>,
    pub mac: Spanned<String>,
    pub interface: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTransformSet {
    pub esp: Spanned<Vec<String>>,
    pub mode: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAce {
    pub action: Spanned<String>,
    pub protocol: Option<Spanned<toml::Value>>,
    pub source: Spanned<String>,
    pub destination: Spanned<String>,
    pub source_port: Option<Spanned<toml::Value>>,
    pub destination_port: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapEntry {
    pub seq: Spanned<u32>,
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub peer: Option<Spanned<String>>,
    pub transform_set: Option<Spanned<String>>,
    pub transform_sets: Option<Spanned<Vec<String>>>,
    /// Required unless the entry is `dynamic`.
    pub match_address: Option<Spanned<String>>,
    /// `crypto map NAME SEQ ipsec-isakmp dynamic DYN`: the entry stands for dynamic map DYN.
    pub dynamic: Option<Spanned<String>>,
    pub lifetime: Option<Spanned<RawLifetime>>,
    pub replay_window: Option<Spanned<toml::Value>>,
    pub esn: Option<bool>,
    pub nat_t: Option<Spanned<RawNatT>>,
    pub pfs: Option<Spanned<String>>,
    pub session_key: Option<RawSessionKeys>,
    pub reverse_route: Option<bool>,
}

/// One `crypto dynamic-map NAME SEQ` entry: what a hub accepts from peers it has no static
/// entry for.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDynamicMapEntry {
    pub seq: Spanned<u32>,
    /// `set transform-set A [B ...]`: one name or a list.
    pub transform_set: Option<Spanned<OneOrMany>>,
    pub transform_sets: Option<Spanned<Vec<String>>>,
    /// The ACL naming the proxy identities peers may ask for; any when absent.
    pub match_address: Option<Spanned<String>>,
    pub pfs: Option<Spanned<String>>,
    pub lifetime: Option<Spanned<RawLifetime>>,
    pub reverse_route: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLifetime {
    pub seconds: Option<u64>,
    pub kilobytes: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNatT {
    #[serde(default = "natt_port")]
    pub local_port: u16,
    #[serde(default = "natt_port")]
    pub remote_port: u16,
}

fn natt_port() -> u16 {
    4500
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionKeys {
    pub inbound: Spanned<RawSessionKey>,
    pub outbound: Spanned<RawSessionKey>,
}

/// `set session-key inbound|outbound esp SPI cipher HEX [authenticator HEX]`. No Debug: it
/// holds keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSessionKey {
    pub spi: Spanned<u32>,
    pub cipher: Option<Spanned<String>>,
    pub authenticator: Option<Spanned<String>>,
}
