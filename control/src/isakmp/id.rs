//! The Identification payload (RFC 2408 3.8) with the IPsec DOI's fields (RFC 2407 4.6.2):
//! ID type, protocol id, port, and the identification data, typed by [`Identity`]
//! (addresses, subnets and ranges of exact length, FQDN and user FQDN as text, DER DN
//! opaque). [`Packet::body`] is `IDii_b` / `IDir_b` of RFC 2409 5.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::payload;
use super::{get_u16, set_u16, Error, PayloadType, Result};

/// ID type, protocol and port.
pub const ID_FIXED_LEN: usize = 4;

registry! {
    /// Identification types (RFC 2407 4.6.2.1). `Display` as in IOS's debug.
    IdType(u8), unknown = "ID type ";
    IPV4_ADDR = 1 => "ID_IPV4_ADDR",
    FQDN = 2 => "ID_FQDN",
    USER_FQDN = 3 => "ID_USER_FQDN",
    IPV4_ADDR_SUBNET = 4 => "ID_IPV4_ADDR_SUBNET",
    IPV6_ADDR = 5 => "ID_IPV6_ADDR",
    IPV6_ADDR_SUBNET = 6 => "ID_IPV6_ADDR_SUBNET",
    IPV4_ADDR_RANGE = 7 => "ID_IPV4_ADDR_RANGE",
    IPV6_ADDR_RANGE = 8 => "ID_IPV6_ADDR_RANGE",
    DER_ASN1_DN = 9 => "ID_DER_ASN1_DN",
    DER_ASN1_GN = 10 => "ID_DER_ASN1_GN",
    KEY_ID = 11 => "ID_KEY_ID",
}

payload_packet!(
    /// A view of an ID payload.
    Packet,
    "ID payload",
    payload::HEADER_LEN + ID_FIXED_LEN
);

impl<T: AsRef<[u8]>> Packet<T> {
    fn check_body(&self) -> Result<()> {
        Ok(())
    }
    pub fn id_type(&self) -> IdType {
        IdType(self.buffer.as_ref()[4])
    }
    /// The IP protocol (0: any; 17 with port 500 for a phase 1 ID).
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[5]
    }
    pub fn port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 6)
    }
    /// The identification data.
    pub fn data(&self) -> &[u8] {
        &self.body()[ID_FIXED_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_id_type(&mut self, v: IdType) {
        self.buffer.as_mut()[4] = v.0;
    }
    pub fn set_protocol(&mut self, v: u8) {
        self.buffer.as_mut()[5] = v;
    }
    pub fn set_port(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 6, v);
    }
}

/// Identification data, by type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Identity {
    Ipv4(Ipv4Addr),
    Fqdn(String),
    UserFqdn(String),
    Ipv4Subnet {
        addr: Ipv4Addr,
        mask: Ipv4Addr,
    },
    Ipv6(Ipv6Addr),
    Ipv6Subnet {
        addr: Ipv6Addr,
        mask: Ipv6Addr,
    },
    Ipv4Range {
        start: Ipv4Addr,
        end: Ipv4Addr,
    },
    Ipv6Range {
        start: Ipv6Addr,
        end: Ipv6Addr,
    },
    /// A DER-encoded X.500 Name (the certificate's subject), opaque here.
    DerAsn1Dn(Vec<u8>),
    /// ID_DER_ASN1_GN, ID_KEY_ID and unknown types: the data as received.
    Other {
        id_type: IdType,
        data: Vec<u8>,
    },
}

fn exact<const N: usize>(d: &[u8], what: &'static str) -> Result<[u8; N]> {
    <[u8; N]>::try_from(d).map_err(|_| Error::BadLength {
        what,
        len: d.len(),
        expected: N,
    })
}

fn text(d: &[u8], what: &'static str) -> Result<String> {
    if d.is_empty() {
        return Err(Error::LengthTooShort {
            what,
            len: 0,
            min: 1,
        });
    }
    String::from_utf8(d.to_vec()).map_err(|_| Error::NotUtf8 { what })
}

fn v4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn v6(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

impl Identity {
    /// Interprets identification data of a type, checking its exact length.
    pub fn parse(id_type: IdType, d: &[u8]) -> Result<Identity> {
        Ok(match id_type {
            IdType::IPV4_ADDR => Identity::Ipv4(exact::<4>(d, "ID_IPV4_ADDR data")?.into()),
            IdType::FQDN => Identity::Fqdn(text(d, "ID_FQDN data")?),
            IdType::USER_FQDN => Identity::UserFqdn(text(d, "ID_USER_FQDN data")?),
            IdType::IPV4_ADDR_SUBNET => {
                let b = exact::<8>(d, "ID_IPV4_ADDR_SUBNET data")?;
                Identity::Ipv4Subnet {
                    addr: v4(&b[..4]),
                    mask: v4(&b[4..]),
                }
            }
            IdType::IPV6_ADDR => Identity::Ipv6(exact::<16>(d, "ID_IPV6_ADDR data")?.into()),
            IdType::IPV6_ADDR_SUBNET => {
                let b = exact::<32>(d, "ID_IPV6_ADDR_SUBNET data")?;
                Identity::Ipv6Subnet {
                    addr: v6(&b[..16]),
                    mask: v6(&b[16..]),
                }
            }
            IdType::IPV4_ADDR_RANGE => {
                let b = exact::<8>(d, "ID_IPV4_ADDR_RANGE data")?;
                Identity::Ipv4Range {
                    start: v4(&b[..4]),
                    end: v4(&b[4..]),
                }
            }
            IdType::IPV6_ADDR_RANGE => {
                let b = exact::<32>(d, "ID_IPV6_ADDR_RANGE data")?;
                Identity::Ipv6Range {
                    start: v6(&b[..16]),
                    end: v6(&b[16..]),
                }
            }
            IdType::DER_ASN1_DN => {
                if d.is_empty() {
                    return Err(Error::LengthTooShort {
                        what: "ID_DER_ASN1_DN data",
                        len: 0,
                        min: 1,
                    });
                }
                Identity::DerAsn1Dn(d.to_vec())
            }
            t => Identity::Other {
                id_type: t,
                data: d.to_vec(),
            },
        })
    }

    pub fn id_type(&self) -> IdType {
        match self {
            Identity::Ipv4(_) => IdType::IPV4_ADDR,
            Identity::Fqdn(_) => IdType::FQDN,
            Identity::UserFqdn(_) => IdType::USER_FQDN,
            Identity::Ipv4Subnet { .. } => IdType::IPV4_ADDR_SUBNET,
            Identity::Ipv6(_) => IdType::IPV6_ADDR,
            Identity::Ipv6Subnet { .. } => IdType::IPV6_ADDR_SUBNET,
            Identity::Ipv4Range { .. } => IdType::IPV4_ADDR_RANGE,
            Identity::Ipv6Range { .. } => IdType::IPV6_ADDR_RANGE,
            Identity::DerAsn1Dn(_) => IdType::DER_ASN1_DN,
            Identity::Other { id_type, .. } => *id_type,
        }
    }

    /// The identification data as on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Identity::Ipv4(a) => a.octets().to_vec(),
            Identity::Fqdn(s) | Identity::UserFqdn(s) => s.as_bytes().to_vec(),
            Identity::Ipv4Subnet { addr: a, mask: b }
            | Identity::Ipv4Range { start: a, end: b } => [a.octets(), b.octets()].concat(),
            Identity::Ipv6(a) => a.octets().to_vec(),
            Identity::Ipv6Subnet { addr: a, mask: b }
            | Identity::Ipv6Range { start: a, end: b } => [a.octets(), b.octets()].concat(),
            Identity::DerAsn1Dn(d) | Identity::Other { data: d, .. } => d.clone(),
        }
    }

    /// The length of [`Identity::to_bytes`].
    pub fn data_len(&self) -> usize {
        match self {
            Identity::Ipv4(_) => 4,
            Identity::Fqdn(s) | Identity::UserFqdn(s) => s.len(),
            Identity::Ipv4Subnet { .. } | Identity::Ipv4Range { .. } => 8,
            Identity::Ipv6(_) => 16,
            Identity::Ipv6Subnet { .. } | Identity::Ipv6Range { .. } => 32,
            Identity::DerAsn1Dn(d) | Identity::Other { data: d, .. } => d.len(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Ipv4(a) => write!(f, "{a}"),
            Identity::Fqdn(s) | Identity::UserFqdn(s) => f.write_str(s),
            Identity::Ipv4Subnet { addr, mask } => write!(f, "{addr}/{mask}"),
            Identity::Ipv6(a) => write!(f, "{a}"),
            Identity::Ipv6Subnet { addr, mask } => write!(f, "{addr}/{mask}"),
            Identity::Ipv4Range { start, end } => write!(f, "{start}-{end}"),
            Identity::Ipv6Range { start, end } => write!(f, "{start}-{end}"),
            Identity::DerAsn1Dn(d) => write!(f, "DER ASN.1 DN of {} bytes", d.len()),
            Identity::Other { id_type, data } => {
                write!(f, "{id_type} {}", hex::encode(data))
            }
        }
    }
}

/// An ID payload: protocol, port and identity.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Repr {
    /// IP protocol: 0 for any, 17 (UDP) in a phase 1 ID as IOS sends it.
    pub protocol: u8,
    /// Port: 0 for any, 500 in a phase 1 ID as IOS sends it.
    pub port: u16,
    pub id: Identity,
}

impl Repr {
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            protocol: p.protocol(),
            port: p.port(),
            id: Identity::parse(p.id_type(), p.data())?,
        })
    }

    pub fn buffer_len(&self) -> usize {
        payload::HEADER_LEN + ID_FIXED_LEN + self.id.data_len()
    }

    /// The body as on the wire (`IDii_b`), without building a payload.
    pub fn body_bytes(&self) -> Vec<u8> {
        let mut v = vec![self.id.id_type().0, self.protocol];
        v.extend_from_slice(&self.port.to_be_bytes());
        v.extend_from_slice(&self.id.to_bytes());
        v
    }

    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        buf[payload::HEADER_LEN..len].copy_from_slice(&self.body_bytes());
    }
}

impl fmt::Display for Repr {
    /// IOS's words: `type : 2 FQDN name : Branch1.amit.com protocol : 17 port : 500`
    /// without the next-payload and length fields.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "type : {} ", self.id.id_type().0)?;
        match &self.id {
            Identity::Fqdn(s) => write!(f, "FQDN name : {s} ")?,
            Identity::UserFqdn(s) => write!(f, "user FQDN : {s} ")?,
            Identity::Ipv4(a) => write!(f, "address : {a} ")?,
            Identity::Ipv6(a) => write!(f, "address : {a} ")?,
            other => write!(f, "{other} ")?,
        }
        write!(f, "protocol : {} port : {}", self.protocol, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use hex_literal::hex;

    fn emit(r: &Repr, next: PayloadType) -> Vec<u8> {
        let mut v = vec![0u8; r.buffer_len()];
        r.emit(&mut v, next);
        v
    }

    fn parse(b: &[u8]) -> Result<Repr> {
        Repr::parse(&Packet::new_checked(b)?)
    }

    #[test]
    fn ios_fqdn_phase1_id() {
        // "ID payload next-payload : 6 type : 2 FQDN name : Branch1.amit.com protocol : 17
        //  port : 500 length : 24"
        let wire = hex!("06 00 00 18 02 11 01 f4") // generic header + type/proto/port
            .iter()
            .chain(b"Branch1.amit.com")
            .copied()
            .collect::<Vec<u8>>();
        let p = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(p.next_payload(), PayloadType::CERT);
        assert_eq!(p.id_type(), IdType::FQDN);
        assert_eq!((p.protocol(), p.port()), (17, 500));
        assert_eq!(p.body(), &wire[4..]);
        let r = Repr::parse(&p).unwrap();
        assert_eq!(r.id, Identity::Fqdn("Branch1.amit.com".into()));
        assert_eq!(
            r.to_string(),
            "type : 2 FQDN name : Branch1.amit.com protocol : 17 port : 500"
        );
        assert_eq!(r.body_bytes(), p.body());
        assert_eq!(emit(&r, PayloadType::CERT), wire);
        all_prefixes_fail(&wire, parse);
    }

    #[test]
    fn every_type_round_trips() {
        let ids = [
            Identity::Ipv4(Ipv4Addr::new(172, 16, 172, 39)),
            Identity::Fqdn("pix520-1.vpn.com".into()),
            Identity::UserFqdn("ops@example.net".into()),
            Identity::Ipv4Subnet {
                addr: Ipv4Addr::new(192, 168, 4, 0),
                mask: Ipv4Addr::new(255, 255, 255, 0),
            },
            Identity::Ipv6("2001:db8::1".parse().unwrap()),
            Identity::Ipv6Subnet {
                addr: "2001:db8:1::".parse().unwrap(),
                mask: "ffff:ffff:ffff::".parse().unwrap(),
            },
            Identity::Ipv4Range {
                start: Ipv4Addr::new(10, 0, 0, 1),
                end: Ipv4Addr::new(10, 0, 0, 9),
            },
            Identity::Ipv6Range {
                start: "2001:db8::1".parse().unwrap(),
                end: "2001:db8::ff".parse().unwrap(),
            },
            Identity::DerAsn1Dn(
                hex!("30 0f 31 0d 30 0b 06 03 55 04 03 13 04 74 65 73 74").to_vec(),
            ),
            Identity::Other {
                id_type: IdType::KEY_ID,
                data: b"key".to_vec(),
            },
        ];
        for (i, id) in ids.into_iter().enumerate() {
            let r = Repr {
                protocol: if i % 2 == 0 { 0 } else { 17 },
                port: if i % 2 == 0 { 0 } else { 500 },
                id,
            };
            let b = emit(&r, PayloadType::NONE);
            assert_eq!(parse(&b).unwrap(), r, "{r}");
            assert_eq!(b[4], r.id.id_type().0);
            all_prefixes_fail(&b, parse);
            // With the payload length cut to every shorter value, fixed-size types fail
            // (text and opaque ones may still be valid, shorter identities).
            if matches!(
                r.id.id_type(),
                IdType::IPV4_ADDR
                    | IdType::IPV4_ADDR_SUBNET
                    | IdType::IPV6_ADDR
                    | IdType::IPV6_ADDR_SUBNET
                    | IdType::IPV4_ADDR_RANGE
                    | IdType::IPV6_ADDR_RANGE
            ) {
                for n in 0..b.len() {
                    let mut c = b[..n].to_vec();
                    if n >= 4 {
                        c[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                    }
                    assert!(parse(&c).is_err(), "{r} cut to {n}");
                }
            }
        }
    }

    #[test]
    fn bad_data() {
        let b = hex!("00 00 00 0d 01 00 00 00 0a 00 00 01 02");
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::BadLength {
                what: "ID_IPV4_ADDR data",
                len: 5,
                expected: 4
            }
        );
        let b = hex!("00 00 00 0a 02 00 00 00 ff fe");
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::NotUtf8 {
                what: "ID_FQDN data"
            }
        );
        let b = hex!("00 00 00 08 02 00 00 00");
        assert!(matches!(
            parse(&b).unwrap_err(),
            Error::LengthTooShort { min: 1, .. }
        ));
        let b = hex!("00 00 00 07 02 00 00");
        assert_eq!(
            parse(&b).unwrap_err(),
            Error::LengthTooShort {
                what: "ID payload",
                len: 7,
                min: 8
            }
        );
        assert_eq!(IdType::IPV4_ADDR_SUBNET.to_string(), "ID_IPV4_ADDR_SUBNET");
    }
}
