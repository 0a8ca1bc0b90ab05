//! Data attributes (RFC 2408 3.3) in TV form (AF bit set, 16-bit value) and TLV form
//! (16-bit length, variable value); the IKE phase 1 attribute registry (RFC 2409
//! appendix A, AES from RFC 3602, SHA-2 from RFC 4868); the IPsec DOI attributes for phase 2
//! (RFC 2407 4.5, UDP encapsulation modes of RFC 3947 and the draft values 61443/61444); and
//! the transform identifiers (RFC 2407 4.4.2-4.4.4, AES-GCM from RFC 4106).
//!
//! `Display` of the registries and of [`Phase1Attribute`] / [`Phase2Attribute`] follows the
//! words of IOS's `debug crypto isakmp` ("encryption 3DES-CBC", "hash MD5", "auth RSA sig",
//! "default group 2", "life duration (VPI) of 0x0 0x1 0x51 0x80", "encaps is 1 (Tunnel)").

use core::fmt;

use super::{get_u16, set_u16, Error, Result};

/// The AF bit: TV form.
pub const AF_TV: u16 = 0x8000;
/// The 4 bytes of a TV attribute, and the fixed part of a TLV one.
pub const HEADER_LEN: usize = 4;

/// A view of one data attribute at the start of a buffer.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Checks the fixed part and, for a TLV attribute, that the value fits the buffer.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }

    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated {
                what: "data attribute",
                need: HEADER_LEN,
                have: b.len(),
            });
        }
        if get_u16(b, 0) & AF_TV == 0 {
            let len = get_u16(b, 2) as usize;
            if HEADER_LEN + len > b.len() {
                return Err(Error::AttributeOverrun {
                    attr_type: get_u16(b, 0) & !AF_TV,
                    len,
                    avail: b.len() - HEADER_LEN,
                });
            }
        }
        Ok(())
    }

    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// True for the TV form (AF = 1).
    pub fn is_basic(&self) -> bool {
        get_u16(self.buffer.as_ref(), 0) & AF_TV != 0
    }
    /// The attribute type, without the AF bit.
    pub fn attr_type(&self) -> u16 {
        get_u16(self.buffer.as_ref(), 0) & !AF_TV
    }
    /// The value length: 2 for TV, the length field for TLV.
    pub fn value_len(&self) -> usize {
        if self.is_basic() {
            2
        } else {
            get_u16(self.buffer.as_ref(), 2) as usize
        }
    }
    /// The value bytes (for TV, the 2 bytes of the value field).
    pub fn value(&self) -> &[u8] {
        if self.is_basic() {
            &self.buffer.as_ref()[2..4]
        } else {
            &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.value_len()]
        }
    }
    /// The attribute's length on the wire.
    pub fn total_len(&self) -> usize {
        if self.is_basic() {
            HEADER_LEN
        } else {
            HEADER_LEN + self.value_len()
        }
    }
    /// The attribute as on the wire.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.total_len()]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the type and the AF bit.
    pub fn set_type(&mut self, attr_type: u16, basic: bool) {
        let v = (attr_type & !AF_TV) | if basic { AF_TV } else { 0 };
        set_u16(self.buffer.as_mut(), 0, v);
    }
    /// Sets the value of a TV attribute or the length of a TLV one.
    pub fn set_value_or_len(&mut self, v: u16) {
        set_u16(self.buffer.as_mut(), 2, v);
    }
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AttrValue {
    /// TV form: 16 bits.
    Basic(u16),
    /// TLV form: variable length.
    Variable(Vec<u8>),
}

impl AttrValue {
    /// A number in the shortest form IOS uses: basic if it fits 16 bits, else 4 bytes
    /// (8 beyond 32 bits). IOS sends a life duration of 86400 as 4 bytes `00 01 51 80`.
    pub fn number(v: u64) -> AttrValue {
        if v <= u16::MAX as u64 {
            AttrValue::Basic(v as u16)
        } else if v <= u32::MAX as u64 {
            AttrValue::Variable((v as u32).to_be_bytes().to_vec())
        } else {
            AttrValue::Variable(v.to_be_bytes().to_vec())
        }
    }

    /// The value as a big-endian integer, `None` if it does not fit 64 bits (leading zero
    /// bytes are allowed).
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            AttrValue::Basic(v) => Some(*v as u64),
            AttrValue::Variable(b) => {
                let skip = b.len().saturating_sub(8);
                if b[..skip].iter().any(|&x| x != 0) {
                    return None;
                }
                Some(b[skip..].iter().fold(0u64, |a, &x| a << 8 | x as u64))
            }
        }
    }

    /// The value of an attribute that RFC 2409 / RFC 2407 define as basic. A TLV form whose
    /// value fits 16 bits is accepted too.
    fn basic(&self, attr_type: u16) -> Result<u16> {
        match self.as_u64() {
            Some(v) if v <= u16::MAX as u64 => Ok(v as u16),
            _ => Err(Error::BadValue {
                what: "basic attribute with a long value, type",
                value: attr_type as u32,
            }),
        }
    }
}

impl fmt::Display for AttrValue {
    /// IOS style: `(basic) of 3600` or `(VPI) of 0x0 0x1 0x51 0x80`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttrValue::Basic(v) => write!(f, "(basic) of {v}"),
            AttrValue::Variable(b) => {
                f.write_str("(VPI) of")?;
                for x in b {
                    write!(f, " {x:#x}")?;
                }
                Ok(())
            }
        }
    }
}

/// One data attribute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// The type, without the AF bit (15 bits).
    pub kind: u16,
    pub value: AttrValue,
}

impl Attribute {
    pub fn basic(kind: u16, v: u16) -> Attribute {
        Attribute {
            kind,
            value: AttrValue::Basic(v),
        }
    }
    pub fn variable(kind: u16, v: Vec<u8>) -> Attribute {
        Attribute {
            kind,
            value: AttrValue::Variable(v),
        }
    }

    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Attribute> {
        p.check_len()?;
        let value = if p.is_basic() {
            AttrValue::Basic(get_u16(p.value(), 0))
        } else {
            AttrValue::Variable(p.value().to_vec())
        };
        Ok(Attribute {
            kind: p.attr_type(),
            value,
        })
    }

    pub fn buffer_len(&self) -> usize {
        match &self.value {
            AttrValue::Basic(_) => HEADER_LEN,
            AttrValue::Variable(v) => HEADER_LEN + v.len(),
        }
    }

    /// Writes the attribute into the start of `buf` (`buffer_len()` bytes). Panics if a
    /// variable value is longer than 65535 bytes.
    pub fn emit(&self, buf: &mut [u8]) {
        let mut p = Packet::new_unchecked(&mut buf[..]);
        match &self.value {
            AttrValue::Basic(v) => {
                p.set_type(self.kind, true);
                p.set_value_or_len(*v);
            }
            AttrValue::Variable(v) => {
                let len = u16::try_from(v.len()).expect("attribute value over 65535 bytes");
                p.set_type(self.kind, false);
                p.set_value_or_len(len);
                buf[HEADER_LEN..HEADER_LEN + v.len()].copy_from_slice(v);
            }
        }
    }
}

impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attribute {} {}", self.kind, self.value)
    }
}

/// Iterates over the attributes packed in `region` (the rest of a transform or a
/// notification), yielding views bounded to each attribute. Stops after the first error.
#[derive(Clone, Debug)]
pub struct AttributeIter<'a> {
    region: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> AttributeIter<'a> {
    pub fn new(region: &'a [u8]) -> Self {
        AttributeIter {
            region,
            offset: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for AttributeIter<'a> {
    type Item = Result<Packet<&'a [u8]>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.offset == self.region.len() {
            return None;
        }
        let rest = &self.region[self.offset..];
        match Packet::new_checked(rest) {
            Ok(p) => {
                let n = p.total_len();
                self.offset += n;
                Some(Ok(Packet::new_unchecked(&rest[..n])))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Parses all the attributes of `region`, which they must fill exactly.
pub fn parse_all(region: &[u8]) -> Result<Vec<Attribute>> {
    AttributeIter::new(region)
        .map(|p| Attribute::parse(&p?))
        .collect()
}

/// The bytes `emit_all` writes.
pub fn buffer_len_all(attrs: &[Attribute]) -> usize {
    attrs.iter().map(Attribute::buffer_len).sum()
}

/// Writes attributes one after the other into the start of `buf`; returns the length.
pub fn emit_all(attrs: &[Attribute], buf: &mut [u8]) -> usize {
    let mut at = 0;
    for a in attrs {
        a.emit(&mut buf[at..]);
        at += a.buffer_len();
    }
    at
}

registry! {
    /// IKE phase 1 attribute types (RFC 2409 appendix A).
    IkeAttrType(u16), unknown = "attribute ";
    ENCRYPTION_ALGORITHM = 1 => "encryption",
    HASH_ALGORITHM = 2 => "hash",
    AUTHENTICATION_METHOD = 3 => "auth",
    GROUP_DESCRIPTION = 4 => "group",
    GROUP_TYPE = 5 => "group type",
    GROUP_PRIME = 6 => "group prime",
    GROUP_GENERATOR_ONE = 7 => "group generator one",
    GROUP_GENERATOR_TWO = 8 => "group generator two",
    GROUP_CURVE_A = 9 => "group curve A",
    GROUP_CURVE_B = 10 => "group curve B",
    LIFE_TYPE = 11 => "life type",
    LIFE_DURATION = 12 => "life duration",
    PRF = 13 => "PRF",
    KEY_LENGTH = 14 => "keylength",
    FIELD_SIZE = 15 => "field size",
    GROUP_ORDER = 16 => "group order",
}

registry! {
    /// Phase 1 encryption algorithms (RFC 2409 appendix A, AES from RFC 3602).
    EncryptionAlgorithm(u16), unknown = "";
    DES_CBC = 1 => "DES-CBC",
    IDEA_CBC = 2 => "IDEA-CBC",
    BLOWFISH_CBC = 3 => "Blowfish-CBC",
    RC5_R16_B64_CBC = 4 => "RC5-R16-B64-CBC",
    TRIPLE_DES_CBC = 5 => "3DES-CBC",
    CAST_CBC = 6 => "CAST-CBC",
    AES_CBC = 7 => "AES-CBC",
}

registry! {
    /// Phase 1 hash algorithms (RFC 2409 appendix A, SHA-2 from RFC 4868).
    HashAlgorithm(u16), unknown = "";
    MD5 = 1 => "MD5",
    SHA = 2 => "SHA",
    TIGER = 3 => "Tiger",
    SHA2_256 = 4 => "SHA256",
    SHA2_384 = 5 => "SHA384",
    SHA2_512 = 6 => "SHA512",
}

registry! {
    /// Phase 1 authentication methods (RFC 2409 appendix A; XAUTH values of
    /// draft-ietf-ipsec-isakmp-xauth).
    AuthMethod(u16), unknown = "";
    PRE_SHARED = 1 => "pre-share",
    DSS_SIG = 2 => "DSS sig",
    RSA_SIG = 3 => "RSA sig",
    RSA_ENC = 4 => "RSA encr",
    RSA_REV_ENC = 5 => "RSA rev encr",
    XAUTH_INIT_PRE_SHARED = 65001 => "XAUTHInitPreShared",
    XAUTH_RESP_PRE_SHARED = 65002 => "XAUTHRespPreShared",
    XAUTH_INIT_RSA = 65005 => "XAUTHInitRSA",
    XAUTH_RESP_RSA = 65006 => "XAUTHRespRSA",
}

registry! {
    /// Diffie-Hellman groups (RFC 2409 6, RFC 3526, RFC 5903, RFC 5114): the same numbers in
    /// phase 1 (group description) and phase 2 (PFS group).
    GroupDescription(u16), unknown = "Diffie-Hellman group ";
    MODP_768 = 1 => "Diffie-Hellman group 1",
    MODP_1024 = 2 => "Diffie-Hellman group 2",
    MODP_1536 = 5 => "Diffie-Hellman group 5",
    MODP_2048 = 14 => "Diffie-Hellman group 14",
    MODP_3072 = 15 => "Diffie-Hellman group 15",
    MODP_4096 = 16 => "Diffie-Hellman group 16",
    MODP_6144 = 17 => "Diffie-Hellman group 17",
    MODP_8192 = 18 => "Diffie-Hellman group 18",
    ECP_256 = 19 => "Diffie-Hellman group 19",
    ECP_384 = 20 => "Diffie-Hellman group 20",
    ECP_521 = 21 => "Diffie-Hellman group 21",
    MODP_2048_256 = 24 => "Diffie-Hellman group 24",
}

registry! {
    /// Life types, the same in phase 1 (RFC 2409) and phase 2 (RFC 2407 4.5).
    LifeType(u16), unknown = "";
    SECONDS = 1 => "seconds",
    KILOBYTES = 2 => "kilobytes",
}

registry! {
    /// IPsec DOI SA attribute types for phase 2 (RFC 2407 4.5, RFC 4304 for ESN).
    IpsecAttrType(u16), unknown = "attribute ";
    SA_LIFE_TYPE = 1 => "SA life type",
    SA_LIFE_DURATION = 2 => "SA life duration",
    GROUP_DESCRIPTION = 3 => "group",
    ENCAPSULATION_MODE = 4 => "encaps",
    AUTH_ALGORITHM = 5 => "authenticator",
    KEY_LENGTH = 6 => "key length",
    KEY_ROUNDS = 7 => "key rounds",
    COMPRESS_DICTIONARY_SIZE = 8 => "compress dictionary size",
    COMPRESS_PRIVATE_ALGORITHM = 9 => "compress private algorithm",
    ECN_TUNNEL = 10 => "ECN tunnel",
    EXTENDED_SEQUENCE_NUMBER = 11 => "extended sequence number",
}

registry! {
    /// Encapsulation modes (RFC 2407 4.5; UDP modes of RFC 3947 and of the NAT-T drafts).
    EncapsulationMode(u16), unknown = "";
    TUNNEL = 1 => "Tunnel",
    TRANSPORT = 2 => "Transport",
    UDP_TUNNEL = 3 => "Tunnel-UDP",
    UDP_TRANSPORT = 4 => "Transport-UDP",
    /// UDP-Encapsulated-Tunnel of draft-ietf-ipsec-nat-t-ike-02/03.
    UDP_TUNNEL_DRAFT = 61443 => "Tunnel-UDP",
    /// UDP-Encapsulated-Transport of draft-ietf-ipsec-nat-t-ike-02/03.
    UDP_TRANSPORT_DRAFT = 61444 => "Transport-UDP",
}

impl EncapsulationMode {
    /// True for the tunnel modes, UDP-encapsulated or not.
    pub fn is_tunnel(self) -> bool {
        matches!(self.0, 1 | 3 | 61443)
    }
    /// True for the UDP-encapsulated modes (RFC 3947 or draft).
    pub fn is_udp(self) -> bool {
        matches!(self.0, 3 | 4 | 61443 | 61444)
    }
}

registry! {
    /// Phase 2 authentication algorithms (RFC 2407 4.5, RFC 4868).
    AuthAlgorithm(u16), unknown = "";
    HMAC_MD5 = 1 => "HMAC-MD5",
    HMAC_SHA = 2 => "HMAC-SHA",
    DES_MAC = 3 => "DES-MAC",
    KPDK = 4 => "KPDK",
    HMAC_SHA2_256 = 5 => "HMAC-SHA256",
    HMAC_SHA2_384 = 6 => "HMAC-SHA384",
    HMAC_SHA2_512 = 7 => "HMAC-SHA512",
}

registry! {
    /// Transform identifiers of protocol ISAKMP (RFC 2407 4.4.2).
    IsakmpTransformId(u8), unknown = "transform id ";
    KEY_IKE = 1 => "KEY_IKE",
}

registry! {
    /// ESP transform identifiers (RFC 2407 4.4.4, RFC 3602, RFC 3686, RFC 4106, RFC 4309).
    EspTransformId(u8), unknown = "ESP transform ";
    DES_IV64 = 1 => "ESP_DES_IV64",
    DES = 2 => "ESP_DES",
    TRIPLE_DES = 3 => "ESP_3DES",
    RC5 = 4 => "ESP_RC5",
    IDEA = 5 => "ESP_IDEA",
    CAST = 6 => "ESP_CAST",
    BLOWFISH = 7 => "ESP_BLOWFISH",
    TRIPLE_IDEA = 8 => "ESP_3IDEA",
    DES_IV32 = 9 => "ESP_DES_IV32",
    RC4 = 10 => "ESP_RC4",
    NULL = 11 => "ESP_NULL",
    AES = 12 => "ESP_AES",
    AES_CTR = 13 => "ESP_AES_CTR",
    AES_CCM_8 = 14 => "ESP_AES_CCM_8",
    AES_CCM_12 = 15 => "ESP_AES_CCM_12",
    AES_CCM_16 = 16 => "ESP_AES_CCM_16",
    AES_GCM_8 = 18 => "ESP_AES_GCM_8",
    AES_GCM_12 = 19 => "ESP_AES_GCM_12",
    AES_GCM_16 = 20 => "ESP_AES_GCM_16",
    NULL_AUTH_AES_GMAC = 21 => "ESP_NULL_AUTH_AES_GMAC",
}

registry! {
    /// AH transform identifiers (RFC 2407 4.4.3, RFC 4868).
    AhTransformId(u8), unknown = "AH transform ";
    MD5 = 2 => "AH_MD5",
    SHA = 3 => "AH_SHA",
    DES = 4 => "AH_DES",
    SHA2_256 = 5 => "AH_SHA2_256",
    SHA2_384 = 6 => "AH_SHA2_384",
    SHA2_512 = 7 => "AH_SHA2_512",
}

/// A phase 1 (protocol ISAKMP, transform KEY_IKE) attribute, typed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase1Attribute {
    Encryption(EncryptionAlgorithm),
    Hash(HashAlgorithm),
    Auth(AuthMethod),
    Group(GroupDescription),
    LifeType(LifeType),
    /// Seconds or kilobytes, per the preceding life type; TV or TLV as received.
    LifeDuration(AttrValue),
    KeyLength(u16),
    /// Any other attribute (group type, prime, PRF, ...), as received.
    Other(Attribute),
}

impl Phase1Attribute {
    /// Interprets a phase 1 attribute. A basic-only attribute in TLV form whose value does
    /// not fit 16 bits is an error.
    pub fn from_attribute(a: &Attribute) -> Result<Phase1Attribute> {
        let b = || a.value.basic(a.kind);
        Ok(match IkeAttrType(a.kind) {
            IkeAttrType::ENCRYPTION_ALGORITHM => Self::Encryption(EncryptionAlgorithm(b()?)),
            IkeAttrType::HASH_ALGORITHM => Self::Hash(HashAlgorithm(b()?)),
            IkeAttrType::AUTHENTICATION_METHOD => Self::Auth(AuthMethod(b()?)),
            IkeAttrType::GROUP_DESCRIPTION => Self::Group(GroupDescription(b()?)),
            IkeAttrType::LIFE_TYPE => Self::LifeType(LifeType(b()?)),
            IkeAttrType::LIFE_DURATION => Self::LifeDuration(a.value.clone()),
            IkeAttrType::KEY_LENGTH => Self::KeyLength(b()?),
            _ => Self::Other(a.clone()),
        })
    }

    /// The attribute to emit.
    pub fn to_attribute(&self) -> Attribute {
        let basic = |t: IkeAttrType, v: u16| Attribute::basic(t.0, v);
        match self {
            Self::Encryption(v) => basic(IkeAttrType::ENCRYPTION_ALGORITHM, v.0),
            Self::Hash(v) => basic(IkeAttrType::HASH_ALGORITHM, v.0),
            Self::Auth(v) => basic(IkeAttrType::AUTHENTICATION_METHOD, v.0),
            Self::Group(v) => basic(IkeAttrType::GROUP_DESCRIPTION, v.0),
            Self::LifeType(v) => basic(IkeAttrType::LIFE_TYPE, v.0),
            Self::LifeDuration(v) => Attribute {
                kind: IkeAttrType::LIFE_DURATION.0,
                value: v.clone(),
            },
            Self::KeyLength(v) => basic(IkeAttrType::KEY_LENGTH, *v),
            Self::Other(a) => a.clone(),
        }
    }
}

impl fmt::Display for Phase1Attribute {
    /// The line IOS prints under "Checking ISAKMP transform N against priority P policy".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encryption(v) => write!(f, "encryption {v}"),
            Self::Hash(v) => write!(f, "hash {v}"),
            Self::Auth(v) => write!(f, "auth {v}"),
            Self::Group(v) => write!(f, "default group {}", v.0),
            Self::LifeType(v) => write!(f, "life type in {v}"),
            Self::LifeDuration(v) => write!(f, "life duration {v}"),
            Self::KeyLength(v) => write!(f, "keylength of {v}"),
            Self::Other(a) => write!(f, "{} {}", IkeAttrType(a.kind), a.value),
        }
    }
}

/// A phase 2 (IPsec DOI) SA attribute, typed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Phase2Attribute {
    SaLifeType(LifeType),
    /// Seconds or kilobytes, per the preceding SA life type; TV or TLV as received.
    SaLifeDuration(AttrValue),
    /// The PFS group.
    Group(GroupDescription),
    Encapsulation(EncapsulationMode),
    AuthAlgorithm(AuthAlgorithm),
    KeyLength(u16),
    /// Any other attribute, as received.
    Other(Attribute),
}

impl Phase2Attribute {
    /// Interprets an IPsec DOI attribute. A basic-only attribute in TLV form whose value
    /// does not fit 16 bits is an error.
    pub fn from_attribute(a: &Attribute) -> Result<Phase2Attribute> {
        let b = || a.value.basic(a.kind);
        Ok(match IpsecAttrType(a.kind) {
            IpsecAttrType::SA_LIFE_TYPE => Self::SaLifeType(LifeType(b()?)),
            IpsecAttrType::SA_LIFE_DURATION => Self::SaLifeDuration(a.value.clone()),
            IpsecAttrType::GROUP_DESCRIPTION => Self::Group(GroupDescription(b()?)),
            IpsecAttrType::ENCAPSULATION_MODE => Self::Encapsulation(EncapsulationMode(b()?)),
            IpsecAttrType::AUTH_ALGORITHM => Self::AuthAlgorithm(AuthAlgorithm(b()?)),
            IpsecAttrType::KEY_LENGTH => Self::KeyLength(b()?),
            _ => Self::Other(a.clone()),
        })
    }

    /// The attribute to emit.
    pub fn to_attribute(&self) -> Attribute {
        let basic = |t: IpsecAttrType, v: u16| Attribute::basic(t.0, v);
        match self {
            Self::SaLifeType(v) => basic(IpsecAttrType::SA_LIFE_TYPE, v.0),
            Self::SaLifeDuration(v) => Attribute {
                kind: IpsecAttrType::SA_LIFE_DURATION.0,
                value: v.clone(),
            },
            Self::Group(v) => basic(IpsecAttrType::GROUP_DESCRIPTION, v.0),
            Self::Encapsulation(v) => basic(IpsecAttrType::ENCAPSULATION_MODE, v.0),
            Self::AuthAlgorithm(v) => basic(IpsecAttrType::AUTH_ALGORITHM, v.0),
            Self::KeyLength(v) => basic(IpsecAttrType::KEY_LENGTH, *v),
            Self::Other(a) => a.clone(),
        }
    }
}

impl fmt::Display for Phase2Attribute {
    /// The line IOS prints under "Checking IPSec proposal N".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::SaLifeType(v) => write!(f, "SA life type in {v}"),
            Self::SaLifeDuration(v) => write!(f, "SA life duration {v}"),
            Self::Group(v) => write!(f, "group is {}", v.0),
            Self::Encapsulation(v) => write!(f, "encaps is {} ({v})", v.0),
            Self::AuthAlgorithm(v) => write!(f, "authenticator is {v}"),
            Self::KeyLength(v) => write!(f, "key length is {v}"),
            Self::Other(a) => write!(f, "{} {}", IpsecAttrType(a.kind), a.value),
        }
    }
}

/// Interprets a list of phase 1 attributes.
pub fn phase1(attrs: &[Attribute]) -> Result<Vec<Phase1Attribute>> {
    attrs.iter().map(Phase1Attribute::from_attribute).collect()
}

/// Interprets a list of phase 2 attributes.
pub fn phase2(attrs: &[Attribute]) -> Result<Vec<Phase2Attribute>> {
    attrs.iter().map(Phase2Attribute::from_attribute).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    // What IOS puts in an IKE transform: 3DES, MD5, group 2, RSA sig, seconds, 86400 (TLV).
    const IOS_P1: [u8; 28] = hex!(
        "80 01 00 05  80 02 00 01  80 04 00 02  80 03 00 03"
        "80 0b 00 01  00 0c 00 04 00 01 51 80"
    );

    #[test]
    fn parses_ios_phase1_attributes() {
        let attrs = parse_all(&IOS_P1).unwrap();
        assert_eq!(attrs.len(), 6);
        assert_eq!(attrs[0], Attribute::basic(1, 5));
        assert_eq!(attrs[5], Attribute::variable(12, vec![0, 1, 0x51, 0x80]));
        assert_eq!(attrs[5].value.as_u64(), Some(86400));
        let typed = phase1(&attrs).unwrap();
        assert_eq!(
            typed,
            [
                Phase1Attribute::Encryption(EncryptionAlgorithm::TRIPLE_DES_CBC),
                Phase1Attribute::Hash(HashAlgorithm::MD5),
                Phase1Attribute::Group(GroupDescription::MODP_1024),
                Phase1Attribute::Auth(AuthMethod::RSA_SIG),
                Phase1Attribute::LifeType(LifeType::SECONDS),
                Phase1Attribute::LifeDuration(AttrValue::number(86400)),
            ]
        );
        let lines: Vec<String> = typed.iter().map(|a| a.to_string()).collect();
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
        // Round trip through the typed form and the wire.
        let back: Vec<Attribute> = typed.iter().map(Phase1Attribute::to_attribute).collect();
        assert_eq!(back, attrs);
        let mut out = vec![0u8; buffer_len_all(&back)];
        assert_eq!(emit_all(&back, &mut out), 28);
        assert_eq!(out, IOS_P1);
        assert_eq!(
            GroupDescription::MODP_1024.to_string(),
            "Diffie-Hellman group 2"
        );
        assert_eq!(GroupDescription(99).to_string(), "Diffie-Hellman group 99");
    }

    #[test]
    fn phase2_attributes_in_ios_words() {
        // encaps tunnel, life 3600 s (basic), 4608000 KB (VPI), HMAC-MD5, key length 256.
        let wire = hex!(
            "80 04 00 01  80 01 00 01  80 02 0e 10  80 01 00 02"
            "00 02 00 04 00 46 50 00  80 05 00 01  80 06 01 00  80 03 00 0e"
        );
        let typed = phase2(&parse_all(&wire).unwrap()).unwrap();
        let lines: Vec<String> = typed.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            lines,
            [
                "encaps is 1 (Tunnel)",
                "SA life type in seconds",
                "SA life duration (basic) of 3600",
                "SA life type in kilobytes",
                "SA life duration (VPI) of 0x0 0x46 0x50 0x0",
                "authenticator is HMAC-MD5",
                "key length is 256",
                "group is 14",
            ]
        );
        let back: Vec<Attribute> = typed.iter().map(Phase2Attribute::to_attribute).collect();
        let mut out = vec![0u8; buffer_len_all(&back)];
        emit_all(&back, &mut out);
        assert_eq!(out, wire);
        assert_eq!(EncapsulationMode(61443).to_string(), "Tunnel-UDP");
        assert!(EncapsulationMode::UDP_TUNNEL_DRAFT.is_tunnel());
        assert!(EncapsulationMode::UDP_TRANSPORT.is_udp());
        assert!(!EncapsulationMode::TRANSPORT.is_tunnel());
        assert_eq!(EspTransformId::AES_GCM_16.to_string(), "ESP_AES_GCM_16");
        assert_eq!(EspTransformId::TRIPLE_DES.0, 3);
        assert_eq!(AuthAlgorithm::HMAC_SHA2_256.0, 5);
    }

    #[test]
    fn tlv_overrun_and_truncation() {
        // TLV claiming 8 bytes with 4 present.
        let bad = hex!("80 01 00 05  00 0c 00 08 00 01 51 80");
        assert_eq!(
            parse_all(&bad).unwrap_err(),
            Error::AttributeOverrun {
                attr_type: 12,
                len: 8,
                avail: 4
            }
        );
        // TLV with length 0xffff.
        assert_eq!(
            parse_all(&hex!("00 0c ff ff 00")).unwrap_err(),
            Error::AttributeOverrun {
                attr_type: 12,
                len: 0xffff,
                avail: 1
            }
        );
        // A stray partial attribute at the end.
        assert_eq!(
            parse_all(&hex!("80 01 00 05 80 02")).unwrap_err(),
            Error::Truncated {
                what: "data attribute",
                need: 4,
                have: 2
            }
        );
        // Every strict prefix of a list that ends with a whole attribute is a partial one.
        for n in 0..IOS_P1.len() {
            // Prefixes that happen to end on an attribute boundary are valid lists.
            let r = parse_all(&IOS_P1[..n]);
            let boundary = n % 4 == 0 && n <= 20;
            assert_eq!(r.is_ok(), boundary, "prefix {n}");
        }
        assert!(parse_all(&[]).unwrap().is_empty());
    }

    #[test]
    fn views_and_values() {
        let p = Packet::new_checked(&IOS_P1[20..]).unwrap();
        assert!(!p.is_basic());
        assert_eq!(p.attr_type(), 12);
        assert_eq!(p.value(), hex!("00015180"));
        assert_eq!(p.total_len(), 8);
        assert_eq!(p.as_bytes(), &IOS_P1[20..]);
        let p = Packet::new_checked(&IOS_P1[..]).unwrap();
        assert!(p.is_basic());
        assert_eq!((p.attr_type(), p.value_len(), p.total_len()), (1, 2, 4));
        assert_eq!(AttrValue::number(3600), AttrValue::Basic(3600));
        assert_eq!(
            AttrValue::number(1 << 40),
            AttrValue::Variable(vec![0, 0, 1, 0, 0, 0, 0, 0])
        );
        assert_eq!(AttrValue::Variable(vec![0; 12]).as_u64(), Some(0));
        assert_eq!(AttrValue::Variable(vec![1; 9]).as_u64(), None);
        assert_eq!(AttrValue::Variable(vec![]).as_u64(), Some(0));
        // A basic-only attribute sent as TLV is accepted when it fits 16 bits.
        let a = Attribute::variable(1, vec![0, 7]);
        assert_eq!(
            Phase1Attribute::from_attribute(&a).unwrap(),
            Phase1Attribute::Encryption(EncryptionAlgorithm::AES_CBC)
        );
        let a = Attribute::variable(1, vec![1, 0, 7]);
        assert!(Phase1Attribute::from_attribute(&a).is_err());
        // Unknown types are kept.
        let a = Attribute::basic(13, 1);
        assert_eq!(
            Phase1Attribute::from_attribute(&a).unwrap().to_string(),
            "PRF (basic) of 1"
        );
        assert_eq!(
            Phase1Attribute::KeyLength(128).to_string(),
            "keylength of 128"
        );
        assert_eq!(Phase1Attribute::Auth(AuthMethod(9)).to_string(), "auth 9");
    }
}
