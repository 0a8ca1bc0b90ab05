//! Quick Mode exchanges in progress under an established ISAKMP SA, with what the daemon
//! must remember about each: which crypto-map entry it serves, the SA id its outbound SA
//! will take, and its retransmission timer.

use std::time::Instant;

use crate::ike::{QmI1Sent, QmI3Sent, QmR2Sent};
use crate::sessions::Retransmit;

use super::policy::Origin;

/// Where a Quick Mode is.
pub enum QuickState {
    /// We sent QM1.
    I1(QmI1Sent),
    /// We sent QM3: the SAs are installed; kept a while to answer a retransmitted QM2.
    I3(QmI3Sent),
    /// We answered QM1 with QM2 (the inbound SA is installed); waiting for QM3.
    R2(QmR2Sent),
}

/// One Quick Mode exchange.
pub struct Quick {
    /// None only while a message is being processed.
    pub state: Option<QuickState>,
    /// Armed while we wait for an answer (I1, R2).
    pub retransmit: Option<Retransmit>,
    pub origin: Origin,
    /// The SPD id of the outbound SA this exchange installs.
    pub sa_id: u32,
    /// A rekey of the child with this inbound SPI.
    pub rekey_of: Option<u32>,
    pub started: Instant,
}

impl Quick {
    /// The message to retransmit.
    pub fn last_sent(&self) -> Option<&[u8]> {
        match self.state.as_ref()? {
            QuickState::I1(s) => Some(s.last_sent()),
            QuickState::R2(s) => Some(s.last_sent()),
            QuickState::I3(_) => None,
        }
    }
}
