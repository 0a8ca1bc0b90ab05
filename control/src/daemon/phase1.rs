//! The phase 1 SAs the daemon holds: Main Mode exchanges in progress (any of the five
//! waiting states of `ike::main_mode`, with their retransmission timer and admission slot)
//! and established ISAKMP SAs (with DPD state and the Quick Mode exchanges running under
//! them). Keyed by the initiator's cookie and the peer's address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use crate::ike::{
    MmI1Sent, MmI3Sent, MmI5Sent, MmR2Sent, MmR4Sent, Phase1Sa, Rejection, Role, Step,
};
use crate::sessions::{Retransmit, Slot};

use super::quick::Quick;

/// CKY-I and the peer's address: what names a phase 1 SA from its first message on.
pub type P1Key = ([u8; 8], IpAddr);

/// A Main Mode exchange waiting for its next message.
pub enum Negotiation {
    I1(MmI1Sent),
    I3(MmI3Sent),
    I5(MmI5Sent),
    R2(MmR2Sent),
    R4(MmR4Sent),
}

/// What a received message made of a negotiation.
pub enum Advance {
    /// The next waiting state and the message to send.
    Next(Negotiation, Vec<u8>),
    /// Established; the message to send (MM6 for the responder, nothing for the initiator).
    Established(Box<Phase1Sa>, Vec<u8>),
    /// A retransmission of the peer's last message: send ours again.
    Resend(Negotiation, Vec<u8>),
    /// Dropped; the state waits on.
    Ignored(Negotiation, Rejection),
    /// The exchange is over.
    Failed(Rejection),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Negotiation::I1($s) => $e,
            Negotiation::I3($s) => $e,
            Negotiation::I5($s) => $e,
            Negotiation::R2($s) => $e,
            Negotiation::R4($s) => $e,
        }
    };
}

fn advance<S, N>(
    step: Step<S, N>,
    back: impl FnOnce(S) -> Negotiation,
    fwd: impl FnOnce(N, Vec<u8>) -> Advance,
) -> Advance {
    match step {
        Step::Next(n, out) => fwd(n, out),
        Step::Retransmit(s, out) => Advance::Resend(back(s), out),
        Step::Ignored(s, r) => Advance::Ignored(back(s), r),
        Step::Failed(r) => Advance::Failed(r),
    }
}

impl Negotiation {
    /// The message this state sent last (to retransmit).
    pub fn last_sent(&self) -> &[u8] {
        each!(self, s => s.last_sent())
    }

    pub fn local(&self) -> SocketAddr {
        each!(self, s => s.local())
    }

    pub fn remote(&self) -> SocketAddr {
        each!(self, s => s.remote())
    }

    pub fn role(&self) -> Role {
        match self {
            Negotiation::I1(_) | Negotiation::I3(_) | Negotiation::I5(_) => Role::Initiator,
            Negotiation::R2(_) | Negotiation::R4(_) => Role::Responder,
        }
    }

    /// The state as `show crypto isakmp sa` names it.
    pub fn ios_state(&self) -> &'static str {
        match self {
            Negotiation::I1(_) => "MM_NO_STATE",
            Negotiation::I3(_) | Negotiation::R2(_) => "MM_SA_SETUP",
            Negotiation::I5(_) | Negotiation::R4(_) => "MM_KEY_EXCH",
        }
    }

    /// Feeds one received message (arrived on `local` from `remote`).
    pub fn on_message(self, data: &[u8], local: SocketAddr, remote: SocketAddr) -> Advance {
        match self {
            Negotiation::I1(s) => advance(
                s.on_message(data, local, remote),
                Negotiation::I1,
                |n, o| Advance::Next(Negotiation::I3(n), o),
            ),
            Negotiation::I3(s) => advance(
                s.on_message(data, local, remote),
                Negotiation::I3,
                |n, o| Advance::Next(Negotiation::I5(n), o),
            ),
            Negotiation::I5(s) => advance(
                s.on_message(data, local, remote),
                Negotiation::I5,
                |n, o| Advance::Established(Box::new(n), o),
            ),
            Negotiation::R2(s) => advance(
                s.on_message(data, local, remote),
                Negotiation::R2,
                |n, o| Advance::Next(Negotiation::R4(n), o),
            ),
            Negotiation::R4(s) => advance(
                s.on_message(data, local, remote),
                Negotiation::R4,
                |n, o| Advance::Established(Box::new(n), o),
            ),
        }
    }
}

/// Liveness of one ISAKMP SA: dead peer detection (RFC 3706, periodic: an R-U-THERE after `interval`
/// seconds without hearing from the peer).
#[derive(Debug, Default)]
pub struct DpdState {
    /// Our next R-U-THERE sequence number.
    pub seq: u32,
    /// The R-U-THERE waiting for its ACK: its sequence number, when it was last sent and
    /// how many times.
    pub outstanding: Option<(u32, Instant, u32)>,
    /// When we last sent a NAT keepalive (we are behind a NAT).
    pub last_keepalive: Option<Instant>,
}

/// Where a phase 1 SA is.
pub enum P1State {
    /// Main Mode running. `negotiation` is None only while a message is being processed.
    Negotiating {
        negotiation: Option<Box<Negotiation>>,
        retransmit: Retransmit,
        slot: Option<Slot>,
    },
    Established {
        sa: Box<Phase1Sa>,
        dpd: DpdState,
        /// A replacement Main Mode was started (re-authentication before expiry).
        reauth_started: bool,
    },
}

/// A Quick Mode waiting for phase 1: the crypto-map entry (SPD id) and the packet that
/// asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingQuick {
    pub sa_id: u32,
    pub source: Option<IpAddr>,
    pub destination: Option<IpAddr>,
    /// A rekey of the child with this inbound SPI.
    pub rekey_of: Option<u32>,
}

/// One phase 1 SA, in negotiation or established.
pub struct Phase1 {
    /// IOS's conn-id (`show crypto isakmp sa`, `clear crypto isakmp N`).
    pub conn_id: u32,
    pub peer: IpAddr,
    pub state: P1State,
    pub created: Instant,
    /// Last time a message from the peer was accepted under this SA.
    pub last_heard: Instant,
    /// Quick Modes to start once established (we initiated because of these).
    pub waiting: Vec<PendingQuick>,
    /// Quick Mode exchanges under this SA, by message ID.
    pub quick: BTreeMap<u32, Quick>,
}

impl Phase1 {
    pub fn established(&self) -> Option<&Phase1Sa> {
        match &self.state {
            P1State::Established { sa, .. } => Some(sa),
            _ => None,
        }
    }

    /// IOS's state name for `show crypto isakmp sa`.
    pub fn ios_state(&self) -> &'static str {
        match &self.state {
            P1State::Negotiating {
                negotiation: Some(n),
                ..
            } => n.ios_state(),
            P1State::Negotiating { .. } => "MM_NO_STATE",
            P1State::Established { .. } => "QM_IDLE",
        }
    }

    /// Our and the peer's current addresses.
    pub fn addresses(&self) -> Option<(SocketAddr, SocketAddr)> {
        match &self.state {
            P1State::Negotiating {
                negotiation: Some(n),
                ..
            } => Some((n.local(), n.remote())),
            P1State::Negotiating { .. } => None,
            P1State::Established { sa, .. } => Some((sa.local, sa.remote)),
        }
    }
}
