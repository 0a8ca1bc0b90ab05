//! Phase 1 policies (IOS `crypto isakmp policy N`) and the SA payload negotiation of Main
//! Mode messages 1 and 2 (RFC 2409 section 5, RFC 2408 section 4.2).
//!
//! [`Phase1Policy`] is this module's own policy type; the config module maps its
//! `crypto isakmp policy` blocks onto it. [`build_sa`] makes the initiator's SA payload: one
//! ISAKMP proposal with one KEY_IKE transform per policy, in priority order. [`select`] is
//! the responder's choice as IOS makes it: each of *our* policies in priority order against
//! every transform of the peer, the first match wins. [`check_choice`] is the initiator's
//! check of the transform the responder sent back.
//!
//! Lifetimes: IOS accepts a peer lifetime equal to or shorter than its policy's and uses the
//! peer's. A longer one is accepted too (IOS would refuse it and try the next policy): the
//! negotiated lifetime is the shorter of the two, the echoed transform carries it, and a log
//! line says so. An initiator (ours, IOS) accepts the shortened value since it is not longer
//! than what it offered.

use core::fmt;

use crate::ikecrypto::{DhGroup, HashAlg, IkeCipher};
use crate::isakmp::attributes::{
    self, AttrValue, AuthMethod as AuthAttr, EncryptionAlgorithm, GroupDescription, HashAlgorithm,
    IsakmpTransformId, LifeType, Phase1Attribute,
};
use crate::isakmp::sa::{self, ProposalRepr, TransformRepr};
use crate::isakmp::ProtocolId;

/// Phase 1 authentication methods this gateway implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// `authentication pre-share` (attribute value 1).
    PreShare,
    /// `authentication rsa-sig` (attribute value 3).
    RsaSig,
}

impl AuthMethod {
    /// The "Authentication Method" attribute value (RFC 2409 appendix A).
    pub fn attr_value(self) -> u16 {
        match self {
            AuthMethod::PreShare => 1,
            AuthMethod::RsaSig => 3,
        }
    }

    pub fn from_attr(v: u16) -> Option<AuthMethod> {
        match v {
            1 => Some(AuthMethod::PreShare),
            3 => Some(AuthMethod::RsaSig),
            _ => None,
        }
    }

    /// The IOS keyword.
    pub fn ios_name(self) -> &'static str {
        match self {
            AuthMethod::PreShare => "pre-share",
            AuthMethod::RsaSig => "rsa-sig",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ios_name())
    }
}

/// One `crypto isakmp policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Phase1Policy {
    /// 1..=10000 in IOS; lower is preferred.
    pub priority: u32,
    pub cipher: IkeCipher,
    pub hash: HashAlg,
    pub auth: AuthMethod,
    pub group: DhGroup,
    /// IOS default 86400.
    pub lifetime_secs: u32,
}

impl Phase1Policy {
    /// The attributes of this policy's transform in the order IOS sends them: encryption
    /// (and key length for AES), hash, group, authentication, life type, life duration.
    pub fn attributes(&self) -> Vec<Phase1Attribute> {
        let mut v = vec![Phase1Attribute::Encryption(EncryptionAlgorithm(
            self.cipher.attr_value(),
        ))];
        if let Some(bits) = self.cipher.key_length_attr() {
            v.push(Phase1Attribute::KeyLength(bits));
        }
        v.extend([
            Phase1Attribute::Hash(HashAlgorithm(self.hash.attr_value())),
            Phase1Attribute::Group(GroupDescription(self.group.id())),
            Phase1Attribute::Auth(AuthAttr(self.auth.attr_value())),
            Phase1Attribute::LifeType(LifeType::SECONDS),
            Phase1Attribute::LifeDuration(AttrValue::number(self.lifetime_secs as u64)),
        ]);
        v
    }

    /// This policy as KEY_IKE transform number `number`.
    pub fn transform(&self, number: u8) -> TransformRepr {
        TransformRepr::ike(number, &self.attributes())
    }
}

/// Our policies sorted by priority (stable: equal priorities keep their order).
pub fn sorted(policies: &[Phase1Policy]) -> Vec<Phase1Policy> {
    let mut v = policies.to_vec();
    v.sort_by_key(|p| p.priority);
    v
}

/// The initiator's SA payload: one proposal (#1, PROTO_ISAKMP, no SPI) with one transform
/// per policy in priority order, numbered from 1. At most 255 policies are offered.
pub fn build_sa(policies: &[Phase1Policy]) -> sa::Repr {
    let transforms = sorted(policies)
        .iter()
        .take(255)
        .enumerate()
        .map(|(i, p)| p.transform(i as u8 + 1))
        .collect();
    sa::Repr {
        proposals: vec![ProposalRepr {
            number: 1,
            protocol: ProtocolId::ISAKMP,
            spi: vec![],
            transforms,
        }],
    }
}

/// A peer's transform read as a phase 1 suite. Fields the transform lacks are `None`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct Offer {
    encryption: Option<u16>,
    key_length: Option<u16>,
    hash: Option<u16>,
    auth: Option<u16>,
    group: Option<u16>,
    /// Seconds, from a life duration that follows life type seconds.
    lifetime_secs: Option<u64>,
    /// The first attribute we do not implement (group type, prime, PRF, ...).
    unsupported: Option<String>,
}

fn read_offer(attrs: &[Phase1Attribute]) -> Offer {
    let mut o = Offer::default();
    let mut life_type = None;
    for a in attrs {
        match a {
            Phase1Attribute::Encryption(v) => o.encryption = Some(v.0),
            Phase1Attribute::KeyLength(v) => o.key_length = Some(*v),
            Phase1Attribute::Hash(v) => o.hash = Some(v.0),
            Phase1Attribute::Auth(v) => o.auth = Some(v.0),
            Phase1Attribute::Group(v) => o.group = Some(v.0),
            Phase1Attribute::LifeType(t) => life_type = Some(*t),
            Phase1Attribute::LifeDuration(d) => {
                if life_type == Some(LifeType::SECONDS) {
                    // A value beyond 64 bits is "forever": u64::MAX, capped later.
                    o.lifetime_secs = Some(d.as_u64().unwrap_or(u64::MAX));
                }
                // Kilobytes: IOS has no volume limit for phase 1 and ignores it.
            }
            Phase1Attribute::Other(x) => {
                if o.unsupported.is_none() {
                    o.unsupported = Some(Phase1Attribute::Other(x.clone()).to_string());
                }
            }
        }
    }
    o
}

/// Checks one transform against one policy: the negotiated lifetime and whether the peer's
/// was longer, or IOS's reason.
fn match_transform(p: &Phase1Policy, t: &TransformRepr) -> Result<(u32, bool), String> {
    if t.transform_id != IsakmpTransformId::KEY_IKE.0 {
        return Err(format!(
            "transform id {} offered is not KEY_IKE!",
            IsakmpTransformId(t.transform_id)
        ));
    }
    let attrs = t
        .phase1()
        .map_err(|e| format!("malformed attribute: {e}"))?;
    let o = read_offer(&attrs);
    if let Some(u) = o.unsupported {
        return Err(format!("attribute {u} is not supported!"));
    }
    let cipher = o
        .encryption
        .and_then(|e| IkeCipher::from_attrs(e, o.key_length));
    if cipher != Some(p.cipher) {
        return Err("Encryption algorithm offered does not match policy!".into());
    }
    if o.hash.and_then(HashAlg::from_attr) != Some(p.hash) {
        return Err("Hash algorithm offered does not match policy!".into());
    }
    if o.auth.and_then(AuthMethod::from_attr) != Some(p.auth) {
        return Err("Authentication method offered does not match policy!".into());
    }
    if o.group.and_then(DhGroup::from_id) != Some(p.group) {
        return Err("Diffie-Hellman group offered does not match policy!".into());
    }
    Ok(match o.lifetime_secs {
        // no lifetime, or 0 (strongSwan with rekey_time = 0): ours
        None | Some(0) => (p.lifetime_secs, false),
        Some(l) if l > p.lifetime_secs as u64 => (p.lifetime_secs, true),
        Some(l) => (l as u32, false),
    })
}

/// The outcome of a negotiation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Our matching policy with the negotiated lifetime.
    pub policy: Phase1Policy,
    /// The peer's proposal number.
    pub proposal_number: u8,
    /// The transform to echo in message 2: the peer's, its number and attributes as received
    /// (the life duration replaced when we shortened it).
    pub transform: TransformRepr,
    /// The peer asked for a longer lifetime than our policy's.
    pub lifetime_shortened: bool,
}

impl Selection {
    /// The SA payload of message 2: the chosen proposal with the chosen transform only.
    pub fn reply_sa(&self) -> sa::Repr {
        sa::Repr {
            proposals: vec![ProposalRepr {
                number: self.proposal_number,
                protocol: ProtocolId::ISAKMP,
                spi: vec![],
                transforms: vec![self.transform.clone()],
            }],
        }
    }
}

/// The transform with its seconds life duration set to `secs`.
fn with_lifetime(t: &TransformRepr, secs: u32) -> TransformRepr {
    let mut out = t.clone();
    let mut seconds = false;
    for a in &mut out.attributes {
        match Phase1Attribute::from_attribute(a) {
            Ok(Phase1Attribute::LifeType(lt)) => seconds = lt == LifeType::SECONDS,
            Ok(Phase1Attribute::LifeDuration(_)) if seconds => {
                *a = Phase1Attribute::LifeDuration(AttrValue::number(secs as u64)).to_attribute();
            }
            _ => {}
        }
    }
    out
}

fn log_attributes(t: &TransformRepr) {
    for a in &t.attributes {
        match Phase1Attribute::from_attribute(a) {
            Ok(p) => log::debug!("ISAKMP:      {p}"),
            Err(_) => log::debug!("ISAKMP:      {}", attributes::IkeAttrType(a.kind)),
        }
    }
}

/// Tries `t` against each policy in turn with IOS's debug lines; `next` is the number IOS
/// prints after "Next payload is" (3 when another transform follows, else 0).
fn try_policies(
    ours: &[Phase1Policy],
    t: &TransformRepr,
    next: u8,
) -> Option<(Phase1Policy, u32, bool)> {
    for p in ours {
        log::debug!(
            "ISAKMP:(0):Checking ISAKMP transform {} against priority {} policy",
            t.number,
            p.priority
        );
        log_attributes(t);
        match match_transform(p, t) {
            Ok((life, shortened)) => {
                log::debug!("ISAKMP:(0):atts are acceptable. Next payload is {next}");
                if shortened {
                    log::info!(
                        "ISAKMP:(0):peer's lifetime is longer than priority {} policy's, \
                         using {life} seconds",
                        p.priority
                    );
                }
                let mut chosen = *p;
                chosen.lifetime_secs = life;
                return Some((chosen, life, shortened));
            }
            Err(why) => {
                log::debug!("ISAKMP:(0):{why}");
                log::debug!("ISAKMP:(0):atts are not acceptable. Next payload is {next}");
            }
        }
    }
    None
}

/// The responder's choice (IOS order): for each of our policies in priority order, the
/// first of the peer's ISAKMP transforms that matches it (cipher and key length, hash,
/// authentication, group; lifetime see the module doc). `None`: NO-PROPOSAL-CHOSEN.
pub fn select(ours: &[Phase1Policy], peer_sa: &sa::Repr) -> Option<Selection> {
    for p in sorted(ours) {
        for prop in &peer_sa.proposals {
            if prop.protocol != ProtocolId::ISAKMP {
                log::debug!(
                    "ISAKMP:(0):proposal {} is {}, not PROTO_ISAKMP",
                    prop.number,
                    prop.protocol
                );
                continue;
            }
            let n = prop.transforms.len();
            for (i, t) in prop.transforms.iter().enumerate() {
                let next = if i + 1 < n { 3 } else { 0 };
                if let Some((policy, life, shortened)) =
                    try_policies(std::slice::from_ref(&p), t, next)
                {
                    let transform = if shortened {
                        with_lifetime(t, life)
                    } else {
                        t.clone()
                    };
                    return Some(Selection {
                        policy,
                        proposal_number: prop.number,
                        transform,
                        lifetime_shortened: shortened,
                    });
                }
            }
        }
    }
    log::debug!("ISAKMP:(0):no offers accepted!");
    None
}

/// The initiator's check of message 2's SA: exactly one ISAKMP proposal with exactly one
/// transform, matching one of the policies we offered (its lifetime not longer than ours).
pub fn check_choice(ours: &[Phase1Policy], reply: &sa::Repr) -> Option<Selection> {
    let [prop] = &reply.proposals[..] else {
        log::debug!(
            "ISAKMP:(0):responder returned {} proposals, exactly 1 expected",
            reply.proposals.len()
        );
        return None;
    };
    let [t] = &prop.transforms[..] else {
        log::debug!(
            "ISAKMP:(0):responder returned {} transforms, exactly 1 expected",
            prop.transforms.len()
        );
        return None;
    };
    if prop.protocol != ProtocolId::ISAKMP {
        return None;
    }
    let (policy, _, longer) = try_policies(&sorted(ours), t, 0)?;
    if longer {
        log::debug!("ISAKMP:(0):responder's lifetime is longer than the one offered");
        return None;
    }
    Some(Selection {
        policy,
        proposal_number: prop.number,
        transform: t.clone(),
        lifetime_shortened: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(priority: u32, cipher: IkeCipher, hash: HashAlg, group: DhGroup) -> Phase1Policy {
        Phase1Policy {
            priority,
            cipher,
            hash,
            auth: AuthMethod::PreShare,
            group,
            lifetime_secs: 86400,
        }
    }

    #[test]
    fn sa_payload_as_ios_builds_it() {
        let ours = [
            pol(20, IkeCipher::Aes256, HashAlg::Sha256, DhGroup::Modp2048),
            pol(10, IkeCipher::TripleDes, HashAlg::Md5, DhGroup::Modp1024),
        ];
        let sa = build_sa(&ours);
        assert_eq!(sa.proposals.len(), 1);
        let prop = &sa.proposals[0];
        assert_eq!(prop.protocol, ProtocolId::ISAKMP);
        assert!(prop.spi.is_empty());
        // Priority order, numbered from 1.
        assert_eq!(prop.transforms[0].number, 1);
        let lines: Vec<String> = prop.transforms[0]
            .phase1()
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "encryption 3DES-CBC",
                "hash MD5",
                "default group 2",
                "auth pre-share",
                "life type in seconds",
                "life duration (VPI) of 0x0 0x1 0x51 0x80",
            ]
        );
        let lines: Vec<String> = prop.transforms[1]
            .phase1()
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(lines[0], "encryption AES-CBC");
        assert_eq!(lines[1], "keylength of 256");
        assert_eq!(lines[2], "hash SHA256");
        assert_eq!(lines[3], "default group 14");
    }

    #[test]
    fn responder_walks_our_policies_first() {
        // Peer offers (1) AES-128/SHA/g14 then (2) 3DES/MD5/g2; our priority 10 is 3DES:
        // IOS picks the peer's transform 2 although the peer prefers 1.
        let peer = build_sa(&[
            pol(1, IkeCipher::Aes128, HashAlg::Sha1, DhGroup::Modp2048),
            pol(2, IkeCipher::TripleDes, HashAlg::Md5, DhGroup::Modp1024),
        ]);
        let ours = [
            pol(20, IkeCipher::Aes128, HashAlg::Sha1, DhGroup::Modp2048),
            pol(10, IkeCipher::TripleDes, HashAlg::Md5, DhGroup::Modp1024),
        ];
        let s = select(&ours, &peer).unwrap();
        assert_eq!(s.policy.priority, 10);
        assert_eq!(s.transform.number, 2);
        assert_eq!(s.transform, peer.proposals[0].transforms[1]);
        assert!(!s.lifetime_shortened);
        // The initiator accepts the echo.
        let back = check_choice(&ours, &s.reply_sa()).unwrap();
        assert_eq!(back.policy, s.policy);
    }

    #[test]
    fn lifetimes() {
        let mut short = pol(1, IkeCipher::TripleDes, HashAlg::Sha1, DhGroup::Modp1024);
        short.lifetime_secs = 3600;
        let ours = [pol(
            10,
            IkeCipher::TripleDes,
            HashAlg::Sha1,
            DhGroup::Modp1024,
        )];
        // Shorter from the peer: used as is, echoed unchanged.
        let s = select(&ours, &build_sa(&[short])).unwrap();
        assert_eq!(s.policy.lifetime_secs, 3600);
        assert!(!s.lifetime_shortened);
        // Longer from the peer: ours, echoed with our value.
        let mut long = short;
        long.lifetime_secs = 200_000;
        let s = select(&ours, &build_sa(&[long])).unwrap();
        assert_eq!(s.policy.lifetime_secs, 86400);
        assert!(s.lifetime_shortened);
        let echoed = read_offer(&s.transform.phase1().unwrap());
        assert_eq!(echoed.lifetime_secs, Some(86400));
        // An initiator accepts a lifetime not longer than its own: 200000 takes 86400,
        // 3600 refuses it.
        assert!(check_choice(&[long], &s.reply_sa()).is_some());
        assert!(check_choice(&[short], &s.reply_sa()).is_none());
        // a lifetime of 0 (strongSwan's rekey_time = 0) means ours, not "expired now"
        let mut zero = short;
        zero.lifetime_secs = 0;
        let s = select(&ours, &build_sa(&[zero])).unwrap();
        assert_eq!(s.policy.lifetime_secs, 86400);
    }

    #[test]
    fn mismatches() {
        let ours = [pol(
            10,
            IkeCipher::Aes256,
            HashAlg::Sha256,
            DhGroup::Modp2048,
        )];
        for other in [
            pol(1, IkeCipher::Aes128, HashAlg::Sha256, DhGroup::Modp2048),
            pol(1, IkeCipher::Aes256, HashAlg::Sha1, DhGroup::Modp2048),
            pol(1, IkeCipher::Aes256, HashAlg::Sha256, DhGroup::Modp1024),
            Phase1Policy {
                auth: AuthMethod::RsaSig,
                ..pol(1, IkeCipher::Aes256, HashAlg::Sha256, DhGroup::Modp2048)
            },
        ] {
            assert!(select(&ours, &build_sa(&[other])).is_none(), "{other:?}");
        }
        // AES without a key length is refused.
        let mut sa = build_sa(&ours);
        sa.proposals[0].transforms[0]
            .attributes
            .retain(|a| a.kind != attributes::IkeAttrType::KEY_LENGTH.0);
        assert!(select(&ours, &sa).is_none());
        // An unsupported attribute (PRF) is refused.
        let mut sa = build_sa(&ours);
        sa.proposals[0].transforms[0]
            .attributes
            .push(attributes::Attribute::basic(13, 1));
        assert!(select(&ours, &sa).is_none());
        // Two transforms returned by a responder are refused.
        let two = build_sa(&[ours[0], ours[0]]);
        assert!(check_choice(&ours, &two).is_none());
    }
}
