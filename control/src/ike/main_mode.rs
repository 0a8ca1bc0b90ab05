//! IKEv1 Main Mode (RFC 2409 section 5) as explicit states, each consuming one datagram
//! and returning the next state and the datagram to send (the rustls model: a state holds
//! only what the rest of the exchange needs).
//!
//! ```text
//!  Initiator                                          Responder
//!  Initiator::start ------ MM1 HDR, SA, VID* ------->  Responder::on_first
//!  MmI1Sent  <------------ MM2 HDR, SA, VID* --------  MmR2Sent
//!  MmI1Sent::on_message -- MM3 HDR, KE, Ni, [CR*], [NAT-D NAT-D] -> MmR2Sent::on_message
//!  MmI3Sent  <------------ MM4 HDR, KE, Nr, [CR*], [NAT-D NAT-D] -- MmR4Sent
//!  MmI3Sent::on_message -- MM5 HDR*, IDii, [CERT], SIG_I | HASH_I, N(INITIAL-CONTACT) ->
//!                                                     MmR4Sent::on_message
//!  MmI5Sent  <------------ MM6 HDR*, IDir, [CERT], SIG_R | HASH_R -- Phase1Sa
//!  MmI5Sent::on_message -> Phase1Sa
//! ```
//!
//! Inputs are the datagram (the ISAKMP message, without the 4-byte non-ESP marker of port
//! 4500, which the socket layer strips and adds) with the local and remote socket addresses
//! it was received on; outputs are ISAKMP messages as `Vec<u8>`. There are no sockets and no
//! timers here.
//!
//! Every received message is checked in this order: retransmission (below), header
//! (version and lengths by the codec, exchange type, cookies, message ID 0, the E flag on
//! MM5/MM6 only), payload chain and contents (the codec), the payloads this message must
//! and may have (SA first in MM1/MM2), then its meaning. The result is a [`Step`]:
//! [`Step::Next`] with the next state, [`Step::Retransmit`], [`Step::Ignored`] when the
//! message is dropped but the state lives on (malformed, wrong cookies, unexpected payload
//! type), or [`Step::Failed`] when the exchange is over, with the notification IOS would
//! send back (NO-PROPOSAL-CHOSEN, AUTHENTICATION-FAILED, INVALID-PAYLOAD-TYPE...) as an
//! unencrypted Informational message. An Informational message with an error notification
//! from the peer ends the exchange (as IOS does; it is not authenticated in phase 1).
//!
//! **Retransmissions.** Retransmitting on a timer is the caller's job: every state has
//! `last_sent()`. What this module does is recognise a peer's retransmission: each state
//! keeps the exact bytes of the message it was built from (the one the previous state
//! consumed) and the reply it produced; when the same bytes arrive again the state returns
//! [`Step::Retransmit`] with the same reply, unchanged (the peer lost our reply). The
//! responder's [`Phase1Sa`] does the same for MM5/MM6 through [`Phase1Sa::on_retransmit`].
//! A retransmitted MM1 must therefore be given to the `MmR2Sent` with its initiator cookie:
//! the caller looks up states by cookies (by CKY-I and peer address while CKY-R is zero).
//!
//! **IVs.** MM5 is encrypted with `phase1_iv(g^xi | g^xr)`; MM6 with the last ciphertext
//! block of MM5; the last block of MM6 is [`Phase1Sa::last_cbc_block`], the input of the
//! phase 2 IVs (RFC 2409 appendix B). A received encrypted message advances the chain only
//! once it has been authenticated.
//!
//! **NAT traversal (RFC 3947).** MM1 carries the vendor IDs of RFC 3947 and drafts 03,
//! 02\n and 02; MM2 echoes the best one the initiator sent. MM3 and MM4 then carry NAT-D
//! payloads (type 20, or 130 for the drafts): HASH(CKY-I | CKY-R | IP | port) with the
//! negotiated hash, first of the destination, then of the source. A receiver whose own
//! address does not hash to the first is behind a NAT (`nat_local`); when no other matches
//! the datagram's source, the peer is (`nat_remote`). If either is true the initiator sends
//! MM5 from and to port 4500: [`MmI5Sent::local`] and [`MmI5Sent::remote`] say where.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::auth::{AuthError, Credentials, IdentityPayload, PeerIdentity};
use super::proposal::{self, AuthMethod, Phase1Policy};
use super::Error;
use crate::ikecrypto::dh_pool::{self, DhPool};
use crate::ikecrypto::keys::{self, AuthInputs, Phase1Keys};
use crate::ikecrypto::{DhGroup, DhPrivate, HashAlg, IvChain};
use crate::isakmp::cert::{self, CertEncoding};
use crate::isakmp::header::{self, ExchangeType, Flags, HEADER_LEN};
use crate::isakmp::message::{self, Message, Payload};
use crate::isakmp::notify::{self, NotifyType};
use crate::isakmp::vendor::{self, KnownVendor};
use crate::isakmp::{doi, hash as hashp, ke, natd, nonce, sig, PayloadType, ProtocolId};

/// The UDP port of NAT-T (RFC 3947 4).
pub const NAT_T_PORT: u16 = 4500;
/// IOS's name of a NAT-T vendor ID ("constructed NAT-T vendor-rfc3947 ID").
fn nat_t_name(v: KnownVendor) -> &'static str {
    match v {
        KnownVendor::NatTRfc3947 => "rfc3947",
        KnownVendor::NatTDraft07 => "07",
        KnownVendor::NatTDraft03 => "03",
        _ => "02",
    }
}

/// Our nonce length.
const NONCE_LEN: usize = 32;
/// The NAT-T vendor IDs we send in MM1, in our order of preference.
const OUR_NAT_T: [KnownVendor; 4] = [
    KnownVendor::NatTRfc3947,
    KnownVendor::NatTDraft03,
    KnownVendor::NatTDraft02N,
    KnownVendor::NatTDraft02,
];

/// What Main Mode needs from the configuration, shared by all exchanges.
pub struct MainModeConfig {
    /// `crypto isakmp policy` blocks (any order: sorted by priority where used).
    pub policies: Vec<Phase1Policy>,
    pub credentials: Arc<dyn Credentials>,
    /// Announce and negotiate NAT-T (IOS default: on).
    pub nat_traversal: bool,
    /// Send the DPD vendor ID (RFC 3706).
    pub dpd: bool,
    /// Send INITIAL-CONTACT in MM5 (as IOS does).
    pub initial_contact: bool,
    /// Where our Diffie-Hellman key pairs come from, in Main Mode and (through the
    /// [`Phase1Sa`]) for Quick Mode PFS: precomputed when the pool has them.
    pub dh_pool: Arc<DhPool>,
}

impl MainModeConfig {
    /// Policies and credentials, with NAT-T, DPD and INITIAL-CONTACT on, and the process's
    /// Diffie-Hellman pool ([`dh_pool::process_pool`]).
    pub fn new(policies: Vec<Phase1Policy>, credentials: Arc<dyn Credentials>) -> Self {
        MainModeConfig {
            policies,
            credentials,
            nat_traversal: true,
            dpd: true,
            initial_contact: true,
            dh_pool: dh_pool::process_pool(),
        }
    }
}

impl fmt::Debug for MainModeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MainModeConfig")
            .field("policies", &self.policies)
            .field("nat_traversal", &self.nat_traversal)
            .field("dpd", &self.dpd)
            .field("initial_contact", &self.initial_contact)
            .field("dh_pool", &self.dh_pool)
            .finish_non_exhaustive()
    }
}

/// Values normally random, fixed for tests and replays. `None`: drawn from OpenSSL.
#[derive(Clone, Debug, Default)]
pub struct Seeds {
    /// Our cookie (CKY-I or CKY-R).
    pub cookie: Option<[u8; 8]>,
    /// Our nonce body (8..=256 bytes).
    pub nonce: Option<Vec<u8>>,
    /// Our Diffie-Hellman private value (see `DhPrivate::from_private`).
    pub dh_private: Option<Vec<u8>>,
}

fn random(n: usize) -> Result<Vec<u8>, String> {
    let mut v = vec![0u8; n];
    openssl::rand::rand_bytes(&mut v).map_err(|e| format!("random bytes: {e}"))?;
    Ok(v)
}

impl Seeds {
    fn cookie(&self) -> Result<[u8; 8], String> {
        if let Some(c) = self.cookie {
            return Ok(c);
        }
        loop {
            let mut c = [0u8; 8];
            c.copy_from_slice(&random(8)?);
            if c != [0; 8] {
                return Ok(c);
            }
        }
    }
    fn nonce(&self) -> Result<Vec<u8>, String> {
        match &self.nonce {
            Some(n) => Ok(n.clone()),
            None => random(NONCE_LEN),
        }
    }
    /// The seeded private value, or a key pair from `pool` (made on the spot if it has none
    /// ready).
    fn dh(&self, group: DhGroup, pool: &DhPool) -> Result<DhPrivate, String> {
        match &self.dh_private {
            Some(x) => DhPrivate::from_private(group, x),
            None => pool.take(group),
        }
        .map_err(|e| format!("Diffie-Hellman {group}: {e}"))
    }
}

/// Which side of the exchange we are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    Initiator,
    Responder,
}

/// An error and the Informational message to send back for it, if IOS would send one.
#[derive(Debug)]
pub struct Rejection {
    pub error: Error,
    pub notify: Option<Vec<u8>>,
}

/// What a state made of a received datagram.
#[derive(Debug)]
#[must_use]
pub enum Step<S, N> {
    /// Accepted: the next state and the datagram to send.
    Next(N, Vec<u8>),
    /// An exact retransmission of the message this state was built from: send the same
    /// reply again. The state is unchanged.
    Retransmit(S, Vec<u8>),
    /// Dropped (malformed, not for this exchange...): the state is unchanged and still waits
    /// for its message. Send the notification if there is one.
    Ignored(S, Rejection),
    /// The exchange is over. Send the notification if there is one.
    Failed(Rejection),
}

impl<S, N> Step<S, N> {
    /// The next state and datagram, if the message was accepted.
    pub fn next(self) -> Option<(N, Vec<u8>)> {
        match self {
            Step::Next(n, d) => Some((n, d)),
            _ => None,
        }
    }
}

/// The vendor IDs a peer sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerVendors {
    /// Dead Peer Detection (RFC 3706).
    pub dpd: bool,
    /// Cisco Unity.
    pub unity: bool,
    /// NAT-T vendor IDs (RFC 3947 and drafts), in the order received.
    pub nat_t: Vec<KnownVendor>,
    /// Other known vendor IDs.
    pub others: Vec<KnownVendor>,
    /// How many vendor IDs we did not recognise.
    pub unknown: usize,
}

impl PeerVendors {
    fn add(&mut self, data: &[u8]) {
        log::debug!("ISAKMP:(0): processing vendor id payload");
        match vendor::recognise(data) {
            Some(v) => {
                log::debug!("ISAKMP:(0): vendor ID is {v}");
                match v {
                    KnownVendor::Dpd => self.dpd = true,
                    KnownVendor::CiscoUnity => self.unity = true,
                    v if v.is_nat_t() => {
                        if !self.nat_t.contains(&v) {
                            self.nat_t.push(v)
                        }
                    }
                    v => {
                        if !self.others.contains(&v) {
                            self.others.push(v)
                        }
                    }
                }
            }
            None => {
                log::debug!("ISAKMP:(0): vendor ID {} not recognised", hex::encode(data));
                self.unknown += 1;
            }
        }
    }

    /// The best NAT-T variant both sides speak.
    fn nat_t_choice(&self) -> Option<KnownVendor> {
        OUR_NAT_T.iter().copied().find(|v| self.nat_t.contains(v))
    }
}

/// The received message and the reply it produced, to recognise retransmissions.
#[derive(Clone, Debug)]
struct Exchanged {
    received: Vec<u8>,
    sent: Vec<u8>,
}

impl Exchanged {
    fn replay(&self, data: &[u8]) -> Option<Vec<u8>> {
        if data == self.received {
            log::debug!("ISAKMP:(0): phase 1 packet is a duplicate of a previous packet.");
            log::debug!("ISAKMP:(0): retransmitting due to retransmit phase 1");
            Some(self.sent.clone())
        } else {
            None
        }
    }
}

/// What every state knows about its exchange.
#[derive(Debug)]
struct Core {
    cfg: Arc<MainModeConfig>,
    cky_i: [u8; 8],
    /// Zero until the initiator has seen MM2.
    cky_r: [u8; 8],
    local: SocketAddr,
    remote: SocketAddr,
    vendors: PeerVendors,
    /// The NAT-T variant in use (both sides announced it).
    nat_t: Option<KnownVendor>,
}

fn notify_message(cky_i: [u8; 8], cky_r: [u8; 8], t: NotifyType) -> Option<Vec<u8>> {
    let mut spi = cky_i.to_vec();
    spi.extend_from_slice(&cky_r);
    let mid = random(4).ok()?;
    let m = Message {
        header: header::Repr {
            initiator_cookie: cky_i,
            responder_cookie: cky_r,
            exchange_type: ExchangeType::INFORMATIONAL,
            message_id: u32::from_be_bytes([mid[0], mid[1], mid[2], mid[3]]) | 1,
            ..Default::default()
        },
        payloads: vec![Payload::Notification(notify::Repr {
            doi: doi::IPSEC,
            protocol: ProtocolId::ISAKMP,
            spi,
            message_type: t,
            data: vec![],
        })],
    };
    log::debug!("ISAKMP:(0): sending notify {t}");
    m.to_bytes().ok()
}

/// The notification of a refused MM5 or MM6, protected as RFC 2409 5.7 asks once SKEYID
/// exists: encrypted, HASH(1) = prf(SKEYID_a, M-ID | N), IV from the last phase 1 block (the
/// last ciphertext block of the refused message, where the peer's IV chain stands). A peer
/// drops an unprotected notification at this point (strongSwan logs "ignoring unprotected
/// INFORMATIONAL").
fn protected_notify(
    core: &Core,
    policy: &Phase1Policy,
    keys: &Phase1Keys,
    refused: &[u8],
    t: NotifyType,
) -> Option<Vec<u8>> {
    let (_, body) = message::parse_header(refused).ok()?;
    let bs = policy.cipher.block_size();
    let last = body.get(body.len().checked_sub(bs)?..)?;
    let mid = {
        let r = random(4).ok()?;
        u32::from_be_bytes([r[0], r[1], r[2], r[3]]) | 1
    };
    let n = Payload::Notification(notify::Repr {
        doi: doi::IPSEC,
        protocol: ProtocolId::ISAKMP,
        spi: [core.cky_i, core.cky_r].concat(),
        message_type: t,
        data: vec![],
    });
    let after = message::payloads_to_bytes(std::slice::from_ref(&n)).ok()?;
    let h = keys::informational_hash(keys.hash(), keys.skeyid_a(), mid, &after);
    let payloads = [Payload::Hash(hashp::Repr { data: h }), n];
    let mut iv = IvChain::new(&keys::phase2_iv(keys.hash(), last, mid, bs));
    log::debug!("ISAKMP:(0): sending notify {t} (encrypted)");
    sealed(
        (core.cky_i, core.cky_r),
        (ExchangeType::INFORMATIONAL, mid),
        &payloads,
        policy,
        keys,
        &mut iv,
    )
    .ok()
}

/// [`reject`] for MM5 / MM6, whose notification goes encrypted.
fn reject_protected<S: HasCore, N>(
    state: S,
    error: Error,
    policy: &Phase1Policy,
    keys: &Phase1Keys,
    refused: &[u8],
) -> Step<S, N> {
    let t = error.notify();
    let mut r = state.core().rejection(error);
    if let (Some(t), Some(_)) = (t, &r.notify) {
        r.notify = protected_notify(state.core(), policy, keys, refused, t).or(r.notify);
    }
    if r.error.is_fatal() {
        Step::Failed(r)
    } else {
        Step::Ignored(state, r)
    }
}

fn clear_message(
    cky_i: [u8; 8],
    cky_r: [u8; 8],
    payloads: Vec<Payload>,
) -> Result<Vec<u8>, String> {
    Message {
        header: header::Repr {
            initiator_cookie: cky_i,
            responder_cookie: cky_r,
            exchange_type: ExchangeType::MAIN_MODE,
            ..Default::default()
        },
        payloads,
    }
    .to_bytes()
    .map_err(|e| format!("building the message: {e}"))
}

/// A Main Mode message with flag E: the payloads padded and encrypted with the chain's IV,
/// which then advances.
fn encrypted_message(
    cky_i: [u8; 8],
    cky_r: [u8; 8],
    payloads: &[Payload],
    policy: &Phase1Policy,
    keys: &Phase1Keys,
    iv: &mut IvChain,
) -> Result<Vec<u8>, String> {
    sealed(
        (cky_i, cky_r),
        (ExchangeType::MAIN_MODE, 0),
        payloads,
        policy,
        keys,
        iv,
    )
}

/// An encrypted message of `exchange` with `message_id`.
fn sealed(
    (cky_i, cky_r): ([u8; 8], [u8; 8]),
    (exchange, message_id): (ExchangeType, u32),
    payloads: &[Payload],
    policy: &Phase1Policy,
    keys: &Phase1Keys,
    iv: &mut IvChain,
) -> Result<Vec<u8>, String> {
    let pt = Zeroizing::new(
        message::payloads_to_bytes(payloads).map_err(|e| format!("building the message: {e}"))?,
    );
    let ct = iv
        .encrypt(policy.cipher, keys.enc_key(), &pt)
        .map_err(|e| format!("encryption: {e}"))?;
    let len = HEADER_LEN + ct.len();
    let mut out = vec![0u8; len];
    header::Repr {
        initiator_cookie: cky_i,
        responder_cookie: cky_r,
        next_payload: message::first_kind(payloads),
        exchange_type: exchange,
        flags: Flags::default().with_encryption(true),
        message_id,
        length: len as u32,
    }
    .emit(&mut out);
    out[HEADER_LEN..].copy_from_slice(&ct);
    Ok(out)
}

/// A decoded body: the payloads, and the raw bodies of the SA and ID payloads (`SAi_b`,
/// `IDii_b`, `IDir_b`).
struct Body {
    payloads: Vec<Payload>,
    sa_b: Option<Vec<u8>>,
    id_b: Option<Vec<u8>>,
}

fn decode(first: PayloadType, body: &[u8], decrypted: bool) -> crate::isakmp::Result<Body> {
    let chain = message::walk_body(first, body, decrypted)?;
    let payloads = chain
        .payloads
        .iter()
        .map(|p| Payload::parse(p.kind, p.bytes))
        .collect::<crate::isakmp::Result<Vec<_>>>()?;
    Ok(Body {
        payloads,
        sa_b: chain.find(PayloadType::SA).map(|p| p.body().to_vec()),
        id_b: chain.find(PayloadType::ID).map(|p| p.body().to_vec()),
    })
}

fn natd_hash(hash: HashAlg, cky_i: [u8; 8], cky_r: [u8; 8], a: SocketAddr) -> Vec<u8> {
    hash.hash(&natd::hash_input(cky_i, cky_r, a.ip(), a.port()))
}

/// Our two NAT-D payloads: the destination's hash, then the source's.
fn natd_payloads(
    variant: KnownVendor,
    hash: HashAlg,
    cky_i: [u8; 8],
    cky_r: [u8; 8],
    local: SocketAddr,
    remote: SocketAddr,
) -> Vec<Payload> {
    let draft = variant.is_nat_t_draft_02_03();
    [remote, local]
        .into_iter()
        .map(|a| Payload::NatD {
            draft,
            hash: natd::Repr {
                data: natd_hash(hash, cky_i, cky_r, a),
            },
        })
        .collect()
}

/// CERT_REQ payloads naming our CAs (one without a name when we have none).
fn cert_requests(cfg: &MainModeConfig) -> Vec<Payload> {
    let mut names = cfg.credentials.ca_names();
    if names.is_empty() {
        names.push(vec![]);
    }
    names
        .into_iter()
        .map(|data| {
            log::debug!(
                "ISAKMP:(0): constructing CERT_REQ for issuer of {} bytes",
                data.len()
            );
            Payload::CertificateRequest(cert::Repr {
                encoding: CertEncoding::X509_SIGNATURE,
                data,
            })
        })
        .collect()
}

fn requested_cas(payloads: &[Payload]) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for p in payloads {
        if let Payload::CertificateRequest(r) = p {
            log::debug!("ISAKMP:(0): processing CERT_REQ payload. message ID = 0");
            log::debug!("ISAKMP:(0): peer wants a {} cert", r.encoding);
            if r.encoding == CertEncoding::X509_SIGNATURE && !r.data.is_empty() {
                v.push(r.data.clone());
            }
        }
    }
    v
}

fn vendors_of(mut base: PeerVendors, payloads: &[Payload]) -> PeerVendors {
    for p in payloads {
        if let Payload::VendorId(v) = p {
            base.add(&v.data);
        }
    }
    base
}

/// The SA payload body as emitted (`SAi_b` of our own MM1).
fn sa_body(sa: &crate::isakmp::sa::Repr) -> Vec<u8> {
    let mut b = vec![0u8; sa.buffer_len()];
    sa.emit(&mut b, PayloadType::NONE);
    b.split_off(crate::isakmp::payload::HEADER_LEN)
}

fn state_change(old: &str, new: &str) {
    log::debug!("ISAKMP:(0):Old State = {old}  New State = {new}");
}

impl Core {
    fn peer(&self) -> IpAddr {
        self.remote.ip()
    }

    fn malformed(&self, reason: impl fmt::Display) -> Error {
        Error::Malformed {
            peer: self.peer(),
            reason: reason.to_string(),
        }
    }

    fn local_err(&self, reason: impl fmt::Display) -> Error {
        Error::Local {
            peer: self.peer(),
            reason: reason.to_string(),
        }
    }

    fn rejection(&self, error: Error) -> Rejection {
        if error.is_fatal() {
            log::warn!("{error}");
        } else {
            log::info!("{error}");
        }
        let notify = error
            .notify()
            .and_then(|t| notify_message(self.cky_i, self.cky_r, t));
        Rejection { error, notify }
    }

    /// The header checks of every message after MM1. Returns the header and the body.
    /// An Informational message with an error notification is [`Error::PeerNotify`].
    fn check_header<'a>(
        &self,
        data: &'a [u8],
        encrypted: bool,
    ) -> Result<(header::Repr, &'a [u8]), Error> {
        let (h, body) = message::parse_header(data).map_err(|e| self.malformed(e))?;
        let informational = h.exchange_type == ExchangeType::INFORMATIONAL;
        let cookies_match = h.initiator_cookie == self.cky_i
            && if self.cky_r == [0; 8] {
                // Waiting for MM2: any responder cookie (a notification may have none).
                informational || h.responder_cookie != [0; 8]
            } else {
                h.responder_cookie == self.cky_r || (informational && h.responder_cookie == [0; 8])
            };
        if !cookies_match {
            return Err(Error::UnknownCookies { peer: self.peer() });
        }
        if informational {
            return Err(self.informational(&h, body));
        }
        if h.exchange_type != ExchangeType::MAIN_MODE {
            return Err(Error::UnexpectedExchange {
                peer: self.peer(),
                exchange: h.exchange_type,
            });
        }
        if h.message_id != 0 {
            return Err(self.malformed(format_args!("message ID {:#x} in Main Mode", h.message_id)));
        }
        if h.flags.encryption() != encrypted {
            return Err(self.malformed(if encrypted {
                "cleartext where an encrypted message is expected"
            } else {
                "encrypted where a cleartext message is expected"
            }));
        }
        Ok((h, body))
    }

    /// An Informational message during Main Mode: an error notification ends the
    /// exchange; anything else (or an encrypted one, which we cannot check) is dropped.
    fn informational(&self, h: &header::Repr, body: &[u8]) -> Error {
        if h.flags.encryption() {
            return Error::UnexpectedExchange {
                peer: self.peer(),
                exchange: h.exchange_type,
            };
        }
        let payloads = match message::parse_body(h.next_payload, body, false) {
            Ok(p) => p,
            Err(e) => return self.malformed(e),
        };
        for p in &payloads {
            if let Payload::Notification(n) = p {
                log::debug!(
                    "ISAKMP:(0): processing NOTIFY {} protocol {}",
                    n.message_type,
                    n.protocol.0
                );
                if n.message_type.is_error() {
                    return Error::PeerNotify {
                        peer: self.peer(),
                        notify: n.message_type,
                    };
                }
            }
        }
        Error::UnexpectedExchange {
            peer: self.peer(),
            exchange: h.exchange_type,
        }
    }

    /// Checks that the payloads are among `required` (each exactly once) and `allowed`.
    fn check_payloads(
        &self,
        payloads: &[Payload],
        required: &[PayloadType],
        allowed: &[PayloadType],
    ) -> Result<(), Error> {
        for p in payloads {
            let k = p.kind();
            if !required.contains(&k) && !allowed.contains(&k) {
                return Err(Error::InvalidPayloadType {
                    peer: self.peer(),
                    kind: k,
                });
            }
        }
        for r in required {
            match payloads.iter().filter(|p| p.kind() == *r).count() {
                1 => {}
                0 => return Err(self.malformed(format_args!("no {r} payload"))),
                n => return Err(self.malformed(format_args!("{n} {r} payloads"))),
            }
        }
        Ok(())
    }

    /// NAT-D processing (RFC 3947 3.2) of MM3 or MM4 received on `local` from `remote`:
    /// the NAT-T variant kept, and whether we and the peer are behind a NAT.
    fn nat_detect(
        &self,
        hash: HashAlg,
        cky_r: [u8; 8],
        payloads: &[Payload],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(Option<KnownVendor>, bool, bool), Error> {
        let received: Vec<&[u8]> = payloads
            .iter()
            .filter_map(|p| match p {
                Payload::NatD { hash, .. } => Some(&hash.data[..]),
                _ => None,
            })
            .collect();
        let Some(variant) = self.nat_t else {
            return Ok((None, false, false));
        };
        if received.is_empty() {
            log::debug!("ISAKMP:(0):peer announced NAT-T but sent no NAT-D: NAT-T off");
            return Ok((None, false, false));
        }
        if received.len() < 2 {
            return Err(self.malformed("a single NAT-D payload"));
        }
        for _ in &received {
            log::debug!("ISAKMP:(0):received payload type 20");
        }
        let nat_local = received[0] != natd_hash(hash, self.cky_i, cky_r, local).as_slice();
        let mine = natd_hash(hash, self.cky_i, cky_r, remote);
        let nat_remote = !received[1..].contains(&mine.as_slice());
        match (nat_local, nat_remote) {
            (false, false) => log::debug!("ISAKMP:(0):No NAT Found for self or peer"),
            (true, false) => log::debug!("ISAKMP:(0):NAT found, this node is inside NAT"),
            (false, true) => log::debug!("ISAKMP:(0):NAT found, the peer is inside NAT"),
            (true, true) => log::debug!("ISAKMP:(0):NAT found, both nodes inside NAT"),
        }
        Ok((Some(variant), nat_local, nat_remote))
    }

    /// SKEYID for the negotiated authentication method.
    fn skeyid(
        &self,
        policy: &Phase1Policy,
        ni: &[u8],
        nr: &[u8],
        g_xy: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        log::debug!("ISAKMP:(0): create ISAKMP SKEYID");
        Ok(match policy.auth {
            AuthMethod::PreShare => {
                let psk = self
                    .cfg
                    .credentials
                    .preshared_key(self.peer())
                    .ok_or(Error::NoPresharedKey { peer: self.peer() })?;
                keys::skeyid_psk(policy.hash, &psk, ni, nr)
            }
            AuthMethod::RsaSig => keys::skeyid_signature(policy.hash, ni, nr, g_xy),
        })
    }

    /// Our ID and authentication payloads for MM5 (`hash` = HASH_I) or MM6 (HASH_R).
    fn auth_payloads(
        &self,
        policy: &Phase1Policy,
        id: &IdentityPayload,
        hash: Vec<u8>,
        requested: &[Vec<u8>],
    ) -> Result<Vec<Payload>, Error> {
        log::debug!(
            "ISAKMP:(0):SA is doing {} authentication using id type {}",
            match policy.auth {
                AuthMethod::PreShare => "pre-shared key",
                AuthMethod::RsaSig => "RSA signature",
            },
            id.id.id_type()
        );
        log::debug!("ISAKMP (0): ID payload {id}");
        let mut v = vec![Payload::Identification(id.clone())];
        match policy.auth {
            AuthMethod::PreShare => v.push(Payload::Hash(hashp::Repr { data: hash })),
            AuthMethod::RsaSig => {
                if let Some(c) = self.cfg.credentials.own_cert_chain(requested).first() {
                    log::debug!("ISAKMP:(0): constructing CERT payload");
                    v.push(Payload::Certificate(cert::Repr {
                        encoding: CertEncoding::X509_SIGNATURE,
                        data: c.clone(),
                    }));
                }
                let s = self
                    .cfg
                    .credentials
                    .sign(&hash, requested)
                    .map_err(|e| self.local_err(format_args!("signing: {e}")))?;
                v.push(Payload::Signature(sig::Repr { data: s }));
            }
        }
        Ok(v)
    }

    /// Decrypts MM5 or MM6 with the chain's IV (not advancing it) and decodes it. A body
    /// that does not decrypt to a payload chain means the keys differ: with pre-share, the
    /// keys themselves.
    fn decrypt(
        &self,
        policy: &Phase1Policy,
        keys: &Phase1Keys,
        iv: &IvChain,
        h: &header::Repr,
        body: &[u8],
    ) -> Result<Body, Error> {
        let block = policy.cipher.block_size();
        if body.is_empty() || !body.len().is_multiple_of(block) {
            return Err(self.malformed(format_args!(
                "{} encrypted bytes, not a multiple of the {block}-byte block",
                body.len()
            )));
        }
        let pt = Zeroizing::new(
            policy
                .cipher
                .decrypt(keys.enc_key(), iv.iv(), body)
                .map_err(|e| self.local_err(format_args!("decryption: {e}")))?,
        );
        decode(h.next_payload, &pt, true).map_err(|e| Error::AuthenticationFailed {
            peer: self.peer(),
            method: policy.auth.attr_value(),
            reason: format!(
                "the encrypted message does not decrypt to valid payloads ({e}){}",
                if policy.auth == AuthMethod::PreShare {
                    ": pre-shared key mismatch?"
                } else {
                    ""
                }
            ),
        })
    }

    /// The payloads MM5 / MM6 must and may carry.
    fn check_auth_payloads(
        &self,
        policy: &Phase1Policy,
        payloads: &[Payload],
    ) -> Result<(), Error> {
        let auth = match policy.auth {
            AuthMethod::PreShare => PayloadType::HASH,
            AuthMethod::RsaSig => PayloadType::SIG,
        };
        let mut allowed = vec![
            PayloadType::NOTIFY,
            PayloadType::VENDOR_ID,
            PayloadType::CERT_REQ,
        ];
        if policy.auth == AuthMethod::RsaSig {
            allowed.push(PayloadType::CERT);
        }
        self.check_payloads(payloads, &[PayloadType::ID, auth], &allowed)?;
        if payloads.first().map(Payload::kind) != Some(PayloadType::ID) {
            return Err(self.malformed("ID is not the first payload"));
        }
        Ok(())
    }

    /// Verifies the peer's HASH or SIG over `expected` (HASH_I or HASH_R).
    fn authenticate(
        &self,
        policy: &Phase1Policy,
        payloads: &[Payload],
        expected: &[u8],
    ) -> Result<PeerIdentity, Error> {
        let peer = self.peer();
        let Some(Payload::Identification(id)) = payloads.first() else {
            return Err(self.malformed("no ID payload"));
        };
        log::debug!("ISAKMP:(0): processing ID payload. message ID = 0");
        log::debug!("ISAKMP (0): ID payload {id}");
        let method = policy.auth.attr_value();
        let r = match policy.auth {
            AuthMethod::PreShare => {
                log::debug!("ISAKMP:(0): processing HASH payload. message ID = 0");
                let got = payloads.iter().find_map(|p| match p {
                    Payload::Hash(h) => Some(&h.data),
                    _ => None,
                });
                match got {
                    Some(g) if g.len() == expected.len() && openssl::memcmp::eq(g, expected) => {
                        Ok(PeerIdentity {
                            id: id.id.clone(),
                            certificate: None,
                        })
                    }
                    _ => Err(Error::AuthenticationFailed {
                        peer,
                        method,
                        reason: "hash mismatch".into(),
                    }),
                }
            }
            AuthMethod::RsaSig => {
                let certs: Vec<Vec<u8>> = payloads
                    .iter()
                    .filter_map(|p| match p {
                        Payload::Certificate(c) => {
                            log::debug!("ISAKMP:(0): processing CERT payload. message ID = 0");
                            log::debug!("ISAKMP:(0): processing a {} cert", c.encoding);
                            (c.encoding == CertEncoding::X509_SIGNATURE).then(|| c.data.clone())
                        }
                        _ => None,
                    })
                    .collect();
                log::debug!("ISAKMP:(0): processing SIG payload. message ID = 0");
                let sig = payloads
                    .iter()
                    .find_map(|p| match p {
                        Payload::Signature(s) => Some(&s.data[..]),
                        _ => None,
                    })
                    .unwrap_or(&[]);
                self.cfg
                    .credentials
                    .verify_peer(peer, id, &certs, expected, sig)
                    .map_err(|e| match e {
                        AuthError::BadSignature | AuthError::Other(_) => {
                            Error::AuthenticationFailed {
                                peer,
                                method,
                                reason: e.to_string(),
                            }
                        }
                        AuthError::NoCertificate | AuthError::Certificate(_) => {
                            Error::BadCertificate {
                                peer,
                                reason: e.to_string(),
                            }
                        }
                        AuthError::IdMismatch(_) => Error::InvalidId {
                            peer,
                            reason: e.to_string(),
                        },
                    })
            }
        }?;
        log::debug!("ISAKMP:(0):SA authentication status: authenticated");
        log::debug!("ISAKMP:(0):SA has been authenticated with {peer}");
        Ok(r)
    }
}

/// The states' access to their core, for the shared rejection path.
trait HasCore {
    fn core(&self) -> &Core;
}

fn reject<S: HasCore, N>(state: S, error: Error) -> Step<S, N> {
    let r = state.core().rejection(error);
    if r.error.is_fatal() {
        Step::Failed(r)
    } else {
        Step::Ignored(state, r)
    }
}

macro_rules! state_accessors {
    ($name:ident) => {
        impl HasCore for $name {
            fn core(&self) -> &Core {
                &self.core
            }
        }

        impl $name {
            /// The datagram this state sent (for the caller's retransmission timer).
            pub fn last_sent(&self) -> &[u8] {
                &self.sent
            }
            /// Our address for this exchange (port 4500 once floated).
            pub fn local(&self) -> SocketAddr {
                self.core.local
            }
            /// The peer's address for this exchange: where to send.
            pub fn remote(&self) -> SocketAddr {
                self.core.remote
            }
            /// CKY-I and CKY-R (zero until the initiator has MM2).
            pub fn cookies(&self) -> ([u8; 8], [u8; 8]) {
                (self.core.cky_i, self.core.cky_r)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------
// Initiator

/// The start of an exchange we initiate.
pub struct Initiator;

impl Initiator {
    /// Builds MM1 (SA with our policies, NAT-T and DPD vendor IDs) for `remote`.
    pub fn start(
        cfg: Arc<MainModeConfig>,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(MmI1Sent, Vec<u8>), Error> {
        Self::start_seeded(cfg, local, remote, Seeds::default())
    }

    /// [`Initiator::start`] with fixed cookie, nonce and DH private value.
    pub fn start_seeded(
        cfg: Arc<MainModeConfig>,
        local: SocketAddr,
        remote: SocketAddr,
        seeds: Seeds,
    ) -> Result<(MmI1Sent, Vec<u8>), Error> {
        let peer = remote.ip();
        let local_err = |reason: String| Error::Local { peer, reason };
        if cfg.policies.is_empty() {
            return Err(local_err("no ISAKMP policy configured".into()));
        }
        let cky_i = seeds.cookie().map_err(local_err)?;
        let sa = proposal::build_sa(&cfg.policies);
        let sai_b = sa_body(&sa);
        let mut payloads = vec![Payload::Sa(sa)];
        if cfg.nat_traversal {
            for v in OUR_NAT_T {
                log::debug!("ISAKMP:(0): constructed NAT-T vendor-{} ID", nat_t_name(v));
                payloads.push(Payload::VendorId(v.repr()));
            }
        }
        if cfg.dpd {
            payloads.push(Payload::VendorId(KnownVendor::Dpd.repr()));
        }
        let sent = clear_message(cky_i, [0; 8], payloads).map_err(local_err)?;
        state_change("IKE_READY", "IKE_I_MM1");
        log::debug!("ISAKMP:(0): beginning Main Mode exchange");
        log::debug!(
            "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (I) MM_NO_STATE",
            remote.ip(),
            local.port(),
            remote.port()
        );
        let state = MmI1Sent {
            core: Core {
                cfg,
                cky_i,
                cky_r: [0; 8],
                local,
                remote,
                vendors: PeerVendors::default(),
                nat_t: None,
            },
            sai_b,
            seeds,
            sent: sent.clone(),
        };
        Ok((state, sent))
    }
}

/// MM1 sent; waiting for MM2.
#[derive(Debug)]
pub struct MmI1Sent {
    core: Core,
    sai_b: Vec<u8>,
    seeds: Seeds,
    sent: Vec<u8>,
}
state_accessors!(MmI1Sent);

struct Mm2 {
    cky_r: [u8; 8],
    policy: Phase1Policy,
    vendors: PeerVendors,
    nat_t: Option<KnownVendor>,
    dh: DhPrivate,
    ni: Vec<u8>,
    mm3: Vec<u8>,
}

impl MmI1Sent {
    /// Processes MM2 (the responder's SA choice, cookie and vendor IDs) and builds MM3
    /// (KE, Ni, CERT_REQ for rsa-sig, NAT-D when both sides do NAT-T).
    pub fn on_message(
        self,
        data: &[u8],
        _local: SocketAddr,
        _remote: SocketAddr,
    ) -> Step<Self, MmI3Sent> {
        match self.check(data) {
            Err(e) => reject(self, e),
            Ok(m) => {
                state_change("IKE_I_MM1", "IKE_I_MM2");
                state_change("IKE_I_MM2", "IKE_I_MM3");
                let next = MmI3Sent {
                    core: Core {
                        cky_r: m.cky_r,
                        vendors: m.vendors,
                        nat_t: m.nat_t,
                        ..self.core
                    },
                    policy: m.policy,
                    sai_b: self.sai_b,
                    dh: m.dh,
                    ni: m.ni,
                    exch: Exchanged {
                        received: data.to_vec(),
                        sent: m.mm3.clone(),
                    },
                    sent: m.mm3.clone(),
                };
                Step::Next(next, m.mm3)
            }
        }
    }

    fn check(&self, data: &[u8]) -> Result<Mm2, Error> {
        let c = &self.core;
        let (h, body) = c.check_header(data, false)?;
        let b = decode(h.next_payload, body, false).map_err(|e| c.malformed(e))?;
        c.check_payloads(
            &b.payloads,
            &[PayloadType::SA],
            &[PayloadType::VENDOR_ID, PayloadType::NOTIFY],
        )?;
        let Some(Payload::Sa(sa)) = b.payloads.first() else {
            return Err(c.malformed("SA is not the first payload"));
        };
        log::debug!("ISAKMP:(0): processing SA payload. message ID = 0");
        let vendors = vendors_of(c.vendors.clone(), &b.payloads);
        let policy = proposal::check_choice(&c.cfg.policies, sa)
            .ok_or(Error::NoProposalChosen {
                local: c.local.ip(),
                peer: c.peer(),
            })?
            .policy;
        let nat_t = if c.cfg.nat_traversal {
            vendors.nat_t_choice()
        } else {
            None
        };
        let cky_r = h.responder_cookie;
        let dh = self
            .seeds
            .dh(policy.group, &c.cfg.dh_pool)
            .map_err(|e| c.local_err(e))?;
        let ni = self.seeds.nonce().map_err(|e| c.local_err(e))?;
        let mut payloads = vec![
            Payload::KeyExchange(ke::Repr {
                data: dh.public_value().to_vec(),
            }),
            Payload::Nonce(nonce::Repr::new(ni.clone()).map_err(|e| c.local_err(e))?),
        ];
        if policy.auth == AuthMethod::RsaSig {
            payloads.extend(cert_requests(&c.cfg));
        }
        if let Some(v) = nat_t {
            payloads.extend(natd_payloads(
                v,
                policy.hash,
                c.cky_i,
                cky_r,
                c.local,
                c.remote,
            ));
        }
        let mm3 = clear_message(c.cky_i, cky_r, payloads).map_err(|e| c.local_err(e))?;
        log::debug!(
            "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (I) MM_SA_SETUP",
            c.remote.ip(),
            c.local.port(),
            c.remote.port()
        );
        Ok(Mm2 {
            cky_r,
            policy,
            vendors,
            nat_t,
            dh,
            ni,
            mm3,
        })
    }
}

/// MM3 sent; waiting for MM4.
#[derive(Debug)]
pub struct MmI3Sent {
    core: Core,
    policy: Phase1Policy,
    sai_b: Vec<u8>,
    dh: DhPrivate,
    ni: Vec<u8>,
    exch: Exchanged,
    sent: Vec<u8>,
}
state_accessors!(MmI3Sent);

struct Mm4 {
    keys: Phase1Keys,
    iv: IvChain,
    g_xr: Vec<u8>,
    vendors: PeerVendors,
    nat_t: Option<KnownVendor>,
    nat_local: bool,
    nat_remote: bool,
    local: SocketAddr,
    remote: SocketAddr,
    local_id: IdentityPayload,
    mm5: Vec<u8>,
}

impl MmI3Sent {
    /// The negotiated policy.
    pub fn policy(&self) -> &Phase1Policy {
        &self.policy
    }

    /// Processes MM4 (KE, Nr, CERT_REQ, NAT-D), derives SKEYID and its keys, and builds
    /// the encrypted MM5 (IDii, CERT, SIG_I or HASH_I, INITIAL-CONTACT). When a NAT was
    /// detected the next state's `local()`/`remote()` are on port 4500.
    pub fn on_message(
        self,
        data: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Step<Self, MmI5Sent> {
        if let Some(r) = self.exch.replay(data) {
            return Step::Retransmit(self, r);
        }
        match self.check(data, local, remote) {
            Err(e) => reject(self, e),
            Ok(m) => {
                state_change("IKE_I_MM3", "IKE_I_MM4");
                state_change("IKE_I_MM4", "IKE_I_MM5");
                let next = MmI5Sent {
                    core: Core {
                        vendors: m.vendors,
                        nat_t: m.nat_t,
                        local: m.local,
                        remote: m.remote,
                        ..self.core
                    },
                    policy: self.policy,
                    keys: m.keys,
                    iv: m.iv,
                    g_xi: self.dh.public_value().to_vec(),
                    g_xr: m.g_xr,
                    sai_b: self.sai_b,
                    nat_local: m.nat_local,
                    nat_remote: m.nat_remote,
                    local_id: m.local_id,
                    exch: Exchanged {
                        received: data.to_vec(),
                        sent: m.mm5.clone(),
                    },
                    sent: m.mm5.clone(),
                };
                Step::Next(next, m.mm5)
            }
        }
    }

    fn check(&self, data: &[u8], local: SocketAddr, remote: SocketAddr) -> Result<Mm4, Error> {
        let c = &self.core;
        let p = &self.policy;
        let (h, body) = c.check_header(data, false)?;
        let b = decode(h.next_payload, body, false).map_err(|e| c.malformed(e))?;
        c.check_payloads(
            &b.payloads,
            &[PayloadType::KE, PayloadType::NONCE],
            &[
                PayloadType::CERT_REQ,
                PayloadType::VENDOR_ID,
                PayloadType::NAT_D,
                PayloadType::NAT_D_DRAFT,
                PayloadType::NOTIFY,
            ],
        )?;
        let (g_xr, nr) = ke_and_nonce(&b.payloads);
        log::debug!("ISAKMP:(0): processing KE payload. message ID = 0");
        let g_xy = self
            .dh
            .shared_secret(g_xr)
            .map_err(|e| c.malformed(format_args!("KE payload: {e}")))?;
        log::debug!("ISAKMP:(0): processing NONCE payload. message ID = 0");
        let vendors = vendors_of(c.vendors.clone(), &b.payloads);
        let requested = requested_cas(&b.payloads);
        let (nat_t, nat_local, nat_remote) =
            c.nat_detect(p.hash, c.cky_r, &b.payloads, local, remote)?;
        let skeyid = c.skeyid(p, &self.ni, nr, &g_xy)?;
        let keys = Phase1Keys::derive(
            p.hash,
            &skeyid,
            &g_xy,
            &c.cky_i,
            &c.cky_r,
            p.cipher.key_len(),
        );
        log::debug!("ISAKMP:(0):SKEYID state generated");
        let g_xi = self.dh.public_value();
        let mut iv = IvChain::new(&keys::phase1_iv(p.hash, g_xi, g_xr, p.cipher.block_size()));
        let local_id = c.cfg.credentials.local_id();
        let a = AuthInputs {
            g_xi,
            g_xr,
            cky_i: &c.cky_i,
            cky_r: &c.cky_r,
            sai_b: &self.sai_b,
        };
        let hash_i = keys.hash_i(&a, &local_id.body_bytes());
        let mut payloads = c.auth_payloads(p, &local_id, hash_i, &requested)?;
        if c.cfg.initial_contact {
            log::debug!("ISAKMP:(0):Send initial contact");
            let mut cookies = [0u8; 16];
            cookies[..8].copy_from_slice(&c.cky_i);
            cookies[8..].copy_from_slice(&c.cky_r);
            payloads.push(Payload::Notification(notify::Repr::initial_contact(
                cookies,
            )));
        }
        let (mut local, mut remote) = (c.local, c.remote);
        if nat_t.is_some() && (nat_local || nat_remote) {
            local.set_port(NAT_T_PORT);
            remote.set_port(NAT_T_PORT);
            log::debug!(
                "ISAKMP:(0):NAT-T: floating to port {NAT_T_PORT} (local {local} remote {remote})"
            );
        }
        let mm5 = encrypted_message(c.cky_i, c.cky_r, &payloads, p, &keys, &mut iv)
            .map_err(|e| c.local_err(e))?;
        log::debug!(
            "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (I) MM_KEY_EXCH",
            remote.ip(),
            local.port(),
            remote.port()
        );
        Ok(Mm4 {
            keys,
            iv,
            g_xr: g_xr.to_vec(),
            vendors,
            nat_t,
            nat_local,
            nat_remote,
            local,
            remote,
            local_id,
            mm5,
        })
    }
}

fn ke_and_nonce(payloads: &[Payload]) -> (&[u8], &[u8]) {
    let mut ke: &[u8] = &[];
    let mut n: &[u8] = &[];
    for p in payloads {
        match p {
            Payload::KeyExchange(k) => ke = &k.data,
            Payload::Nonce(x) => n = &x.data,
            _ => {}
        }
    }
    (ke, n)
}

/// MM5 sent (encrypted); waiting for MM6.
#[derive(Debug)]
pub struct MmI5Sent {
    core: Core,
    policy: Phase1Policy,
    keys: Phase1Keys,
    /// The IV for MM6 (the last block of MM5).
    iv: IvChain,
    g_xi: Vec<u8>,
    g_xr: Vec<u8>,
    sai_b: Vec<u8>,
    nat_local: bool,
    nat_remote: bool,
    local_id: IdentityPayload,
    exch: Exchanged,
    sent: Vec<u8>,
}
state_accessors!(MmI5Sent);

impl MmI5Sent {
    /// The phase 1 keys (derived after MM4).
    pub fn keys(&self) -> &Phase1Keys {
        &self.keys
    }

    /// Whether we (`.0`) and the peer (`.1`) are behind a NAT.
    pub fn nat(&self) -> (bool, bool) {
        (self.nat_local, self.nat_remote)
    }

    /// Processes the encrypted MM6 (IDir, CERT, SIG_R or HASH_R): the ISAKMP SA is
    /// established once HASH_R or the signature, certificate and identity are verified.
    /// The datagram of [`Step::Next`] is empty: Main Mode ends with MM6, nothing is sent.
    pub fn on_message(
        self,
        data: &[u8],
        _local: SocketAddr,
        _remote: SocketAddr,
    ) -> Step<Self, Phase1Sa> {
        if let Some(r) = self.exch.replay(data) {
            return Step::Retransmit(self, r);
        }
        match self.check(data) {
            Err(e) => {
                let (policy, keys) = (self.policy, self.keys.clone());
                reject_protected(self, e, &policy, &keys, data)
            }
            Ok((peer, iv)) => {
                state_change("IKE_I_MM5", "IKE_I_MM6");
                state_change("IKE_I_MM6", "IKE_P1_COMPLETE");
                let c = self.core;
                let sa = Phase1Sa {
                    dh_pool: c.cfg.dh_pool.clone(),
                    role: Role::Initiator,
                    cookie_i: c.cky_i,
                    cookie_r: c.cky_r,
                    policy: self.policy,
                    keys: self.keys,
                    last_cbc_block: iv.iv().to_vec(),
                    local_id: self.local_id,
                    peer,
                    local: c.local,
                    remote: c.remote,
                    nat_t: c.nat_t,
                    nat_local: self.nat_local,
                    nat_remote: self.nat_remote,
                    peer_vendors: c.vendors,
                    initial_contact: false,
                    established: Instant::now(),
                    lifetime: Duration::from_secs(self.policy.lifetime_secs as u64),
                    retransmit: None,
                };
                Step::Next(sa, Vec::new())
            }
        }
    }

    fn check(&self, data: &[u8]) -> Result<(PeerIdentity, IvChain), Error> {
        let c = &self.core;
        let p = &self.policy;
        let (h, body) = c.check_header(data, true)?;
        let b = c.decrypt(p, &self.keys, &self.iv, &h, body)?;
        c.check_auth_payloads(p, &b.payloads)?;
        let a = AuthInputs {
            g_xi: &self.g_xi,
            g_xr: &self.g_xr,
            cky_i: &c.cky_i,
            cky_r: &c.cky_r,
            sai_b: &self.sai_b,
        };
        let hash_r = self.keys.hash_r(&a, b.id_b.as_deref().unwrap_or_default());
        let peer = c.authenticate(p, &b.payloads, &hash_r)?;
        let mut iv = self.iv.clone();
        iv.advance(body).map_err(|e| c.malformed(e))?;
        Ok((peer, iv))
    }
}

// ---------------------------------------------------------------------------------------
// Responder

/// The start of an exchange a peer initiates.
pub struct Responder;

impl Responder {
    /// Processes MM1 received on `local` from `remote`: selects a transform (IOS order) and
    /// builds MM2. Aggressive Mode is refused. On failure the caller keeps no state and
    /// sends the notification, if any.
    pub fn on_first(
        cfg: Arc<MainModeConfig>,
        data: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(MmR2Sent, Vec<u8>), Rejection> {
        Self::on_first_seeded(cfg, data, local, remote, Seeds::default())
    }

    /// [`Responder::on_first`] with fixed cookie, nonce and DH private value.
    pub fn on_first_seeded(
        cfg: Arc<MainModeConfig>,
        data: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
        seeds: Seeds,
    ) -> Result<(MmR2Sent, Vec<u8>), Rejection> {
        log::debug!(
            "ISAKMP (0:0): received packet from {} dport {} sport {} (N) NEW SA",
            remote.ip(),
            local.port(),
            remote.port()
        );
        let mut core = Core {
            cfg,
            cky_i: [0; 8],
            cky_r: [0; 8],
            local,
            remote,
            vendors: PeerVendors::default(),
            nat_t: None,
        };
        match Self::first(&mut core, data, &seeds) {
            Ok((sai_b, policy, mm2)) => {
                state_change("IKE_READY", "IKE_R_MM1");
                state_change("IKE_R_MM1", "IKE_R_MM2");
                log::debug!(
                    "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (R) MM_SA_SETUP",
                    remote.ip(),
                    local.port(),
                    remote.port()
                );
                let state = MmR2Sent {
                    core,
                    policy,
                    sai_b,
                    seeds,
                    exch: Exchanged {
                        received: data.to_vec(),
                        sent: mm2.clone(),
                    },
                    sent: mm2.clone(),
                };
                Ok((state, mm2))
            }
            Err(e) => Err(core.rejection(e)),
        }
    }

    fn first(
        c: &mut Core,
        data: &[u8],
        seeds: &Seeds,
    ) -> Result<(Vec<u8>, Phase1Policy, Vec<u8>), Error> {
        let peer = c.peer();
        let (h, body) = message::parse_header(data).map_err(|e| c.malformed(e))?;
        if h.exchange_type == ExchangeType::AGGRESSIVE {
            return Err(Error::AggressiveModeRefused { peer });
        }
        if h.exchange_type != ExchangeType::MAIN_MODE {
            return Err(Error::UnexpectedExchange {
                peer,
                exchange: h.exchange_type,
            });
        }
        if h.responder_cookie != [0; 8] {
            return Err(Error::UnknownCookies { peer });
        }
        if h.initiator_cookie == [0; 8] {
            return Err(c.malformed("initiator cookie 0"));
        }
        if h.message_id != 0 || h.flags.encryption() {
            return Err(c.malformed("message ID or flags of a Main Mode message 1"));
        }
        c.cky_i = h.initiator_cookie;
        c.cky_r = seeds.cookie().map_err(|e| c.local_err(e))?;
        let b = decode(h.next_payload, body, false).map_err(|e| c.malformed(e))?;
        c.check_payloads(
            &b.payloads,
            &[PayloadType::SA],
            &[PayloadType::VENDOR_ID, PayloadType::NOTIFY],
        )?;
        let Some(Payload::Sa(sa)) = b.payloads.first() else {
            return Err(c.malformed("SA is not the first payload"));
        };
        log::debug!(
            "ISAKMP: local port {}, remote port {}",
            c.local.port(),
            c.remote.port()
        );
        log::debug!("ISAKMP:(0): processing SA payload. message ID = 0");
        c.vendors = vendors_of(PeerVendors::default(), &b.payloads);
        let sel = proposal::select(&c.cfg.policies, sa).ok_or(Error::NoProposalChosen {
            local: c.local.ip(),
            peer,
        })?;
        if c.cfg.nat_traversal {
            c.nat_t = c.vendors.nat_t_choice();
        }
        let mut payloads = vec![Payload::Sa(sel.reply_sa())];
        if let Some(v) = c.nat_t {
            log::debug!("ISAKMP:(0): constructed NAT-T vendor-{} ID", nat_t_name(v));
            payloads.push(Payload::VendorId(v.repr()));
        }
        if c.cfg.dpd {
            payloads.push(Payload::VendorId(KnownVendor::Dpd.repr()));
        }
        let mm2 = clear_message(c.cky_i, c.cky_r, payloads).map_err(|e| c.local_err(e))?;
        let sai_b = b.sa_b.unwrap_or_default();
        Ok((sai_b, sel.policy, mm2))
    }
}

/// MM2 sent; waiting for MM3.
#[derive(Debug)]
pub struct MmR2Sent {
    core: Core,
    policy: Phase1Policy,
    sai_b: Vec<u8>,
    seeds: Seeds,
    exch: Exchanged,
    sent: Vec<u8>,
}
state_accessors!(MmR2Sent);

struct Mm3 {
    keys: Phase1Keys,
    g_xi: Vec<u8>,
    g_xr: Vec<u8>,
    vendors: PeerVendors,
    nat_t: Option<KnownVendor>,
    nat_local: bool,
    nat_remote: bool,
    requested: Vec<Vec<u8>>,
    mm4: Vec<u8>,
}

impl MmR2Sent {
    /// The negotiated policy.
    pub fn policy(&self) -> &Phase1Policy {
        &self.policy
    }

    /// Processes MM3 (KE, Ni, CERT_REQ, NAT-D) received on `local` from `remote`, derives
    /// SKEYID and its keys, and builds MM4 (KE, Nr, CERT_REQ for rsa-sig, NAT-D).
    pub fn on_message(
        self,
        data: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Step<Self, MmR4Sent> {
        if let Some(r) = self.exch.replay(data) {
            return Step::Retransmit(self, r);
        }
        match self.check(data, local, remote) {
            Err(e) => reject(self, e),
            Ok(m) => {
                state_change("IKE_R_MM2", "IKE_R_MM3");
                state_change("IKE_R_MM3", "IKE_R_MM4");
                let p = self.policy;
                let iv = IvChain::new(&keys::phase1_iv(
                    p.hash,
                    &m.g_xi,
                    &m.g_xr,
                    p.cipher.block_size(),
                ));
                let next = MmR4Sent {
                    core: Core {
                        vendors: m.vendors,
                        nat_t: m.nat_t,
                        ..self.core
                    },
                    policy: p,
                    keys: m.keys,
                    iv,
                    g_xi: m.g_xi,
                    g_xr: m.g_xr,
                    sai_b: self.sai_b,
                    nat_local: m.nat_local,
                    nat_remote: m.nat_remote,
                    requested: m.requested,
                    exch: Exchanged {
                        received: data.to_vec(),
                        sent: m.mm4.clone(),
                    },
                    sent: m.mm4.clone(),
                };
                Step::Next(next, m.mm4)
            }
        }
    }

    fn check(&self, data: &[u8], local: SocketAddr, remote: SocketAddr) -> Result<Mm3, Error> {
        let c = &self.core;
        let p = &self.policy;
        let (h, body) = c.check_header(data, false)?;
        let b = decode(h.next_payload, body, false).map_err(|e| c.malformed(e))?;
        c.check_payloads(
            &b.payloads,
            &[PayloadType::KE, PayloadType::NONCE],
            &[
                PayloadType::CERT_REQ,
                PayloadType::VENDOR_ID,
                PayloadType::NAT_D,
                PayloadType::NAT_D_DRAFT,
                PayloadType::NOTIFY,
            ],
        )?;
        let (g_xi, ni) = ke_and_nonce(&b.payloads);
        if g_xi.len() != p.group.key_len() {
            return Err(c.malformed(format_args!(
                "KE payload of {} bytes for {}",
                g_xi.len(),
                p.group
            )));
        }
        log::debug!("ISAKMP:(0): processing KE payload. message ID = 0");
        // a bad value is refused before a precomputed key pair is spent on it
        let peer_ke = p
            .group
            .peer_public(g_xi)
            .map_err(|e| c.malformed(format_args!("KE payload: {e}")))?;
        let dh = self
            .seeds
            .dh(p.group, &c.cfg.dh_pool)
            .map_err(|e| c.local_err(e))?;
        let g_xy = dh
            .shared_secret_with(&peer_ke)
            .map_err(|e| c.malformed(format_args!("KE payload: {e}")))?;
        log::debug!("ISAKMP:(0): processing NONCE payload. message ID = 0");
        let nr = self.seeds.nonce().map_err(|e| c.local_err(e))?;
        let vendors = vendors_of(c.vendors.clone(), &b.payloads);
        let requested = requested_cas(&b.payloads);
        let (nat_t, nat_local, nat_remote) =
            c.nat_detect(p.hash, c.cky_r, &b.payloads, local, remote)?;
        let skeyid = c.skeyid(p, ni, &nr, &g_xy)?;
        let keys = Phase1Keys::derive(
            p.hash,
            &skeyid,
            &g_xy,
            &c.cky_i,
            &c.cky_r,
            p.cipher.key_len(),
        );
        log::debug!("ISAKMP:(0):SKEYID state generated");
        let mut payloads = vec![
            Payload::KeyExchange(ke::Repr {
                data: dh.public_value().to_vec(),
            }),
            Payload::Nonce(nonce::Repr::new(nr).map_err(|e| c.local_err(e))?),
        ];
        if p.auth == AuthMethod::RsaSig {
            payloads.extend(cert_requests(&c.cfg));
        }
        if let Some(v) = nat_t {
            // Hashes of the addresses as this datagram shows them.
            payloads.extend(natd_payloads(v, p.hash, c.cky_i, c.cky_r, local, remote));
        }
        let mm4 = clear_message(c.cky_i, c.cky_r, payloads).map_err(|e| c.local_err(e))?;
        log::debug!(
            "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (R) MM_KEY_EXCH",
            remote.ip(),
            local.port(),
            remote.port()
        );
        Ok(Mm3 {
            keys,
            g_xi: g_xi.to_vec(),
            g_xr: dh.public_value().to_vec(),
            vendors,
            nat_t,
            nat_local,
            nat_remote,
            requested,
            mm4,
        })
    }
}

/// MM4 sent; waiting for MM5.
#[derive(Debug)]
pub struct MmR4Sent {
    core: Core,
    policy: Phase1Policy,
    keys: Phase1Keys,
    /// The IV of MM5: phase1_iv(g^xi | g^xr).
    iv: IvChain,
    g_xi: Vec<u8>,
    g_xr: Vec<u8>,
    sai_b: Vec<u8>,
    nat_local: bool,
    nat_remote: bool,
    /// The CAs the initiator asked for in MM3.
    requested: Vec<Vec<u8>>,
    exch: Exchanged,
    sent: Vec<u8>,
}
state_accessors!(MmR4Sent);

impl MmR4Sent {
    /// The phase 1 keys (derived after MM3).
    pub fn keys(&self) -> &Phase1Keys {
        &self.keys
    }

    /// Whether we (`.0`) and the peer (`.1`) are behind a NAT.
    pub fn nat(&self) -> (bool, bool) {
        (self.nat_local, self.nat_remote)
    }

    /// Processes the encrypted MM5 (IDii, CERT, SIG_I or HASH_I, INITIAL-CONTACT)
    /// received on `local` from `remote` (port 4500 after a NAT-T float: the SA takes
    /// these addresses) and builds MM6. The SA is established.
    pub fn on_message(
        self,
        data: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Step<Self, Phase1Sa> {
        if let Some(r) = self.exch.replay(data) {
            return Step::Retransmit(self, r);
        }
        match self.check(data, local, remote) {
            Err(e) => {
                let (policy, keys) = (self.policy, self.keys.clone());
                reject_protected(self, e, &policy, &keys, data)
            }
            Ok((peer, initial_contact, local_id, iv, mm6)) => {
                state_change("IKE_R_MM4", "IKE_R_MM5");
                state_change("IKE_R_MM5", "IKE_P1_COMPLETE");
                let c = self.core;
                let sa = Phase1Sa {
                    dh_pool: c.cfg.dh_pool.clone(),
                    role: Role::Responder,
                    cookie_i: c.cky_i,
                    cookie_r: c.cky_r,
                    policy: self.policy,
                    keys: self.keys,
                    last_cbc_block: iv.iv().to_vec(),
                    local_id,
                    peer,
                    local,
                    remote,
                    nat_t: c.nat_t,
                    nat_local: self.nat_local,
                    nat_remote: self.nat_remote,
                    peer_vendors: c.vendors,
                    initial_contact,
                    established: Instant::now(),
                    lifetime: Duration::from_secs(self.policy.lifetime_secs as u64),
                    retransmit: Some(Exchanged {
                        received: data.to_vec(),
                        sent: mm6.clone(),
                    }),
                };
                Step::Next(sa, mm6)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn check(
        &self,
        data: &[u8],
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(PeerIdentity, bool, IdentityPayload, IvChain, Vec<u8>), Error> {
        let c = &self.core;
        let p = &self.policy;
        let (h, body) = c.check_header(data, true)?;
        if remote != c.remote || local != c.local {
            log::debug!("ISAKMP:(0):MM5 from {remote} to {local}: peer floated");
        }
        let b = c.decrypt(p, &self.keys, &self.iv, &h, body)?;
        c.check_auth_payloads(p, &b.payloads)?;
        let a = AuthInputs {
            g_xi: &self.g_xi,
            g_xr: &self.g_xr,
            cky_i: &c.cky_i,
            cky_r: &c.cky_r,
            sai_b: &self.sai_b,
        };
        let hash_i = self.keys.hash_i(&a, b.id_b.as_deref().unwrap_or_default());
        let peer = c.authenticate(p, &b.payloads, &hash_i)?;
        let initial_contact = b.payloads.iter().any(|p| {
            matches!(p, Payload::Notification(n) if n.message_type == NotifyType::INITIAL_CONTACT)
        });
        if initial_contact {
            log::debug!("ISAKMP:(0): processing NOTIFY INITIAL_CONTACT protocol 1");
        }
        let mut iv = self.iv.clone();
        iv.advance(body).map_err(|e| c.malformed(e))?;
        let local_id = c.cfg.credentials.local_id();
        let hash_r = self.keys.hash_r(&a, &local_id.body_bytes());
        // An initiator may send its CERT_REQ in MM5 rather than MM3 (strongSwan does).
        let mut requested = self.requested.clone();
        requested.extend(requested_cas(&b.payloads));
        let payloads = c.auth_payloads(p, &local_id, hash_r, &requested)?;
        let mm6 = encrypted_message(c.cky_i, c.cky_r, &payloads, p, &self.keys, &mut iv)
            .map_err(|e| c.local_err(e))?;
        log::debug!(
            "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (R) QM_IDLE",
            remote.ip(),
            local.port(),
            remote.port()
        );
        Ok((peer, initial_contact, local_id, iv, mm6))
    }
}

// ---------------------------------------------------------------------------------------
// Established

/// An established ISAKMP SA (IOS `QM_IDLE`): what Quick Mode, informational exchanges, DPD
/// and `show crypto isakmp sa` need.
#[derive(Debug)]
pub struct Phase1Sa {
    pub role: Role,
    pub cookie_i: [u8; 8],
    pub cookie_r: [u8; 8],
    /// The policy that matched, with the negotiated lifetime.
    pub policy: Phase1Policy,
    /// SKEYID, SKEYID_d, SKEYID_a, SKEYID_e and the encryption key.
    pub keys: Phase1Keys,
    /// The last CBC block of phase 1 (MM6's), for [`Phase1Sa::phase2_iv`].
    pub last_cbc_block: Vec<u8>,
    /// The ID payload we sent.
    pub local_id: IdentityPayload,
    /// Who the peer proved to be.
    pub peer: PeerIdentity,
    /// The addresses of the SA's last message (port 4500 after a NAT-T float).
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The NAT-T variant negotiated (RFC 3947 or a draft), if any.
    pub nat_t: Option<KnownVendor>,
    /// We are behind a NAT.
    pub nat_local: bool,
    /// The peer is behind a NAT.
    pub nat_remote: bool,
    /// The vendor IDs the peer sent (DPD, NAT-T, Unity...).
    pub peer_vendors: PeerVendors,
    /// The peer sent INITIAL-CONTACT (responder: drop older SAs with this peer).
    pub initial_contact: bool,
    pub established: Instant,
    pub lifetime: Duration,
    /// Responder: MM5 and our MM6, to answer a retransmitted MM5.
    retransmit: Option<Exchanged>,
    /// Where Quick Mode under this SA takes its PFS key pairs (the Main Mode
    /// configuration's pool).
    pub dh_pool: Arc<DhPool>,
}

impl Phase1Sa {
    /// CKY-I | CKY-R: the SPI of the ISAKMP SA in notifications and deletes.
    pub fn cookies(&self) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[..8].copy_from_slice(&self.cookie_i);
        c[8..].copy_from_slice(&self.cookie_r);
        c
    }

    /// The first IV of a Quick Mode or informational exchange with this message ID.
    pub fn phase2_iv(&self, message_id: u32) -> Vec<u8> {
        keys::phase2_iv(
            self.keys.hash(),
            &self.last_cbc_block,
            message_id,
            self.policy.cipher.block_size(),
        )
    }

    /// When the SA's lifetime ends.
    pub fn expires(&self) -> Instant {
        self.established + self.lifetime
    }

    /// Either side is behind a NAT (ESP goes in UDP 4500).
    pub fn nat_detected(&self) -> bool {
        self.nat_t.is_some() && (self.nat_local || self.nat_remote)
    }

    /// Responder: MM6 again if `data` is exactly the MM5 that established the SA (the
    /// initiator did not get our MM6).
    pub fn on_retransmit(&self, data: &[u8]) -> Option<Vec<u8>> {
        self.retransmit.as_ref().and_then(|r| r.replay(data))
    }
}
