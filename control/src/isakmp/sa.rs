//! The Security Association payload (RFC 2408 3.4; IPsec DOI = 1 and situation
//! SIT_IDENTITY_ONLY per RFC 2407 4.2 and 4.6.1), its Proposal payloads (RFC 2408 3.5:
//! proposal #, protocol id, SPI size, # of transforms, SPI) and their Transform payloads
//! (RFC 2408 3.6: transform #, transform id, SA attributes).
//!
//! A checked [`Packet`] has had every nested length checked: each proposal within the SA,
//! each transform within its proposal (and their count against "# of transforms"), each
//! attribute within its transform. [`Packet::body`] is `SAi_b` of RFC 2409 5.

use super::attributes::{
    self, AhTransformId, Attribute, AttributeIter, EspTransformId, IsakmpTransformId,
    Phase1Attribute, Phase2Attribute,
};
use super::payload::{self, PayloadIter};
use super::{doi, get_u32, set_u32, situation, Error, PayloadType, ProtocolId, Result};

/// DOI and situation.
pub const SA_FIXED_LEN: usize = 8;
/// The fixed part of a proposal, generic header included.
pub const PROPOSAL_FIXED_LEN: usize = 8;
/// The fixed part of a transform, generic header included.
pub const TRANSFORM_FIXED_LEN: usize = 8;

/// Walks a proposal or transform chain, checking that each element's next payload is
/// `allowed` or 0 (RFC 2408 3.5 and 3.6). Yields each element's bytes.
struct SubChain<'a> {
    inner: PayloadIter<'a>,
    allowed: PayloadType,
    what: &'static str,
    failed: bool,
}

impl<'a> SubChain<'a> {
    fn new(region: &'a [u8], allowed: PayloadType, what: &'static str) -> Self {
        SubChain {
            inner: PayloadIter::new(allowed, region).named(what),
            allowed,
            what,
            failed: false,
        }
    }
}

impl<'a> Iterator for SubChain<'a> {
    type Item = Result<&'a [u8]>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let r = match self.inner.next()? {
            Ok(p) if p.next != PayloadType::NONE && p.next != self.allowed => {
                Err(Error::BadChain {
                    what: self.what,
                    value: p.next.0,
                    allowed: self.allowed.0,
                })
            }
            Ok(p) => Ok(p.bytes),
            Err(e) => Err(e),
        };
        self.failed = r.is_err();
        Some(r)
    }
}

payload_packet!(
    /// A view of an SA payload.
    Packet,
    "SA payload",
    payload::HEADER_LEN + SA_FIXED_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check_body(&self) -> Result<()> {
        for p in self.proposals() {
            ProposalPacket::new_checked(p?)?;
        }
        Ok(())
    }
    pub fn doi(&self) -> u32 {
        get_u32(self.body(), 0)
    }
    pub fn situation(&self) -> u32 {
        get_u32(self.body(), 4)
    }
    /// The proposal payloads, as on the wire.
    pub fn proposal_bytes(&self) -> &[u8] {
        &self.body()[SA_FIXED_LEN..]
    }
    /// The proposals' bytes, each checked against the chain (not yet inside).
    fn proposals(&self) -> SubChain<'_> {
        SubChain::new(
            self.proposal_bytes(),
            PayloadType::PROPOSAL,
            "proposals of an SA",
        )
    }
    /// Views of the proposals (checked).
    pub fn proposal_views(&self) -> impl Iterator<Item = Result<ProposalPacket<&[u8]>>> {
        self.proposals().map(|b| ProposalPacket::new_checked(b?))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_doi(&mut self, v: u32) {
        set_u32(self.body_mut(), 0, v);
    }
    pub fn set_situation(&mut self, v: u32) {
        set_u32(self.body_mut(), 4, v);
    }
}

payload_packet!(
    /// A view of a Proposal payload (inside an SA payload).
    ProposalPacket,
    "proposal",
    PROPOSAL_FIXED_LEN
);

impl<T: AsRef<[u8]>> ProposalPacket<T> {
    fn check_body(&self) -> Result<()> {
        let np = self.next_payload();
        if np != PayloadType::NONE && np != PayloadType::PROPOSAL {
            return Err(Error::BadChain {
                what: "proposal",
                value: np.0,
                allowed: PayloadType::PROPOSAL.0,
            });
        }
        let avail = self.payload_len() - PROPOSAL_FIXED_LEN;
        if self.spi_size() > avail {
            return Err(Error::LengthOverrun {
                what: "proposal SPI",
                len: self.spi_size(),
                avail,
            });
        }
        if self.transform_bytes().is_empty() {
            return Err(Error::BadValue {
                what: "proposal without transforms, proposal #",
                value: self.number() as u32,
            });
        }
        let mut found = 0usize;
        for t in self.transforms() {
            TransformPacket::new_checked(t?)?;
            found += 1;
        }
        if found != self.num_transforms() as usize {
            return Err(Error::TransformCount {
                proposal: self.number(),
                declared: self.num_transforms(),
                found,
            });
        }
        Ok(())
    }
    /// The proposal number; proposals with the same number are one combined offer.
    pub fn number(&self) -> u8 {
        self.buffer.as_ref()[4]
    }
    pub fn protocol(&self) -> ProtocolId {
        ProtocolId(self.buffer.as_ref()[5])
    }
    pub fn spi_size(&self) -> usize {
        self.buffer.as_ref()[6] as usize
    }
    pub fn num_transforms(&self) -> u8 {
        self.buffer.as_ref()[7]
    }
    pub fn spi(&self) -> &[u8] {
        &self.buffer.as_ref()[PROPOSAL_FIXED_LEN..PROPOSAL_FIXED_LEN + self.spi_size()]
    }
    /// The transform payloads, as on the wire.
    pub fn transform_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[PROPOSAL_FIXED_LEN + self.spi_size()..self.payload_len()]
    }
    fn transforms(&self) -> SubChain<'_> {
        SubChain::new(
            self.transform_bytes(),
            PayloadType::TRANSFORM,
            "transforms of a proposal",
        )
    }
    /// Views of the transforms (checked).
    pub fn transform_views(&self) -> impl Iterator<Item = Result<TransformPacket<&[u8]>>> {
        self.transforms().map(|b| TransformPacket::new_checked(b?))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ProposalPacket<T> {
    pub fn set_number(&mut self, v: u8) {
        self.buffer.as_mut()[4] = v;
    }
    pub fn set_protocol(&mut self, v: ProtocolId) {
        self.buffer.as_mut()[5] = v.0;
    }
    pub fn set_spi_size(&mut self, v: u8) {
        self.buffer.as_mut()[6] = v;
    }
    pub fn set_num_transforms(&mut self, v: u8) {
        self.buffer.as_mut()[7] = v;
    }
}

payload_packet!(
    /// A view of a Transform payload (inside a proposal).
    TransformPacket,
    "transform",
    TRANSFORM_FIXED_LEN
);

impl<T: AsRef<[u8]>> TransformPacket<T> {
    fn check_body(&self) -> Result<()> {
        let np = self.next_payload();
        if np != PayloadType::NONE && np != PayloadType::TRANSFORM {
            return Err(Error::BadChain {
                what: "transform",
                value: np.0,
                allowed: PayloadType::TRANSFORM.0,
            });
        }
        for a in self.attribute_views() {
            a?;
        }
        Ok(())
    }
    pub fn number(&self) -> u8 {
        self.buffer.as_ref()[4]
    }
    /// The transform id, whose meaning depends on the proposal's protocol.
    pub fn transform_id(&self) -> u8 {
        self.buffer.as_ref()[5]
    }
    /// The SA attributes, as on the wire.
    pub fn attribute_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[TRANSFORM_FIXED_LEN..self.payload_len()]
    }
    /// Views of the attributes.
    pub fn attribute_views(&self) -> AttributeIter<'_> {
        AttributeIter::new(self.attribute_bytes())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TransformPacket<T> {
    pub fn set_number(&mut self, v: u8) {
        self.buffer.as_mut()[4] = v;
    }
    pub fn set_transform_id(&mut self, v: u8) {
        self.buffer.as_mut()[5] = v;
    }
}

/// A transform: number, id and SA attributes in wire order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformRepr {
    pub number: u8,
    pub transform_id: u8,
    pub attributes: Vec<Attribute>,
}

impl TransformRepr {
    /// A phase 1 transform (KEY_IKE) with typed attributes.
    pub fn ike(number: u8, attrs: &[Phase1Attribute]) -> TransformRepr {
        TransformRepr {
            number,
            transform_id: IsakmpTransformId::KEY_IKE.0,
            attributes: attrs.iter().map(Phase1Attribute::to_attribute).collect(),
        }
    }
    /// A phase 2 ESP transform with typed attributes.
    pub fn esp(number: u8, id: EspTransformId, attrs: &[Phase2Attribute]) -> TransformRepr {
        TransformRepr {
            number,
            transform_id: id.0,
            attributes: attrs.iter().map(Phase2Attribute::to_attribute).collect(),
        }
    }
    /// The attributes interpreted as phase 1 (IKE) attributes.
    pub fn phase1(&self) -> Result<Vec<Phase1Attribute>> {
        attributes::phase1(&self.attributes)
    }
    /// The attributes interpreted as IPsec DOI (phase 2) attributes.
    pub fn phase2(&self) -> Result<Vec<Phase2Attribute>> {
        attributes::phase2(&self.attributes)
    }

    pub fn parse<T: AsRef<[u8]>>(p: &TransformPacket<T>) -> Result<TransformRepr> {
        p.check_len()?;
        Ok(TransformRepr {
            number: p.number(),
            transform_id: p.transform_id(),
            attributes: attributes::parse_all(p.attribute_bytes())?,
        })
    }

    pub fn buffer_len(&self) -> usize {
        TRANSFORM_FIXED_LEN + attributes::buffer_len_all(&self.attributes)
    }

    /// Writes the transform with next payload `next` (TRANSFORM or NONE).
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        buf[4] = self.number;
        buf[5] = self.transform_id;
        buf[6] = 0;
        buf[7] = 0;
        attributes::emit_all(&self.attributes, &mut buf[TRANSFORM_FIXED_LEN..len]);
    }
}

/// A proposal: number, protocol, SPI and transforms (alternatives, in preference order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalRepr {
    pub number: u8,
    pub protocol: ProtocolId,
    /// Empty for phase 1 (ISAKMP); 4 bytes for ESP and AH.
    pub spi: Vec<u8>,
    pub transforms: Vec<TransformRepr>,
}

impl ProposalRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ProposalPacket<T>) -> Result<ProposalRepr> {
        p.check_len()?;
        let transforms = p
            .transform_views()
            .map(|t| TransformRepr::parse(&t?))
            .collect::<Result<_>>()?;
        Ok(ProposalRepr {
            number: p.number(),
            protocol: p.protocol(),
            spi: p.spi().to_vec(),
            transforms,
        })
    }

    /// The SPI as a 32-bit number, if it is 4 bytes (ESP, AH).
    pub fn spi_u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(&self.spi[..])
            .ok()
            .map(u32::from_be_bytes)
    }

    /// The name of a transform id under this proposal's protocol, as IOS prints it after
    /// "transform N," (`ESP_3DES`, `KEY_IKE`, `AH_SHA`).
    pub fn transform_name(&self, transform_id: u8) -> String {
        match self.protocol {
            ProtocolId::ISAKMP => IsakmpTransformId(transform_id).to_string(),
            ProtocolId::IPSEC_ESP => EspTransformId(transform_id).to_string(),
            ProtocolId::IPSEC_AH => AhTransformId(transform_id).to_string(),
            _ => format!("transform id {transform_id}"),
        }
    }

    pub fn buffer_len(&self) -> usize {
        PROPOSAL_FIXED_LEN
            + self.spi.len()
            + self
                .transforms
                .iter()
                .map(TransformRepr::buffer_len)
                .sum::<usize>()
    }

    /// Writes the proposal with next payload `next` (PROPOSAL or NONE). Panics if the SPI is
    /// longer than 255 bytes or there are more than 255 transforms.
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        buf[4] = self.number;
        buf[5] = self.protocol.0;
        buf[6] = u8::try_from(self.spi.len()).expect("SPI over 255 bytes");
        buf[7] = u8::try_from(self.transforms.len()).expect("over 255 transforms");
        let mut at = PROPOSAL_FIXED_LEN;
        buf[at..at + self.spi.len()].copy_from_slice(&self.spi);
        at += self.spi.len();
        for (i, t) in self.transforms.iter().enumerate() {
            let next = if i + 1 < self.transforms.len() {
                PayloadType::TRANSFORM
            } else {
                PayloadType::NONE
            };
            t.emit(&mut buf[at..], next);
            at += t.buffer_len();
        }
    }
}

/// An SA payload of the IPsec DOI with situation SIT_IDENTITY_ONLY.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repr {
    pub proposals: Vec<ProposalRepr>,
}

impl Repr {
    /// Parses a view, refusing a DOI other than IPsec and a situation other than
    /// SIT_IDENTITY_ONLY (secrecy and integrity labels are not supported).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        if p.doi() != doi::IPSEC {
            return Err(Error::BadValue {
                what: "SA DOI",
                value: p.doi(),
            });
        }
        if p.situation() != situation::IDENTITY_ONLY {
            return Err(Error::BadValue {
                what: "SA situation",
                value: p.situation(),
            });
        }
        let proposals = p
            .proposal_views()
            .map(|v| ProposalRepr::parse(&v?))
            .collect::<Result<_>>()?;
        Ok(Repr { proposals })
    }

    pub fn buffer_len(&self) -> usize {
        payload::HEADER_LEN
            + SA_FIXED_LEN
            + self
                .proposals
                .iter()
                .map(ProposalRepr::buffer_len)
                .sum::<usize>()
    }

    /// Writes the SA payload with next payload `next` into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        set_u32(buf, 4, doi::IPSEC);
        set_u32(buf, 8, situation::IDENTITY_ONLY);
        let mut at = payload::HEADER_LEN + SA_FIXED_LEN;
        for (i, p) in self.proposals.iter().enumerate() {
            let next = if i + 1 < self.proposals.len() {
                PayloadType::PROPOSAL
            } else {
                PayloadType::NONE
            };
            p.emit(&mut buf[at..], next);
            at += p.buffer_len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::attributes::{
        AttrValue, AuthAlgorithm, AuthMethod, EncapsulationMode, EncryptionAlgorithm,
        GroupDescription, HashAlgorithm, LifeType,
    };
    use crate::isakmp::testutil::all_prefixes_fail;
    use hex_literal::hex;

    /// The SA payload of IOS's Main Mode message 1: one ISAKMP proposal with two KEY_IKE
    /// transforms (3DES/MD5 and 3DES/SHA, group 2, RSA sig, 86400 s). Next payload VID.
    pub(crate) const IOS_MM1_SA: [u8; 92] = hex!(
        // SA: next VID, length 92, DOI IPsec, SIT_IDENTITY_ONLY
        "0d 00 00 5c  00 00 00 01  00 00 00 01"
        // Proposal 1: last, length 80, #1, PROTO_ISAKMP, SPI size 0, 2 transforms
        "00 00 00 50  01 01 00 02"
        // Transform 1: next transform, length 36, #1, KEY_IKE
        "03 00 00 24  01 01 00 00"
        "80 01 00 05  80 02 00 01  80 04 00 02  80 03 00 03"
        "80 0b 00 01  00 0c 00 04 00 01 51 80"
        // Transform 2: last, length 36, #2, KEY_IKE, hash SHA
        "00 00 00 24  02 01 00 00"
        "80 01 00 05  80 02 00 02  80 04 00 02  80 03 00 03"
        "80 0b 00 01  00 0c 00 04 00 01 51 80"
    );

    fn ios_sa() -> Repr {
        let t = |n, h| {
            TransformRepr::ike(
                n,
                &[
                    Phase1Attribute::Encryption(EncryptionAlgorithm::TRIPLE_DES_CBC),
                    Phase1Attribute::Hash(h),
                    Phase1Attribute::Group(GroupDescription::MODP_1024),
                    Phase1Attribute::Auth(AuthMethod::RSA_SIG),
                    Phase1Attribute::LifeType(LifeType::SECONDS),
                    Phase1Attribute::LifeDuration(AttrValue::number(86400)),
                ],
            )
        };
        Repr {
            proposals: vec![ProposalRepr {
                number: 1,
                protocol: ProtocolId::ISAKMP,
                spi: vec![],
                transforms: vec![t(1, HashAlgorithm::MD5), t(2, HashAlgorithm::SHA)],
            }],
        }
    }

    /// An ESP proposal as the PIX sends in QM1: ESP_DES, tunnel, 28800 s, 4608000 KB,
    /// HMAC-MD5, SPI 0x3803a0c1.
    fn esp_sa() -> Repr {
        Repr {
            proposals: vec![ProposalRepr {
                number: 1,
                protocol: ProtocolId::IPSEC_ESP,
                spi: 0x3803a0c1u32.to_be_bytes().to_vec(),
                transforms: vec![TransformRepr::esp(
                    1,
                    EspTransformId::DES,
                    &[
                        Phase2Attribute::Encapsulation(EncapsulationMode::TUNNEL),
                        Phase2Attribute::SaLifeType(LifeType::SECONDS),
                        Phase2Attribute::SaLifeDuration(AttrValue::number(28800)),
                        Phase2Attribute::SaLifeType(LifeType::KILOBYTES),
                        Phase2Attribute::SaLifeDuration(AttrValue::number(4608000)),
                        Phase2Attribute::AuthAlgorithm(AuthAlgorithm::HMAC_MD5),
                    ],
                )],
            }],
        }
    }

    fn parse(b: &[u8]) -> Result<Repr> {
        Repr::parse(&Packet::new_checked(b)?)
    }

    fn emit(r: &Repr, next: PayloadType) -> Vec<u8> {
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut v, next);
        v
    }

    #[test]
    fn ios_main_mode_sa() {
        let p = Packet::new_checked(&IOS_MM1_SA[..]).unwrap();
        assert_eq!(p.next_payload(), PayloadType::VENDOR_ID);
        assert_eq!((p.doi(), p.situation()), (1, 1));
        assert_eq!(p.body(), &IOS_MM1_SA[4..]);
        let props: Vec<_> = p.proposal_views().collect::<Result<_>>().unwrap();
        assert_eq!(props.len(), 1);
        assert_eq!(props[0].protocol(), ProtocolId::ISAKMP);
        assert_eq!(props[0].num_transforms(), 2);
        let ts: Vec<_> = props[0].transform_views().collect::<Result<_>>().unwrap();
        assert_eq!(ts[1].number(), 2);
        assert_eq!(ts[1].attribute_bytes().len(), 28);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r, ios_sa());
        assert_eq!(r.proposals[0].transform_name(1), "KEY_IKE");
        assert_eq!(
            r.proposals[0].transforms[1].phase1().unwrap()[1],
            Phase1Attribute::Hash(HashAlgorithm::SHA)
        );
        assert_eq!(emit(&r, PayloadType::VENDOR_ID), IOS_MM1_SA);
    }

    #[test]
    fn esp_round_trip() {
        let r = esp_sa();
        let b = emit(&r, PayloadType::NONCE);
        let back = parse(&b).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.proposals[0].spi_u32(), Some(0x3803a0c1));
        assert_eq!(back.proposals[0].transform_name(2), "ESP_DES");
        let lines: Vec<String> = back.proposals[0].transforms[0]
            .phase2()
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(lines[0], "encaps is 1 (Tunnel)");
        assert_eq!(lines[2], "SA life duration (basic) of 28800");
        assert_eq!(lines[4], "SA life duration (VPI) of 0x0 0x46 0x50 0x0");
        // Two proposals (AH + ESP bundle, same number) round-trip too.
        let mut two = r.clone();
        let mut ah = r.proposals[0].clone();
        ah.protocol = ProtocolId::IPSEC_AH;
        ah.transforms[0].transform_id = AhTransformId::MD5.0;
        two.proposals.insert(0, ah);
        assert_eq!(parse(&emit(&two, PayloadType::NONE)).unwrap(), two);
        all_prefixes_fail(&emit(&two, PayloadType::NONE), parse);
    }

    #[test]
    fn every_prefix_fails() {
        all_prefixes_fail(&IOS_MM1_SA, parse);
        // And with the SA length adjusted to each prefix (inner lengths then overrun).
        for n in 4..IOS_MM1_SA.len() {
            let mut b = IOS_MM1_SA[..n].to_vec();
            b[2..4].copy_from_slice(&(n as u16).to_be_bytes());
            assert!(parse(&b).is_err(), "prefix {n}");
        }
    }

    #[test]
    fn transform_count_disagrees() {
        for declared in [0u8, 1, 3, 255] {
            let mut b = IOS_MM1_SA;
            b[19] = declared;
            assert_eq!(
                parse(&b).unwrap_err(),
                Error::TransformCount {
                    proposal: 1,
                    declared,
                    found: 2
                }
            );
        }
    }

    #[test]
    fn nested_lengths() {
        // Proposal length past the SA.
        let mut b = IOS_MM1_SA;
        b[15] = 0x51;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::LengthOverrun {
                what: "proposals of an SA",
                len: 0x51,
                avail: 80
            }
        );
        // Proposal shorter than its chain: transform 2 would be left over in the SA.
        let mut b = IOS_MM1_SA;
        b[15] = 44;
        assert!(parse(&b).is_err());
        // Transform length below 8 / below 4.
        let mut b = IOS_MM1_SA;
        b[23] = 6;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::LengthTooShort {
                what: "transform",
                len: 6,
                min: 8
            }
        );
        let mut b = IOS_MM1_SA;
        b[23] = 0;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::LengthTooShort {
                what: "transforms of a proposal",
                len: 0,
                min: 4
            }
        );
        // Transform length past the proposal.
        let mut b = IOS_MM1_SA;
        b[59] = 0x30;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::LengthOverrun {
                what: "transforms of a proposal",
                len: 0x30,
                avail: 36
            }
        );
        // An attribute TLV running past its transform (life duration claims 8 bytes).
        let mut b = IOS_MM1_SA;
        b[51] = 8;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::AttributeOverrun {
                attr_type: 12,
                len: 8,
                avail: 4
            }
        );
        // SPI size past the proposal.
        let mut b = IOS_MM1_SA;
        b[18] = 200;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::LengthOverrun {
                what: "proposal SPI",
                len: 200,
                avail: 72
            }
        );
        // A transform whose next payload is neither 3 nor 0.
        let mut b = IOS_MM1_SA;
        b[20] = 13;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::BadChain {
                what: "transforms of a proposal",
                value: 13,
                allowed: 3
            }
        );
        // The SA's next payload is the message's business, not the SA's.
        let mut b = IOS_MM1_SA;
        b[0] = 0;
        assert!(parse(&b).is_ok());
        // A proposal without transforms.
        let mut b = IOS_MM1_SA[..20].to_vec();
        b[3] = 20;
        b[15] = 8;
        b[19] = 0;
        assert!(matches!(
            parse(&b).unwrap_err(),
            Error::BadValue { value: 1, .. }
        ));
        // An SA without proposals.
        let mut b = IOS_MM1_SA[..12].to_vec();
        b[3] = 12;
        assert!(matches!(parse(&b).unwrap_err(), Error::Unterminated { .. }));
    }

    #[test]
    fn doi_and_situation() {
        let mut b = IOS_MM1_SA;
        b[7] = 2;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::BadValue {
                what: "SA DOI",
                value: 2
            }
        );
        let mut b = IOS_MM1_SA;
        b[11] = 3;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::BadValue {
                what: "SA situation",
                value: 3
            }
        );
    }

    #[test]
    fn setters() {
        let mut b = IOS_MM1_SA;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_doi(1);
        p.set_situation(1);
        let mut pp = ProposalPacket::new_checked(&mut b[12..]).unwrap();
        pp.set_number(7);
        pp.set_protocol(ProtocolId::IPSEC_ESP);
        pp.set_spi_size(0);
        pp.set_num_transforms(2);
        let mut tp = TransformPacket::new_checked(&mut b[20..]).unwrap();
        tp.set_number(9);
        tp.set_transform_id(1);
        let r = parse(&b).unwrap();
        assert_eq!(r.proposals[0].number, 7);
        assert_eq!(r.proposals[0].protocol, ProtocolId::IPSEC_ESP);
        assert_eq!(r.proposals[0].transforms[0].number, 9);
    }
}
