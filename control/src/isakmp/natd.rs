//! NAT traversal payloads (RFC 3947): NAT-D (payload type 20, 130 in
//! draft-ietf-ipsec-nat-t-ike-02/03), whose body is a hash of the cookies, an address and a
//! port (RFC 3947 3.2), and NAT-OA (21, 131 in the drafts), the original address of a peer
//! in transport mode (RFC 3947 5.2: ID type, 3 reserved bytes, an IPv4 or IPv6 address).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::id::IdType;
use super::payload::{self, HEADER_LEN};
use super::{Error, PayloadType, Result};

opaque_payload!(
    /// A view of a NAT-D payload.
    "NAT-D payload",
    min_body = 1
);

/// The bytes RFC 3947 3.2 hashes (with the negotiated hash) into a NAT-D payload:
/// `CKY-I | CKY-R | IP | Port`.
pub fn hash_input(
    initiator_cookie: [u8; 8],
    responder_cookie: [u8; 8],
    addr: IpAddr,
    port: u16,
) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + 16 + 2);
    v.extend_from_slice(&initiator_cookie);
    v.extend_from_slice(&responder_cookie);
    match addr {
        IpAddr::V4(a) => v.extend_from_slice(&a.octets()),
        IpAddr::V6(a) => v.extend_from_slice(&a.octets()),
    }
    v.extend_from_slice(&port.to_be_bytes());
    v
}

/// ID type and reserved.
pub const NAT_OA_FIXED_LEN: usize = 4;

payload_packet!(
    /// A view of a NAT-OA payload.
    OaPacket,
    "NAT-OA payload",
    HEADER_LEN + NAT_OA_FIXED_LEN + 4
);

impl<T: AsRef<[u8]>> OaPacket<T> {
    fn check_body(&self) -> Result<()> {
        let n = self.address_bytes().len();
        let expected = match self.id_type() {
            IdType::IPV4_ADDR => 4,
            IdType::IPV6_ADDR => 16,
            t => {
                return Err(Error::BadValue {
                    what: "NAT-OA ID type",
                    value: t.0 as u32,
                })
            }
        };
        if n != expected {
            return Err(Error::BadLength {
                what: "NAT-OA address",
                len: n,
                expected,
            });
        }
        Ok(())
    }
    /// ID_IPV4_ADDR or ID_IPV6_ADDR.
    pub fn id_type(&self) -> IdType {
        IdType(self.buffer.as_ref()[4])
    }
    pub fn address_bytes(&self) -> &[u8] {
        &self.body()[NAT_OA_FIXED_LEN..]
    }
    /// The address (the view must have been checked).
    pub fn address(&self) -> IpAddr {
        let b = self.address_bytes();
        if b.len() == 16 {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
        }
    }
}

/// A NAT-OA payload's contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OaRepr {
    pub addr: IpAddr,
}

impl OaRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &OaPacket<T>) -> Result<OaRepr> {
        p.check_len()?;
        Ok(OaRepr { addr: p.address() })
    }
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + NAT_OA_FIXED_LEN
            + match self.addr {
                IpAddr::V4(_) => 4,
                IpAddr::V6(_) => 16,
            }
    }
    pub fn emit(&self, buf: &mut [u8], next: PayloadType) {
        let len = self.buffer_len();
        payload::emit_generic(buf, next, len);
        buf[5..8].fill(0);
        match self.addr {
            IpAddr::V4(a) => {
                buf[4] = IdType::IPV4_ADDR.0;
                buf[8..12].copy_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                buf[4] = IdType::IPV6_ADDR.0;
                buf[8..24].copy_from_slice(&a.octets());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use hex_literal::hex;

    #[test]
    fn nat_d_round_trip() {
        // An MD5 NAT-D hash.
        let wire = hex!("14 00 00 14 2a 7f 16 c1 9d 0e 48 33 61 5b 5e 0a 91 c7 24 ee");
        let p = Packet::new_checked(&wire[..]).unwrap();
        assert_eq!(p.next_payload(), PayloadType::NAT_D);
        let r = Repr::parse(&p).unwrap();
        let mut b = [0u8; 20];
        r.emit(&mut b, PayloadType::NAT_D);
        assert_eq!(b, wire);
        all_prefixes_fail(&wire, |b| Repr::parse(&Packet::new_checked(b)?));
        let input = hash_input([1; 8], [2; 8], "10.2.2.1".parse().unwrap(), 500);
        assert_eq!(input.len(), 22);
        assert_eq!(&input[16..], &hex!("0a 02 02 01 01 f4"));
        let input6 = hash_input([1; 8], [2; 8], "2001:db8::1".parse().unwrap(), 4500);
        assert_eq!(input6.len(), 34);
    }

    #[test]
    fn nat_oa() {
        for addr in ["192.168.1.7", "2001:db8::7"] {
            let r = OaRepr {
                addr: addr.parse().unwrap(),
            };
            let mut b = vec![0u8; r.buffer_len()];
            r.emit(&mut b, PayloadType::NONE);
            let p = OaPacket::new_checked(&b[..]).unwrap();
            assert_eq!(OaRepr::parse(&p).unwrap(), r);
            all_prefixes_fail(&b, |b| OaRepr::parse(&OaPacket::new_checked(b)?));
        }
        let bad_type = hex!("00 00 00 0c 02 00 00 00 0a 00 00 01");
        assert_eq!(
            OaPacket::new_checked(&bad_type[..]).unwrap_err(),
            Error::BadValue {
                what: "NAT-OA ID type",
                value: 2
            }
        );
        let bad_len = hex!("00 00 00 0d 01 00 00 00 0a 00 00 01 00");
        assert_eq!(
            OaPacket::new_checked(&bad_len[..]).unwrap_err(),
            Error::BadLength {
                what: "NAT-OA address",
                len: 5,
                expected: 4
            }
        );
    }
}
