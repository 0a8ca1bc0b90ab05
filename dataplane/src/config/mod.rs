//! The configuration file: one TOML file read by both processes, in IOS's vocabulary
//! (`crypto ipsec transform-set`, `access-list`, `crypto map NAME SEQ ipsec-manual|ipsec-isakmp`,
//! `crypto dynamic-map`). The IKE-only sections (`isakmp`, `trustpoint`, `ctl`) are accepted
//! here and validated by the control process (`control::config`).
//!
//! [`Config::load`] parses and validates the whole file before anything starts. Every error
//! names the file, the line and the reason (`gw.toml:42: esp-gcm 128 needs a 20-byte cipher
//! key (16 + 4-byte salt), got 16`). Keys never appear in errors or in `Debug` output.
//!
//! Besides the typed sections, loading compiles what the dataplane installs: the manually
//! keyed SA pairs of `ipsec-manual` entries ([`Config::manual_sas`]) and the SPD built from
//! the crypto-map ACLs ([`Config::spd`]).

mod raw;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use crate::crypto::Transform;
use crate::esp::{Lifetime, Mode, Prefix, SaParams, Selector};
use crate::spd::{Spd, SpdRule};

/// A configuration error, with the place it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// 1-based line; 0 when the error is about the file as a whole.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file.display(), self.line, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// `[dataplane]`: the EAL, lcores and the channel to the control process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DataplaneConfig {
    /// EAL arguments other than lcores and devices, which come from `lcores` and interfaces.
    pub eal: Vec<String>,
    pub main_lcore: u32,
    pub worker_lcores: Vec<u32>,
    /// Packets per burst (1..=256; 32 by default).
    pub burst: usize,
    /// Mbufs per pool.
    pub mbufs: u32,
    pub channel: PathBuf,
    /// Seconds before a neighbour entry ages out (IOS `arp timeout`, 4 hours by default).
    pub arp_timeout: u64,
    /// How the workers wait when there is no traffic.
    pub rx_mode: RxMode,
    /// Crypto backend forced per encryption keyword (`esp-gcm`, `esp-aes`, ...).
    pub backend: BTreeMap<String, String>,
}

/// `[dataplane] rx_mode`: how a worker lcore waits when its queues are empty (see
/// `runtime::rx_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RxMode {
    #[default]
    Polling,
    Adaptive,
}

impl RxMode {
    /// The configuration word.
    pub fn name(self) -> &'static str {
        match self {
            RxMode::Polling => "polling",
            RxMode::Adaptive => "adaptive",
        }
    }

    /// Parses the configuration word.
    pub fn from_name(word: &str) -> Option<RxMode> {
        match word {
            "polling" => Some(RxMode::Polling),
            "adaptive" => Some(RxMode::Adaptive),
            _ => None,
        }
    }
}

/// What an interface is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The protected side (LAN).
    Inside,
    /// The unprotected side (WAN), where crypto maps apply.
    Outside,
}

/// `[[interface]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub role: Role,
    /// A DPDK device: a PCI address, or a virtual device string (`net_af_packet0,iface=x`).
    pub device: String,
    /// Addresses with their prefix lengths.
    pub addresses: Vec<Prefix>,
    pub mtu: u16,
    pub crypto_map: Option<String>,
}

/// `[[route]]`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub prefix: Prefix,
    /// None for a route straight out of an interface.
    pub next_hop: Option<IpAddr>,
    /// Index into [`Config::interfaces`]; resolved from the next hop when not given.
    pub interface: usize,
}

/// A static neighbour (`arp A.B.C.D H.H.H ARPA`): never aged, never resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaticArp {
    pub address: IpAddr,
    pub mac: [u8; 6],
    /// Index into [`Config::interfaces`].
    pub interface: usize,
}

/// `crypto ipsec transform-set NAME ...`
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TransformSet {
    pub transform: Transform,
    pub mode: Mode,
}

/// permit / deny in an access list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AceAction {
    Permit,
    Deny,
}

/// One access-list entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ace {
    pub action: AceAction,
    pub selector: Selector,
}

/// The kind of crypto map entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Manually keyed: SAs given in the file.
    Manual,
    /// Keyed by IKE (issue 3).
    Isakmp,
}

/// One `crypto map NAME SEQ` entry.
///
/// An entry that references a dynamic map (`crypto map vpn 65535 ipsec-isakmp dynamic DYN`)
/// has `dynamic` set and nothing else: no peer, no transform sets, no access-list, and no SPD
/// rules (the rules of a dynamic entry come from the proxy identities of the SAs negotiated
/// through it). Its `sa_id` is still reserved so that entry ids stay dense.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoMapEntry {
    pub seq: u32,
    pub kind: MapKind,
    pub peer: Option<IpAddr>,
    pub transform_sets: Vec<String>,
    /// The access-list; None only for an entry that references a dynamic map.
    pub match_address: Option<String>,
    /// The dynamic map this entry stands for (`ipsec-isakmp dynamic NAME`).
    pub dynamic: Option<String>,
    pub lifetime: Lifetime,
    pub replay_window: u32,
    pub esn: bool,
    pub pfs: Option<String>,
    pub reverse_route: bool,
    /// Dense id of this entry's outbound SA, as the SPD names it.
    pub sa_id: u32,
}

/// One `crypto dynamic-map NAME SEQ` entry: a template a hub uses for peers it has no static
/// entry for. Any authenticated peer whose proxy identities fall inside `match_address` (or
/// any peer, when it is None) gets SAs with these transform sets, PFS and lifetime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicMapEntry {
    pub seq: u32,
    pub transform_sets: Vec<String>,
    /// The access-list naming the allowed proxy-identity ranges.
    pub match_address: Option<String>,
    pub lifetime: Lifetime,
    pub pfs: Option<String>,
    pub reverse_route: bool,
}

/// The SA pair of one `ipsec-manual` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManualSa {
    /// Dense id of the outbound SA (what the SPD's Protect carries).
    pub sa_id: u32,
    pub inbound: SaParams,
    pub outbound: SaParams,
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub file: PathBuf,
    pub hostname: String,
    pub dataplane: DataplaneConfig,
    pub interfaces: Vec<Interface>,
    pub routes: Vec<Route>,
    pub static_arp: Vec<StaticArp>,
    pub transform_sets: BTreeMap<String, TransformSet>,
    pub access_lists: BTreeMap<String, Vec<Ace>>,
    pub crypto_maps: BTreeMap<String, Vec<CryptoMapEntry>>,
    /// `crypto dynamic-map` entries by map name, in sequence order.
    pub dynamic_maps: BTreeMap<String, Vec<DynamicMapEntry>>,
    pub manual_sas: Vec<ManualSa>,
    /// Rules of the SPD in match order (see [`Config::spd`]).
    pub spd_rules: Vec<SpdRule>,
}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: 0,
            reason: format!("cannot read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parses and validates configuration text; `file` names it in errors.
    pub fn parse(file: impl AsRef<Path>, text: &str) -> Result<Config, ConfigError> {
        validate::parse(file.as_ref(), text)
    }

    /// The SPD compiled from the crypto maps.
    pub fn spd(&self) -> Spd {
        Spd::new(self.spd_rules.iter().copied())
    }

    /// Index of the interface called `name`.
    pub fn interface_index(&self, name: &str) -> Option<usize> {
        self.interfaces.iter().position(|i| i.name == name)
    }
}

#[cfg(test)]
mod tests;

/// Line numbers of byte offsets in a configuration text, from a table of line starts made
/// once: validation names lines for every entry (duplicate SPIs are reported with the line
/// of the first use), and counting newlines from the top each time made loading a file of
/// 10,000 crypto map entries quadratic (a minute instead of a fraction of a second).
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    /// The 1-based line of byte offset `at`.
    pub fn line(&self, at: usize) -> usize {
        self.starts.partition_point(|&s| s <= at).max(1)
    }
}
