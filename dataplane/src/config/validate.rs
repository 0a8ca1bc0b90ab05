//! From the raw TOML to a validated [`Config`]: every check that can refuse a file, each
//! naming its line.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use zeroize::Zeroize;

use super::raw::*;
use super::*;
use crate::crypto::{self, Encryption, Integrity};
use crate::esp::{Direction, Keys, UdpEncap};

/// Carries the file text so that byte spans can be turned into line numbers.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    lines: LineIndex,
}

impl Ctx<'_> {
    fn line(&self, span: Range<usize>) -> usize {
        self.lines.line(span.start.min(self.text.len()))
    }
    fn err(&self, span: Range<usize>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_path_buf(),
            line: self.line(span),
            reason: reason.into(),
        }
    }
    fn err_at<T>(&self, s: &Spanned<T>, reason: impl Into<String>) -> ConfigError {
        self.err(s.span(), reason)
    }
}

pub(super) fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
    let cx = Ctx {
        file,
        text,
        lines: LineIndex::new(text),
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| cx.line(s)).unwrap_or(0);
        ConfigError {
            file: file.to_path_buf(),
            line,
            reason: e.message().to_string(),
        }
    })?;
    let RawConfig {
        hostname,
        domain: _,
        dataplane,
        interface,
        route,
        arp,
        transform_set,
        access_list,
        crypto_map,
        dynamic_map,
        isakmp: _,
        trustpoint: _,
        ctl: _,
    } = raw;

    let hostname = match hostname {
        Some(h) if h.get_ref().is_empty() => return Err(cx.err_at(&h, "hostname is empty")),
        Some(h) => h.into_inner(),
        None => "ipsec-gateway".to_string(),
    };
    let dataplane = dataplane_config(&cx, dataplane)?;
    let interfaces = interfaces(&cx, &interface, &crypto_map)?;
    let routes = routes(&cx, &route, &interfaces)?;
    let static_arp = static_arp(&cx, &arp, &interfaces)?;
    let transform_sets = transform_sets(&cx, &transform_set)?;
    let access_lists = access_lists(&cx, &access_list)?;
    let dynamic_maps = dynamic_maps(&cx, dynamic_map, &transform_sets, &access_lists)?;
    let maps = crypto_maps(
        &cx,
        crypto_map,
        &interfaces,
        &transform_sets,
        &access_lists,
        &dynamic_maps,
    )?;

    Ok(Config {
        file: file.to_path_buf(),
        hostname,
        dataplane,
        interfaces,
        routes,
        static_arp,
        transform_sets,
        access_lists,
        crypto_maps: maps.entries,
        dynamic_maps,
        manual_sas: maps.manual_sas,
        spd_rules: maps.spd_rules,
    })
}

fn dataplane_config(
    cx: &Ctx,
    raw: Option<Spanned<RawDataplane>>,
) -> Result<DataplaneConfig, ConfigError> {
    let mut d = DataplaneConfig {
        eal: vec![
            "--no-huge".into(),
            "--no-pci".into(),
            "-m".into(),
            "512".into(),
        ],
        main_lcore: 0,
        worker_lcores: vec![1],
        burst: 32,
        mbufs: 8192,
        channel: "/run/ipsec-gateway/dataplane.sock".into(),
        arp_timeout: 4 * 3600,
        rx_mode: RxMode::Polling,
        backend: BTreeMap::new(),
    };
    let Some(raw) = raw else { return Ok(d) };
    let raw = raw.into_inner();
    if !raw.eal.is_empty() {
        d.eal = raw.eal;
    }
    for a in &d.eal {
        if matches!(
            a.as_str(),
            "-l" | "--lcores" | "-c" | "--main-lcore" | "--vdev"
        ) {
            return Err(cx.err(
                0..0,
                format!("[dataplane] eal: {a} is set from `lcores` and the interfaces, not here"),
            ));
        }
    }
    if let Some(l) = raw.lcores {
        let span = l.span();
        let l = l.into_inner();
        if l.workers.is_empty() {
            return Err(cx.err(span, "lcores: at least one worker lcore is needed"));
        }
        let mut seen = std::collections::HashSet::new();
        for w in &l.workers {
            if *w == l.main {
                return Err(cx.err(span, format!("lcores: lcore {w} is both main and worker")));
            }
            if !seen.insert(*w) {
                return Err(cx.err(span, format!("lcores: worker lcore {w} is listed twice")));
            }
            if *w >= 128 {
                return Err(cx.err(span, format!("lcores: lcore {w} is out of range (0-127)")));
            }
        }
        d.main_lcore = l.main;
        d.worker_lcores = l.workers;
    }
    if let Some(b) = raw.burst {
        if !(1..=256).contains(b.get_ref()) {
            return Err(cx.err_at(&b, "burst must be between 1 and 256"));
        }
        d.burst = *b.get_ref() as usize;
    }
    if let Some(m) = raw.mbufs {
        if *m.get_ref() < 1024 {
            return Err(cx.err_at(&m, "mbufs must be at least 1024"));
        }
        d.mbufs = *m.get_ref();
    }
    if let Some(c) = raw.channel {
        d.channel = c.into();
    }
    if let Some(t) = raw.arp_timeout {
        if *t.get_ref() == 0 {
            return Err(cx.err_at(&t, "arp_timeout must be at least 1 second"));
        }
        d.arp_timeout = *t.get_ref();
    }
    if let Some(m) = raw.rx_mode {
        d.rx_mode = RxMode::from_name(m.get_ref()).ok_or_else(|| {
            cx.err_at(
                &m,
                format!(
                    "rx_mode {:?}: expected \"polling\" or \"adaptive\"",
                    m.get_ref()
                ),
            )
        })?;
    }
    for (word, name) in raw.backend {
        if crypto::backend_by_name(name.get_ref()).is_none() {
            return Err(cx.err_at(
                &name,
                format!("unknown crypto backend {:?}", name.get_ref()),
            ));
        }
        if !matches!(
            word.as_str(),
            "esp-gcm" | "esp-aes" | "esp-3des" | "esp-des" | "esp-null"
        ) {
            return Err(cx.err_at(&name, format!("backend for unknown transform {word:?}")));
        }
        d.backend.insert(word, name.into_inner());
    }
    Ok(d)
}

/// Parses `A.B.C.D/len`, `X:X::X/len`, a bare address (host route), `host A`, `any` (IPv4)
/// or `any6`.
pub(crate) fn parse_prefix(s: &str) -> Result<Prefix, String> {
    let s = s.trim();
    if s == "any" {
        return Ok(Prefix {
            addr: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            len: 0,
        });
    }
    if s == "any6" {
        return Ok(Prefix {
            addr: IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            len: 0,
        });
    }
    let s = s.strip_prefix("host ").map(str::trim).unwrap_or(s);
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a
        .parse()
        .map_err(|_| format!("{s:?} is not an IP address or prefix"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match l {
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| format!("{s:?}: prefix length must be 0-{max}"))?,
        None => max,
    };
    Ok(Prefix { addr, len })
}

fn interfaces(
    cx: &Ctx,
    raw: &[Spanned<RawInterface>],
    maps: &BTreeMap<String, Vec<Spanned<RawMapEntry>>>,
) -> Result<Vec<Interface>, ConfigError> {
    let mut out: Vec<Interface> = Vec::new();
    if raw.is_empty() {
        return Err(cx.err(0..0, "no [[interface]]: at least an inside and an outside"));
    }
    for ri in raw {
        let i = ri.get_ref();
        let name = i.name.get_ref().clone();
        if out.iter().any(|o| o.name == name) {
            return Err(cx.err_at(&i.name, format!("interface {name} is defined twice")));
        }
        let role = match i.role.get_ref().as_str() {
            "inside" => Role::Inside,
            "outside" => Role::Outside,
            r => {
                return Err(cx.err_at(
                    &i.role,
                    format!("role must be \"inside\" or \"outside\", not {r:?}"),
                ))
            }
        };
        let mut addresses = Vec::new();
        for a in i.address.get_ref().items() {
            let p = parse_prefix(a).map_err(|e| cx.err_at(&i.address, e))?;
            addresses.push(p);
        }
        if addresses.is_empty() {
            return Err(cx.err_at(&i.address, "an interface needs at least one address"));
        }
        let mtu = match &i.mtu {
            Some(m) if !(576..=9216).contains(m.get_ref()) => {
                return Err(cx.err_at(m, "mtu must be between 576 and 9216"))
            }
            Some(m) => *m.get_ref() as u16,
            None => 1500,
        };
        let crypto_map = match &i.crypto_map {
            Some(m) => {
                if !maps.contains_key(m.get_ref()) {
                    return Err(cx.err_at(m, format!("no crypto map named {}", m.get_ref())));
                }
                if role != Role::Outside {
                    return Err(cx.err_at(m, "a crypto map applies to an outside interface"));
                }
                Some(m.get_ref().clone())
            }
            None => None,
        };
        out.push(Interface {
            name,
            role,
            device: i.device.clone(),
            addresses,
            mtu,
            crypto_map,
        });
    }
    Ok(out)
}

fn routes(
    cx: &Ctx,
    raw: &[Spanned<RawRoute>],
    interfaces: &[Interface],
) -> Result<Vec<Route>, ConfigError> {
    let mut out = Vec::new();
    for rr in raw {
        let r = rr.get_ref();
        let prefix = parse_prefix(r.prefix.get_ref()).map_err(|e| cx.err_at(&r.prefix, e))?;
        let next_hop =
            match &r.next_hop {
                Some(n) => Some(n.get_ref().parse::<IpAddr>().map_err(|_| {
                    cx.err_at(n, format!("{:?} is not an IP address", n.get_ref()))
                })?),
                None => None,
            };
        if let Some(nh) = next_hop {
            if nh.is_ipv4() != prefix.addr.is_ipv4() {
                return Err(cx.err_at(&r.prefix, "prefix and next hop are of different families"));
            }
        }
        let interface = match (&r.interface, next_hop) {
            (Some(n), _) => interfaces
                .iter()
                .position(|i| &i.name == n.get_ref())
                .ok_or_else(|| cx.err_at(n, format!("no interface named {}", n.get_ref())))?,
            (None, Some(nh)) => interfaces
                .iter()
                .position(|i| i.addresses.iter().any(|a| a.contains(nh)))
                .ok_or_else(|| {
                    cx.err_at(
                        &r.prefix,
                        format!("next hop {nh} is on no interface's network; name the interface"),
                    )
                })?,
            (None, None) => {
                return Err(cx.err_at(&r.prefix, "a route needs a next_hop or an interface"))
            }
        };
        out.push(Route {
            prefix,
            next_hop,
            interface,
        });
    }
    Ok(out)
}

/// Parses a MAC address as `02:00:00:00:00:01`, `02-00-...` or IOS's `0200.0000.0001`.
pub(crate) fn parse_mac(s: &str) -> Result<[u8; 6], String> {
    let hex: String = s
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    let ok_shape = s.split([':', '-']).count() == 6 || s.split('.').count() == 3;
    match hex::decode(&hex) {
        Ok(b) if b.len() == 6 && ok_shape => Ok(b.try_into().unwrap()),
        _ => Err(format!("{s:?} is not a MAC address")),
    }
}

fn static_arp(
    cx: &Ctx,
    raw: &[Spanned<RawArp>],
    interfaces: &[Interface],
) -> Result<Vec<StaticArp>, ConfigError> {
    let mut out: Vec<StaticArp> = Vec::new();
    for ra in raw {
        let a = ra.get_ref();
        let address: IpAddr = a.address.get_ref().parse().map_err(|_| {
            cx.err_at(
                &a.address,
                format!("{:?} is not an IP address", a.address.get_ref()),
            )
        })?;
        let mac = parse_mac(a.mac.get_ref()).map_err(|e| cx.err_at(&a.mac, e))?;
        let interface = match &a.interface {
            Some(n) => interfaces
                .iter()
                .position(|i| &i.name == n.get_ref())
                .ok_or_else(|| cx.err_at(n, format!("no interface named {}", n.get_ref())))?,
            None => interfaces
                .iter()
                .position(|i| i.addresses.iter().any(|p| p.contains(address)))
                .ok_or_else(|| {
                    cx.err_at(
                        &a.address,
                        format!("{address} is on no interface's network; name the interface"),
                    )
                })?,
        };
        if out.iter().any(|o| o.address == address) {
            return Err(cx.err_at(
                &a.address,
                format!("a static ARP entry for {address} is defined twice"),
            ));
        }
        out.push(StaticArp {
            address,
            mac,
            interface,
        });
    }
    Ok(out)
}

/// Parses IOS transform-set words (`esp-aes 256 esp-sha-hmac`, `esp-gcm 128`, `esp-3des
/// esp-md5-hmac`).
pub(crate) fn parse_transform(words: &[String]) -> Result<Transform, String> {
    let mut it = words.iter().map(|w| w.as_str()).peekable();
    let first = it.next().ok_or("an empty transform set")?;
    let mut key_bits = |default: &str| -> Option<String> {
        match it.peek() {
            Some(w) if w.chars().all(|c| c.is_ascii_digit()) => {
                let w = w.to_string();
                it.next();
                Some(w)
            }
            _ => Some(default.to_string()),
        }
    };
    let encryption = match first {
        "esp-gcm" => match key_bits("128").as_deref() {
            Some("128") => Encryption::Gcm128,
            Some("256") => Encryption::Gcm256,
            Some(b) => return Err(format!("esp-gcm takes 128 or 256 bits, not {b}")),
            None => unreachable!(),
        },
        "esp-aes" => match key_bits("128").as_deref() {
            Some("128") => Encryption::AesCbc128,
            Some("192") => Encryption::AesCbc192,
            Some("256") => Encryption::AesCbc256,
            Some(b) => return Err(format!("esp-aes takes 128, 192 or 256 bits, not {b}")),
            None => unreachable!(),
        },
        "esp-3des" => Encryption::TripleDes,
        "esp-des" => Encryption::Des,
        "esp-null" => Encryption::Null,
        w => return Err(format!("unknown transform {w:?}")),
    };
    let integrity = match it.next() {
        None => Integrity::None,
        Some("esp-sha-hmac") => Integrity::Sha1,
        Some("esp-md5-hmac") => Integrity::Md5,
        Some("esp-sha256-hmac") => Integrity::Sha256,
        Some(w) => return Err(format!("unknown transform {w:?}")),
    };
    if let Some(w) = it.next() {
        return Err(format!("unexpected {w:?} after the integrity transform"));
    }
    let t = Transform {
        encryption,
        integrity,
    };
    if !t.is_valid() {
        return Err(if encryption.is_aead() {
            format!(
                "{} carries its own integrity: drop {}",
                encryption.cisco_name(),
                integrity.cisco_name()
            )
        } else {
            format!(
                "{} needs an integrity transform (esp-sha-hmac, esp-sha256-hmac or esp-md5-hmac)",
                encryption.cisco_name()
            )
        });
    }
    Ok(t)
}

fn transform_sets(
    cx: &Ctx,
    raw: &BTreeMap<String, Spanned<RawTransformSet>>,
) -> Result<BTreeMap<String, TransformSet>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, ts) in raw {
        let ts = ts.get_ref();
        let transform = parse_transform(ts.esp.get_ref()).map_err(|e| cx.err_at(&ts.esp, e))?;
        let mode = match ts.mode.as_ref().map(|m| m.get_ref().as_str()) {
            None | Some("tunnel") => Mode::Tunnel,
            Some("transport") => Mode::Transport,
            Some(m) => {
                return Err(cx.err_at(
                    ts.mode.as_ref().unwrap(),
                    format!("mode must be \"tunnel\" or \"transport\", not {m:?}"),
                ))
            }
        };
        out.insert(name.clone(), TransformSet { transform, mode });
    }
    Ok(out)
}

fn parse_protocol(v: &toml::Value) -> Result<u8, String> {
    match v {
        toml::Value::Integer(n) if (0..=255).contains(n) => Ok(*n as u8),
        toml::Value::String(s) => match s.as_str() {
            "ip" | "ipv6" => Ok(0),
            "icmp" => Ok(1),
            "tcp" => Ok(6),
            "udp" => Ok(17),
            "gre" => Ok(47),
            "esp" => Ok(50),
            "ahp" => Ok(51),
            "icmpv6" => Ok(58),
            s => s
                .parse::<u8>()
                .map_err(|_| format!("unknown protocol {s:?}")),
        },
        v => Err(format!("protocol must be a name or 0-255, not {v}")),
    }
}

fn parse_ports(v: &toml::Value) -> Result<(u16, u16), String> {
    let range = |s: &str| -> Result<(u16, u16), String> {
        let s = s.strip_prefix("eq ").unwrap_or(s).trim();
        let (a, b) = match s.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (s, s),
        };
        let a: u16 = a
            .parse()
            .map_err(|_| format!("{s:?} is not a port or range"))?;
        let b: u16 = b
            .parse()
            .map_err(|_| format!("{s:?} is not a port or range"))?;
        if a > b {
            return Err(format!("port range {s:?} is backwards"));
        }
        Ok((a, b))
    };
    match v {
        toml::Value::Integer(n) if (0..=65535).contains(n) => Ok((*n as u16, *n as u16)),
        toml::Value::String(s) => range(s),
        v => Err(format!("a port must be 0-65535 or \"N-M\", not {v}")),
    }
}

/// True when every packet that `b` matches is also matched by `a`.
fn covers(a: &Selector, b: &Selector) -> bool {
    let pfx = |a: &Prefix, b: &Prefix| a.len <= b.len && a.contains(b.addr);
    let ports = |a: (u16, u16), b: (u16, u16)| a.0 <= b.0 && b.1 <= a.1;
    pfx(&a.source, &b.source)
        && pfx(&a.destination, &b.destination)
        && (a.protocol == 0 || a.protocol == b.protocol)
        && ports(a.source_ports, b.source_ports)
        && ports(a.destination_ports, b.destination_ports)
}

fn access_lists(
    cx: &Ctx,
    raw: &BTreeMap<String, Vec<Spanned<RawAce>>>,
) -> Result<BTreeMap<String, Vec<Ace>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, aces) in raw {
        let mut list: Vec<(Ace, usize)> = Vec::new();
        for ra in aces {
            let a = ra.get_ref();
            let action = match a.action.get_ref().as_str() {
                "permit" => AceAction::Permit,
                "deny" => AceAction::Deny,
                x => {
                    return Err(cx.err_at(
                        &a.action,
                        format!("action must be \"permit\" or \"deny\", not {x:?}"),
                    ))
                }
            };
            let protocol = match &a.protocol {
                Some(p) => parse_protocol(p.get_ref()).map_err(|e| cx.err_at(p, e))?,
                None => 0,
            };
            let source = parse_prefix(a.source.get_ref()).map_err(|e| cx.err_at(&a.source, e))?;
            let destination =
                parse_prefix(a.destination.get_ref()).map_err(|e| cx.err_at(&a.destination, e))?;
            if source.addr.is_ipv4() != destination.addr.is_ipv4() {
                return Err(cx.err_at(
                    &a.source,
                    "source and destination are of different families",
                ));
            }
            let mut ports = [(0u16, 65535u16); 2];
            for (i, p) in [&a.source_port, &a.destination_port]
                .into_iter()
                .enumerate()
            {
                if let Some(p) = p {
                    if !crate::wire::ipv6::has_ports(protocol) {
                        return Err(cx.err_at(p, "ports need protocol tcp or udp"));
                    }
                    ports[i] = parse_ports(p.get_ref()).map_err(|e| cx.err_at(p, e))?;
                }
            }
            let selector = Selector {
                source,
                destination,
                protocol,
                source_ports: ports[0],
                destination_ports: ports[1],
            };
            let line = cx.line(ra.span());
            if let Some((_, l)) = list.iter().find(|(e, _)| covers(&e.selector, &selector)) {
                return Err(cx.err_at(
                    ra,
                    format!("this entry of access-list {name} never matches: the entry at line {l} covers it"),
                ));
            }
            list.push((Ace { action, selector }, line));
        }
        out.insert(name.clone(), list.into_iter().map(|(a, _)| a).collect());
    }
    Ok(out)
}

/// `set security-association lifetime seconds N kilobytes N`.
fn sa_lifetime(cx: &Ctx, raw: &Option<Spanned<RawLifetime>>) -> Result<Lifetime, ConfigError> {
    let mut lifetime = Lifetime::default();
    if let Some(l) = raw {
        let r = l.get_ref();
        if let Some(s) = r.seconds {
            if !(120..=86400).contains(&s) {
                return Err(cx.err_at(l, "lifetime seconds must be 120-86400"));
            }
            lifetime.seconds = s;
        }
        if let Some(k) = r.kilobytes {
            if !(2560..=4_294_967_295).contains(&k) {
                return Err(cx.err_at(l, "lifetime kilobytes must be 2560-4294967295"));
            }
            lifetime.kilobytes = k;
        }
    }
    Ok(lifetime)
}

/// `set pfs groupN`.
fn pfs_group(cx: &Ctx, raw: &Option<Spanned<String>>) -> Result<Option<String>, ConfigError> {
    let Some(p) = raw else { return Ok(None) };
    let g = p.get_ref();
    if !matches!(
        g.as_str(),
        "group1" | "group2" | "group5" | "group14" | "group15" | "group19" | "group20"
    ) {
        return Err(cx.err_at(p, format!("unknown pfs group {g:?}")));
    }
    Ok(Some(g.clone()))
}

/// Checks the names of transform sets an entry uses; `what` names the entry in errors.
fn transform_set_names(
    cx: &Ctx,
    names: Vec<String>,
    transform_sets: &BTreeMap<String, TransformSet>,
    what: &str,
    at: Range<usize>,
) -> Result<Vec<String>, ConfigError> {
    if names.is_empty() {
        return Err(cx.err(at, format!("{what} has no transform set")));
    }
    for t in &names {
        if !transform_sets.contains_key(t) {
            return Err(cx.err(at, format!("no transform set named {t}")));
        }
    }
    Ok(names)
}

/// `crypto dynamic-map NAME SEQ` entries. Their access-lists add no SPD rules: those come
/// from the proxy identities of each SA negotiated through the map.
fn dynamic_maps(
    cx: &Ctx,
    raw: BTreeMap<String, Vec<Spanned<RawDynamicMapEntry>>>,
    transform_sets: &BTreeMap<String, TransformSet>,
    acls: &BTreeMap<String, Vec<Ace>>,
) -> Result<BTreeMap<String, Vec<DynamicMapEntry>>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, mut raw_entries) in raw {
        raw_entries.sort_by_key(|e| *e.get_ref().seq.get_ref());
        let mut list: Vec<DynamicMapEntry> = Vec::new();
        for re in &raw_entries {
            let e = re.get_ref();
            let seq = *e.seq.get_ref();
            if list.iter().any(|x| x.seq == seq) {
                return Err(cx.err_at(
                    &e.seq,
                    format!("crypto dynamic-map {name} {seq} is defined twice"),
                ));
            }
            let mut names: Vec<String> = Vec::new();
            if let Some(t) = &e.transform_set {
                names.extend(t.get_ref().items().into_iter().map(String::from));
            }
            if let Some(t) = &e.transform_sets {
                names.extend(t.get_ref().iter().cloned());
            }
            let at = e
                .transform_set
                .as_ref()
                .map(|t| t.span())
                .or_else(|| e.transform_sets.as_ref().map(|t| t.span()))
                .unwrap_or_else(|| re.span());
            let transform_sets = transform_set_names(
                cx,
                names,
                transform_sets,
                &format!("crypto dynamic-map {name} {seq}"),
                at,
            )?;
            let match_address = match &e.match_address {
                Some(m) => {
                    let acl = acls
                        .get(m.get_ref())
                        .ok_or_else(|| cx.err_at(m, format!("no access-list {}", m.get_ref())))?;
                    if !acl.iter().any(|a| a.action == AceAction::Permit) {
                        return Err(cx.err_at(m, "the access-list permits nothing"));
                    }
                    Some(m.get_ref().clone())
                }
                None => None,
            };
            list.push(DynamicMapEntry {
                seq,
                transform_sets,
                match_address,
                lifetime: sa_lifetime(cx, &e.lifetime)?,
                pfs: pfs_group(cx, &e.pfs)?,
                reverse_route: e.reverse_route.unwrap_or(false),
            });
        }
        out.insert(name, list);
    }
    Ok(out)
}

struct CompiledMaps {
    entries: BTreeMap<String, Vec<CryptoMapEntry>>,
    manual_sas: Vec<ManualSa>,
    spd_rules: Vec<SpdRule>,
}

fn decode_key(
    cx: &Ctx,
    hex_key: &Option<Spanned<String>>,
    want: usize,
    what: &str,
    transform: &str,
    at: Range<usize>,
) -> Result<Vec<u8>, ConfigError> {
    match hex_key {
        None if want == 0 => Ok(Vec::new()),
        None => Err(cx.err(at, format!("{transform} needs a {want}-byte {what} key"))),
        Some(k) => {
            let mut s = k.get_ref().clone();
            let decoded = hex::decode(s.trim());
            s.zeroize();
            let key = decoded.map_err(|_| cx.err_at(k, format!("the {what} key is not hex")))?;
            if key.len() != want {
                return Err(cx.err_at(
                    k,
                    format!(
                        "{transform} needs a {want}-byte {what} key, got {} bytes",
                        key.len()
                    ),
                ));
            }
            Ok(key)
        }
    }
}

fn crypto_maps(
    cx: &Ctx,
    raw: BTreeMap<String, Vec<Spanned<RawMapEntry>>>,
    interfaces: &[Interface],
    transform_sets: &BTreeMap<String, TransformSet>,
    acls: &BTreeMap<String, Vec<Ace>>,
    dynamic_maps: &BTreeMap<String, Vec<DynamicMapEntry>>,
) -> Result<CompiledMaps, ConfigError> {
    let mut entries = BTreeMap::new();
    let mut manual_sas = Vec::new();
    let mut spd_rules = Vec::new();
    let mut inbound_spis: HashMap<u32, usize> = HashMap::new();
    let mut outbound_spis: HashMap<(IpAddr, u32), usize> = HashMap::new();
    let mut sa_id = 0u32;

    for (map_name, mut raw_entries) in raw {
        raw_entries.sort_by_key(|e| *e.get_ref().seq.get_ref());
        let local_if = interfaces
            .iter()
            .find(|i| i.crypto_map.as_deref() == Some(map_name.as_str()));
        let mut list: Vec<CryptoMapEntry> = Vec::new();
        let mut permits: Vec<(Selector, usize)> = Vec::new();
        for re in &raw_entries {
            let e = re.get_ref();
            let seq = *e.seq.get_ref();
            if list.iter().any(|x| x.seq == seq) {
                return Err(cx.err_at(
                    &e.seq,
                    format!("crypto map {map_name} {seq} is defined twice"),
                ));
            }
            let kind = match e.kind.as_ref().map(|k| k.get_ref().as_str()) {
                None | Some("ipsec-isakmp") => MapKind::Isakmp,
                Some("ipsec-manual") => MapKind::Manual,
                Some(k) => {
                    return Err(cx.err_at(
                        e.kind.as_ref().unwrap(),
                        format!("type must be \"ipsec-isakmp\" or \"ipsec-manual\", not {k:?}"),
                    ))
                }
            };
            if let Some(d) = &e.dynamic {
                list.push(dynamic_entry(
                    cx,
                    re,
                    &map_name,
                    kind,
                    d,
                    dynamic_maps,
                    sa_id,
                )?);
                sa_id += 1;
                continue;
            }
            let peer = match &e.peer {
                Some(p) => Some(p.get_ref().parse::<IpAddr>().map_err(|_| {
                    cx.err_at(p, format!("peer {:?} is not an IP address", p.get_ref()))
                })?),
                None => None,
            };
            let mut ts_names: Vec<String> = Vec::new();
            if let Some(t) = &e.transform_set {
                ts_names.push(t.get_ref().clone());
            }
            if let Some(t) = &e.transform_sets {
                ts_names.extend(t.get_ref().iter().cloned());
            }
            let ts_names = transform_set_names(
                cx,
                ts_names,
                transform_sets,
                &format!("crypto map {map_name} {seq}"),
                re.span(),
            )?;
            let match_address = e.match_address.as_ref().ok_or_else(|| {
                cx.err_at(
                    re,
                    format!("crypto map {map_name} {seq} has no match_address (or dynamic)"),
                )
            })?;
            let acl = acls.get(match_address.get_ref()).ok_or_else(|| {
                cx.err_at(
                    match_address,
                    format!("no access-list {}", match_address.get_ref()),
                )
            })?;
            let lifetime = sa_lifetime(cx, &e.lifetime)?;
            let replay_window = match &e.replay_window {
                None => 64,
                Some(v) => match v.get_ref() {
                    toml::Value::String(s) if s == "disable" => 0,
                    toml::Value::Integer(0) => 0,
                    toml::Value::Integer(n) if (64..=4096).contains(n) && n % 32 == 0 => *n as u32,
                    _ => return Err(cx.err_at(
                        v,
                        "replay_window must be a multiple of 32 from 64 to 4096, or \"disable\"",
                    )),
                },
            };
            let pfs = pfs_group(cx, &e.pfs)?;
            let udp_encap = e.nat_t.as_ref().map(|n| UdpEncap {
                local_port: n.get_ref().local_port,
                remote_port: n.get_ref().remote_port,
            });
            let selectors: Vec<Selector> = acl
                .iter()
                .filter(|a| a.action == AceAction::Permit)
                .map(|a| a.selector)
                .collect();
            if selectors.is_empty() {
                return Err(cx.err_at(match_address, "the access-list permits nothing"));
            }
            // An entry whose every permit is already covered by an earlier entry of the same
            // map would never be used: refuse it rather than leave the choice ambiguous.
            let line = cx.line(re.span());
            let shadowed = !permits.is_empty()
                && selectors
                    .iter()
                    .all(|s| permits.iter().any(|(p, _)| covers(p, s)));
            if let Some((_, l)) = permits.first().filter(|_| shadowed) {
                return Err(cx.err_at(
                    re,
                    format!("crypto map {map_name} {seq} never matches: earlier entries (line {l}) cover its access-list"),
                ));
            }
            permits.extend(selectors.iter().map(|s| (*s, line)));

            if kind == MapKind::Manual {
                let peer =
                    peer.ok_or_else(|| cx.err_at(re, "an ipsec-manual entry needs a peer"))?;
                if ts_names.len() != 1 {
                    return Err(
                        cx.err_at(re, "an ipsec-manual entry takes exactly one transform set")
                    );
                }
                let ts = transform_sets[&ts_names[0]];
                let local_if = local_if.ok_or_else(|| {
                    cx.err_at(
                        re,
                        format!("crypto map {map_name} is applied to no interface"),
                    )
                })?;
                let local = local_if
                    .addresses
                    .iter()
                    .find(|a| a.addr.is_ipv4() == peer.is_ipv4())
                    .ok_or_else(|| {
                        cx.err_at(
                            re,
                            format!(
                                "interface {} has no address of the peer's family",
                                local_if.name
                            ),
                        )
                    })?
                    .addr;
                let keys = e.session_key.as_ref().ok_or_else(|| {
                    cx.err_at(
                        re,
                        "an ipsec-manual entry needs session_key.inbound and .outbound",
                    )
                })?;
                let words = ts.transform.to_string();
                let make = |k: &Spanned<RawSessionKey>,
                            direction: Direction|
                 -> Result<SaParams, ConfigError> {
                    let r = k.get_ref();
                    let spi = *r.spi.get_ref();
                    if spi == 0 {
                        return Err(cx.err_at(&r.spi, "SPI 0 is reserved"));
                    }
                    let enc = decode_key(
                        cx,
                        &r.cipher,
                        ts.transform.encryption.key_len(),
                        "cipher",
                        &words,
                        k.span(),
                    )?;
                    let auth = decode_key(
                        cx,
                        &r.authenticator,
                        ts.transform.integrity.key_len(),
                        "authenticator",
                        &words,
                        k.span(),
                    )?;
                    if ts.transform.integrity == Integrity::None && r.authenticator.is_some() {
                        return Err(cx.err_at(k, format!("{words} takes no authenticator key")));
                    }
                    Ok(SaParams {
                        spi,
                        direction,
                        transform: ts.transform,
                        keys: Keys {
                            encryption: enc,
                            authentication: auth,
                        },
                        mode: ts.mode,
                        local,
                        remote: peer,
                        selectors: selectors.clone(),
                        lifetime,
                        replay_window,
                        esn: e.esn.unwrap_or(false),
                        udp_encap,
                        crypto_map: map_name.clone(),
                        crypto_map_seq: seq,
                    })
                };
                let inbound = make(&keys.inbound, Direction::Inbound)?;
                let outbound = make(&keys.outbound, Direction::Outbound)?;
                let in_line = cx.line(keys.inbound.get_ref().spi.span());
                if let Some(l) = inbound_spis.insert(inbound.spi, in_line) {
                    return Err(cx.err_at(
                        &keys.inbound.get_ref().spi,
                        format!("inbound SPI {} is already used at line {l}", inbound.spi),
                    ));
                }
                let out_line = cx.line(keys.outbound.get_ref().spi.span());
                if let Some(l) = outbound_spis.insert((peer, outbound.spi), out_line) {
                    return Err(cx.err_at(
                        &keys.outbound.get_ref().spi,
                        format!(
                            "outbound SPI {} to {peer} is already used at line {l}",
                            outbound.spi
                        ),
                    ));
                }
                manual_sas.push(ManualSa {
                    sa_id,
                    inbound,
                    outbound,
                });
            } else if e.session_key.is_some() {
                return Err(cx.err_at(re, "session_key belongs to ipsec-manual entries"));
            }

            for a in acl {
                spd_rules.push(SpdRule {
                    selector: a.selector,
                    protect: (a.action == AceAction::Permit).then_some(sa_id),
                    entry: sa_id,
                });
            }
            list.push(CryptoMapEntry {
                seq,
                kind,
                peer,
                transform_sets: ts_names,
                match_address: Some(match_address.get_ref().clone()),
                dynamic: None,
                lifetime,
                replay_window,
                esn: e.esn.unwrap_or(false),
                pfs,
                reverse_route: e.reverse_route.unwrap_or(false),
                sa_id,
            });
            sa_id += 1;
        }
        entries.insert(map_name, list);
    }
    Ok(CompiledMaps {
        entries,
        manual_sas,
        spd_rules,
    })
}

/// A crypto map entry that references a dynamic map (`crypto map NAME SEQ ipsec-isakmp dynamic
/// DYN`). Everything else is set in the dynamic map, so the entry takes nothing else; it adds
/// no SPD rules.
fn dynamic_entry(
    cx: &Ctx,
    re: &Spanned<RawMapEntry>,
    map_name: &str,
    kind: MapKind,
    d: &Spanned<String>,
    dynamic_maps: &BTreeMap<String, Vec<DynamicMapEntry>>,
    sa_id: u32,
) -> Result<CryptoMapEntry, ConfigError> {
    let e = re.get_ref();
    let seq = *e.seq.get_ref();
    if kind != MapKind::Isakmp {
        return Err(cx.err_at(d, "a dynamic map belongs to an ipsec-isakmp entry"));
    }
    if !dynamic_maps.contains_key(d.get_ref()) {
        return Err(cx.err_at(d, format!("no dynamic map named {}", d.get_ref())));
    }
    let set_here = [
        ("peer", e.peer.is_some()),
        ("transform_set", e.transform_set.is_some()),
        ("transform_sets", e.transform_sets.is_some()),
        ("match_address", e.match_address.is_some()),
        ("lifetime", e.lifetime.is_some()),
        ("replay_window", e.replay_window.is_some()),
        ("esn", e.esn.is_some()),
        ("nat_t", e.nat_t.is_some()),
        ("pfs", e.pfs.is_some()),
        ("session_key", e.session_key.is_some()),
        ("reverse_route", e.reverse_route.is_some()),
    ];
    if let Some((field, _)) = set_here.iter().find(|(_, set)| *set) {
        return Err(cx.err_at(
            re,
            format!(
                "crypto map {map_name} {seq} references dynamic map {}: set {field} there, not here",
                d.get_ref()
            ),
        ));
    }
    Ok(CryptoMapEntry {
        seq,
        kind,
        peer: None,
        transform_sets: Vec::new(),
        match_address: None,
        dynamic: Some(d.get_ref().clone()),
        lifetime: Lifetime::default(),
        replay_window: 64,
        esn: false,
        pfs: None,
        reverse_route: false,
        sa_id,
    })
}
