//! IKEv1 Quick Mode (RFC 2409 section 5.5) as explicit states, on top of an established
//! [`Phase1Sa`]:
//!
//! ```text
//!  Initiator                                             Responder
//!  QuickModeInitiator::start -- QM1 HDR*, HASH(1), SA, Ni, [KE], IDci, IDcr -->
//!                                                        QuickModeResponder::on_qm1
//!                                                        (install QmResponse::inbound)
//!  QmI1Sent <----------------- QM2 HDR*, HASH(2), SA, Nr, [KE], IDci, IDcr,
//!                                  [N(RESPONDER-LIFETIME)] ---- QmR2Sent
//!  QmI1Sent::on_message ------ QM3 HDR*, HASH(3) ------> QmR2Sent::on_message
//!  QmI3Sent (ChildSa: install both)                      ChildSa (install outbound)
//! ```
//!
//! - HASH(1) = prf(SKEYID_a, M-ID | SA | Ni | [KE] | IDci | IDcr),
//!   HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr | ...), HASH(3) = prf(SKEYID_a, 0 |
//!   M-ID | Ni_b | Nr_b). QM1 is encrypted with `phase2_iv(M-ID)`, QM2 and QM3 with the last
//!   ciphertext block of the message before.
//! - The SA offers one proposal (protocol ESP, our inbound SPI, one transform) per
//!   transform set of the crypto map entry, in order; the responder takes the first
//!   acceptable one in *its own* transform-set order, as IOS does.
//! - KEYMAT (RFC 2409 5.5) per direction: the inbound SA is keyed with the SPI we chose, the
//!   outbound SA with the peer's; the encryption key comes first, then the integrity key;
//!   for AES-GCM the key is followed by the 4-byte salt (the dataplane's layout).
//! - Lifetimes: the responder takes the shorter of the offer and its own and, when its own
//!   is shorter, says so with RESPONDER-LIFETIME (RFC 2407 4.6.3.1); the initiator adopts a
//!   received RESPONDER-LIFETIME.
//! - NAT-T: when phase 1 detected a NAT, the encapsulation modes are the UDP ones (3/4, or
//!   61443/61444 with NAT-T drafts 02/03) and the SAs get UDP encapsulation on the phase 1
//!   ports.
//!
//! **Make-before-break.** The responder's inbound SA must be installed *before* QM2 is
//! sent (the initiator may send ESP as soon as it has QM2): [`QuickModeResponder::on_qm1`]
//! returns it in [`QmResponse::inbound`]. The outbound SA comes with QM3
//! ([`QmR2Sent::on_message`]). The initiator installs both on QM2 ([`QmI3Sent::child`]).
//!
//! **Retransmissions.** As in Main Mode, a state keeps the message it was built from and
//! its reply: an exact retransmission of QM1 given to [`QmR2Sent::on_message`] gets the
//! same QM2 ([`Step::Retransmit`]); a retransmitted QM2 given to [`QmI3Sent::on_retransmit`]
//! gets the same QM3.
//!
//! Not done here: proposals with several protocols (AH+ESP bundles, IPComp) are skipped,
//! NAT-OA payloads are neither sent nor used (transport mode behind a NAT does not fix up
//! checksums), and the commit bit is ignored.

use std::net::IpAddr;

use dataplane::crypto::Transform;
use dataplane::esp::{Direction, Keys, Lifetime, Mode, Prefix, SaParams, Selector, UdpEncap};

use super::informational;
use super::main_mode::{Phase1Sa, Rejection, Step};
use super::phase2::{
    self, encryption_of, ids_of, integrity_of, min_limit, proposal_attributes, selector_of,
    selector_within, EspAttrs, Phase2Policy, Proxies, TransformSet,
};
use super::protected::{self, hash_ok, hashed_chain, payloads_after_hash, random_bytes, with_hash};
use super::Error;
use crate::ikecrypto::keys::{self, EspKeys, KeymatInputs, PROTO_IPSEC_ESP};
use crate::ikecrypto::{DhGroup, DhPrivate, IvChain};
use crate::isakmp::attributes::{EspTransformId, GroupDescription};
use crate::isakmp::header::ExchangeType;
use crate::isakmp::message::{self, Payload};
use crate::isakmp::notify::{self, NotifyType};
use crate::isakmp::sa::{self as sap, ProposalRepr, TransformRepr};
use crate::isakmp::vendor::KnownVendor;
use crate::isakmp::{id, ke, nonce, PayloadType, ProtocolId};

/// Our Quick Mode nonce length.
const NONCE_LEN: usize = 32;
/// RFC 2407 4.5: an SA without a seconds lifetime lasts 28800 seconds.
const DEFAULT_LIFE_SECONDS: u64 = 28800;

/// A negotiated pair of ESP SAs, ready for the dataplane.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildSa {
    /// The SA the peer sends on (our SPI).
    pub inbound: SaParams,
    /// The SA we send on (the peer's SPI).
    pub outbound: SaParams,
    pub spi_in: u32,
    pub spi_out: u32,
    pub transform: Transform,
    pub mode: Mode,
    /// The name of the transform set that was chosen.
    pub transform_set: String,
    /// The proxy identities, outbound view (our side is the source).
    pub selector: Selector,
    /// The negotiated lifetime (the shorter of both sides').
    pub lifetime: Lifetime,
    /// The PFS group, if the exchange had one.
    pub pfs: Option<DhGroup>,
    pub message_id: u32,
    /// The crypto map entry (index in the policies given to the responder; 0 for the
    /// initiator) and, for a dynamic map, the index of the range that matched.
    pub policy_index: usize,
    pub dynamic_entry: Option<usize>,
    pub crypto_map: String,
    pub crypto_map_seq: u32,
}

impl ChildSa {
    /// The SPIs and transform as IOS logs them ("Creating IPSec SAs").
    fn log_created(&self) {
        for (dir, p) in [("inbound", &self.inbound), ("outbound", &self.outbound)] {
            log::debug!(
                "ISAKMP:(0):Creating IPSec SAs {dir} SA from {} to {} (f/i) 0/0 (proxy {} to {}) \
                 has spi {:#X} and conn_id 0, lifetime of {} seconds, {} kilobytes",
                if dir == "inbound" { p.remote } else { p.local },
                if dir == "inbound" { p.local } else { p.remote },
                prefix_str(self.selector.source),
                prefix_str(self.selector.destination),
                p.spi,
                self.lifetime.seconds,
                self.lifetime.kilobytes
            );
        }
    }
}

fn prefix_str(p: Prefix) -> String {
    format!("{}/{}", p.addr, p.len)
}

fn create_sa_log(p: &SaParams) {
    let (src, dst) = match p.direction {
        Direction::Inbound => (p.remote, p.local),
        Direction::Outbound => (p.local, p.remote),
    };
    log::info!(
        "IPSEC(create_sa): sa created, (sa) sa_dest= {dst}, sa_proto= 50, sa_spi= {:#X}({}), \
         sa_trans= {} , sa_conn_id= 0 sa_src= {src}",
        p.spi,
        p.spi,
        p.transform
    );
}

/// What both sides need to build the SAs.
struct KeyInputs<'a> {
    ni_b: &'a [u8],
    nr_b: &'a [u8],
    g_qm_xy: Option<&'a [u8]>,
}

struct Negotiated<'a> {
    ts: &'a TransformSet,
    policy: &'a Phase2Policy,
    policy_index: usize,
    dynamic_entry: Option<usize>,
    selector: Selector,
    lifetime: Lifetime,
    pfs: Option<DhGroup>,
    spi_in: u32,
    spi_out: u32,
    message_id: u32,
}

fn child_sa(sa: &Phase1Sa, n: &Negotiated<'_>, k: &KeyInputs<'_>) -> ChildSa {
    let t = n.ts.transform;
    let udp = sa.nat_detected().then(|| UdpEncap {
        local_port: sa.local.port(),
        remote_port: sa.remote.port(),
    });
    let params = |direction, spi| {
        let km = EspKeys::derive(
            sa.keys.hash(),
            sa.keys.skeyid_d(),
            &KeymatInputs {
                protocol: PROTO_IPSEC_ESP,
                spi,
                ni_b: k.ni_b,
                nr_b: k.nr_b,
                g_qm_xy: k.g_qm_xy,
            },
            t.encryption.key_len(),
            t.integrity.key_len(),
        );
        SaParams {
            spi,
            direction,
            transform: t,
            keys: Keys {
                encryption: km.encryption().to_vec(),
                authentication: km.authentication().to_vec(),
            },
            mode: n.ts.mode,
            local: sa.local.ip(),
            remote: sa.remote.ip(),
            selectors: vec![n.selector],
            lifetime: n.lifetime,
            replay_window: n.policy.replay_window,
            esn: false,
            udp_encap: udp,
            crypto_map: n.policy.crypto_map.clone(),
            crypto_map_seq: n.policy.seq,
        }
    };
    let c = ChildSa {
        inbound: params(Direction::Inbound, n.spi_in),
        outbound: params(Direction::Outbound, n.spi_out),
        spi_in: n.spi_in,
        spi_out: n.spi_out,
        transform: t,
        mode: n.ts.mode,
        transform_set: n.ts.name.clone(),
        selector: n.selector,
        lifetime: n.lifetime,
        pfs: n.pfs,
        message_id: n.message_id,
        policy_index: n.policy_index,
        dynamic_entry: n.dynamic_entry,
        crypto_map: n.policy.crypto_map.clone(),
        crypto_map_seq: n.policy.seq,
    };
    c.log_created();
    c
}

fn local_err(sa: &Phase1Sa, reason: impl std::fmt::Display) -> Error {
    Error::Local {
        peer: sa.remote.ip(),
        reason: reason.to_string(),
    }
}

/// The rejection of `error`, with its notification as an encrypted informational message
/// naming `spi` (the SPI of the proposal it is about) when IOS would send one.
fn rejection(sa: &Phase1Sa, error: Error, spi: Option<u32>) -> Rejection {
    if error.is_fatal() {
        log::warn!("{error}");
    } else {
        log::info!("{error}");
    }
    let notify = error
        .notify()
        .and_then(|t| informational::error_notify(sa, t, ProtocolId::IPSEC_ESP, spi).ok());
    Rejection { error, notify }
}

fn nat_variant(sa: &Phase1Sa) -> Option<KnownVendor> {
    if sa.nat_detected() {
        sa.nat_t
    } else {
        None
    }
}

fn lifetime_of(offer: &EspAttrs, soft_percent: u8) -> Lifetime {
    Lifetime {
        seconds: offer.life_seconds.unwrap_or(DEFAULT_LIFE_SECONDS),
        kilobytes: offer.life_kilobytes.unwrap_or(0),
        soft_percent,
    }
}

// ---------------------------------------------------------------------------------------
// Initiator

/// Starts Quick Mode as initiator.
pub struct QuickModeInitiator;

/// One proposal we sent.
#[derive(Clone, Debug)]
struct Offered {
    number: u8,
    ts: TransformSet,
    transform: TransformRepr,
}

impl QuickModeInitiator {
    /// Builds QM1 for the crypto map entry `policy` (its proxies must be
    /// [`Proxies::Static`]): one proposal per transform set with `spi_in` (our inbound
    /// SPI, allocated by the dataplane), a random nonce, KE with PFS, IDci/IDcr from the
    /// proxies. `message_id` is random and nonzero (the caller keeps it unique per SA).
    /// NAT-T (UDP encapsulation modes) follows what phase 1 detected.
    pub fn start(
        sa: &Phase1Sa,
        policy: &Phase2Policy,
        spi_in: u32,
        message_id: u32,
    ) -> Result<(QmI1Sent, Vec<u8>), Rejection> {
        let fail = |e| rejection(sa, e, None);
        if message_id == 0 {
            return Err(fail(local_err(sa, "message ID 0")));
        }
        let Proxies::Static(selector) = policy.proxies else {
            return Err(fail(local_err(
                sa,
                "a dynamic crypto map cannot initiate Quick Mode",
            )));
        };
        if policy.transform_sets.is_empty() || policy.transform_sets.len() > 255 {
            return Err(fail(local_err(sa, "no transform set")));
        }
        let (idci, idcr) = ids_of(&selector).map_err(|e| fail(local_err(sa, e)))?;
        log::debug!(
            "ISAKMP:(0): beginning Quick Mode exchange, M-ID of {}:{message_id:x}",
            message_id as i32
        );
        log::debug!("ISAKMP:(0):QM Initiator gets spi {spi_in:#010x}");
        let nat = nat_variant(sa);
        let mut offered = Vec::new();
        let mut proposals = Vec::new();
        for (i, ts) in policy.transform_sets.iter().enumerate() {
            if !ts.transform.is_valid() {
                return Err(fail(local_err(
                    sa,
                    format_args!("invalid transform set {}: {}", ts.name, ts.transform),
                )));
            }
            let (tid, _) = phase2::esp_transform_id(ts.transform.encryption);
            let attrs = proposal_attributes(ts, &policy.lifetime, policy.pfs, nat);
            let t = TransformRepr::esp(1, tid, &attrs);
            let number = (i + 1) as u8;
            proposals.push(ProposalRepr {
                number,
                protocol: ProtocolId::IPSEC_ESP,
                spi: spi_in.to_be_bytes().to_vec(),
                transforms: vec![t.clone()],
            });
            offered.push(Offered {
                number,
                ts: ts.clone(),
                transform: t,
            });
        }
        let ni = random_bytes(NONCE_LEN).map_err(|e| fail(local_err(sa, e)))?;
        let mut rest = vec![
            Payload::Sa(sap::Repr { proposals }),
            Payload::Nonce(nonce::Repr::new(ni.clone()).map_err(|e| fail(local_err(sa, e)))?),
        ];
        let dh = match policy.pfs {
            Some(g) => {
                // precomputed if the phase 1 SA's pool has one ready
                let d = sa
                    .dh_pool
                    .take(g)
                    .map_err(|e| fail(local_err(sa, format_args!("PFS {g}: {e}"))))?;
                rest.push(Payload::KeyExchange(ke::Repr {
                    data: d.public_value().to_vec(),
                }));
                Some(d)
            }
            None => None,
        };
        rest.push(Payload::Identification(idci.clone()));
        rest.push(Payload::Identification(idcr.clone()));
        let (hash, ska) = (sa.keys.hash(), sa.keys.skeyid_a());
        let payloads = with_hash(rest, |after| keys::qm_hash1(hash, ska, message_id, after))
            .map_err(|e| fail(local_err(sa, e)))?;
        let mut iv = IvChain::new(&sa.phase2_iv(message_id));
        let qm1 = protected::seal(sa, ExchangeType::QUICK_MODE, message_id, &payloads, &mut iv)
            .map_err(|e| fail(local_err(sa, e)))?;
        log::debug!(
            "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (I) QM_IDLE",
            sa.remote.ip(),
            sa.local.port(),
            sa.remote.port()
        );
        log::debug!("ISAKMP:(0):Old State = IKE_QM_READY  New State = IKE_QM_I_QM1");
        Ok((
            QmI1Sent {
                policy: policy.clone(),
                selector,
                message_id,
                spi_in,
                ni,
                dh,
                offered,
                idci,
                idcr,
                iv,
                sent: qm1.clone(),
            },
            qm1,
        ))
    }
}

/// QM1 sent; waiting for QM2.
#[derive(Debug)]
pub struct QmI1Sent {
    policy: Phase2Policy,
    selector: Selector,
    message_id: u32,
    spi_in: u32,
    ni: Vec<u8>,
    dh: Option<DhPrivate>,
    offered: Vec<Offered>,
    idci: id::Repr,
    idcr: id::Repr,
    /// After QM1: the IV of QM2.
    iv: IvChain,
    sent: Vec<u8>,
}

impl QmI1Sent {
    /// QM1, to retransmit on a timer.
    pub fn last_sent(&self) -> &[u8] {
        &self.sent
    }
    pub fn message_id(&self) -> u32 {
        self.message_id
    }
    /// Our inbound SPI (to release if the exchange fails).
    pub fn spi_in(&self) -> u32 {
        self.spi_in
    }

    /// Processes QM2: HASH(2), the chosen proposal, Nr, KE, the IDs and a
    /// RESPONDER-LIFETIME; derives the keys and builds QM3. A message that does not verify is
    /// dropped ([`Step::Ignored`]); a choice we did not offer ends the exchange.
    pub fn on_message(self, sa: &Phase1Sa, data: &[u8]) -> Step<Self, QmI3Sent> {
        match self.check(sa, data) {
            Ok((child, qm3)) => {
                log::debug!(
                    "ISAKMP:(0):Old State = IKE_QM_I_QM1  New State = IKE_QM_PHASE2_COMPLETE"
                );
                create_sa_log(&child.inbound);
                create_sa_log(&child.outbound);
                Step::Next(
                    QmI3Sent {
                        child,
                        received: data.to_vec(),
                        sent: qm3.clone(),
                    },
                    qm3,
                )
            }
            Err(e) => {
                let r = rejection(sa, e, Some(self.spi_in));
                if r.error.is_fatal() {
                    Step::Failed(r)
                } else {
                    Step::Ignored(self, r)
                }
            }
        }
    }

    fn check(&self, sa: &Phase1Sa, data: &[u8]) -> Result<(ChildSa, Vec<u8>), Error> {
        let peer = sa.remote.ip();
        let mid = self.message_id;
        let o = protected::open(sa, data, ExchangeType::QUICK_MODE, Some(mid), &self.iv)?;
        let (chain, got) = hashed_chain(peer, &o.header, &o.plaintext, "HASH(2)")?;
        log::debug!("ISAKMP:(0): processing HASH payload. message ID = {mid}");
        let expected = keys::qm_hash2(
            sa.keys.hash(),
            sa.keys.skeyid_a(),
            mid,
            &self.ni,
            chain.after(0),
        );
        if !hash_ok(&got, &expected) {
            return Err(Error::BadHash {
                peer,
                what: "HASH(2)",
                message_id: mid,
            });
        }
        let payloads = payloads_after_hash(peer, &chain)?;
        let p = QmPayloads::sort(peer, &payloads)?;
        let Some(sa_p) = p.sa else {
            return Err(protected::malformed(peer, "no SA payload in QM2"));
        };
        let nr = p
            .nonce
            .ok_or_else(|| protected::malformed(peer, "no NONCE in QM2"))?;
        log::debug!("ISAKMP:(0): processing SA payload. message ID = {mid}");
        let no = |reason: String| Error::QmNoProposalChosen { peer, reason };
        let [prop] = &sa_p.proposals[..] else {
            return Err(no(format!(
                "{} proposals in the reply",
                sa_p.proposals.len()
            )));
        };
        let [t] = &prop.transforms[..] else {
            return Err(no(format!(
                "{} transforms in the reply",
                prop.transforms.len()
            )));
        };
        let spi_out = prop
            .spi_u32()
            .filter(|_| prop.protocol == ProtocolId::IPSEC_ESP)
            .ok_or_else(|| no("not an ESP proposal with a 4-byte SPI".into()))?;
        log::debug!("ISAKMP:(0):Checking IPSec proposal {}", prop.number);
        log::debug!(
            "ISAKMP: transform {}, {}",
            t.number,
            EspTransformId(t.transform_id)
        );
        log::debug!("ISAKMP:   attributes in transform:");
        let got_attrs =
            EspAttrs::interpret(&t.phase2().map_err(|e| protected::malformed(peer, e))?, 0);
        let off = self
            .offered
            .iter()
            .find(|o| o.number == prop.number)
            .ok_or_else(|| no(format!("proposal {} was not offered", prop.number)))?;
        let want = EspAttrs::interpret(&off.transform.phase2().unwrap_or_default(), u32::MAX);
        if t.transform_id != off.transform.transform_id
            || got_attrs.auth != want.auth
            || got_attrs.key_length != want.key_length
            || got_attrs.encapsulation != want.encapsulation
            || got_attrs.group != want.group
            || !got_attrs.unknown.is_empty()
        {
            return Err(no(format!(
                "the reply's transform differs from proposal {}",
                prop.number
            )));
        }
        log::debug!("ISAKMP:(0):atts are acceptable.");
        log::debug!("ISAKMP:(0): processing NONCE payload. message ID = {mid}");
        // IDs: echoed exactly.
        if let Some((ci, cr)) = &p.ids {
            log::debug!("ISAKMP:(0): processing ID payload. message ID = {mid}");
            log::debug!("ISAKMP:(0): processing ID payload. message ID = {mid}");
            if *ci != self.idci || *cr != self.idcr {
                return Err(Error::ProxyIdRefused {
                    peer,
                    reason: format!("the reply names {} / {}", ci.id, cr.id),
                });
            }
        } else {
            return Err(Error::ProxyIdRefused {
                peer,
                reason: "no IDci/IDcr in the reply".into(),
            });
        }
        // PFS.
        let g_qm_xy = match &self.dh {
            Some(d) => {
                let ke =
                    p.ke.ok_or_else(|| no("PFS requested but no KE in the reply".into()))?;
                Some(
                    d.shared_secret(ke)
                        .map_err(|e| protected::malformed(peer, format_args!("KE: {e}")))?,
                )
            }
            None => None,
        };
        // Lifetimes: the responder's choice if shorter (attributes or RESPONDER-LIFETIME).
        let mut lifetime = self.policy.lifetime;
        lifetime.seconds = min_limit(lifetime.seconds, got_attrs.life_seconds.unwrap_or(0));
        lifetime.kilobytes = min_limit(lifetime.kilobytes, got_attrs.life_kilobytes.unwrap_or(0));
        for n in &p.notifies {
            log::debug!("ISAKMP:(0): processing NOTIFY {n}");
            if n.message_type == NotifyType::RESPONDER_LIFETIME {
                log::debug!("ISAKMP:(0):processing responder lifetime");
                let attrs = n
                    .lifetime_attributes()
                    .map_err(|e| protected::malformed(peer, e))?;
                let rl = EspAttrs::interpret(&attrs, 0);
                if let Some(s) = rl.life_seconds {
                    log::debug!("ISAKMP (0): responder lifetime of {s}s");
                    lifetime.seconds = min_limit(lifetime.seconds, s);
                }
                if let Some(k) = rl.life_kilobytes {
                    log::debug!("ISAKMP (0): responder lifetime of {k}kb");
                    lifetime.kilobytes = min_limit(lifetime.kilobytes, k);
                }
            }
        }
        let n = Negotiated {
            ts: &off.ts,
            policy: &self.policy,
            policy_index: 0,
            dynamic_entry: None,
            selector: self.selector,
            lifetime,
            pfs: self.policy.pfs,
            spi_in: self.spi_in,
            spi_out,
            message_id: mid,
        };
        let child = child_sa(
            sa,
            &n,
            &KeyInputs {
                ni_b: &self.ni,
                nr_b: &nr.data,
                g_qm_xy: g_qm_xy.as_deref().map(|v| &v[..]),
            },
        );
        let hash3 = keys::qm_hash3(sa.keys.hash(), sa.keys.skeyid_a(), mid, &self.ni, &nr.data);
        let mut iv = self.iv.clone();
        iv.advance(o.ciphertext)
            .map_err(|e| protected::malformed(peer, e))?;
        let qm3 = protected::seal(
            sa,
            ExchangeType::QUICK_MODE,
            mid,
            &[Payload::Hash(crate::isakmp::hash::Repr { data: hash3 })],
            &mut iv,
        )
        .map_err(|e| local_err(sa, e))?;
        log::debug!(
            "ISAKMP:(0): sending packet to {} my_port {} peer_port {} (I) QM_IDLE",
            sa.remote.ip(),
            sa.local.port(),
            sa.remote.port()
        );
        log::debug!(
            "ISAKMP:(0):deleting node {} error FALSE reason \"No Error\"",
            mid as i32
        );
        Ok((child, qm3))
    }
}

/// QM3 sent: the child SA is established. Kept to answer a retransmitted QM2.
#[derive(Debug)]
pub struct QmI3Sent {
    child: ChildSa,
    received: Vec<u8>,
    sent: Vec<u8>,
}

impl QmI3Sent {
    /// The SAs to install (both directions).
    pub fn child(&self) -> &ChildSa {
        &self.child
    }
    pub fn into_child(self) -> ChildSa {
        self.child
    }
    /// QM3 again if `data` is exactly the QM2 we answered.
    pub fn on_retransmit(&self, data: &[u8]) -> Option<Vec<u8>> {
        (data == self.received).then(|| {
            log::debug!("ISAKMP:(0): retransmitting due to retransmit phase 2");
            self.sent.clone()
        })
    }
}

// ---------------------------------------------------------------------------------------
// Responder

/// The payloads of QM1 / QM2 after the HASH, sorted.
struct QmPayloads<'a> {
    sa: Option<&'a sap::Repr>,
    nonce: Option<&'a nonce::Repr>,
    ke: Option<&'a [u8]>,
    ids: Option<(id::Repr, id::Repr)>,
    notifies: Vec<&'a notify::Repr>,
}

impl<'a> QmPayloads<'a> {
    fn sort(peer: IpAddr, payloads: &'a [Payload]) -> Result<QmPayloads<'a>, Error> {
        let mut r = QmPayloads {
            sa: None,
            nonce: None,
            ke: None,
            ids: None,
            notifies: vec![],
        };
        let mut ids = vec![];
        let twice = |what| protected::malformed(peer, format_args!("two {what} payloads"));
        if payloads.first().map(Payload::kind) != Some(PayloadType::SA) {
            return Err(protected::malformed(peer, "SA does not follow HASH"));
        }
        for p in payloads {
            match p {
                Payload::Sa(s) if r.sa.is_none() => r.sa = Some(s),
                Payload::Nonce(n) if r.nonce.is_none() => r.nonce = Some(n),
                Payload::KeyExchange(k) if r.ke.is_none() => r.ke = Some(&k.data),
                Payload::Identification(i) => ids.push(i.clone()),
                Payload::Notification(n) => r.notifies.push(n),
                Payload::VendorId(_) | Payload::NatOa { .. } => {}
                Payload::Sa(_) | Payload::Nonce(_) | Payload::KeyExchange(_) => {
                    return Err(twice(p.kind()))
                }
                other => {
                    return Err(Error::InvalidPayloadType {
                        peer,
                        kind: other.kind(),
                    })
                }
            }
        }
        match ids.len() {
            0 => {}
            2 => {
                let cr = ids.pop().unwrap_or_else(|| unreachable!());
                let ci = ids.pop().unwrap_or_else(|| unreachable!());
                r.ids = Some((ci, cr));
            }
            n => return Err(protected::malformed(peer, format_args!("{n} ID payloads"))),
        }
        Ok(r)
    }
}

/// Answers QM1 as responder.
pub struct QuickModeResponder;

/// What [`QuickModeResponder::on_qm1`] gives back: the state waiting for QM3, the inbound
/// SA to install **before** sending QM2, and QM2.
#[derive(Debug)]
pub struct QmResponse {
    pub state: QmR2Sent,
    pub inbound: SaParams,
    pub qm2: Vec<u8>,
}

/// The proposal the responder accepted.
struct Choice<'a> {
    policy_index: usize,
    dynamic_entry: Option<usize>,
    ts: &'a TransformSet,
    proposal: &'a ProposalRepr,
    transform: &'a TransformRepr,
    attrs: EspAttrs,
    spi_out: u32,
    group: Option<DhGroup>,
}

impl QuickModeResponder {
    /// Processes QM1 under `sa` against the crypto map entries `policies` (in sequence
    /// order): the first entry whose proxies match (the mirror of a static entry, or inside
    /// a dynamic entry's ranges) and that has an acceptable proposal (first in our
    /// transform-set order) wins. `alloc_spi` gives our inbound SPI (the dataplane's
    /// allocator); it is called once, after the proposal was accepted.
    ///
    /// On refusal the [`Rejection`] carries INVALID-ID-INFORMATION or NO-PROPOSAL-CHOSEN as
    /// an encrypted informational message; a QM1 whose HASH(1) does not verify is dropped
    /// (no notification).
    pub fn on_qm1(
        sa: &Phase1Sa,
        data: &[u8],
        policies: &[Phase2Policy],
        alloc_spi: &mut dyn FnMut() -> u32,
    ) -> Result<QmResponse, Rejection> {
        Self::respond(sa, data, policies, alloc_spi).map_err(|(e, spi)| rejection(sa, e, spi))
    }

    fn respond(
        sa: &Phase1Sa,
        data: &[u8],
        policies: &[Phase2Policy],
        alloc_spi: &mut dyn FnMut() -> u32,
    ) -> Result<QmResponse, (Error, Option<u32>)> {
        let peer = sa.remote.ip();
        let (h, _) =
            message::parse_header(data).map_err(|e| (protected::malformed(peer, e), None))?;
        let mid = h.message_id;
        let iv = IvChain::new(&sa.phase2_iv(mid));
        let o = protected::open(sa, data, ExchangeType::QUICK_MODE, None, &iv)
            .map_err(|e| (e, None))?;
        log::debug!(
            "ISAKMP (0): received packet from {peer} dport {} sport {} Global (R) QM_IDLE",
            sa.local.port(),
            sa.remote.port()
        );
        let (chain, got) =
            hashed_chain(peer, &o.header, &o.plaintext, "HASH(1)").map_err(|e| (e, None))?;
        log::debug!("ISAKMP:(0): processing HASH payload. message ID = {mid}");
        let expected = keys::qm_hash1(sa.keys.hash(), sa.keys.skeyid_a(), mid, chain.after(0));
        if !hash_ok(&got, &expected) {
            return Err((
                Error::BadHash {
                    peer,
                    what: "HASH(1)",
                    message_id: mid,
                },
                None,
            ));
        }
        let payloads = payloads_after_hash(peer, &chain).map_err(|e| (e, None))?;
        let p = QmPayloads::sort(peer, &payloads).map_err(|e| (e, None))?;
        let (Some(sa_p), Some(ni)) = (p.sa, p.nonce) else {
            return Err((protected::malformed(peer, "QM1 without SA or NONCE"), None));
        };
        // The initiator's proxies, its outbound view; without IDs, the phase 1 addresses.
        let theirs = match &p.ids {
            Some((ci, cr)) => {
                log::debug!("ISAKMP:(0): processing ID payload. message ID = {mid}");
                log::debug!("ISAKMP:(0): processing ID payload. message ID = {mid}");
                selector_of(ci, cr)
                    .map_err(|e| (Error::ProxyIdRefused { peer, reason: e }, None))?
            }
            None => {
                let host = |a: IpAddr| Prefix {
                    addr: a,
                    len: if a.is_ipv4() { 32 } else { 128 },
                };
                Selector {
                    source: host(peer),
                    destination: host(sa.local.ip()),
                    protocol: 0,
                    source_ports: (0, 65535),
                    destination_ports: (0, 65535),
                }
            }
        };
        let ours = theirs.mirror();
        let choice = choose(sa, policies, sa_p, &ours, p.ke.is_some(), mid)?;
        let policy = &policies[choice.policy_index];
        log::debug!("ISAKMP:(0):atts are acceptable.");
        log::debug!(
            "IPSEC(validate_proposal_request): proposal part #1, (key eng. msg.) INBOUND \
             local= {}:0, remote= {}:0, local_proxy= {}/{}/{}/{}, remote_proxy= {}/{}/{}/{}, \
             protocol= ESP, transform= {} (Tunnel),",
            sa.local.ip(),
            peer,
            ours.source.addr,
            ours.source.len,
            ours.protocol,
            ours.source_ports.0,
            ours.destination.addr,
            ours.destination.len,
            ours.protocol,
            ours.destination_ports.0,
            choice.ts.transform
        );
        log::debug!("ISAKMP:(0): processing NONCE payload. message ID = {mid}");
        // PFS.
        let (our_ke, g_qm_xy) = match choice.group {
            Some(g) => {
                let ke = p.ke.unwrap_or_default();
                if ke.len() != g.key_len() {
                    return Err((
                        protected::malformed(
                            peer,
                            format_args!("KE of {} bytes for {g}", ke.len()),
                        ),
                        Some(choice.spi_out),
                    ));
                }
                log::debug!("ISAKMP:(0): processing KE payload. message ID = {mid}");
                // a bad value is refused before a precomputed key pair is spent on it
                let ke = g
                    .peer_public(ke)
                    .map_err(|e| (protected::malformed(peer, format_args!("KE: {e}")), None))?;
                let d = sa
                    .dh_pool
                    .take(g)
                    .map_err(|e| (local_err(sa, format_args!("PFS {g}: {e}")), None))?;
                let public = d.public_value().to_vec();
                let s = d
                    .shared_secret_with(&ke)
                    .map_err(|e| (protected::malformed(peer, format_args!("KE: {e}")), None))?;
                (Some(public), Some(s))
            }
            None => (None, None),
        };
        // Lifetimes.
        let offered = lifetime_of(&choice.attrs, policy.lifetime.soft_percent);
        let lifetime = Lifetime {
            seconds: min_limit(offered.seconds, policy.lifetime.seconds),
            kilobytes: min_limit(offered.kilobytes, policy.lifetime.kilobytes),
            soft_percent: policy.lifetime.soft_percent,
        };
        let spi_in = alloc_spi();
        log::debug!(
            "IPSEC(spi_response): getting spi {spi_in} for SA from {} to {peer} for prot 3",
            sa.local.ip()
        );
        let nr = random_bytes(NONCE_LEN).map_err(|e| (local_err(sa, e), None))?;
        let mut rest = vec![
            Payload::Sa(sap::Repr {
                proposals: vec![ProposalRepr {
                    number: choice.proposal.number,
                    protocol: ProtocolId::IPSEC_ESP,
                    spi: spi_in.to_be_bytes().to_vec(),
                    transforms: vec![choice.transform.clone()],
                }],
            }),
            Payload::Nonce(nonce::Repr::new(nr.clone()).map_err(|e| (local_err(sa, e), None))?),
        ];
        if let Some(k) = our_ke {
            rest.push(Payload::KeyExchange(ke::Repr { data: k }));
        }
        if let Some((ci, cr)) = &p.ids {
            rest.push(Payload::Identification(ci.clone()));
            rest.push(Payload::Identification(cr.clone()));
        }
        let shorter = phase2::shorter_lifetime(&choice.attrs, &policy.lifetime);
        if !shorter.is_empty() {
            log::debug!(
                "ISAKMP:(0): sending RESPONDER-LIFETIME: {} seconds, {} kilobytes",
                lifetime.seconds,
                lifetime.kilobytes
            );
            rest.push(Payload::Notification(notify::Repr::responder_lifetime(
                ProtocolId::IPSEC_ESP,
                choice.spi_out,
                &shorter,
            )));
        }
        let (hash, ska) = (sa.keys.hash(), sa.keys.skeyid_a());
        let all = with_hash(rest, |after| {
            keys::qm_hash2(hash, ska, mid, &ni.data, after)
        })
        .map_err(|e| (local_err(sa, e), None))?;
        let mut iv = iv;
        iv.advance(o.ciphertext)
            .map_err(|e| (protected::malformed(peer, e), None))?;
        let qm2 = protected::seal(sa, ExchangeType::QUICK_MODE, mid, &all, &mut iv)
            .map_err(|e| (local_err(sa, e), None))?;
        let n = Negotiated {
            ts: choice.ts,
            policy,
            policy_index: choice.policy_index,
            dynamic_entry: choice.dynamic_entry,
            selector: ours,
            lifetime,
            pfs: choice.group,
            spi_in,
            spi_out: choice.spi_out,
            message_id: mid,
        };
        let child = child_sa(
            sa,
            &n,
            &KeyInputs {
                ni_b: &ni.data,
                nr_b: &nr,
                g_qm_xy: g_qm_xy.as_deref().map(|v| &v[..]),
            },
        );
        create_sa_log(&child.inbound);
        log::debug!(
            "ISAKMP:(0): sending packet to {peer} my_port {} peer_port {} (R) QM_IDLE",
            sa.local.port(),
            sa.remote.port()
        );
        log::debug!("ISAKMP:(0):Old State = IKE_QM_READY  New State = IKE_QM_R_QM2");
        let hash3 = keys::qm_hash3(hash, ska, mid, &ni.data, &nr);
        Ok(QmResponse {
            inbound: child.inbound.clone(),
            state: QmR2Sent {
                child,
                message_id: mid,
                hash3,
                iv,
                received: data.to_vec(),
                sent: qm2.clone(),
            },
            qm2,
        })
    }
}

/// Picks the crypto map entry and the proposal. Errors carry the SPI of the proposal they
/// are about (for the notification).
fn choose<'a>(
    sa: &Phase1Sa,
    policies: &'a [Phase2Policy],
    offer: &'a sap::Repr,
    ours: &Selector,
    have_ke: bool,
    mid: u32,
) -> Result<Choice<'a>, (Error, Option<u32>)> {
    let peer = sa.remote.ip();
    let first_spi = offer.proposals.first().and_then(ProposalRepr::spi_u32);
    let mut proxy_matched = false;
    for (pi, policy) in policies.iter().enumerate() {
        let entry = match &policy.proxies {
            Proxies::Static(s) => (s == ours).then_some(None),
            Proxies::Dynamic(ranges) => ranges
                .iter()
                .position(|r| selector_within(ours, r))
                .map(Some),
        };
        let Some(dynamic_entry) = entry else {
            continue;
        };
        proxy_matched = true;
        log::debug!("ISAKMP:(0): processing SA payload. message ID = {mid}");
        for ts in &policy.transform_sets {
            for prop in &offer.proposals {
                // Single-protocol proposals only (no AH+ESP bundle, no IPComp).
                if offer
                    .proposals
                    .iter()
                    .filter(|q| q.number == prop.number)
                    .count()
                    != 1
                {
                    continue;
                }
                log::debug!("ISAKMP:(0):Checking IPSec proposal {}", prop.number);
                if prop.protocol != ProtocolId::IPSEC_ESP {
                    continue;
                }
                let Some(spi_out) = prop.spi_u32() else {
                    continue;
                };
                for t in &prop.transforms {
                    log::debug!(
                        "ISAKMP: transform {}, {}",
                        t.number,
                        EspTransformId(t.transform_id)
                    );
                    log::debug!("ISAKMP:   attributes in transform:");
                    let Ok(attrs) = t.phase2() else {
                        continue;
                    };
                    let a = EspAttrs::interpret(&attrs, 0);
                    match acceptable(sa, policy, ts, t, &a, have_ke) {
                        Ok(group) => {
                            return Ok(Choice {
                                policy_index: pi,
                                dynamic_entry,
                                ts,
                                proposal: prop,
                                transform: t,
                                attrs: a,
                                spi_out,
                                group,
                            })
                        }
                        Err(why) => log::debug!(
                            "ISAKMP:(0):atts not acceptable against transform set {} ({why}). \
                             Next payload is 0",
                            ts.name
                        ),
                    }
                }
            }
        }
    }
    if proxy_matched {
        Err((
            Error::QmNoProposalChosen {
                peer,
                reason: "no proposal matches a transform set of the crypto map entry".into(),
            },
            first_spi,
        ))
    } else {
        Err((
            Error::ProxyIdRefused {
                peer,
                reason: format!(
                    "local_proxy= {}, remote_proxy= {}, protocol {}",
                    prefix_str(ours.source),
                    prefix_str(ours.destination),
                    ours.protocol
                ),
            },
            first_spi,
        ))
    }
}

/// Whether transform `t` (attributes `a`) matches our transform set; the PFS group if so.
fn acceptable(
    sa: &Phase1Sa,
    policy: &Phase2Policy,
    ts: &TransformSet,
    t: &TransformRepr,
    a: &EspAttrs,
    have_ke: bool,
) -> Result<Option<DhGroup>, String> {
    if !a.unknown.is_empty() {
        return Err("unsupported attributes".into());
    }
    let enc = encryption_of(EspTransformId(t.transform_id), a.key_length)
        .ok_or("transform or key length")?;
    let integ = integrity_of(a.auth).ok_or("authenticator")?;
    if enc != ts.transform.encryption || integ != ts.transform.integrity {
        return Err("transform".into());
    }
    let mode = a.encapsulation.ok_or("no encapsulation mode")?;
    if mode.is_tunnel() != (ts.mode == Mode::Tunnel) {
        return Err("encapsulation mode".into());
    }
    if mode.is_udp() != sa.nat_detected() {
        return Err(if sa.nat_detected() {
            "not UDP-encapsulated behind a NAT".into()
        } else {
            "UDP encapsulation without a NAT".into()
        });
    }
    let group = match (a.group, policy.pfs) {
        (None, None) => None,
        (None, Some(g)) => return Err(format!("PFS group {} required", g.id())),
        (Some(GroupDescription(g)), want) => {
            let g = DhGroup::from_id(g).ok_or(format!("PFS group {g} unsupported"))?;
            if want.is_some_and(|w| w != g) {
                return Err(format!("PFS group {}", g.id()));
            }
            if !have_ke {
                return Err("PFS group without KE".into());
            }
            Some(g)
        }
    };
    Ok(group)
}

/// QM2 sent (the inbound SA installed); waiting for QM3.
#[derive(Debug)]
pub struct QmR2Sent {
    child: ChildSa,
    message_id: u32,
    hash3: Vec<u8>,
    /// After QM2: the IV of QM3.
    iv: IvChain,
    received: Vec<u8>,
    sent: Vec<u8>,
}

impl QmR2Sent {
    pub fn message_id(&self) -> u32 {
        self.message_id
    }
    /// QM2, to retransmit on a timer.
    pub fn last_sent(&self) -> &[u8] {
        &self.sent
    }
    /// The SAs negotiated (the inbound one is already installed).
    pub fn child(&self) -> &ChildSa {
        &self.child
    }

    /// Processes QM3 (HASH(3)): the child SA is complete; install its outbound SA. An exact
    /// retransmission of QM1 gets QM2 again.
    pub fn on_message(self, sa: &Phase1Sa, data: &[u8]) -> Step<Self, ChildSa> {
        if data == self.received {
            log::debug!("ISAKMP:(0): retransmitting due to retransmit phase 2");
            let r = self.sent.clone();
            return Step::Retransmit(self, r);
        }
        match self.check(sa, data) {
            Ok(()) => {
                log::debug!(
                    "ISAKMP:(0):deleting node {} error FALSE reason \"quick mode done (await()\"",
                    self.message_id as i32
                );
                log::debug!(
                    "ISAKMP:(0):Old State = IKE_QM_R_QM2  New State = IKE_QM_PHASE2_COMPLETE"
                );
                create_sa_log(&self.child.outbound);
                Step::Next(self.child, Vec::new())
            }
            Err(e) => {
                let r = rejection(sa, e, None);
                if r.error.is_fatal() {
                    Step::Failed(r)
                } else {
                    Step::Ignored(self, r)
                }
            }
        }
    }

    fn check(&self, sa: &Phase1Sa, data: &[u8]) -> Result<(), Error> {
        let peer = sa.remote.ip();
        let o = protected::open(
            sa,
            data,
            ExchangeType::QUICK_MODE,
            Some(self.message_id),
            &self.iv,
        )?;
        let (chain, got) = hashed_chain(peer, &o.header, &o.plaintext, "HASH(3)")?;
        if chain.payloads.len() != 1 || !hash_ok(&got, &self.hash3) {
            return Err(Error::BadHash {
                peer,
                what: "HASH(3)",
                message_id: self.message_id,
            });
        }
        Ok(())
    }
}
