//! The Notification payload (RFC 2408 3.14): DOI, protocol id, SPI size, notify message
//! type, SPI and notification data; the error types of RFC 2408 3.14.1, the IPsec DOI status
//! types of RFC 2407 4.6.3 (RESPONDER-LIFETIME, REPLAY-STATUS, INITIAL-CONTACT) and the DPD
//! messages of RFC 3706 (R-U-THERE, R-U-THERE-ACK).

use core::fmt;

use super::attributes::{self, Phase2Attribute};
use super::payload;
use super::{doi, get_u16, get_u32, set_u16, set_u32, Error, PayloadType, ProtocolId, Result};

/// DOI, protocol, SPI size and message type.
pub const NOTIFY_FIXED_LEN: usize = 8;

registry! {
    /// Notify message types. Below 8192 are errors (RFC 2408 3.14.1), 16384 and up status.
    NotifyType(u16), unknown = "notify ";
    INVALID_PAYLOAD_TYPE = 1 => "INVALID-PAYLOAD-TYPE",
    DOI_NOT_SUPPORTED = 2 => "DOI-NOT-SUPPORTED",
    SITUATION_NOT_SUPPORTED = 3 => "SITUATION-NOT-SUPPORTED",
    INVALID_COOKIE = 4 => "INVALID-COOKIE",
    INVALID_MAJOR_VERSION = 5 => "INVALID-MAJOR-VERSION",
    INVALID_MINOR_VERSION = 6 => "INVALID-MINOR-VERSION",
    INVALID_EXCHANGE_TYPE = 7 => "INVALID-EXCHANGE-TYPE",
    INVALID_FLAGS = 8 => "INVALID-FLAGS",
    INVALID_MESSAGE_ID = 9 => "INVALID-MESSAGE-ID",
    INVALID_PROTOCOL_ID = 10 => "INVALID-PROTOCOL-ID",
    INVALID_SPI = 11 => "INVALID-SPI",
    INVALID_TRANSFORM_ID = 12 => "INVALID-TRANSFORM-ID",
    ATTRIBUTES_NOT_SUPPORTED = 13 => "ATTRIBUTES-NOT-SUPPORTED",
    NO_PROPOSAL_CHOSEN = 14 => "NO-PROPOSAL-CHOSEN",
    BAD_PROPOSAL_SYNTAX = 15 => "BAD-PROPOSAL-SYNTAX",
    PAYLOAD_MALFORMED = 16 => "PAYLOAD-MALFORMED",
    INVALID_KEY_INFORMATION = 17 => "INVALID-KEY-INFORMATION",
    INVALID_ID_INFORMATION = 18 => "INVALID-ID-INFORMATION",
    INVALID_CERT_ENCODING = 19 => "INVALID-CERT-ENCODING",
    INVALID_CERTIFICATE = 20 => "INVALID-CERTIFICATE",
    CERT_TYPE_UNSUPPORTED = 21 => "CERT-TYPE-UNSUPPORTED",
    INVALID_CERT_AUTHORITY = 22 => "INVALID-CERT-AUTHORITY",
    INVALID_HASH_INFORMATION = 23 => "INVALID-HASH-INFORMATION",
    AUTHENTICATION_FAILED = 24 => "AUTHENTICATION-FAILED",
    INVALID_SIGNATURE = 25 => "INVALID-SIGNATURE",
    ADDRESS_NOTIFICATION = 26 => "ADDRESS-NOTIFICATION",
    NOTIFY_SA_LIFETIME = 27 => "NOTIFY-SA-LIFETIME",
    CERTIFICATE_UNAVAILABLE = 28 => "CERTIFICATE-UNAVAILABLE",
    UNSUPPORTED_EXCHANGE_TYPE = 29 => "UNSUPPORTED-EXCHANGE-TYPE",
    UNEQUAL_PAYLOAD_LENGTHS = 30 => "UNEQUAL-PAYLOAD-LENGTHS",
    CONNECTED = 16384 => "CONNECTED",
    RESPONDER_LIFETIME = 24576 => "RESPONDER-LIFETIME",
    REPLAY_STATUS = 24577 => "REPLAY-STATUS",
    INITIAL_CONTACT = 24578 => "INITIAL-CONTACT",
    R_U_THERE = 36136 => "R-U-THERE",
    R_U_THERE_ACK = 36137 => "R-U-THERE-ACK",
}

impl NotifyType {
    /// Error types are 1..=16383 (RFC 2408 3.14.1).
    pub fn is_error(self) -> bool {
        (1..16384).contains(&self.0)
    }
}

payload_packet!(
    /// A view of a NOTIFY payload.
    Packet,
    "NOTIFY payload",
    payload::HEADER_LEN + NOTIFY_FIXED_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check_body(&self) -> Result<()> {
        let avail = self.payload_len() - payload::HEADER_LEN - NOTIFY_FIXED_LEN;
        if self.spi_size() > avail {
            return Err(Error::LengthOverrun {
                what: "notification SPI",
                len: self.spi_size(),
                avail,
            });
        }
        Ok(())
    }
    pub fn doi(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 4)
    }
    pub fn protocol(&self) -> ProtocolId {
        ProtocolId(self.buffer.as_ref()[8])
    }
    pub fn spi_size(&self) -> usize {
        self.buffer.as_ref()[9] as usize
    }
    pub fn message_type(&self) -> NotifyType {
        NotifyType(get_u16(self.buffer.as_ref(), 10))
    }
    pub fn spi(&self) -> &[u8] {
        &self.body()[NOTIFY_FIXED_LEN..NOTIFY_FIXED_LEN + self.spi_size()]
    }
    /// The notification data after the SPI.
    pub fn data(&self) -> &[u8] {
        &self.body()[NOTIFY_FIXED_LEN + self.spi_size()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_doi(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 4, v);
    }
    pub fn set_protocol(&mut self, v: ProtocolId) {
        self.buffer.as_mut()[8] = v.0;
    }
    pub fn set_spi_size(&mut self, v: u8) {
        self.buffer.as_mut()[9] = v;
    }
    pub fn set_message_type(&mut self, v: NotifyType) {
        set_u16(self.buffer.as_mut(), 10, v.0);
    }
}

/// A notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repr {
    pub doi: u32,
    pub protocol: ProtocolId,
    pub spi: Vec<u8>,
    pub message_type: NotifyType,
    pub data: Vec<u8>,
}

impl Repr {
    /// INITIAL-CONTACT for the ISAKMP SA named by its cookies (as IOS sends it in MM5).
    pub fn initial_contact(cookies: [u8; 16]) -> Repr {
        Self::isakmp(NotifyType::INITIAL_CONTACT, cookies, vec![])
    }
    /// R-U-THERE with a sequence number (RFC 3706 5).
    pub fn r_u_there(cookies: [u8; 16], seq: u32) -> Repr {
        Self::isakmp(NotifyType::R_U_THERE, cookies, seq.to_be_bytes().to_vec())
    }
    /// R-U-THERE-ACK echoing the sequence number.
    pub fn r_u_there_ack(cookies: [u8; 16], seq: u32) -> Repr {
        Self::isakmp(
            NotifyType::R_U_THERE_ACK,
            cookies,
            seq.to_be_bytes().to_vec(),
        )
    }
    fn isakmp(message_type: NotifyType, cookies: [u8; 16], data: Vec<u8>) -> Repr {
        Repr {
            doi: doi::IPSEC,
            protocol: ProtocolId::ISAKMP,
            spi: cookies.to_vec(),
            message_type,
            data,
        }
    }
    /// RESPONDER-LIFETIME for an IPsec SA (RFC 2407 4.6.3.1): the SA's protocol and SPI
    /// and the lifetime attributes.
    pub fn responder_lifetime(protocol: ProtocolId, spi: u32, attrs: &[Phase2Attribute]) -> Repr {
        let attrs: Vec<_> = attrs.iter().map(Phase2Attribute::to_attribute).collect();
        let mut data = vec![0u8; attributes::buffer_len_all(&attrs)];
        attributes::emit_all(&attrs, &mut data);
        Repr {
            doi: doi::IPSEC,
            protocol,
            spi: spi.to_be_bytes().to_vec(),
            message_type: NotifyType::RESPONDER_LIFETIME,
            data,
        }
    }

    /// The data as IPsec DOI attributes (RESPONDER-LIFETIME).
    pub fn lifetime_attributes(&self) -> Result<Vec<Phase2Attribute>> {
        attributes::phase2(&attributes::parse_all(&self.data)?)
    }
    /// The DPD sequence number of R-U-THERE / R-U-THERE-ACK, if the data is 4 bytes.
    pub fn dpd_sequence(&self) -> Option<u32> {
        <[u8; 4]>::try_from(&self.data[..])
            .ok()
            .map(u32::from_be_bytes)
    }

    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            doi: p.doi(),
            protocol: p.protocol(),
            spi: p.spi().to_vec(),
            message_type: p.message_type(),
            data: p.data().to_vec(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        payload::HEADER_LEN + NOTIFY_FIXED_LEN + self.spi.len() + self.data.len()
    }

    /// Writes the payload. Panics if the SPI is longer than 255 bytes.
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        set_u32(buf, 4, self.doi);
        buf[8] = self.protocol.0;
        buf[9] = u8::try_from(self.spi.len()).expect("SPI over 255 bytes");
        set_u16(buf, 10, self.message_type.0);
        let at = payload::HEADER_LEN + NOTIFY_FIXED_LEN;
        buf[at..at + self.spi.len()].copy_from_slice(&self.spi);
        buf[at + self.spi.len()..len].copy_from_slice(&self.data);
    }
}

impl fmt::Display for Repr {
    /// IOS's words: `24576 protocol 3 spi 3611334428` (a 4-byte SPI in decimal, others in
    /// hex), after "processing NOTIFY payload".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} protocol {} spi ",
            self.message_type.0, self.protocol.0
        )?;
        match <[u8; 4]>::try_from(&self.spi[..]) {
            Ok(s) => write!(f, "{}", u32::from_be_bytes(s)),
            Err(_) => write!(f, "{}", hex::encode(&self.spi)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::attributes::{AttrValue, LifeType};
    use crate::isakmp::testutil::all_prefixes_fail;
    use hex_literal::hex;

    fn parse(b: &[u8]) -> Result<Repr> {
        Repr::parse(&Packet::new_checked(b)?)
    }

    fn emit(r: &Repr) -> Vec<u8> {
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut v, PayloadType::NONE);
        v
    }

    #[test]
    fn responder_lifetime_as_ios_sends_it() {
        // QM2 of the reference: RESPONDER-LIFETIME, protocol 3, SPI 0xD740971C, 3600 s.
        let wire = hex!(
            "00 00 00 18  00 00 00 01  03 04 60 00  d7 40 97 1c"
            "80 01 00 01  80 02 0e 10"
        );
        let p = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(p.message_type(), NotifyType::RESPONDER_LIFETIME);
        assert_eq!(p.protocol(), ProtocolId::IPSEC_ESP);
        assert_eq!(p.spi(), hex!("d740971c"));
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.to_string(), "24576 protocol 3 spi 3611334428");
        assert_eq!(
            r.lifetime_attributes().unwrap(),
            [
                Phase2Attribute::SaLifeType(LifeType::SECONDS),
                Phase2Attribute::SaLifeDuration(AttrValue::Basic(3600)),
            ]
        );
        let built = Repr::responder_lifetime(
            ProtocolId::IPSEC_ESP,
            0xd740971c,
            &r.lifetime_attributes().unwrap(),
        );
        assert_eq!(built, r);
        assert_eq!(emit(&r), wire);
        assert!(!r.message_type.is_error());
        all_prefixes_fail(&wire, parse);
    }

    #[test]
    fn dpd_and_initial_contact() {
        let cookies = hex!("0102030405060708 1112131415161718");
        for r in [
            Repr::r_u_there(cookies, 0x1234_5678),
            Repr::r_u_there_ack(cookies, 7),
            Repr::initial_contact(cookies),
        ] {
            let b = emit(&r);
            assert_eq!(b[9], 16);
            let back = parse(&b).unwrap();
            assert_eq!(back, r);
            all_prefixes_fail(&b, parse);
        }
        assert_eq!(
            Repr::r_u_there(cookies, 0x1234_5678).dpd_sequence(),
            Some(0x1234_5678)
        );
        assert_eq!(Repr::initial_contact(cookies).dpd_sequence(), None);
        assert_eq!(NotifyType(36136).to_string(), "R-U-THERE");
        assert!(NotifyType::NO_PROPOSAL_CHOSEN.is_error());
        assert_eq!(NotifyType::INVALID_PAYLOAD_TYPE.0, 1);
        assert_eq!(
            NotifyType::PAYLOAD_MALFORMED.to_string(),
            "PAYLOAD-MALFORMED"
        );
    }

    #[test]
    fn spi_size_overrun() {
        let mut b = emit(&Repr::initial_contact([9; 16]));
        b[9] = 17;
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::LengthOverrun {
                what: "notification SPI",
                len: 17,
                avail: 16
            }
        );
        b[9] = 0;
        let r = parse(&b).unwrap();
        assert!(r.spi.is_empty());
        assert_eq!(r.data.len(), 16);
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.set_spi_size(16);
        p.set_message_type(NotifyType::R_U_THERE);
        p.set_doi(0);
        p.set_protocol(ProtocolId::ISAKMP);
        let r = parse(&b).unwrap();
        assert_eq!((r.doi, r.message_type), (0, NotifyType::R_U_THERE));
    }
}
