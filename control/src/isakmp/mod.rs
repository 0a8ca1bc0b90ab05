//! The ISAKMP (RFC 2408) / IKEv1 (RFC 2409) wire codec, in smoltcp's `wire` style.
//!
//! Every structure of a message has a zero-copy view `Packet<T: AsRef<[u8]>>` (or a named
//! variant such as [`sa::ProposalPacket`]): `new_checked` validates every length field
//! against the buffer, getters read fields in network byte order, setters exist when
//! `T: AsMut<[u8]>`, and `body()` / `as_bytes()` give the raw bytes "as on the wire" for the
//! hashes of RFC 2409 (SAi_b, IDii_b, the Quick Mode HASH(1) input). Each view has a `Repr`
//! that `parse`s from the view and `emit`s into a buffer of `buffer_len()` bytes.
//!
//! A malformed message is an [`Error`] that names the structure and the field that is wrong;
//! parsing never panics and never indexes out of bounds. (`new_unchecked` views may panic on
//! a short buffer when their getters are called, as in smoltcp; `Repr::parse` re-checks.)
//!
//! One concept per file: [`header`] (the fixed header, RFC 2408 3.1), [`payload`] (the
//! generic payload header and the chain walker, 3.2), [`attributes`] (data attributes, 3.3,
//! and the IKE and IPsec DOI attribute registries), [`sa`] (SA, Proposal, Transform, 3.4-3.6),
//! [`ke`], [`id`], [`cert`], [`hash`], [`sig`], [`nonce`], [`notify`], [`delete`], [`vendor`],
//! [`natd`] (NAT-D and NAT-OA, RFC 3947) and [`message`] (a whole message).

#![forbid(unsafe_code)]

/// Why a buffer is not a valid ISAKMP structure of the kind asked for. `what` names the
/// structure or field ("SA payload", "proposal", "ID_IPV4_ADDR data", ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The buffer is shorter than the fixed part of the structure.
    #[error("{what}: {have} bytes, fewer than the {need} its fixed part needs")]
    Truncated {
        what: &'static str,
        need: usize,
        have: usize,
    },
    /// A length field is below the minimum for the structure.
    #[error("{what}: length {len} is below the minimum {min}")]
    LengthTooShort {
        what: &'static str,
        len: usize,
        min: usize,
    },
    /// A length field runs past the bytes available (buffer, message or enclosing payload).
    #[error("{what}: length {len} runs past the {avail} bytes available")]
    LengthOverrun {
        what: &'static str,
        len: usize,
        avail: usize,
    },
    /// A length must be exactly `expected` (an address, an SPI list, ...).
    #[error("{what}: {len} bytes where {expected} are required")]
    BadLength {
        what: &'static str,
        len: usize,
        expected: usize,
    },
    /// Bytes left over after a chain that must fill its container exactly.
    #[error("{what}: {extra} bytes left after the last element")]
    TrailingBytes { what: &'static str, extra: usize },
    /// A chain ran out of bytes before an element with next payload 0.
    #[error("{what}: the chain ends after {offset} bytes without a last element (next payload 0)")]
    Unterminated { what: &'static str, offset: usize },
    /// A sub-chain holds a next-payload value other than the one allowed (RFC 2408 3.5, 3.6).
    #[error("{what}: next payload {value}, only {allowed} or 0 may appear here")]
    BadChain {
        what: &'static str,
        value: u8,
        allowed: u8,
    },
    /// The major version is not 1.
    #[error("ISAKMP version {major}.{minor} is not supported (1.x only)")]
    Version { major: u8, minor: u8 },
    /// A proposal's "# of transforms" disagrees with the transforms present.
    #[error("proposal {proposal}: {declared} transforms declared, {found} present")]
    TransformCount {
        proposal: u8,
        declared: u8,
        found: usize,
    },
    /// A TLV data attribute's length runs past the bytes left in its container.
    #[error("attribute type {attr_type}: length {len} runs past the {avail} bytes left")]
    AttributeOverrun {
        attr_type: u16,
        len: usize,
        avail: usize,
    },
    /// A field holds a value this codec does not accept (DOI, situation, attribute form...).
    #[error("{what}: value {value} is not supported")]
    BadValue { what: &'static str, value: u32 },
    /// A text identity (ID_FQDN, ID_USER_FQDN) is not UTF-8.
    #[error("{what}: not UTF-8 text")]
    NotUtf8 { what: &'static str },
    /// A nonce outside RFC 2409's 8..=256 bytes.
    #[error("nonce of {0} bytes, RFC 2409 requires 8 to 256")]
    NonceLength(usize),
    /// A structure to emit does not fit its 16-bit (or 32-bit) length field.
    #[error("{what}: {len} bytes do not fit its length field")]
    TooLong { what: &'static str, len: usize },
    /// The message has the encryption flag set: decrypt the body, then use
    /// [`message::parse_body`].
    #[error("the message body is encrypted")]
    Encrypted,
}

pub type Result<T> = core::result::Result<T, Error>;

/// Defines a numeric registry as a newtype over the wire integer with named constants, a
/// `name()` and `Display` in IOS's vocabulary (unknown values print as `prefix` + number).
macro_rules! registry {
    (
        $(#[$m:meta])*
        $name:ident($ty:ty), unknown = $unknown:literal;
        $( $(#[$cm:meta])* $c:ident = $v:literal => $s:literal, )*
    ) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $ty);

        impl $name {
            $( $(#[$cm])* pub const $c: $name = $name($v); )*

            /// The name of a known value (IOS debug vocabulary), `None` if unknown.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $v => Some($s), )*
                    _ => None,
                }
            }
        }

        impl From<$ty> for $name {
            fn from(v: $ty) -> Self {
                $name(v)
            }
        }

        impl From<$name> for $ty {
            fn from(v: $name) -> $ty {
                v.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.0 {
                    $( $v => write!(f, concat!(stringify!($name), "::", stringify!($c))), )*
                    v => write!(f, concat!(stringify!($name), "({})"), v),
                }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                match self.name() {
                    Some(s) => f.write_str(s),
                    None => write!(f, concat!($unknown, "{}"), self.0),
                }
            }
        }
    };
}

/// Defines the zero-copy view of a payload that starts with the generic payload header
/// (RFC 2408 3.2): the struct, `new_unchecked`, `new_checked` (generic checks plus the
/// type's own `check_body`), the generic header accessors, `body()` and `as_bytes()`.
macro_rules! payload_packet {
    ($(#[$m:meta])* $name:ident, $what:literal, $min:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone)]
        pub struct $name<T: AsRef<[u8]>> {
            buffer: T,
        }

        impl<T: AsRef<[u8]>> $name<T> {
            /// What error messages call this structure.
            pub const WHAT: &'static str = $what;
            /// The smallest valid payload length, generic header included.
            pub const MIN_LEN: usize = $min;

            /// Wraps a buffer without checks; getters may panic if it is malformed.
            pub fn new_unchecked(buffer: T) -> Self {
                $name { buffer }
            }

            /// Wraps a buffer that starts with this payload, checking the payload length
            /// against the buffer (which may be longer: the rest of the chain) and every
            /// inner length field.
            pub fn new_checked(buffer: T) -> $crate::isakmp::Result<Self> {
                let p = $name { buffer };
                p.check_len()?;
                Ok(p)
            }

            /// Runs the checks of `new_checked`.
            pub fn check_len(&self) -> $crate::isakmp::Result<()> {
                $crate::isakmp::payload::check_generic(self.buffer.as_ref(), $what, $min)?;
                self.check_body()
            }

            pub fn into_inner(self) -> T {
                self.buffer
            }
            /// The type of the payload that follows this one.
            pub fn next_payload(&self) -> $crate::isakmp::PayloadType {
                $crate::isakmp::PayloadType(self.buffer.as_ref()[0])
            }
            /// The reserved byte (sent as 0, ignored on receipt).
            pub fn reserved(&self) -> u8 {
                self.buffer.as_ref()[1]
            }
            /// The payload length field, generic header included.
            pub fn payload_len(&self) -> usize {
                $crate::isakmp::get_u16(self.buffer.as_ref(), 2) as usize
            }
            /// The whole payload, generic header included, up to the payload length.
            pub fn as_bytes(&self) -> &[u8] {
                &self.buffer.as_ref()[..self.payload_len()]
            }
            /// The payload body as on the wire: without its generic header (what RFC 2409
            /// calls `SAi_b`, `IDii_b`).
            pub fn body(&self) -> &[u8] {
                &self.buffer.as_ref()[$crate::isakmp::payload::HEADER_LEN..self.payload_len()]
            }
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $name<T> {
            pub fn set_next_payload(&mut self, v: $crate::isakmp::PayloadType) {
                self.buffer.as_mut()[0] = v.0;
            }
            pub fn set_payload_len(&mut self, v: u16) {
                $crate::isakmp::set_u16(self.buffer.as_mut(), 2, v);
            }
            pub fn body_mut(&mut self) -> &mut [u8] {
                let len = self.payload_len();
                &mut self.buffer.as_mut()[$crate::isakmp::payload::HEADER_LEN..len]
            }
        }
    };
}

/// Defines a payload whose body is one opaque byte string (KE, HASH, SIG, VID, NAT-D): the
/// view (via `payload_packet!`) with `data()`, and `Repr { data }`.
macro_rules! opaque_payload {
    ($(#[$m:meta])* $what:literal, min_body = $min:expr) => {
        payload_packet!(
            $(#[$m])*
            Packet, $what, $crate::isakmp::payload::HEADER_LEN + $min
        );

        impl<T: AsRef<[u8]>> Packet<T> {
            fn check_body(&self) -> $crate::isakmp::Result<()> {
                Ok(())
            }
            /// The payload data (the whole body).
            pub fn data(&self) -> &[u8] {
                self.body()
            }
        }

        /// The payload's contents: one opaque byte string.
        #[derive(Clone, Debug, PartialEq, Eq, Default)]
        pub struct Repr {
            pub data: Vec<u8>,
        }

        impl Repr {
            /// Parses a view (re-checking its lengths).
            pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> $crate::isakmp::Result<Repr> {
                p.check_len()?;
                Ok(Repr {
                    data: p.data().to_vec(),
                })
            }
            /// The payload length, generic header included.
            pub fn buffer_len(&self) -> usize {
                $crate::isakmp::payload::HEADER_LEN + self.data.len()
            }
            /// Writes the payload (generic header with `next`, then the data) into the start
            /// of `buf`, which must hold `buffer_len()` bytes.
            pub fn emit(&self, buf: &mut [u8], next: $crate::isakmp::PayloadType) {
                let len = self.buffer_len();
                $crate::isakmp::payload::emit_generic(buf, next, len);
                buf[$crate::isakmp::payload::HEADER_LEN..len].copy_from_slice(&self.data);
            }
        }
    };
}

pub mod attributes;
pub mod cert;
pub mod delete;
pub mod hash;
pub mod header;
pub mod id;
pub mod ke;
pub mod message;
pub mod natd;
pub mod nonce;
pub mod notify;
pub mod payload;
pub mod sa;
pub mod sig;
pub mod vendor;

pub use attributes::{AttrValue, Attribute};
pub use header::{ExchangeType, Flags};
pub use message::{Message, Payload};

registry! {
    /// Payload types (RFC 2408 3.1, RFC 3947 for NAT-D/NAT-OA and the draft values).
    /// `Display` gives the word of IOS's "processing ... payload" lines.
    PayloadType(u8), unknown = "payload type ";
    /// No next payload: the last payload of a chain.
    NONE = 0 => "NONE",
    SA = 1 => "SA",
    PROPOSAL = 2 => "proposal",
    TRANSFORM = 3 => "transform",
    KE = 4 => "KE",
    ID = 5 => "ID",
    CERT = 6 => "CERT",
    CERT_REQ = 7 => "CERT_REQ",
    HASH = 8 => "HASH",
    SIG = 9 => "SIG",
    NONCE = 10 => "NONCE",
    NOTIFY = 11 => "NOTIFY",
    DELETE = 12 => "DELETE",
    VENDOR_ID = 13 => "vendor id",
    /// NAT-D, RFC 3947.
    NAT_D = 20 => "NAT-D",
    /// NAT-OA, RFC 3947.
    NAT_OA = 21 => "NAT-OA",
    /// NAT-D of draft-ietf-ipsec-nat-t-ike-02/03.
    NAT_D_DRAFT = 130 => "NAT-D (draft)",
    /// NAT-OA of draft-ietf-ipsec-nat-t-ike-02/03.
    NAT_OA_DRAFT = 131 => "NAT-OA (draft)",
}

registry! {
    /// Protocol identifiers (RFC 2407 4.4.1), in proposals, notifications and deletes.
    ProtocolId(u8), unknown = "protocol ";
    RESERVED = 0 => "RESERVED",
    ISAKMP = 1 => "PROTO_ISAKMP",
    IPSEC_AH = 2 => "PROTO_IPSEC_AH",
    IPSEC_ESP = 3 => "PROTO_IPSEC_ESP",
    IPCOMP = 4 => "PROTO_IPCOMP",
}

/// Domains of interpretation (RFC 2408 3.4, RFC 2407 4.2).
pub mod doi {
    /// The generic ISAKMP DOI (some Informational notifications carry it).
    pub const ISAKMP: u32 = 0;
    /// The IPsec DOI, the only one IKEv1 negotiates.
    pub const IPSEC: u32 = 1;
}

/// Situation bits of the IPsec DOI (RFC 2407 4.2).
pub mod situation {
    pub const IDENTITY_ONLY: u32 = 0x01;
    pub const SECRECY: u32 = 0x02;
    pub const INTEGRITY: u32 = 0x04;
}

#[inline]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
#[inline]
pub(crate) fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline]
pub(crate) fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Test helpers shared by the files of this module.
#[cfg(test)]
pub(crate) mod testutil {
    /// Asserts that `f` fails on every strict prefix of `bytes` (and never panics: a panic
    /// fails the test).
    pub fn all_prefixes_fail<R: core::fmt::Debug>(
        bytes: &[u8],
        f: impl Fn(&[u8]) -> super::Result<R>,
    ) {
        for n in 0..bytes.len() {
            let r = f(&bytes[..n]);
            assert!(r.is_err(), "prefix of {n} bytes parsed: {r:?}");
        }
    }
}
