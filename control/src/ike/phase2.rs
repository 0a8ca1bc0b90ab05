//! What Quick Mode negotiates, as a crypto map entry states it: the transform sets in
//! order, the proxy identities (the ACL), PFS and the lifetimes; and the mapping between the
//! dataplane's [`Transform`] / [`Mode`] / [`Selector`] and the ISAKMP ESP transform
//! attributes (RFC 2407 4.4.4 and 4.5) and ID payloads (RFC 2407 4.6.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dataplane::crypto::{Encryption, Integrity, Transform};
use dataplane::esp::{Lifetime, Mode, Prefix, Selector};

use crate::ikecrypto::DhGroup;
use crate::isakmp::attributes::{
    AttrValue, AuthAlgorithm, EncapsulationMode, EspTransformId, GroupDescription, LifeType,
    Phase2Attribute,
};
use crate::isakmp::id::{self, Identity};
use crate::isakmp::vendor::KnownVendor;

/// One `crypto ipsec transform-set`: a name, the ESP transform and the mode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransformSet {
    pub name: String,
    pub transform: Transform,
    pub mode: Mode,
}

/// The proxy identities of a crypto map entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proxies {
    /// A static entry: exactly this selector (outbound view: our side is the source). The
    /// initiator sends it as IDci/IDcr; a responder accepts only its mirror image.
    Static(Selector),
    /// A dynamic crypto map (responder only): the initiator's proxies are accepted when
    /// they fall inside one of these selectors (outbound view); the first that contains
    /// them is the matched entry.
    Dynamic(Vec<Selector>),
}

/// One crypto map entry as Quick Mode needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase2Policy {
    /// `crypto map NAME SEQ`, copied into the SAs for counters and show output.
    pub crypto_map: String,
    pub seq: u32,
    /// `set transform-set`, in order of preference.
    pub transform_sets: Vec<TransformSet>,
    pub proxies: Proxies,
    /// `set pfs groupN`.
    pub pfs: Option<DhGroup>,
    /// `set security-association lifetime seconds / kilobytes` (0: unlimited). The soft
    /// percentage goes to the dataplane as is.
    pub lifetime: Lifetime,
    /// Anti-replay window of the SAs (IOS default 64).
    pub replay_window: u32,
}

impl Phase2Policy {
    /// A static entry with IOS's defaults: no PFS, 3600 s / 4608000 KB, window 64.
    pub fn new(
        crypto_map: &str,
        seq: u32,
        transform_sets: Vec<TransformSet>,
        proxies: Proxies,
    ) -> Phase2Policy {
        Phase2Policy {
            crypto_map: crypto_map.into(),
            seq,
            transform_sets,
            proxies,
            pfs: None,
            lifetime: Lifetime::default(),
            replay_window: 64,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Transforms

/// The ESP transform id and key length attribute of an encryption algorithm.
pub fn esp_transform_id(e: Encryption) -> (EspTransformId, Option<u16>) {
    match e {
        Encryption::Gcm128 => (EspTransformId::AES_GCM_16, Some(128)),
        Encryption::Gcm256 => (EspTransformId::AES_GCM_16, Some(256)),
        Encryption::AesCbc128 => (EspTransformId::AES, Some(128)),
        Encryption::AesCbc192 => (EspTransformId::AES, Some(192)),
        Encryption::AesCbc256 => (EspTransformId::AES, Some(256)),
        Encryption::TripleDes => (EspTransformId::TRIPLE_DES, None),
        Encryption::Des => (EspTransformId::DES, None),
        Encryption::Null => (EspTransformId::NULL, None),
    }
}

/// The encryption algorithm of a transform id and key length (none: the default).
pub fn encryption_of(id: EspTransformId, key_len: Option<u16>) -> Option<Encryption> {
    Some(match (id, key_len) {
        (EspTransformId::AES_GCM_16, Some(128)) => Encryption::Gcm128,
        (EspTransformId::AES_GCM_16, Some(256)) => Encryption::Gcm256,
        (EspTransformId::AES, Some(128) | None) => Encryption::AesCbc128,
        (EspTransformId::AES, Some(192)) => Encryption::AesCbc192,
        (EspTransformId::AES, Some(256)) => Encryption::AesCbc256,
        (EspTransformId::TRIPLE_DES, None) => Encryption::TripleDes,
        (EspTransformId::DES, None) => Encryption::Des,
        (EspTransformId::NULL, None) => Encryption::Null,
        _ => return None,
    })
}

/// The authentication algorithm attribute of an integrity algorithm (none for GCM).
pub fn auth_algorithm(i: Integrity) -> Option<AuthAlgorithm> {
    match i {
        Integrity::None => None,
        Integrity::Sha1 => Some(AuthAlgorithm::HMAC_SHA),
        Integrity::Md5 => Some(AuthAlgorithm::HMAC_MD5),
        Integrity::Sha256 => Some(AuthAlgorithm::HMAC_SHA2_256),
    }
}

/// The integrity algorithm of an authentication algorithm attribute.
pub fn integrity_of(a: Option<AuthAlgorithm>) -> Option<Integrity> {
    Some(match a {
        None => Integrity::None,
        Some(AuthAlgorithm::HMAC_SHA) => Integrity::Sha1,
        Some(AuthAlgorithm::HMAC_MD5) => Integrity::Md5,
        Some(AuthAlgorithm::HMAC_SHA2_256) => Integrity::Sha256,
        Some(_) => return None,
    })
}

/// The encapsulation mode attribute of a mode: UDP-encapsulated (RFC 3947 values 3/4,
/// draft values 61443/61444 for NAT-T drafts 02/03) when a NAT was detected in phase 1.
pub fn encapsulation(mode: Mode, nat: Option<KnownVendor>) -> EncapsulationMode {
    match (mode, nat) {
        (Mode::Tunnel, None) => EncapsulationMode::TUNNEL,
        (Mode::Transport, None) => EncapsulationMode::TRANSPORT,
        (Mode::Tunnel, Some(v)) if v.is_nat_t_draft_02_03() => EncapsulationMode::UDP_TUNNEL_DRAFT,
        (Mode::Transport, Some(v)) if v.is_nat_t_draft_02_03() => {
            EncapsulationMode::UDP_TRANSPORT_DRAFT
        }
        (Mode::Tunnel, Some(_)) => EncapsulationMode::UDP_TUNNEL,
        (Mode::Transport, Some(_)) => EncapsulationMode::UDP_TRANSPORT,
    }
}

/// The attributes of one ESP transform, interpreted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EspAttrs {
    /// Seconds / kilobytes as proposed (None: not proposed).
    pub life_seconds: Option<u64>,
    pub life_kilobytes: Option<u64>,
    pub encapsulation: Option<EncapsulationMode>,
    pub auth: Option<AuthAlgorithm>,
    pub key_length: Option<u16>,
    pub group: Option<GroupDescription>,
    /// Attributes we do not know (refused: RFC 2407 says the SA must then be refused).
    pub unknown: Vec<Phase2Attribute>,
}

impl EspAttrs {
    /// Interprets a transform's attributes (a life duration applies to the life type
    /// before it), logging each as IOS does.
    pub fn interpret(attrs: &[Phase2Attribute], conn: u32) -> EspAttrs {
        let mut a = EspAttrs::default();
        let mut life = None;
        for x in attrs {
            log::debug!("ISAKMP:({conn}):      {x}");
            match x {
                Phase2Attribute::SaLifeType(t) => life = Some(*t),
                Phase2Attribute::SaLifeDuration(v) => {
                    let n = v.as_u64();
                    match life {
                        Some(LifeType::SECONDS) => a.life_seconds = n,
                        Some(LifeType::KILOBYTES) => a.life_kilobytes = n,
                        _ => a.unknown.push(x.clone()),
                    }
                }
                Phase2Attribute::Encapsulation(m) => a.encapsulation = Some(*m),
                Phase2Attribute::AuthAlgorithm(m) => a.auth = Some(*m),
                Phase2Attribute::KeyLength(k) => a.key_length = Some(*k),
                Phase2Attribute::Group(g) => a.group = Some(*g),
                Phase2Attribute::Other(_) => a.unknown.push(x.clone()),
            }
        }
        a
    }
}

/// The attributes we propose for a transform set (IOS's order: encapsulation, life type and
/// duration in seconds then kilobytes, authenticator, key length, group).
pub fn proposal_attributes(
    ts: &TransformSet,
    lifetime: &Lifetime,
    pfs: Option<DhGroup>,
    nat: Option<KnownVendor>,
) -> Vec<Phase2Attribute> {
    let mut v = vec![Phase2Attribute::Encapsulation(encapsulation(ts.mode, nat))];
    if lifetime.seconds > 0 {
        v.push(Phase2Attribute::SaLifeType(LifeType::SECONDS));
        v.push(Phase2Attribute::SaLifeDuration(AttrValue::number(
            lifetime.seconds,
        )));
    }
    if lifetime.kilobytes > 0 {
        v.push(Phase2Attribute::SaLifeType(LifeType::KILOBYTES));
        v.push(Phase2Attribute::SaLifeDuration(AttrValue::number(
            lifetime.kilobytes,
        )));
    }
    if let Some(a) = auth_algorithm(ts.transform.integrity) {
        v.push(Phase2Attribute::AuthAlgorithm(a));
    }
    if let (_, Some(k)) = esp_transform_id(ts.transform.encryption) {
        v.push(Phase2Attribute::KeyLength(k));
    }
    if let Some(g) = pfs {
        v.push(Phase2Attribute::Group(GroupDescription(g.id())));
    }
    v
}

/// The lifetime attributes of a RESPONDER-LIFETIME notify: the limits of `ours` that are
/// shorter than `offered` (0 / None: unlimited).
pub fn shorter_lifetime(offered: &EspAttrs, ours: &Lifetime) -> Vec<Phase2Attribute> {
    let shorter =
        |offer: Option<u64>, mine: u64| mine != 0 && offer.is_none_or(|o| o == 0 || o > mine);
    let mut v = Vec::new();
    if shorter(offered.life_seconds, ours.seconds) {
        v.push(Phase2Attribute::SaLifeType(LifeType::SECONDS));
        v.push(Phase2Attribute::SaLifeDuration(AttrValue::number(
            ours.seconds,
        )));
    }
    if shorter(offered.life_kilobytes, ours.kilobytes) {
        v.push(Phase2Attribute::SaLifeType(LifeType::KILOBYTES));
        v.push(Phase2Attribute::SaLifeDuration(AttrValue::number(
            ours.kilobytes,
        )));
    }
    v
}

/// The shorter of two limits, 0 being unlimited.
pub fn min_limit(a: u64, b: u64) -> u64 {
    match (a, b) {
        (0, x) | (x, 0) => x,
        (a, b) => a.min(b),
    }
}

// ---------------------------------------------------------------------------------------
// Proxy identities

/// Why a proxy identity cannot be expressed or understood.
pub type ProxyError = String;

fn v4_mask(len: u8) -> Ipv4Addr {
    Ipv4Addr::from(if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    })
}

fn v6_mask(len: u8) -> Ipv6Addr {
    Ipv6Addr::from(if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    })
}

fn mask_len(bits: u128, width: u32) -> Option<u8> {
    // The mask in the top `width` bits of a u128: contiguous ones, then zeros.
    let top = bits << (128 - width);
    let ones = top.leading_ones();
    let expect = if ones == 0 {
        0
    } else {
        u128::MAX << (128 - ones)
    };
    (top == expect).then_some(ones as u8)
}

fn port_of(range: (u16, u16)) -> Result<u16, ProxyError> {
    match range {
        (0, 65535) => Ok(0),
        (a, b) if a == b => Ok(a),
        (a, b) => Err(format!("port range {a}-{b} has no ID payload form")),
    }
}

fn range_of(port: u16) -> (u16, u16) {
    if port == 0 {
        (0, 65535)
    } else {
        (port, port)
    }
}

/// The ID payload of one side of a selector: a host as ID_IPV4_ADDR / ID_IPV6_ADDR, a
/// prefix as ID_IPV4_ADDR_SUBNET / ID_IPV6_ADDR_SUBNET.
pub fn id_of(prefix: Prefix, protocol: u8, ports: (u16, u16)) -> Result<id::Repr, ProxyError> {
    let identity = match prefix.addr {
        IpAddr::V4(a) if prefix.len == 32 => Identity::Ipv4(a),
        IpAddr::V4(a) => Identity::Ipv4Subnet {
            addr: a,
            mask: v4_mask(prefix.len),
        },
        IpAddr::V6(a) if prefix.len == 128 => Identity::Ipv6(a),
        IpAddr::V6(a) => Identity::Ipv6Subnet {
            addr: a,
            mask: v6_mask(prefix.len),
        },
    };
    Ok(id::Repr {
        protocol,
        port: port_of(ports)?,
        id: identity,
    })
}

/// IDci and IDcr of an initiator's selector (outbound view: our side is the source).
pub fn ids_of(sel: &Selector) -> Result<(id::Repr, id::Repr), ProxyError> {
    Ok((
        id_of(sel.source, sel.protocol, sel.source_ports)?,
        id_of(sel.destination, sel.protocol, sel.destination_ports)?,
    ))
}

/// The prefix an ID payload names. A range is accepted when it is exactly a prefix.
pub fn prefix_of(id: &id::Repr) -> Result<Prefix, ProxyError> {
    let p = |addr: IpAddr, len: u8| Prefix { addr, len };
    Ok(match &id.id {
        Identity::Ipv4(a) => p((*a).into(), 32),
        Identity::Ipv6(a) => p((*a).into(), 128),
        Identity::Ipv4Subnet { addr, mask } => {
            let len = mask_len(u32::from(*mask) as u128, 32)
                .ok_or_else(|| format!("non-contiguous mask {mask}"))?;
            p(
                Ipv4Addr::from(u32::from(*addr) & u32::from(*mask)).into(),
                len,
            )
        }
        Identity::Ipv6Subnet { addr, mask } => {
            let len = mask_len(u128::from(*mask), 128)
                .ok_or_else(|| format!("non-contiguous mask {mask}"))?;
            p(
                Ipv6Addr::from(u128::from(*addr) & u128::from(*mask)).into(),
                len,
            )
        }
        Identity::Ipv4Range { start, end } => {
            let (s, e) = (u32::from(*start) as u128, u32::from(*end) as u128);
            range_prefix(s, e, 32)
                .map(|len| p((*start).into(), len))
                .ok_or_else(|| format!("range {start}-{end} is not a prefix"))?
        }
        Identity::Ipv6Range { start, end } => {
            range_prefix(u128::from(*start), u128::from(*end), 128)
                .map(|len| p((*start).into(), len))
                .ok_or_else(|| format!("range {start}-{end} is not a prefix"))?
        }
        other => return Err(format!("{} is not an address proxy", other.id_type())),
    })
}

fn range_prefix(s: u128, e: u128, width: u32) -> Option<u8> {
    if e < s {
        return None;
    }
    let size = e - s;
    if size == u128::MAX {
        return (s == 0 && width == 128).then_some(0);
    }
    let n = size + 1;
    if !n.is_power_of_two() || s & size != 0 {
        return None;
    }
    let host_bits = n.trailing_zeros();
    (host_bits <= width).then(|| (width - host_bits) as u8)
}

/// The selector (initiator's outbound view) of IDci / IDcr.
pub fn selector_of(idci: &id::Repr, idcr: &id::Repr) -> Result<Selector, ProxyError> {
    if idci.protocol != idcr.protocol {
        return Err(format!(
            "protocols {} and {} differ",
            idci.protocol, idcr.protocol
        ));
    }
    let (s, d) = (prefix_of(idci)?, prefix_of(idcr)?);
    if s.addr.is_ipv4() != d.addr.is_ipv4() {
        return Err("mixed address families".into());
    }
    Ok(Selector {
        source: s,
        destination: d,
        protocol: idci.protocol,
        source_ports: range_of(idci.port),
        destination_ports: range_of(idcr.port),
    })
}

fn prefix_within(inner: Prefix, outer: Prefix) -> bool {
    inner.addr.is_ipv4() == outer.addr.is_ipv4()
        && inner.len >= outer.len
        && outer.contains(inner.addr)
}

fn ports_within(inner: (u16, u16), outer: (u16, u16)) -> bool {
    outer.0 <= inner.0 && inner.1 <= outer.1
}

/// True when `inner` is inside `outer` (addresses, protocol, ports).
pub fn selector_within(inner: &Selector, outer: &Selector) -> bool {
    prefix_within(inner.source, outer.source)
        && prefix_within(inner.destination, outer.destination)
        && (outer.protocol == 0 || outer.protocol == inner.protocol)
        && ports_within(inner.source_ports, outer.source_ports)
        && ports_within(inner.destination_ports, outer.destination_ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pfx(s: &str) -> Prefix {
        let (a, l) = s.split_once('/').unwrap();
        Prefix {
            addr: a.parse().unwrap(),
            len: l.parse().unwrap(),
        }
    }

    #[test]
    fn ids_round_trip_v4_v6_hosts_and_ranges() {
        for (s, d) in [
            ("10.1.0.0/24", "10.2.0.0/16"),
            ("192.0.2.1/32", "0.0.0.0/0"),
            ("2001:db8:1::/48", "2001:db8::5/128"),
        ] {
            let sel = Selector {
                source: pfx(s),
                destination: pfx(d),
                protocol: 17,
                source_ports: (0, 65535),
                destination_ports: (500, 500),
            };
            let (i, r) = ids_of(&sel).unwrap();
            assert_eq!(selector_of(&i, &r).unwrap(), sel);
        }
        let r = id::Repr {
            protocol: 0,
            port: 0,
            id: Identity::Ipv4Range {
                start: "10.0.0.0".parse().unwrap(),
                end: "10.0.0.255".parse().unwrap(),
            },
        };
        assert_eq!(prefix_of(&r).unwrap(), pfx("10.0.0.0/24"));
        let bad = id::Repr {
            id: Identity::Ipv4Range {
                start: "10.0.0.1".parse().unwrap(),
                end: "10.0.0.7".parse().unwrap(),
            },
            ..r
        };
        assert!(prefix_of(&bad).is_err());
        let mask = id::Repr {
            protocol: 0,
            port: 0,
            id: Identity::Ipv4Subnet {
                addr: "10.0.0.0".parse().unwrap(),
                mask: "255.0.255.0".parse().unwrap(),
            },
        };
        assert!(prefix_of(&mask).is_err());
    }

    #[test]
    fn transform_attribute_mapping_is_bijective() {
        use Encryption::*;
        for e in [
            Gcm128, Gcm256, AesCbc128, AesCbc192, AesCbc256, TripleDes, Des, Null,
        ] {
            let (id, k) = esp_transform_id(e);
            assert_eq!(encryption_of(id, k), Some(e));
        }
        for i in [
            Integrity::None,
            Integrity::Sha1,
            Integrity::Md5,
            Integrity::Sha256,
        ] {
            assert_eq!(integrity_of(auth_algorithm(i)), Some(i));
        }
        assert_eq!(min_limit(0, 5), 5);
        assert_eq!(min_limit(7, 5), 5);
        assert_eq!(min_limit(0, 0), 0);
    }
}
