//! The Delete payload (RFC 2408 3.15): DOI, protocol id, SPI size, number of SPIs and the
//! SPIs, which must fill the payload exactly. An ISAKMP SA is deleted by its 16 bytes of
//! cookies (protocol ISAKMP), IPsec SAs by their 4-byte SPIs.

use super::payload;
use super::{doi, get_u16, get_u32, set_u16, set_u32, Error, PayloadType, ProtocolId, Result};

/// DOI, protocol, SPI size and number of SPIs.
pub const DELETE_FIXED_LEN: usize = 8;

payload_packet!(
    /// A view of a DELETE payload.
    Packet,
    "DELETE payload",
    payload::HEADER_LEN + DELETE_FIXED_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check_body(&self) -> Result<()> {
        let have = self.spi_bytes().len();
        let expected = self.spi_size() * self.num_spis() as usize;
        if have != expected {
            return Err(Error::BadLength {
                what: "SPIs of a DELETE payload",
                len: have,
                expected,
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
    pub fn num_spis(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 10)
    }
    /// All the SPIs, back to back.
    pub fn spi_bytes(&self) -> &[u8] {
        &self.body()[DELETE_FIXED_LEN..]
    }
    /// The SPIs one by one (none if the SPI size is 0).
    pub fn spis(&self) -> impl Iterator<Item = &[u8]> {
        let size = self.spi_size().max(1);
        let n = if self.spi_size() == 0 {
            0
        } else {
            self.num_spis() as usize
        };
        self.spi_bytes().chunks(size).take(n)
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
    pub fn set_num_spis(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 10, v);
    }
}

/// A delete notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repr {
    pub doi: u32,
    pub protocol: ProtocolId,
    /// Kept apart from the SPIs so that an empty list keeps its size.
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

impl Repr {
    /// Deletes the ISAKMP SA named by its cookies.
    pub fn isakmp(cookies: [u8; 16]) -> Repr {
        Repr {
            doi: doi::IPSEC,
            protocol: ProtocolId::ISAKMP,
            spi_size: 16,
            spis: vec![cookies.to_vec()],
        }
    }
    /// Deletes IPsec SAs of a protocol (ESP or AH) by their SPIs.
    pub fn ipsec(protocol: ProtocolId, spis: &[u32]) -> Repr {
        Repr {
            doi: doi::IPSEC,
            protocol,
            spi_size: 4,
            spis: spis.iter().map(|s| s.to_be_bytes().to_vec()).collect(),
        }
    }
    /// The SPIs as 32-bit numbers, if they are 4 bytes each.
    pub fn spis_u32(&self) -> Option<Vec<u32>> {
        self.spis
            .iter()
            .map(|s| <[u8; 4]>::try_from(&s[..]).ok().map(u32::from_be_bytes))
            .collect()
    }

    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            doi: p.doi(),
            protocol: p.protocol(),
            spi_size: p.spi_size() as u8,
            spis: p.spis().map(<[u8]>::to_vec).collect(),
        })
    }

    pub fn buffer_len(&self) -> usize {
        payload::HEADER_LEN + DELETE_FIXED_LEN + self.spi_size as usize * self.spis.len()
    }

    /// Writes the payload. Panics if an SPI is not `spi_size` bytes or there are more than
    /// 65535 SPIs.
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        set_u32(buf, 4, self.doi);
        buf[8] = self.protocol.0;
        buf[9] = self.spi_size;
        set_u16(
            buf,
            10,
            u16::try_from(self.spis.len()).expect("over 65535 SPIs"),
        );
        let size = self.spi_size as usize;
        let mut at = payload::HEADER_LEN + DELETE_FIXED_LEN;
        for s in &self.spis {
            assert_eq!(s.len(), size, "SPI of the wrong size");
            buf[at..at + size].copy_from_slice(s);
            at += size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    fn delete_esp_spis() {
        let wire = hex!("00 00 00 14 00 00 00 01 03 04 00 02 d7 40 97 1c 38 03 a0 c1");
        let p = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(p.num_spis(), 2);
        assert_eq!(p.spis().count(), 2);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(
            r,
            Repr::ipsec(ProtocolId::IPSEC_ESP, &[0xd740971c, 0x3803a0c1])
        );
        assert_eq!(r.spis_u32(), Some(vec![0xd740971c, 0x3803a0c1]));
        assert_eq!(emit(&r), wire);
        all_prefixes_fail(&wire, parse);
    }

    #[test]
    fn delete_isakmp_sa_and_empty() {
        let r = Repr::isakmp([3; 16]);
        let b = emit(&r);
        assert_eq!(b.len(), 28);
        assert_eq!(parse(&b).unwrap(), r);
        assert_eq!(r.spis_u32(), None);
        all_prefixes_fail(&b, parse);
        let empty = Repr {
            doi: 1,
            protocol: ProtocolId::IPSEC_AH,
            spi_size: 4,
            spis: vec![],
        };
        assert_eq!(parse(&emit(&empty)).unwrap(), empty);
        // SPI size 0 with a count: no SPIs to read, and none present.
        let zero = hex!("00 00 00 0c 00 00 00 01 03 00 00 05");
        assert!(parse(&zero).unwrap().spis.is_empty());
    }

    #[test]
    fn count_disagrees_with_length() {
        let mut wire = hex!("00 00 00 14 00 00 00 01 03 04 00 02 d7 40 97 1c 38 03 a0 c1");
        wire[11] = 3;
        assert_eq!(
            parse(&wire).unwrap_err(),
            Error::BadLength {
                what: "SPIs of a DELETE payload",
                len: 8,
                expected: 12
            }
        );
        wire[11] = 1;
        assert!(parse(&wire).is_err());
        wire[11] = 0xff;
        wire[10] = 0xff;
        assert!(parse(&wire).is_err());
        let mut p = Packet::new_unchecked(&mut wire[..]);
        p.set_num_spis(2);
        p.set_spi_size(4);
        p.set_protocol(ProtocolId::IPSEC_AH);
        p.set_doi(1);
        assert_eq!(parse(&wire).unwrap().protocol, ProtocolId::IPSEC_AH);
    }
}
