//! A whole ISAKMP message (RFC 2408 3.1 and 5): the header and an ordered list of typed
//! payloads. [`Message::parse`] handles a cleartext message; for an encrypted one (flag E),
//! [`parse_header`] gives the header and the ciphertext, and once the body is decrypted
//! (elsewhere: `ikecrypto`), [`parse_body`] walks it from the header's first payload type,
//! accepting the cipher's padding after the last payload. [`walk_body`] keeps the raw bytes
//! of each payload for the hashes of RFC 2409 (`SAi_b`, `IDii_b`, Quick Mode HASH(1)).

use super::header::{self, HEADER_LEN};
use super::payload::{self, RawChain};
use super::{cert, delete, hash, id, ke, natd, nonce, notify, sa, sig, vendor};
use super::{Error, PayloadType, Result};

/// One typed payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Sa(sa::Repr),
    KeyExchange(ke::Repr),
    Identification(id::Repr),
    Certificate(cert::Repr),
    CertificateRequest(cert::Repr),
    Hash(hash::Repr),
    Signature(sig::Repr),
    Nonce(nonce::Repr),
    Notification(notify::Repr),
    Delete(delete::Repr),
    VendorId(vendor::Repr),
    /// NAT-D: payload type 20, or 130 when `draft` (draft-ietf-ipsec-nat-t-ike-02/03).
    NatD {
        draft: bool,
        hash: natd::Repr,
    },
    /// NAT-OA: payload type 21, or 131 when `draft`.
    NatOa {
        draft: bool,
        oa: natd::OaRepr,
    },
    /// Any other payload type (including a stray Proposal or Transform), body as received.
    Unknown {
        kind: PayloadType,
        data: Vec<u8>,
    },
}

impl Payload {
    /// The payload type number.
    pub fn kind(&self) -> PayloadType {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::KeyExchange(_) => PayloadType::KE,
            Payload::Identification(_) => PayloadType::ID,
            Payload::Certificate(_) => PayloadType::CERT,
            Payload::CertificateRequest(_) => PayloadType::CERT_REQ,
            Payload::Hash(_) => PayloadType::HASH,
            Payload::Signature(_) => PayloadType::SIG,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notification(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::VendorId(_) => PayloadType::VENDOR_ID,
            Payload::NatD { draft: false, .. } => PayloadType::NAT_D,
            Payload::NatD { draft: true, .. } => PayloadType::NAT_D_DRAFT,
            Payload::NatOa { draft: false, .. } => PayloadType::NAT_OA,
            Payload::NatOa { draft: true, .. } => PayloadType::NAT_OA_DRAFT,
            Payload::Unknown { kind, .. } => *kind,
        }
    }

    /// Parses a payload of type `kind` from `bytes`, which start with its generic header
    /// (and may run on past it: the payload length bounds it).
    pub fn parse(kind: PayloadType, bytes: &[u8]) -> Result<Payload> {
        Ok(match kind {
            PayloadType::SA => Payload::Sa(sa::Repr::parse(&sa::Packet::new_checked(bytes)?)?),
            PayloadType::KE => {
                Payload::KeyExchange(ke::Repr::parse(&ke::Packet::new_checked(bytes)?)?)
            }
            PayloadType::ID => {
                Payload::Identification(id::Repr::parse(&id::Packet::new_checked(bytes)?)?)
            }
            PayloadType::CERT => {
                Payload::Certificate(cert::Repr::parse(&cert::Packet::new_checked(bytes)?)?)
            }
            PayloadType::CERT_REQ => Payload::CertificateRequest(cert::Repr::parse_request(
                &cert::CertReqPacket::new_checked(bytes)?,
            )?),
            PayloadType::HASH => {
                Payload::Hash(hash::Repr::parse(&hash::Packet::new_checked(bytes)?)?)
            }
            PayloadType::SIG => {
                Payload::Signature(sig::Repr::parse(&sig::Packet::new_checked(bytes)?)?)
            }
            PayloadType::NONCE => {
                Payload::Nonce(nonce::Repr::parse(&nonce::Packet::new_checked(bytes)?)?)
            }
            PayloadType::NOTIFY => {
                Payload::Notification(notify::Repr::parse(&notify::Packet::new_checked(bytes)?)?)
            }
            PayloadType::DELETE => {
                Payload::Delete(delete::Repr::parse(&delete::Packet::new_checked(bytes)?)?)
            }
            PayloadType::VENDOR_ID => {
                Payload::VendorId(vendor::Repr::parse(&vendor::Packet::new_checked(bytes)?)?)
            }
            PayloadType::NAT_D | PayloadType::NAT_D_DRAFT => Payload::NatD {
                draft: kind == PayloadType::NAT_D_DRAFT,
                hash: natd::Repr::parse(&natd::Packet::new_checked(bytes)?)?,
            },
            PayloadType::NAT_OA | PayloadType::NAT_OA_DRAFT => Payload::NatOa {
                draft: kind == PayloadType::NAT_OA_DRAFT,
                oa: natd::OaRepr::parse(&natd::OaPacket::new_checked(bytes)?)?,
            },
            kind => {
                let p = payload::Packet::new_checked(bytes)?;
                Payload::Unknown {
                    kind,
                    data: p.body().to_vec(),
                }
            }
        })
    }

    /// The payload's length, generic header included.
    pub fn buffer_len(&self) -> usize {
        match self {
            Payload::Sa(r) => r.buffer_len(),
            Payload::KeyExchange(r) => r.buffer_len(),
            Payload::Identification(r) => r.buffer_len(),
            Payload::Certificate(r) | Payload::CertificateRequest(r) => r.buffer_len(),
            Payload::Hash(r) => r.buffer_len(),
            Payload::Signature(r) => r.buffer_len(),
            Payload::Nonce(r) => r.buffer_len(),
            Payload::Notification(r) => r.buffer_len(),
            Payload::Delete(r) => r.buffer_len(),
            Payload::VendorId(r) => r.buffer_len(),
            Payload::NatD { hash, .. } => hash.buffer_len(),
            Payload::NatOa { oa, .. } => oa.buffer_len(),
            Payload::Unknown { data, .. } => payload::HEADER_LEN + data.len(),
        }
    }

    /// Checks what `emit` would otherwise panic on or write wrongly: every length fits its
    /// field, SPI sizes agree, the nonce length is 8..=256.
    pub fn check_emit(&self) -> Result<()> {
        let fits = |what, len: usize, max: usize| {
            if len > max {
                Err(Error::TooLong { what, len })
            } else {
                Ok(())
            }
        };
        fits("payload", self.buffer_len(), u16::MAX as usize)?;
        match self {
            Payload::Sa(r) => {
                for p in &r.proposals {
                    fits("proposal SPI", p.spi.len(), u8::MAX as usize)?;
                    fits(
                        "transforms of a proposal",
                        p.transforms.len(),
                        u8::MAX as usize,
                    )?;
                    for t in &p.transforms {
                        for a in &t.attributes {
                            if let super::AttrValue::Variable(v) = &a.value {
                                fits("attribute value", v.len(), u16::MAX as usize)?;
                            }
                        }
                    }
                }
            }
            Payload::Nonce(r) => r.check()?,
            Payload::Notification(r) => fits("notification SPI", r.spi.len(), u8::MAX as usize)?,
            Payload::Delete(r) => {
                fits("SPIs of a DELETE payload", r.spis.len(), u16::MAX as usize)?;
                if let Some(s) = r.spis.iter().find(|s| s.len() != r.spi_size as usize) {
                    return Err(Error::BadLength {
                        what: "SPI of a DELETE payload",
                        len: s.len(),
                        expected: r.spi_size as usize,
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes the payload with next payload `next` into the start of `buf`
    /// (`buffer_len()` bytes; see [`Payload::check_emit`]).
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        match self {
            Payload::Sa(r) => r.emit(buf, next),
            Payload::KeyExchange(r) => r.emit(buf, next),
            Payload::Identification(r) => r.emit(buf, next),
            Payload::Certificate(r) | Payload::CertificateRequest(r) => r.emit(buf, next),
            Payload::Hash(r) => r.emit(buf, next),
            Payload::Signature(r) => r.emit(buf, next),
            Payload::Nonce(r) => r.emit(buf, next),
            Payload::Notification(r) => r.emit(buf, next),
            Payload::Delete(r) => r.emit(buf, next),
            Payload::VendorId(r) => r.emit(buf, next),
            Payload::NatD { hash, .. } => hash.emit(buf, next),
            Payload::NatOa { oa, .. } => oa.emit(buf, next),
            Payload::Unknown { data, .. } => {
                let len = payload::HEADER_LEN + data.len();
                payload::emit_generic(buf, next, len);
                buf[payload::HEADER_LEN..len].copy_from_slice(data);
            }
        }
    }
}

/// Checks a datagram's header and returns it with the body (ciphertext if the E flag is
/// set). The datagram must be exactly the header's length.
pub fn parse_header(datagram: &[u8]) -> Result<(header::Repr, &[u8])> {
    let p = header::Packet::new_checked(datagram)?;
    if p.length() != datagram.len() {
        return Err(Error::TrailingBytes {
            what: "datagram after the ISAKMP message length",
            extra: datagram.len() - p.length(),
        });
    }
    Ok((header::Repr::parse(&p)?, &datagram[HEADER_LEN..]))
}

/// Walks a body's payload chain from `first` (the header's next payload), keeping each
/// payload's raw bytes. With `decrypted`, bytes after the last payload are the cipher's
/// padding and allowed; otherwise the chain must end exactly at the end of `body`.
pub fn walk_body(first: PayloadType, body: &[u8], decrypted: bool) -> Result<RawChain<'_>> {
    RawChain::walk(first, body, decrypted)
}

/// Parses a body's payloads (see [`walk_body`] for `decrypted`).
pub fn parse_body(first: PayloadType, body: &[u8], decrypted: bool) -> Result<Vec<Payload>> {
    walk_body(first, body, decrypted)?
        .payloads
        .iter()
        .map(|p| Payload::parse(p.kind, p.bytes))
        .collect()
}

/// The length of a body of `payloads`.
pub fn payloads_len(payloads: &[Payload]) -> usize {
    payloads.iter().map(Payload::buffer_len).sum()
}

/// Writes a chain of payloads (each next payload from its successor, the last 0) into the
/// start of `buf`; returns the length written.
pub fn emit_payloads(payloads: &[Payload], buf: &mut [u8]) -> Result<usize> {
    let need = payloads_len(payloads);
    if buf.len() < need {
        return Err(Error::Truncated {
            what: "buffer to emit into",
            need,
            have: buf.len(),
        });
    }
    for p in payloads {
        p.check_emit()?;
    }
    let mut at = 0;
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i + 1)
            .map(Payload::kind)
            .unwrap_or(PayloadType::NONE);
        p.emit(&mut buf[at..], next);
        at += p.buffer_len();
    }
    Ok(at)
}

/// A body of payloads as bytes (the plaintext to encrypt, before padding).
pub fn payloads_to_bytes(payloads: &[Payload]) -> Result<Vec<u8>> {
    let mut v = vec![0u8; payloads_len(payloads)];
    emit_payloads(payloads, &mut v)?;
    Ok(v)
}

/// The first payload's type, as the header's next payload.
pub fn first_kind(payloads: &[Payload]) -> PayloadType {
    payloads
        .first()
        .map(Payload::kind)
        .unwrap_or(PayloadType::NONE)
}

/// A cleartext message: header and payloads in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// `next_payload` and `length` are recomputed by `emit`.
    pub header: header::Repr,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Parses a cleartext datagram. An encrypted one (flag E) is [`Error::Encrypted`]: use
    /// [`parse_header`], decrypt, then [`parse_body`].
    pub fn parse(datagram: &[u8]) -> Result<Message> {
        let (header, body) = parse_header(datagram)?;
        if header.flags.encryption() {
            return Err(Error::Encrypted);
        }
        let payloads = parse_body(header.next_payload, body, false)?;
        Ok(Message { header, payloads })
    }

    /// The first payload of a type.
    pub fn find(&self, kind: PayloadType) -> Option<&Payload> {
        self.payloads.iter().find(|p| p.kind() == kind)
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN + payloads_len(&self.payloads)
    }

    /// Writes the message (header with the first payload's type and the total length, then
    /// the payloads in cleartext) into the start of `buf`; returns the length written.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let len32 = u32::try_from(len).map_err(|_| Error::TooLong {
            what: "ISAKMP message",
            len,
        })?;
        if buf.len() < len {
            return Err(Error::Truncated {
                what: "buffer to emit into",
                need: len,
                have: buf.len(),
            });
        }
        emit_payloads(&self.payloads, &mut buf[HEADER_LEN..])?;
        header::Repr {
            next_payload: first_kind(&self.payloads),
            length: len32,
            ..self.header
        }
        .emit(buf);
        Ok(len)
    }

    /// The message as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = vec![0u8; self.buffer_len()];
        self.emit(&mut v)?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::attributes::{
        AttrValue, AuthAlgorithm, AuthMethod, EncapsulationMode, EncryptionAlgorithm,
        EspTransformId, GroupDescription, HashAlgorithm, LifeType, Phase1Attribute,
        Phase2Attribute,
    };
    use crate::isakmp::header::{ExchangeType, Flags};
    use crate::isakmp::id::Identity;
    use crate::isakmp::testutil::all_prefixes_fail;
    use crate::isakmp::vendor::{recognise, KnownVendor};
    use crate::isakmp::ProtocolId;
    use hex_literal::hex;
    use std::net::Ipv4Addr;

    /// Main Mode message 1 as IOS builds it (written by hand from RFC 2408/2409 and the
    /// IOS debug of the reference: "constructed NAT-T vendor-rfc3947 ID", "vendor-07",
    /// "vendor-03", "vendor-02"): header, SA with one proposal of two transforms
    /// (3DES/MD5 and 3DES/SHA, group 2, RSA sig, 86400 s), four NAT-T vendor IDs.
    const IOS_MM1: [u8; 200] = hex!(
        // Header: CKY-I, CKY-R 0, next SA, version 1.0, Main Mode, no flags, M-ID 0, len 200
        "5f 33 9a 2c 81 d6 4e 17  00 00 00 00 00 00 00 00"
        "01 10 02 00  00 00 00 00  00 00 00 c8"
        // SA: next VID, length 92, DOI IPsec, SIT_IDENTITY_ONLY
        "0d 00 00 5c  00 00 00 01  00 00 00 01"
        // Proposal #1: last, length 80, PROTO_ISAKMP, SPI size 0, 2 transforms
        "00 00 00 50  01 01 00 02"
        // Transform #1 KEY_IKE: 3DES-CBC, MD5, group 2, RSA sig, seconds, 86400 (VPI)
        "03 00 00 24  01 01 00 00"
        "80 01 00 05  80 02 00 01  80 04 00 02  80 03 00 03"
        "80 0b 00 01  00 0c 00 04 00 01 51 80"
        // Transform #2 KEY_IKE: 3DES-CBC, SHA, group 2, RSA sig, seconds, 86400 (VPI)
        "00 00 00 24  02 01 00 00"
        "80 01 00 05  80 02 00 02  80 04 00 02  80 03 00 03"
        "80 0b 00 01  00 0c 00 04 00 01 51 80"
        // VID: RFC 3947
        "0d 00 00 14  4a 13 1c 81 07 03 58 45 5c 57 28 f2 0e 95 45 2f"
        // VID: draft-ietf-ipsec-nat-t-ike-07
        "0d 00 00 14  43 9b 59 f8 ba 67 6c 4c 77 37 ae 22 ea b8 f5 82"
        // VID: draft-ietf-ipsec-nat-t-ike-03
        "0d 00 00 14  7d 94 19 a6 53 10 ca 6f 2c 17 9d 92 15 52 9d 56"
        // VID: draft-ietf-ipsec-nat-t-ike-02\n (last)
        "00 00 00 14  90 cb 80 91 3e bb 69 6e 08 63 81 b5 ec 42 7b 1f"
    );

    #[test]
    fn ios_main_mode_1() {
        let m = Message::parse(&IOS_MM1).unwrap();
        assert_eq!(m.header.initiator_cookie, hex!("5f339a2c81d64e17"));
        assert_eq!(m.header.responder_cookie, [0; 8]);
        assert_eq!(m.header.exchange_type, ExchangeType::MAIN_MODE);
        assert_eq!(m.header.next_payload, PayloadType::SA);
        assert_eq!(m.header.flags, Flags(0));
        assert_eq!((m.header.message_id, m.header.length), (0, 200));
        assert_eq!(m.payloads.len(), 5);

        let Payload::Sa(sa) = &m.payloads[0] else {
            panic!("not an SA: {:?}", m.payloads[0]);
        };
        assert_eq!(sa.proposals.len(), 1);
        let p = &sa.proposals[0];
        assert_eq!((p.number, p.protocol), (1, ProtocolId::ISAKMP));
        assert!(p.spi.is_empty());
        assert_eq!(p.transforms.len(), 2);
        for (t, hash) in p
            .transforms
            .iter()
            .zip([HashAlgorithm::MD5, HashAlgorithm::SHA])
        {
            assert_eq!(p.transform_name(t.transform_id), "KEY_IKE");
            let attrs = t.phase1().unwrap();
            assert_eq!(
                attrs,
                [
                    Phase1Attribute::Encryption(EncryptionAlgorithm::TRIPLE_DES_CBC),
                    Phase1Attribute::Hash(hash),
                    Phase1Attribute::Group(GroupDescription::MODP_1024),
                    Phase1Attribute::Auth(AuthMethod::RSA_SIG),
                    Phase1Attribute::LifeType(LifeType::SECONDS),
                    Phase1Attribute::LifeDuration(AttrValue::Variable(vec![0, 1, 0x51, 0x80])),
                ]
            );
        }
        let lines: Vec<String> = p.transforms[0]
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
                "auth RSA sig",
                "life type in seconds",
                "life duration (VPI) of 0x0 0x1 0x51 0x80",
            ]
        );

        let vids: Vec<_> = m.payloads[1..]
            .iter()
            .map(|p| match p {
                Payload::VendorId(v) => recognise(&v.data),
                other => panic!("not a VID: {other:?}"),
            })
            .collect();
        assert_eq!(
            vids,
            [
                Some(KnownVendor::NatTRfc3947),
                Some(KnownVendor::NatTDraft07),
                Some(KnownVendor::NatTDraft03),
                Some(KnownVendor::NatTDraft02N),
            ]
        );

        // Emit gives the same bytes back.
        assert_eq!(m.to_bytes().unwrap(), IOS_MM1);

        // SAi_b: the SA body as on the wire, through the raw chain and the SA view.
        let (h, body) = parse_header(&IOS_MM1).unwrap();
        let chain = walk_body(h.next_payload, body, false).unwrap();
        let sa_raw = chain.find(PayloadType::SA).unwrap();
        assert_eq!(sa_raw.body(), &IOS_MM1[32..120]);
        let view = sa::Packet::new_checked(sa_raw.bytes).unwrap();
        assert_eq!(view.body(), &IOS_MM1[32..120]);
        assert_eq!(chain.payloads.len(), 5);
        assert_eq!(chain.end, 172);
    }

    #[test]
    fn ios_main_mode_1_every_prefix_fails() {
        all_prefixes_fail(&IOS_MM1, Message::parse);
        // With the header length adjusted to each prefix, the chain fails instead.
        for n in HEADER_LEN..IOS_MM1.len() {
            let mut b = IOS_MM1[..n].to_vec();
            b[24..28].copy_from_slice(&(n as u32).to_be_bytes());
            assert!(Message::parse(&b).is_err(), "prefix {n}");
        }
        // Trailing bytes after the message length are refused too.
        let mut long = IOS_MM1.to_vec();
        long.push(0);
        assert_eq!(
            Message::parse(&long).unwrap_err(),
            Error::TrailingBytes {
                what: "datagram after the ISAKMP message length",
                extra: 1
            }
        );
    }

    #[test]
    fn malformed_chains() {
        // The last VID's length points past the end of the message.
        let mut b = IOS_MM1;
        b[183] = 0x15;
        assert_eq!(
            Message::parse(&b).unwrap_err(),
            Error::LengthOverrun {
                what: "payload chain",
                len: 0x15,
                avail: 20
            }
        );
        // A payload length below the generic header.
        for l in 0..4 {
            let mut b = IOS_MM1;
            b[123] = l;
            assert_eq!(
                Message::parse(&b).unwrap_err(),
                Error::LengthTooShort {
                    what: "payload chain",
                    len: l as usize,
                    min: 4
                }
            );
        }
        // The SA's length runs into the first VID: the SA's own walk fails.
        let mut b = IOS_MM1;
        b[31] = 0x60;
        assert!(Message::parse(&b).is_err());
        // The last payload's next payload is 0 early: the rest is trailing.
        let mut b = IOS_MM1;
        b[120] = 0;
        assert_eq!(
            Message::parse(&b).unwrap_err(),
            Error::TrailingBytes {
                what: "payload chain",
                extra: 60
            }
        );
        // The proposal's transform count disagrees.
        let mut b = IOS_MM1;
        b[47] = 1;
        assert_eq!(
            Message::parse(&b).unwrap_err(),
            Error::TransformCount {
                proposal: 1,
                declared: 1,
                found: 2
            }
        );
        // An encrypted message is not parsed as cleartext.
        let mut b = IOS_MM1;
        b[19] = 1;
        assert_eq!(Message::parse(&b).unwrap_err(), Error::Encrypted);
        assert!(parse_header(&b).unwrap().0.flags.encryption());
        // Unknown payload types are kept.
        let mut b = IOS_MM1;
        b[120] = 99;
        let m = Message::parse(&b).unwrap();
        assert_eq!(m.payloads[2].kind(), PayloadType(99));
        assert_eq!(m.to_bytes().unwrap(), b);
    }

    fn qm1_payloads() -> Vec<Payload> {
        vec![
            Payload::Hash(hash::Repr {
                data: hex!("3f6a920011b06e2d88019c4e735aa0c1").to_vec(),
            }),
            Payload::Sa(sa::Repr {
                proposals: vec![sa::ProposalRepr {
                    number: 1,
                    protocol: ProtocolId::IPSEC_ESP,
                    spi: hex!("3803a0c1").to_vec(),
                    transforms: vec![sa::TransformRepr::esp(
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
            }),
            Payload::Nonce(nonce::Repr::new((0..20).collect()).unwrap()),
            Payload::Identification(id::Repr {
                protocol: 0,
                port: 0,
                id: Identity::Ipv4Subnet {
                    addr: Ipv4Addr::new(192, 168, 4, 0),
                    mask: Ipv4Addr::new(255, 255, 255, 0),
                },
            }),
            Payload::Identification(id::Repr {
                protocol: 0,
                port: 0,
                id: Identity::Ipv4Subnet {
                    addr: Ipv4Addr::new(1, 1, 1, 0),
                    mask: Ipv4Addr::new(255, 255, 255, 0),
                },
            }),
        ]
    }

    #[test]
    fn decrypted_quick_mode_body_with_padding() {
        let payloads = qm1_payloads();
        let plain = payloads_to_bytes(&payloads).unwrap();
        assert_eq!(first_kind(&payloads), PayloadType::HASH);
        assert_eq!(
            parse_body(PayloadType::HASH, &plain, false).unwrap(),
            payloads
        );
        // Padded to the DES block size, as the cipher leaves it.
        for pad in 1..8usize {
            let mut body = plain.clone();
            body.extend(std::iter::repeat_n(0u8, pad - 1));
            body.push(pad as u8 - 1);
            assert_eq!(
                parse_body(PayloadType::HASH, &body, true).unwrap(),
                payloads
            );
            assert_eq!(
                parse_body(PayloadType::HASH, &body, false).unwrap_err(),
                Error::TrailingBytes {
                    what: "payload chain",
                    extra: pad
                }
            );
            let chain = walk_body(PayloadType::HASH, &body, true).unwrap();
            // HASH(1) = prf(SKEYID_a, M-ID | SA | Ni | IDci | IDcr): everything after the
            // HASH payload, without the padding.
            assert_eq!(chain.after(0), &plain[20..]);
            assert_eq!(chain.padding().len(), pad);
        }
        // Every truncation of the decrypted body fails, padded or not.
        all_prefixes_fail(&plain, |b| parse_body(PayloadType::HASH, b, true));
        all_prefixes_fail(&plain, |b| parse_body(PayloadType::HASH, b, false));
        // The header of the encrypted message and its body.
        let m = Message {
            header: header::Repr {
                initiator_cookie: [1; 8],
                responder_cookie: [2; 8],
                exchange_type: ExchangeType::QUICK_MODE,
                flags: Flags::default().with_encryption(true),
                message_id: 0xf7a2cee7,
                ..Default::default()
            },
            payloads,
        };
        let bytes = m.to_bytes().unwrap();
        assert_eq!(Message::parse(&bytes).unwrap_err(), Error::Encrypted);
        let (h, body) = parse_header(&bytes).unwrap();
        assert_eq!(h.next_payload, PayloadType::HASH);
        assert_eq!(h.length as usize, bytes.len());
        assert_eq!(parse_body(h.next_payload, body, true).unwrap(), m.payloads);
    }

    #[test]
    fn informational_round_trip() {
        let cookies = hex!("0102030405060708 1112131415161718");
        let m = Message {
            header: header::Repr {
                initiator_cookie: [1, 2, 3, 4, 5, 6, 7, 8],
                responder_cookie: [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18],
                exchange_type: ExchangeType::INFORMATIONAL,
                message_id: 0x1234,
                ..Default::default()
            },
            payloads: vec![
                Payload::Hash(hash::Repr { data: vec![7; 20] }),
                Payload::Notification(notify::Repr::r_u_there(cookies, 42)),
                Payload::Delete(delete::Repr::ipsec(ProtocolId::IPSEC_ESP, &[1, 2])),
                Payload::KeyExchange(ke::Repr { data: vec![5; 96] }),
                Payload::Certificate(cert::Repr {
                    encoding: cert::CertEncoding::X509_SIGNATURE,
                    data: vec![0x30, 0x03, 1, 2, 3],
                }),
                Payload::CertificateRequest(cert::Repr {
                    encoding: cert::CertEncoding::X509_SIGNATURE,
                    data: vec![],
                }),
                Payload::Signature(sig::Repr { data: vec![9; 128] }),
                Payload::NatD {
                    draft: false,
                    hash: natd::Repr { data: vec![3; 16] },
                },
                Payload::NatD {
                    draft: true,
                    hash: natd::Repr { data: vec![4; 16] },
                },
                Payload::NatOa {
                    draft: true,
                    oa: natd::OaRepr {
                        addr: "10.1.1.1".parse().unwrap(),
                    },
                },
                Payload::NatOa {
                    draft: false,
                    oa: natd::OaRepr {
                        addr: "2001:db8::1".parse().unwrap(),
                    },
                },
                Payload::VendorId(KnownVendor::Dpd.repr()),
            ],
        };
        let b = m.to_bytes().unwrap();
        let back = Message::parse(&b).unwrap();
        assert_eq!(back.header.next_payload, PayloadType::HASH);
        assert_eq!(back.header.length as usize, b.len());
        assert_eq!(back.payloads, m.payloads);
        assert_eq!(back.to_bytes().unwrap(), b);
        assert!(back.find(PayloadType::NAT_D_DRAFT).is_some());
        assert!(back.find(PayloadType::NAT_OA).is_some());
        assert!(back.find(PayloadType::SA).is_none());
        all_prefixes_fail(&b, Message::parse);
        // Every single-byte corruption either parses or errs; none panics.
        for i in 0..b.len() {
            for v in [0u8, 1, 3, 0x7f, 0xff] {
                let mut c = b.clone();
                c[i] = v;
                let _ = Message::parse(&c);
                let _ = parse_body(PayloadType::HASH, &c[HEADER_LEN..], true);
            }
        }
    }

    #[test]
    fn random_corruption_never_panics() {
        // xorshift64: deterministic pseudo-random mutations of two valid messages.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let qm = Message {
            header: header::Repr::default(),
            payloads: qm1_payloads(),
        }
        .to_bytes()
        .unwrap();
        let mut parsed = 0;
        for base in [&IOS_MM1[..], &qm[..]] {
            for _ in 0..4000 {
                let mut c = base.to_vec();
                for _ in 0..1 + rnd() % 4 {
                    let i = (rnd() as usize) % c.len();
                    c[i] = rnd() as u8;
                }
                let cut = if rnd() % 4 == 0 {
                    (rnd() as usize) % c.len()
                } else {
                    c.len()
                };
                if Message::parse(&c[..cut]).is_ok() {
                    parsed += 1;
                }
                let first = PayloadType(c[16]);
                let _ = parse_body(first, &c[HEADER_LEN.min(cut)..cut], true);
            }
        }
        // Some mutations (cookies, M-ID, attribute values) leave a valid message.
        assert!(parsed > 0);
    }

    #[test]
    fn emit_refuses_what_would_not_fit() {
        let too_long = Message {
            header: header::Repr::default(),
            payloads: vec![Payload::Certificate(cert::Repr {
                encoding: cert::CertEncoding::X509_SIGNATURE,
                data: vec![0; 70000],
            })],
        };
        assert_eq!(
            too_long.to_bytes().unwrap_err(),
            Error::TooLong {
                what: "payload",
                len: 70005
            }
        );
        let bad_nonce = vec![Payload::Nonce(nonce::Repr { data: vec![1; 4] })];
        assert_eq!(
            payloads_to_bytes(&bad_nonce).unwrap_err(),
            Error::NonceLength(4)
        );
        let bad_delete = vec![Payload::Delete(delete::Repr {
            doi: 1,
            protocol: ProtocolId::IPSEC_ESP,
            spi_size: 4,
            spis: vec![vec![1, 2, 3]],
        })];
        assert!(payloads_to_bytes(&bad_delete).is_err());
        let mut sa = qm1_payloads().swap_remove(1);
        if let Payload::Sa(r) = &mut sa {
            r.proposals[0].spi = vec![0; 256];
        }
        assert_eq!(
            payloads_to_bytes(&[sa]).unwrap_err(),
            Error::TooLong {
                what: "proposal SPI",
                len: 256
            }
        );
        let m = Message {
            header: header::Repr::default(),
            payloads: qm1_payloads(),
        };
        let mut small = [0u8; 40];
        assert!(matches!(
            m.emit(&mut small).unwrap_err(),
            Error::Truncated { need: 164, .. }
        ));
        // An empty message: header only.
        let empty = Message {
            header: header::Repr::default(),
            payloads: vec![],
        };
        let b = empty.to_bytes().unwrap();
        assert_eq!(b.len(), 28);
        assert_eq!(
            Message::parse(&b).unwrap(),
            Message {
                header: header::Repr {
                    length: 28,
                    ..Default::default()
                },
                payloads: vec![],
            }
        );
    }
}
