//! The IPsec SA pairs the daemon installed in the dataplane ("children" of phase 1 SAs),
//! which pair is current for each outbound SA id (a rekey installs a new pair under the same
//! id: the dataplane replaces the outbound SA in one step), and the SPD rules that SAs
//! negotiated through dynamic maps add (reverse route injection: the spoke's networks are
//! routed into its tunnel while the SA lives).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use dataplane::channel::SpdRuleMsg;
use dataplane::esp::Selector;

use crate::ike::ChildSa;

use super::policy::Origin;

/// One installed pair.
pub struct Child {
    pub sa: ChildSa,
    /// The SPD id of the outbound SA.
    pub sa_id: u32,
    pub peer: IpAddr,
    pub origin: Origin,
    /// We initiated the Quick Mode (we rekey it).
    pub initiator: bool,
    /// IOS conn-ids of the inbound and outbound SA (`show crypto engine connections
    /// active`).
    pub conn_in: u32,
    pub conn_out: u32,
    pub established: Instant,
    /// A rekey was started for this pair.
    pub rekey_started: bool,
    /// A newer pair holds the outbound SA id: only our inbound SA is left, until `retire_at`.
    pub retire_at: Option<Instant>,
}

/// An SA found in the dataplane when the daemon started (installed by an earlier run of
/// `ipsec-control`): it keeps forwarding, but its keys and ISAKMP SA are gone, so it is only
/// shown, expired and replaced. A new pair for its SA id replaces it make-before-break;
/// otherwise its soft lifetime starts a new negotiation (static entries) and its hard
/// lifetime removes it.
#[derive(Clone, Debug)]
pub struct Adopted {
    /// Its engine connection id (as a pair's `conn_in` / `conn_out`).
    pub conn_id: u32,
    pub spi: u32,
    pub direction: dataplane::esp::Direction,
    pub sa_id: u32,
    pub local: Option<IpAddr>,
    pub peer: Option<IpAddr>,
    pub crypto_map: String,
    pub crypto_map_seq: u32,
    pub transform: String,
    pub selectors: Vec<Selector>,
    /// A new pair took over: delete this (inbound) SA then.
    pub retire_at: Option<Instant>,
}

/// The installed pairs and the dynamic SPD rules.
#[derive(Default)]
pub struct Children {
    /// By our inbound SPI.
    pub by_spi: BTreeMap<u32, Child>,
    /// Outbound SA id -> inbound SPI of the pair that owns it now.
    pub current: BTreeMap<u32, u32>,
    /// Rules added for dynamic-map SAs, by SA id, in the order they were added.
    pub dynamic_rules: BTreeMap<u32, SpdRuleMsg>,
    /// SAs adopted from the dataplane at start, by (SPI, inbound).
    pub adopted: BTreeMap<(u32, bool), Adopted>,
}

impl Children {
    /// The current pair of an SA id.
    pub fn current_of(&self, sa_id: u32) -> Option<&Child> {
        self.current.get(&sa_id).and_then(|s| self.by_spi.get(s))
    }

    /// The pair whose outbound SA has this SPI.
    pub fn by_outbound_spi(&self, spi: u32) -> Option<u32> {
        self.by_spi
            .iter()
            .find(|(_, c)| c.sa.spi_out == spi)
            .map(|(k, _)| *k)
    }

    /// The SA id that a dynamic-map SA with this peer and selector already has (a spoke
    /// rekeying), if any.
    pub fn dynamic_sa_id(&self, peer: IpAddr, selector: &Selector) -> Option<u32> {
        self.current
            .iter()
            .filter_map(|(id, spi)| self.by_spi.get(spi).map(|c| (id, c)))
            .find(|(_, c)| {
                matches!(c.origin, Origin::Dynamic(_))
                    && c.peer == peer
                    && c.sa.selector == *selector
            })
            .map(|(id, _)| *id)
    }

    /// Pairs with this peer.
    pub fn of_peer(&self, peer: IpAddr) -> Vec<u32> {
        self.by_spi
            .iter()
            .filter(|(_, c)| c.peer == peer)
            .map(|(k, _)| *k)
            .collect()
    }
}
