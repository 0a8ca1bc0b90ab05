//! The Certificate payload (CERT, RFC 2408 3.9) and the Certificate Request payload (CR,
//! RFC 2408 3.10): a certificate encoding (X.509 signature = 4, CRL = 7, ...) and opaque
//! data (a DER certificate or CRL; for a request, the DER DN of an acceptable CA, or nothing
//! for any CA).

use super::payload;
use super::{PayloadType, Result};

registry! {
    /// Certificate encodings (RFC 2408 3.9). `Display` as IOS's `CT_X509_SIGNATURE`.
    CertEncoding(u8), unknown = "certificate encoding ";
    PKCS7 = 1 => "CT_PKCS7",
    PGP = 2 => "CT_PGP",
    DNS_SIGNED_KEY = 3 => "CT_DNS_SIGNED_KEY",
    X509_SIGNATURE = 4 => "CT_X509_SIGNATURE",
    X509_KEY_EXCHANGE = 5 => "CT_X509_KEY_EXCHANGE",
    KERBEROS_TOKENS = 6 => "CT_KERBEROS_TOKENS",
    CRL = 7 => "CT_X509_CRL",
    ARL = 8 => "CT_X509_ARL",
    SPKI = 9 => "CT_SPKI",
    X509_ATTRIBUTE = 10 => "CT_X509_ATTRIBUTE",
}

payload_packet!(
    /// A view of a CERT payload (at least one byte of certificate data).
    Packet,
    "CERT payload",
    payload::HEADER_LEN + 2
);

payload_packet!(
    /// A view of a CERT_REQ payload (the data, a CA name, may be empty).
    CertReqPacket,
    "CERT_REQ payload",
    payload::HEADER_LEN + 1
);

macro_rules! cert_accessors {
    ($name:ident) => {
        impl<T: AsRef<[u8]>> $name<T> {
            fn check_body(&self) -> Result<()> {
                Ok(())
            }
            pub fn encoding(&self) -> CertEncoding {
                CertEncoding(self.buffer.as_ref()[4])
            }
            /// The certificate (CERT) or the CA's DER name (CERT_REQ).
            pub fn data(&self) -> &[u8] {
                &self.body()[1..]
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            pub fn set_encoding(&mut self, v: CertEncoding) {
                self.buffer.as_mut()[4] = v.0;
            }
        }
    };
}

cert_accessors!(Packet);
cert_accessors!(CertReqPacket);

/// A CERT or CERT_REQ payload's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repr {
    pub encoding: CertEncoding,
    pub data: Vec<u8>,
}

impl Repr {
    /// Parses a CERT payload.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            encoding: p.encoding(),
            data: p.data().to_vec(),
        })
    }
    /// Parses a CERT_REQ payload.
    pub fn parse_request<T: AsRef<[u8]>>(p: &CertReqPacket<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            encoding: p.encoding(),
            data: p.data().to_vec(),
        })
    }
    pub fn buffer_len(&self) -> usize {
        payload::HEADER_LEN + 1 + self.data.len()
    }
    /// Writes the payload (the same layout for CERT and CERT_REQ).
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        buf[4] = self.encoding.0;
        buf[5..len].copy_from_slice(&self.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use crate::isakmp::Error;
    use hex_literal::hex;

    #[test]
    fn cert_round_trip() {
        let r = Repr {
            encoding: CertEncoding::X509_SIGNATURE,
            data: hex!("30 82 01 0a 02 82 01 01 00 c3").to_vec(),
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b, PayloadType::SIG);
        assert_eq!(&b[..5], &hex!("09 00 00 0f 04"));
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.encoding().to_string(), "CT_X509_SIGNATURE");
        assert_eq!(p.data(), &r.data[..]);
        assert_eq!(Repr::parse(&p).unwrap(), r);
        all_prefixes_fail(&b, |b| Repr::parse(&Packet::new_checked(b)?));
        // A CERT without data is refused; a CERT_REQ without a CA name is "any CA".
        let empty = hex!("00 00 00 05 04");
        assert_eq!(
            Packet::new_checked(&empty[..]).unwrap_err(),
            Error::LengthTooShort {
                what: "CERT payload",
                len: 5,
                min: 6
            }
        );
        let cr = Repr::parse_request(&CertReqPacket::new_checked(&empty[..]).unwrap()).unwrap();
        assert_eq!(cr.encoding, CertEncoding::X509_SIGNATURE);
        assert!(cr.data.is_empty());
    }

    #[test]
    fn cert_req_round_trip() {
        // CT_X509_SIGNATURE for a CA named by its DER DN.
        let r = Repr {
            encoding: CertEncoding::X509_SIGNATURE,
            data: hex!("30 0f 31 0d 30 0b 06 03 55 04 0b 13 04 74 65 73 74").to_vec(),
        };
        let mut b = vec![0u8; r.buffer_len()];
        r.emit(&mut b, PayloadType::VENDOR_ID);
        let p = CertReqPacket::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse_request(&p).unwrap(), r);
        all_prefixes_fail(&b, |b| Repr::parse_request(&CertReqPacket::new_checked(b)?));
        let mut crl = b.clone();
        CertReqPacket::new_unchecked(&mut crl[..]).set_encoding(CertEncoding::CRL);
        assert_eq!(crl[4], 7);
        assert_eq!(CertEncoding(7).to_string(), "CT_X509_CRL");
    }
}
