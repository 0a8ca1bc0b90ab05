//! IKEv1 phase 1: Main Mode (RFC 2409 section 5, six messages) as explicit states, for the
//! initiator and the responder, with `pre-share` and `rsa-sig` authentication, NAT
//! traversal (RFC 3947) and the DPD vendor ID (RFC 3706).
//!
//! - [`proposal`]: our phase 1 policies and the SA negotiation (IOS's order and debug lines).
//! - [`auth`]: the [`Credentials`] trait (identity, pre-shared keys, signing, certificates)
//!   and the IKEv1 PKCS#1 signature primitives.
//! - [`main_mode`]: the states. Each consumes one received datagram and returns the next
//!   state and the datagram to send (see [`main_mode::Step`]); nothing here touches a
//!   socket or a clock other than to stamp the established SA.
//!
//! - [`quick_mode`]: phase 2, Quick Mode (RFC 2409 5.5), initiator and responder, giving
//!   [`ChildSa`]s (dataplane `SaParams`) on top of a [`Phase1Sa`]; [`phase2`] holds the crypto
//!   map entry it negotiates ([`Phase2Policy`]) and the attribute / ID mappings.
//! - [`informational`]: the protected informational exchange (RFC 2409 5.7): DELETE, DPD
//!   R-U-THERE / R-U-THERE-ACK (RFC 3706), INITIAL-CONTACT, error notifications.
//!
//! Errors are [`Error`], whose `Display` is the line IOS would log.

use std::net::IpAddr;

use crate::isakmp::notify::NotifyType;
use crate::isakmp::{ExchangeType, PayloadType};

pub mod auth;
pub mod informational;
pub mod log_context;
pub mod main_mode;
pub mod phase2;
pub mod proposal;
mod protected;
pub mod quick_mode;

#[cfg(test)]
mod quick_mode_tests;
#[cfg(test)]
mod tests;

pub use auth::{AuthError, Credentials, IdentityPayload, PeerIdentity};
pub use informational::{InfoEvent, Informational};
pub use main_mode::{
    Initiator, MainModeConfig, MmI1Sent, MmI3Sent, MmI5Sent, MmR2Sent, MmR4Sent, PeerVendors,
    Phase1Sa, Rejection, Responder, Role, Seeds, Step, NAT_T_PORT,
};
pub use phase2::{Phase2Policy, Proxies, TransformSet};
pub use proposal::{AuthMethod, Phase1Policy};
pub use quick_mode::{
    ChildSa, QmI1Sent, QmI3Sent, QmR2Sent, QmResponse, QuickModeInitiator, QuickModeResponder,
};

/// Why a Main Mode message was refused or the exchange failed. `Display` gives IOS's log
/// line. [`Error::is_fatal`] tells whether the exchange is over; [`Error::notify`] which
/// notification IOS sends back.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message does not parse (lengths, chain, payload contents), lacks a mandatory
    /// payload, or has the wrong flags or message ID. Dropped; the state waits on.
    #[error(
        "%CRYPTO-4-IKMP_BAD_MESSAGE: IKE message from {peer} failed its sanity check or is \
         malformed ({reason})"
    )]
    Malformed { peer: IpAddr, reason: String },
    /// A payload type that has no place in this message (RFC 2408 5.1). Dropped, and
    /// INVALID-PAYLOAD-TYPE is sent back.
    #[error("ISAKMP:(0):unexpected payload type {kind} from {peer} in Main Mode")]
    InvalidPayloadType { peer: IpAddr, kind: PayloadType },
    /// The cookies do not name this exchange. Dropped.
    #[error(
        "%CRYPTO-4-IKMP_NO_SA: IKE message from {peer} has no SA and is not an \
         initialization offer"
    )]
    UnknownCookies { peer: IpAddr },
    /// Not a Main Mode (or Informational) message. Dropped.
    #[error("ISAKMP:(0):unexpected exchange {exchange} from {peer} during Main Mode")]
    UnexpectedExchange {
        peer: IpAddr,
        exchange: ExchangeType,
    },
    /// An Aggressive Mode offer: refused, nothing is sent.
    #[error(
        "ISAKMP:(0):Aggressive Mode (OAK_AG) from {peer} refused: only Main Mode is \
         accepted"
    )]
    AggressiveModeRefused { peer: IpAddr },
    /// No transform matches a policy (responder), or the responder's choice is not one we
    /// offered (initiator).
    #[error("ISAKMP:(0): phase 1 SA policy not acceptable! (local {local} remote {peer})")]
    NoProposalChosen { local: IpAddr, peer: IpAddr },
    /// pre-share negotiated, but no key for this peer address.
    #[error("ISAKMP:(0):No pre-shared key with {peer}!")]
    NoPresharedKey { peer: IpAddr },
    /// HASH_I / HASH_R / SIG does not verify, or the encrypted message does not decrypt
    /// to a valid payload chain (with pre-share: a key mismatch).
    #[error("%CRYPTO-6-IKMP_AUTH_FAIL: Authentication method {method} failed with host {peer} ({reason})")]
    AuthenticationFailed {
        peer: IpAddr,
        method: u16,
        reason: String,
    },
    /// The peer's certificate is refused.
    #[error("%CRYPTO-5-IKMP_INVAL_CERT: Certificate received from {peer} is bad: {reason}")]
    BadCertificate { peer: IpAddr, reason: String },
    /// The peer's ID payload is refused (does not match its certificate).
    #[error("ISAKMP:(0):peer {peer} ID payload is not acceptable: {reason}")]
    InvalidId { peer: IpAddr, reason: String },
    /// The peer sent an error notification (e.g. NO-PROPOSAL-CHOSEN in place of MM2).
    #[error(
        "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main mode failed with peer at {peer} \
         (received notify {notify})"
    )]
    PeerNotify { peer: IpAddr, notify: NotifyType },
    /// A Quick Mode or informational message whose HASH does not verify (or that does not
    /// decrypt to a payload chain starting with HASH). Dropped.
    #[error(
        "%CRYPTO-4-IKMP_HASH_FAIL: IKE message from {peer} failed its hash check \
         ({what}, message ID = {message_id})"
    )]
    BadHash {
        peer: IpAddr,
        what: &'static str,
        message_id: u32,
    },
    /// Quick Mode: none of the peer's proposals is acceptable (responder), or the
    /// responder's choice is not one we offered (initiator).
    #[error(
        "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Quick mode failed with peer at {peer} \
         (IPSEC(validate_proposal_request): {reason})"
    )]
    QmNoProposalChosen { peer: IpAddr, reason: String },
    /// Quick Mode: the proxy identities are not ours (mirror of a static crypto map entry,
    /// or inside a dynamic map's ranges).
    #[error(
        "IPSEC(validate_transform_proposal): proxy identities not supported \
         (peer {peer}: {reason})"
    )]
    ProxyIdRefused { peer: IpAddr, reason: String },
    /// A local failure (no policy, signing failed, crypto library error).
    #[error(
        "%CRYPTO-6-IKMP_MODE_FAILURE: Processing of Main mode failed with peer at {peer} \
         ({reason})"
    )]
    Local { peer: IpAddr, reason: String },
}

impl Error {
    /// False for errors that only drop the message (the state is kept and waits for the
    /// right message or a retransmission); true when the exchange is over.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Error::Malformed { .. }
                | Error::InvalidPayloadType { .. }
                | Error::UnknownCookies { .. }
                | Error::UnexpectedExchange { .. }
                | Error::BadHash { .. }
        )
    }

    /// The notification IOS sends back for this error, if any.
    pub fn notify(&self) -> Option<NotifyType> {
        match self {
            Error::InvalidPayloadType { .. } => Some(NotifyType::INVALID_PAYLOAD_TYPE),
            Error::NoProposalChosen { .. } => Some(NotifyType::NO_PROPOSAL_CHOSEN),
            Error::AuthenticationFailed { .. } => Some(NotifyType::AUTHENTICATION_FAILED),
            Error::BadCertificate { .. } => Some(NotifyType::INVALID_CERTIFICATE),
            Error::InvalidId { .. } => Some(NotifyType::INVALID_ID_INFORMATION),
            Error::QmNoProposalChosen { .. } => Some(NotifyType::NO_PROPOSAL_CHOSEN),
            Error::ProxyIdRefused { .. } => Some(NotifyType::INVALID_ID_INFORMATION),
            _ => None,
        }
    }

    /// The peer address the error names.
    pub fn peer(&self) -> IpAddr {
        match self {
            Error::Malformed { peer, .. }
            | Error::InvalidPayloadType { peer, .. }
            | Error::UnknownCookies { peer }
            | Error::UnexpectedExchange { peer, .. }
            | Error::AggressiveModeRefused { peer }
            | Error::NoProposalChosen { peer, .. }
            | Error::NoPresharedKey { peer }
            | Error::AuthenticationFailed { peer, .. }
            | Error::BadCertificate { peer, .. }
            | Error::InvalidId { peer, .. }
            | Error::PeerNotify { peer, .. }
            | Error::BadHash { peer, .. }
            | Error::QmNoProposalChosen { peer, .. }
            | Error::ProxyIdRefused { peer, .. }
            | Error::Local { peer, .. } => *peer,
        }
    }
}
