//! The fixed ISAKMP header (RFC 2408 3.1): initiator and responder cookies, next payload,
//! version, exchange type (RFC 2408 4, RFC 2409 5 and 5.5), flags, message ID and length.

use core::fmt;

use super::{get_u32, set_u32, Error, PayloadType, Result};

/// The header is 28 bytes.
pub const HEADER_LEN: usize = 28;
/// Version 1.0 as sent: major 1 in the high nibble, minor 0.
pub const VERSION_1_0: u8 = 0x10;

registry! {
    /// Exchange types (RFC 2408 3.1, RFC 2409). `Display` uses IOS's `OAK_*` names.
    ExchangeType(u8), unknown = "exchange ";
    NONE = 0 => "NONE",
    BASE = 1 => "ISAKMP_BASE",
    /// Identity protection: IKE Main Mode.
    IDENTITY_PROTECTION = 2 => "OAK_MM",
    AUTH_ONLY = 3 => "ISAKMP_AUTH_ONLY",
    /// IKE Aggressive Mode.
    AGGRESSIVE = 4 => "OAK_AG",
    INFORMATIONAL = 5 => "OAK_INFO",
    /// Transaction exchange (Mode Config / XAUTH, draft-ietf-ipsec-isakmp-mode-cfg).
    TRANSACTION = 6 => "OAK_TRANS",
    QUICK_MODE = 32 => "OAK_QM",
    NEW_GROUP_MODE = 33 => "OAK_NEWGROUP",
}

impl ExchangeType {
    /// Main Mode is identity protection.
    pub const MAIN_MODE: ExchangeType = ExchangeType::IDENTITY_PROTECTION;
}

/// The flags octet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(pub u8);

impl Flags {
    /// E: the payloads after the header are encrypted.
    pub const ENCRYPTION: u8 = 0x01;
    /// C: commit (RFC 2408 3.1).
    pub const COMMIT: u8 = 0x02;
    /// A: authentication only.
    pub const AUTH_ONLY: u8 = 0x04;

    pub fn encryption(self) -> bool {
        self.0 & Self::ENCRYPTION != 0
    }
    pub fn commit(self) -> bool {
        self.0 & Self::COMMIT != 0
    }
    pub fn auth_only(self) -> bool {
        self.0 & Self::AUTH_ONLY != 0
    }
    pub fn with_encryption(self, on: bool) -> Flags {
        self.with(Self::ENCRYPTION, on)
    }
    pub fn with_commit(self, on: bool) -> Flags {
        self.with(Self::COMMIT, on)
    }
    pub fn with_auth_only(self, on: bool) -> Flags {
        self.with(Self::AUTH_ONLY, on)
    }
    fn with(self, bit: u8, on: bool) -> Flags {
        Flags(if on { self.0 | bit } else { self.0 & !bit })
    }
}

impl fmt::Debug for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Flags({:#04x}", self.0)?;
        for (on, n) in [
            (self.encryption(), " E"),
            (self.commit(), " C"),
            (self.auth_only(), " A"),
        ] {
            if on {
                f.write_str(n)?;
            }
        }
        f.write_str(")")
    }
}

/// A view of an ISAKMP message, header first.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Checks the header length, major version 1, and that the length field covers at least
    /// the header and no more than the buffer. The buffer may be longer than the message;
    /// [`Packet::length`] is authoritative (a whole-message parse insists on equality).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    /// Runs the checks of `new_checked`.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "ISAKMP header",
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        let (major, minor) = (b[17] >> 4, b[17] & 0x0f);
        if major != 1 {
            return Err(Error::Version { major, minor });
        }
        let len = get_u32(b, 24) as usize;
        if len < HEADER_LEN {
            return Err(Error::LengthTooShort {
                what: "ISAKMP message",
                len,
                min: HEADER_LEN,
            });
        }
        if len > b.len() {
            return Err(Error::LengthOverrun {
                what: "ISAKMP message",
                len,
                avail: b.len(),
            });
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    pub fn initiator_cookie(&self) -> [u8; 8] {
        let mut c = [0; 8];
        c.copy_from_slice(&self.buffer.as_ref()[0..8]);
        c
    }
    pub fn responder_cookie(&self) -> [u8; 8] {
        let mut c = [0; 8];
        c.copy_from_slice(&self.buffer.as_ref()[8..16]);
        c
    }
    /// Both cookies, as the SPI of the ISAKMP SA in notifications and deletes.
    pub fn cookies(&self) -> &[u8] {
        &self.buffer.as_ref()[0..16]
    }
    /// The type of the first payload.
    pub fn next_payload(&self) -> PayloadType {
        PayloadType(self.buffer.as_ref()[16])
    }
    pub fn major_version(&self) -> u8 {
        self.buffer.as_ref()[17] >> 4
    }
    pub fn minor_version(&self) -> u8 {
        self.buffer.as_ref()[17] & 0x0f
    }
    pub fn exchange_type(&self) -> ExchangeType {
        ExchangeType(self.buffer.as_ref()[18])
    }
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[19])
    }
    pub fn message_id(&self) -> u32 {
        get_u32(self.buffer.as_ref(), 20)
    }
    /// The length field: the whole message, header included.
    pub fn length(&self) -> usize {
        get_u32(self.buffer.as_ref(), 24) as usize
    }
    /// The header's 28 bytes.
    pub fn header_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..HEADER_LEN]
    }
    /// The payloads after the header, up to the length (encrypted if the E flag is set).
    pub fn body(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.length()]
    }
    /// The whole message, up to the length.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.length()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    pub fn set_initiator_cookie(&mut self, c: [u8; 8]) {
        self.buffer.as_mut()[0..8].copy_from_slice(&c);
    }
    pub fn set_responder_cookie(&mut self, c: [u8; 8]) {
        self.buffer.as_mut()[8..16].copy_from_slice(&c);
    }
    pub fn set_next_payload(&mut self, v: PayloadType) {
        self.buffer.as_mut()[16] = v.0;
    }
    pub fn set_version(&mut self, v: u8) {
        self.buffer.as_mut()[17] = v;
    }
    pub fn set_exchange_type(&mut self, v: ExchangeType) {
        self.buffer.as_mut()[18] = v.0;
    }
    pub fn set_flags(&mut self, v: Flags) {
        self.buffer.as_mut()[19] = v.0;
    }
    pub fn set_message_id(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 20, v);
    }
    pub fn set_length(&mut self, v: u32) {
        set_u32(self.buffer.as_mut(), 24, v);
    }
    pub fn body_mut(&mut self) -> &mut [u8] {
        let len = self.length();
        &mut self.buffer.as_mut()[HEADER_LEN..len]
    }
}

/// The header's fields. `length` is the whole message's length; [`super::Message::emit`]
/// computes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Repr {
    pub initiator_cookie: [u8; 8],
    pub responder_cookie: [u8; 8],
    pub next_payload: PayloadType,
    pub exchange_type: ExchangeType,
    pub flags: Flags,
    pub message_id: u32,
    pub length: u32,
}

impl Repr {
    /// Parses a view (re-checking its lengths). The minor version is not kept: 1.0 is
    /// emitted.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Repr> {
        p.check_len()?;
        Ok(Repr {
            initiator_cookie: p.initiator_cookie(),
            responder_cookie: p.responder_cookie(),
            next_payload: p.next_payload(),
            exchange_type: p.exchange_type(),
            flags: p.flags(),
            message_id: p.message_id(),
            length: p.length() as u32,
        })
    }

    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the 28-byte header (version 1.0) into the start of `buf`.
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Packet::new_unchecked(&mut buf[..HEADER_LEN]);
        p.set_initiator_cookie(self.initiator_cookie);
        p.set_responder_cookie(self.responder_cookie);
        p.set_next_payload(self.next_payload);
        p.set_version(VERSION_1_0);
        p.set_exchange_type(self.exchange_type);
        p.set_flags(self.flags);
        p.set_message_id(self.message_id);
        p.set_length(self.length);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isakmp::testutil::all_prefixes_fail;
    use hex_literal::hex;

    // The header of a Quick Mode message 1 (M-ID 0xf7a2cee7 as in the IOS debug of the
    // reference), encrypted, 172 bytes long, first payload HASH.
    const QM1_HDR: [u8; 28] = hex!(
        "c4 7f 4a 2c 5e 01 9b 22  8d 33 a1 07 42 f0 19 5b"
        "08 10 20 01 f7 a2 ce e7  00 00 00 ac"
    );

    fn qm1() -> Vec<u8> {
        let mut v = QM1_HDR.to_vec();
        v.resize(0xac, 0x5a);
        v
    }

    #[test]
    fn parse_fields() {
        let m = qm1();
        let p = Packet::new_checked(&m[..]).unwrap();
        assert_eq!(p.initiator_cookie(), hex!("c47f4a2c5e019b22"));
        assert_eq!(p.responder_cookie(), hex!("8d33a10742f0195b"));
        assert_eq!(p.next_payload(), PayloadType::HASH);
        assert_eq!((p.major_version(), p.minor_version()), (1, 0));
        assert_eq!(p.exchange_type(), ExchangeType::QUICK_MODE);
        assert!(p.flags().encryption() && !p.flags().commit() && !p.flags().auth_only());
        assert_eq!(p.message_id(), 0xf7a2cee7);
        assert_eq!(p.length(), 172);
        assert_eq!(p.body().len(), 144);
        assert_eq!(p.cookies().len(), 16);
        let r = Repr::parse(&p).unwrap();
        let mut out = [0u8; 28];
        r.emit(&mut out);
        assert_eq!(out, QM1_HDR);
        assert_eq!(r.exchange_type.to_string(), "OAK_QM");
        assert_eq!(ExchangeType::MAIN_MODE.to_string(), "OAK_MM");
        assert_eq!(ExchangeType(99).to_string(), "exchange 99");
        assert_eq!(format!("{:?}", r.flags), "Flags(0x01 E)");
    }

    #[test]
    fn setters_and_flags() {
        let f = Flags::default()
            .with_encryption(true)
            .with_commit(true)
            .with_auth_only(true);
        assert_eq!(f.0, 7);
        assert_eq!(f.with_commit(false).0, 5);
        let mut b = [0u8; 28];
        let r = Repr {
            initiator_cookie: [1; 8],
            responder_cookie: [2; 8],
            next_payload: PayloadType::SA,
            exchange_type: ExchangeType::AGGRESSIVE,
            flags: f,
            message_id: 9,
            length: 28,
        };
        r.emit(&mut b);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Repr::parse(&p).unwrap(), r);
        assert!(p.body().is_empty());
    }

    #[test]
    fn malformed_headers_are_errors() {
        let m = qm1();
        all_prefixes_fail(&m, |b| Packet::new_checked(b).map(|_| ()));
        assert_eq!(
            Packet::new_checked(&m[..27]).unwrap_err(),
            Error::Truncated {
                what: "ISAKMP header",
                need: 28,
                have: 27
            }
        );
        let mut v2 = m.clone();
        v2[17] = 0x20;
        assert_eq!(
            Packet::new_checked(&v2[..]).unwrap_err(),
            Error::Version { major: 2, minor: 0 }
        );
        let mut short = m.clone();
        short[24..28].copy_from_slice(&27u32.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&short[..]).unwrap_err(),
            Error::LengthTooShort {
                what: "ISAKMP message",
                len: 27,
                min: 28
            }
        );
        let mut long = m.clone();
        long[24..28].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            Packet::new_checked(&long[..]).unwrap_err(),
            Error::LengthOverrun {
                what: "ISAKMP message",
                len: u32::MAX as usize,
                avail: 172
            }
        );
        // A minor version other than 0 is accepted (RFC 2408 leaves it to the receiver).
        let mut minor = m;
        minor[17] = 0x11;
        assert_eq!(Packet::new_checked(&minor[..]).unwrap().minor_version(), 1);
    }
}
