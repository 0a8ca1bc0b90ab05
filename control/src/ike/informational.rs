//! The Informational exchange under an established ISAKMP SA (RFC 2409 section 5.7):
//! `HDR*, HASH(1), N/D` with exchange type 5, its own random message ID, encrypted with the
//! IV `phase2_iv(M-ID)` and authenticated by HASH(1) = prf(SKEYID_a, M-ID | N/D).
//!
//! Built here: DELETE of the ISAKMP SA (by its cookies) or of ESP SAs (by SPI), DPD
//! R-U-THERE / R-U-THERE-ACK (RFC 3706: notify 36136 / 36137, SPI = CKY-I | CKY-R, data =
//! the 32-bit sequence number), INITIAL-CONTACT and error notifications. [`parse`] checks
//! the header and the HASH (a message whose HASH does not verify is dropped, with a log
//! line) and reports what the message asks for as [`InfoEvent`]s; acting on them (removing
//! SAs, answering DPD with [`Informational::dpd_reply`]) is the daemon's job.

use super::main_mode::Phase1Sa;
use super::protected::{self, hash_ok, hashed_chain, payloads_after_hash, random_message_id};
use super::Error;
use crate::ikecrypto::keys;
use crate::ikecrypto::IvChain;
use crate::isakmp::header::ExchangeType;
use crate::isakmp::message::Payload;
use crate::isakmp::notify::{self, NotifyType};
use crate::isakmp::{delete, doi, ProtocolId};

/// What a received informational message says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InfoEvent {
    /// DELETE of this ISAKMP SA (the SPI is its cookies).
    DeleteIsakmp,
    /// DELETE of ESP SAs: the peer's inbound SPIs, that is our outbound SAs.
    DeleteEsp(Vec<u32>),
    /// DPD R-U-THERE with its sequence number: answer with R-U-THERE-ACK.
    RUThere(u32),
    /// DPD R-U-THERE-ACK with its sequence number.
    RUThereAck(u32),
    /// INITIAL-CONTACT: the peer has no other SA with us any more.
    InitialContact,
    /// Any other notification (errors such as NO-PROPOSAL-CHOSEN or INVALID-ID-INFORMATION
    /// in answer to our Quick Mode, RESPONDER-LIFETIME...), as received.
    Notify(notify::Repr),
    /// A DELETE we do not act on (another protocol, an ISAKMP SA that is not this one).
    OtherDelete(delete::Repr),
}

/// An authenticated informational message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Informational {
    pub message_id: u32,
    pub events: Vec<InfoEvent>,
}

impl Informational {
    /// The R-U-THERE-ACK to send if the message is an R-U-THERE (the first one).
    pub fn dpd_reply(&self, sa: &Phase1Sa) -> Option<Vec<u8>> {
        self.events.iter().find_map(|e| match e {
            InfoEvent::RUThere(seq) => r_u_there_ack(sa, *seq).ok(),
            _ => None,
        })
    }
}

/// An informational message with `payloads` (notifications and deletes) under `sa`, with
/// `message_id` (nonzero).
pub fn build(sa: &Phase1Sa, message_id: u32, payloads: Vec<Payload>) -> Result<Vec<u8>, String> {
    let ska = sa.keys.skeyid_a();
    let hash = sa.keys.hash();
    let all = protected::with_hash(payloads, |after| {
        keys::informational_hash(hash, ska, message_id, after)
    })?;
    let mut iv = IvChain::new(&sa.phase2_iv(message_id));
    protected::seal(sa, ExchangeType::INFORMATIONAL, message_id, &all, &mut iv)
}

fn build_random(sa: &Phase1Sa, payloads: Vec<Payload>) -> Result<Vec<u8>, String> {
    build(sa, random_message_id()?, payloads)
}

/// DELETE of the ISAKMP SA itself (`clear crypto isakmp`, expiry).
pub fn delete_isakmp(sa: &Phase1Sa) -> Result<Vec<u8>, String> {
    log::debug!(
        "ISAKMP:(0):purging SA., sa=, delme=  (sending DELETE for the ISAKMP SA to {})",
        sa.remote.ip()
    );
    build_random(
        sa,
        vec![Payload::Delete(delete::Repr::isakmp(sa.cookies()))],
    )
}

/// DELETE of ESP SAs by our inbound SPIs (`clear crypto sa`, expiry of a child SA).
pub fn delete_esp(sa: &Phase1Sa, inbound_spis: &[u32]) -> Result<Vec<u8>, String> {
    for s in inbound_spis {
        log::debug!(
            "ISAKMP:(0): sending DELETE for ESP SA spi {s:#010x} to {}",
            sa.remote.ip()
        );
    }
    build_random(
        sa,
        vec![Payload::Delete(delete::Repr::ipsec(
            ProtocolId::IPSEC_ESP,
            inbound_spis,
        ))],
    )
}

/// DPD R-U-THERE with `seq`.
pub fn r_u_there(sa: &Phase1Sa, seq: u32) -> Result<Vec<u8>, String> {
    log::debug!(
        "ISAKMP:(0):DPD/R_U_THERE sequence {seq} sent to {}",
        sa.remote.ip()
    );
    build_random(
        sa,
        vec![Payload::Notification(notify::Repr::r_u_there(
            sa.cookies(),
            seq,
        ))],
    )
}

/// DPD R-U-THERE-ACK echoing `seq`.
pub fn r_u_there_ack(sa: &Phase1Sa, seq: u32) -> Result<Vec<u8>, String> {
    log::debug!(
        "ISAKMP:(0):DPD/R_U_THERE_ACK sequence {seq} sent to {}",
        sa.remote.ip()
    );
    build_random(
        sa,
        vec![Payload::Notification(notify::Repr::r_u_there_ack(
            sa.cookies(),
            seq,
        ))],
    )
}

/// INITIAL-CONTACT for this ISAKMP SA.
pub fn initial_contact(sa: &Phase1Sa) -> Result<Vec<u8>, String> {
    build_random(
        sa,
        vec![Payload::Notification(notify::Repr::initial_contact(
            sa.cookies(),
        ))],
    )
}

/// An error notification about an IPsec proposal (`protocol` ESP and the SPI it names) or,
/// with `spi` None, about the ISAKMP SA.
pub fn error_notify(
    sa: &Phase1Sa,
    message_type: NotifyType,
    protocol: ProtocolId,
    spi: Option<u32>,
) -> Result<Vec<u8>, String> {
    log::debug!("ISAKMP:(0): sending notify {message_type}");
    let (protocol, spi) = match spi {
        Some(s) => (protocol, s.to_be_bytes().to_vec()),
        None => (ProtocolId::ISAKMP, sa.cookies().to_vec()),
    };
    build_random(
        sa,
        vec![Payload::Notification(notify::Repr {
            doi: doi::IPSEC,
            protocol,
            spi,
            message_type,
            data: vec![],
        })],
    )
}

/// Checks and decrypts an informational message under `sa`. A message whose HASH does not
/// verify is [`Error::BadHash`] and must be dropped (it is logged here).
pub fn parse(sa: &Phase1Sa, data: &[u8]) -> Result<Informational, Error> {
    let peer = sa.remote.ip();
    let (h, _) =
        crate::isakmp::message::parse_header(data).map_err(|e| protected::malformed(peer, e))?;
    let iv = IvChain::new(&sa.phase2_iv(h.message_id));
    let o = protected::open(sa, data, ExchangeType::INFORMATIONAL, None, &iv)?;
    let r = check(sa, &o);
    if let Err(e) = &r {
        log::warn!("{e}: informational message dropped");
    }
    r
}

fn check(sa: &Phase1Sa, o: &protected::Opened<'_>) -> Result<Informational, Error> {
    let peer = sa.remote.ip();
    let mid = o.header.message_id;
    let (chain, got) = hashed_chain(peer, &o.header, &o.plaintext, "informational HASH")?;
    let expected =
        keys::informational_hash(sa.keys.hash(), sa.keys.skeyid_a(), mid, chain.after(0));
    if !hash_ok(&got, &expected) {
        return Err(Error::BadHash {
            peer,
            what: "informational HASH",
            message_id: mid,
        });
    }
    let payloads = payloads_after_hash(peer, &chain)?;
    let mut events = Vec::new();
    for p in payloads {
        match p {
            Payload::Notification(n) => {
                log::debug!(
                    "ISAKMP:(0): processing NOTIFY {} protocol {}",
                    n.message_type,
                    n.protocol.0
                );
                let ours = n.protocol == ProtocolId::ISAKMP && n.spi == sa.cookies();
                events.push(match n.message_type {
                    NotifyType::R_U_THERE if ours => match n.dpd_sequence() {
                        Some(s) => {
                            log::debug!("ISAKMP:(0):DPD/R_U_THERE received from peer {peer}, sequence {s:#x}");
                            InfoEvent::RUThere(s)
                        }
                        None => InfoEvent::Notify(n),
                    },
                    NotifyType::R_U_THERE_ACK if ours => match n.dpd_sequence() {
                        Some(s) => {
                            log::debug!("ISAKMP:(0):DPD/R_U_THERE_ACK received from peer {peer}, sequence {s:#x}");
                            InfoEvent::RUThereAck(s)
                        }
                        None => InfoEvent::Notify(n),
                    },
                    NotifyType::INITIAL_CONTACT => InfoEvent::InitialContact,
                    _ => InfoEvent::Notify(n),
                });
            }
            Payload::Delete(d) => {
                log::debug!(
                    "ISAKMP:(0):processing DELETE payload. message ID = {mid}, protocol {}",
                    d.protocol.0
                );
                if d.protocol == ProtocolId::ISAKMP
                    && d.spis.iter().any(|s| s[..] == sa.cookies()[..])
                {
                    log::debug!("ISAKMP:(0):peer {peer} deleted the ISAKMP SA");
                    events.push(InfoEvent::DeleteIsakmp);
                } else if d.protocol == ProtocolId::IPSEC_ESP {
                    match d.spis_u32() {
                        Some(spis) => {
                            for s in &spis {
                                log::debug!(
                                    "ISAKMP:(0):delete of ESP SA spi {s:#010x} from {peer}"
                                );
                            }
                            events.push(InfoEvent::DeleteEsp(spis));
                        }
                        None => events.push(InfoEvent::OtherDelete(d)),
                    }
                } else {
                    events.push(InfoEvent::OtherDelete(d));
                }
            }
            other => {
                return Err(Error::InvalidPayloadType {
                    peer,
                    kind: other.kind(),
                })
            }
        }
    }
    Ok(Informational {
        message_id: mid,
        events,
    })
}
