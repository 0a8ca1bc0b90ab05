//! From the raw control sections to an [`IkeConfig`]: every check that can refuse a file, each
//! naming its line.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;

use super::raw::*;
use super::*;

/// The most Diffie-Hellman key pairs `dh_precompute` may keep per group and use: a MODP-3072
/// key pair takes about 0.5 KB, so a few tens of MB at most.
const MAX_DH_PRECOMPUTE: u32 = 65_536;

/// Carries the file text so that byte spans can be turned into line numbers, and the
/// directory relative paths are taken from.
struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    dir: PathBuf,
    lines: dataplane::config::LineIndex,
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

    /// The path `s` names, taken from the configuration file's directory when relative,
    /// which must be a readable file.
    fn readable_file(&self, s: &Spanned<String>, what: &str) -> Result<PathBuf, ConfigError> {
        let name = s.get_ref();
        if name.is_empty() {
            return Err(self.err_at(s, format!("{what}: empty path")));
        }
        let path = self.dir.join(name);
        let meta = std::fs::File::open(&path)
            .and_then(|f| f.metadata())
            .map_err(|e| self.err_at(s, format!("cannot read {what} {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(self.err_at(s, format!("{what} {} is not a file", path.display())));
        }
        Ok(path)
    }
}

pub(super) fn parse(file: &Path, text: &str) -> Result<IkeConfig, ConfigError> {
    // The shared sections first: a file the dataplane would refuse is refused here too.
    let base = Config::parse(file, text)?;
    // Relative paths are taken from the file's directory, made absolute so that they do
    // not depend on the daemon's working directory later.
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => {
            std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf())
        }
        _ => std::env::current_dir().unwrap_or_default(),
    };
    let cx = Ctx {
        file,
        text,
        dir,
        lines: dataplane::config::LineIndex::new(text),
    };
    let raw: RawControl = toml::from_str(text).map_err(|e| ConfigError {
        file: file.to_path_buf(),
        line: e.span().map(|s| cx.line(s)).unwrap_or(0),
        reason: e.message().to_string(),
    })?;

    let domain = match raw.domain {
        Some(d) => {
            let ok = !d.get_ref().is_empty()
                && d.get_ref().split('.').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                return Err(cx.err_at(&d, format!("{:?} is not a domain name", d.get_ref())));
            }
            Some(d.into_inner())
        }
        None => None,
    };
    let trustpoints = trustpoints(&cx, raw.trustpoint)?;
    let (isakmp, policies, keys) = match raw.isakmp {
        Some(i) => isakmp(&cx, i, &trustpoints)?,
        None => (IsakmpGlobal::default(), Vec::new(), Vec::new()),
    };
    let policies = if policies.is_empty() {
        IsakmpPolicy::default_suite()
    } else {
        policies
    };
    let raw_ctl = raw.ctl.map(Spanned::into_inner);
    let (socket, group, metrics) = match raw_ctl {
        Some(c) => (c.socket, c.group, c.metrics),
        None => (None, None, None),
    };
    let ctl_socket = match socket {
        Some(s) => {
            if s.get_ref().is_empty() {
                return Err(cx.err_at(&s, "ctl socket: empty path"));
            }
            if Path::new(s.get_ref()) == base.dataplane.channel {
                return Err(cx.err_at(&s, "the ctl socket must differ from the dataplane channel"));
            }
            PathBuf::from(s.into_inner())
        }
        None => PathBuf::from("/run/ipsec-gateway/ctl.sock"),
    };
    let ctl_group = match &group {
        Some(g) => Some(resolve_group(g.get_ref()).map_err(|e| cx.err_at(g, e))?),
        None => None,
    };
    let ctl_metrics = match &metrics {
        Some(m) => {
            let addr: std::net::SocketAddr = m.get_ref().parse().map_err(|_| {
                cx.err_at(
                    m,
                    format!(
                        "metrics {:?} is not ADDRESS:PORT (e.g. \"127.0.0.1:9477\", \"[::1]:9477\")",
                        m.get_ref()
                    ),
                )
            })?;
            if addr.port() == 0 {
                return Err(cx.err_at(m, "metrics: port 0 is not a port to serve on"));
            }
            Some(addr)
        }
        None => None,
    };

    Ok(IkeConfig {
        base,
        domain,
        isakmp,
        policies,
        keys,
        trustpoints,
        ctl_socket,
        ctl_group,
        ctl_metrics,
    })
}

/// `[ctl] group`: a group name from the group database, or a numeric gid.
fn resolve_group(name: &str) -> Result<u32, String> {
    if name.is_empty() {
        return Err("ctl group: empty name".into());
    }
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(gid);
    }
    match nix::unistd::Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid.as_raw()),
        Ok(None) => Err(format!("ctl group {name:?} does not exist on this system")),
        Err(e) => Err(format!(
            "ctl group {name:?}: cannot read the group database: {e}"
        )),
    }
}

type Isakmp = (IsakmpGlobal, Vec<IsakmpPolicy>, Vec<PreSharedKey>);

fn isakmp(
    cx: &Ctx,
    raw: RawIsakmp,
    trustpoints: &BTreeMap<String, TrustpointConfig>,
) -> Result<Isakmp, ConfigError> {
    let mut g = IsakmpGlobal::default();
    if let Some(i) = &raw.identity {
        g.identity = match i.get_ref().as_str() {
            "address" => IdentityMode::Address,
            "hostname" => IdentityMode::Hostname,
            "dn" => IdentityMode::Dn,
            x => {
                return Err(cx.err_at(
                    i,
                    format!("identity must be \"address\", \"hostname\" or \"dn\", not {x:?}"),
                ))
            }
        };
        if g.identity == IdentityMode::Dn && trustpoints.is_empty() {
            return Err(cx.err_at(
                i,
                "identity dn needs a trustpoint (our certificate's subject)",
            ));
        }
    }
    if let Some(k) = &raw.keepalive {
        let r = k.get_ref();
        let interval = *r.seconds.get_ref();
        if !(10..=3600).contains(&interval) {
            return Err(cx.err_at(&r.seconds, "keepalive seconds must be 10-3600"));
        }
        let retries = match &r.retries {
            Some(n) if !(1..=10).contains(n.get_ref()) => return Err(cx.err_at(
                n,
                "keepalive retries (unanswered R-U-THEREs before the peer is dead) must be 1-10",
            )),
            Some(n) => *n.get_ref(),
            None => 5,
        };
        g.dpd = Some(Dpd { interval, retries });
    }
    if let Some(n) = &raw.nat_keepalive {
        if !(5..=3600).contains(n.get_ref()) {
            return Err(cx.err_at(n, "nat_keepalive must be 5-3600 seconds"));
        }
        g.nat_keepalive = Some(*n.get_ref());
    }
    if let Some(n) = &raw.call_admission_limit {
        if *n.get_ref() == 0 {
            return Err(cx.err_at(n, "call_admission_limit must be at least 1"));
        }
        g.call_admission_limit = Some(*n.get_ref());
    }
    if let Some(n) = &raw.dh_precompute {
        if *n.get_ref() > MAX_DH_PRECOMPUTE {
            return Err(cx.err_at(
                n,
                format!("dh_precompute must be 0-{MAX_DH_PRECOMPUTE} key pairs per group and use"),
            ));
        }
        g.dh_precompute = Some(*n.get_ref());
    }

    let keys = keys(cx, raw.key)?;
    let mut policies: Vec<(IsakmpPolicy, usize)> = Vec::new();
    for rp in &raw.policy {
        let p = policy(cx, rp.get_ref())?;
        let line = cx.line(rp.get_ref().priority.span());
        if let Some((_, l)) = policies.iter().find(|(q, _)| q.priority == p.priority) {
            return Err(cx.err_at(
                &rp.get_ref().priority,
                format!(
                    "crypto isakmp policy {} is already defined at line {l}",
                    p.priority
                ),
            ));
        }
        let at = rp
            .get_ref()
            .authentication
            .as_ref()
            .map(|a| a.span())
            .unwrap_or_else(|| rp.span());
        match p.authentication {
            AuthMethod::RsaSig if trustpoints.is_empty() => {
                return Err(cx.err(
                    at,
                    format!(
                        "crypto isakmp policy {}: authentication rsa-sig needs a [trustpoint]",
                        p.priority
                    ),
                ))
            }
            AuthMethod::PreShare if keys.is_empty() => {
                return Err(cx.err(
                    at,
                    format!(
                        "crypto isakmp policy {}: authentication pre-share needs an [[isakmp.key]]",
                        p.priority
                    ),
                ))
            }
            _ => {}
        }
        policies.push((p, line));
    }
    let mut policies: Vec<IsakmpPolicy> = policies.into_iter().map(|(p, _)| p).collect();
    policies.sort_by_key(|p| p.priority);
    Ok((g, policies, keys))
}

/// One `crypto isakmp policy N`; omitted fields take IOS's defaults (those of the default
/// suite).
fn policy(cx: &Ctx, r: &RawPolicy) -> Result<IsakmpPolicy, ConfigError> {
    let mut p = IsakmpPolicy::default_suite()[0];
    p.priority = *r.priority.get_ref();
    if !(1..=10000).contains(&p.priority) {
        return Err(cx.err_at(&r.priority, "policy priority must be 1-10000"));
    }
    if let Some(e) = &r.encryption {
        let words: Vec<&str> = e.get_ref().split_whitespace().collect();
        p.encryption = match words.as_slice() {
            ["des"] => IkeEncryption::Des,
            ["3des"] => IkeEncryption::TripleDes,
            ["aes"] | ["aes", "128"] => IkeEncryption::Aes128,
            ["aes", "192"] => IkeEncryption::Aes192,
            ["aes", "256"] => IkeEncryption::Aes256,
            _ => {
                return Err(cx.err_at(
                    e,
                    format!(
                        "unknown encryption {:?}: des, 3des, aes, aes 192 or aes 256",
                        e.get_ref()
                    ),
                ))
            }
        };
    }
    if let Some(h) = &r.hash {
        p.hash = match h.get_ref().as_str() {
            "md5" => IkeHash::Md5,
            "sha" | "sha1" => IkeHash::Sha1,
            "sha256" => IkeHash::Sha256,
            "sha384" => IkeHash::Sha384,
            x => {
                return Err(cx.err_at(h, format!("unknown hash {x:?}: md5, sha, sha256 or sha384")))
            }
        };
    }
    if let Some(a) = &r.authentication {
        p.authentication = match a.get_ref().as_str() {
            "rsa-sig" => AuthMethod::RsaSig,
            "pre-share" => AuthMethod::PreShare,
            x => {
                return Err(cx.err_at(
                    a,
                    format!("unknown authentication {x:?}: rsa-sig or pre-share"),
                ))
            }
        };
    }
    if let Some(g) = &r.group {
        p.group = u16::try_from(*g.get_ref())
            .ok()
            .and_then(DhGroupId::new)
            .ok_or_else(|| {
                cx.err_at(
                    g,
                    format!(
                        "Diffie-Hellman group {} is not supported: 1, 2, 5, 14, 15, 19 or 20",
                        g.get_ref()
                    ),
                )
            })?;
    }
    if let Some(l) = &r.lifetime {
        if !(60..=86400).contains(l.get_ref()) {
            return Err(cx.err_at(l, "policy lifetime must be 60-86400 seconds"));
        }
        p.lifetime = *l.get_ref();
    }
    Ok(p)
}

/// The peer address of `crypto isakmp key`: `A.B.C.D`, `A.B.C.D M.M.M.M`, `A.B.C.D/LEN`,
/// or an IPv6 address or prefix. Bits outside the mask must be zero.
pub(crate) fn parse_key_address(s: &str) -> Result<Prefix, String> {
    let bad = || format!("{s:?} is not an address, address and mask, or prefix");
    let words: Vec<&str> = s.split_whitespace().collect();
    let (addr, len): (IpAddr, u8) = match words.as_slice() {
        [a, m] => {
            let a: IpAddr = a.parse().map_err(|_| bad())?;
            let m: std::net::Ipv4Addr = m.parse().map_err(|_| bad())?;
            if !a.is_ipv4() {
                return Err(bad());
            }
            let m = u32::from(m);
            if m.leading_ones() + m.trailing_zeros() != 32 {
                return Err(format!("{s:?}: the mask is not contiguous"));
            }
            (a, m.leading_ones() as u8)
        }
        [p] => match p.split_once('/') {
            Some((a, l)) => {
                let a: IpAddr = a.parse().map_err(|_| bad())?;
                let max = if a.is_ipv4() { 32 } else { 128 };
                let l = l
                    .parse::<u8>()
                    .ok()
                    .filter(|l| *l <= max)
                    .ok_or_else(|| format!("{s:?}: prefix length must be 0-{max}"))?;
                (a, l)
            }
            None => {
                let a: IpAddr = p.parse().map_err(|_| bad())?;
                (a, if a.is_ipv4() { 32 } else { 128 })
            }
        },
        _ => return Err(bad()),
    };
    let host_bits = match addr {
        IpAddr::V4(a) => u32::from(a).checked_shl(len as u32).unwrap_or(0) != 0,
        IpAddr::V6(a) => u128::from(a).checked_shl(len as u32).unwrap_or(0) != 0,
    };
    if host_bits {
        return Err(format!("{s:?}: the address has bits set outside the mask"));
    }
    Ok(Prefix { addr, len })
}

fn keys(cx: &Ctx, raw: Vec<Spanned<RawKey>>) -> Result<Vec<PreSharedKey>, ConfigError> {
    let mut out: Vec<(PreSharedKey, usize)> = Vec::new();
    for rk in raw {
        let RawKey { key, address } = rk.into_inner();
        let peer = parse_key_address(address.get_ref()).map_err(|e| cx.err_at(&address, e))?;
        let line = cx.line(address.span());
        if let Some((_, l)) = out.iter().find(|(k, _)| k.peer == peer) {
            return Err(cx.err_at(
                &address,
                format!(
                    "a key for {} is already defined at line {l}",
                    address.get_ref()
                ),
            ));
        }
        if key.get_ref().is_empty() {
            return Err(cx.err_at(&key, "the key is empty"));
        }
        if key.get_ref().len() > 128 {
            return Err(cx.err_at(&key, "the key is longer than 128 characters"));
        }
        // Moved, not copied: the only other copy is the file text.
        let secret = Secret::new(key.into_inner().into_bytes());
        out.push((PreSharedKey { secret, peer }, line));
    }
    Ok(out.into_iter().map(|(k, _)| k).collect())
}

fn trustpoints(
    cx: &Ctx,
    raw: BTreeMap<String, Spanned<RawTrustpoint>>,
) -> Result<BTreeMap<String, TrustpointConfig>, ConfigError> {
    let mut out = BTreeMap::new();
    for (name, rt) in raw {
        let t = rt.get_ref();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(cx.err_at(&rt, format!("{name:?} is not a trustpoint name")));
        }
        if t.ca_certificates.get_ref().is_empty() {
            return Err(cx.err_at(
                &t.ca_certificates,
                format!("trustpoint {name} has no CA certificate"),
            ));
        }
        let ca_certificates = t
            .ca_certificates
            .get_ref()
            .iter()
            .map(|ca| cx.readable_file(ca, "CA certificate"))
            .collect::<Result<Vec<_>, _>>()?;
        let certificate = cx.readable_file(&t.certificate, "certificate")?;
        let private_key = cx.readable_file(&t.private_key, "private key")?;
        let revocation = match t.revocation_check.as_ref().map(|r| r.get_ref().as_str()) {
            None | Some("crl") => RevocationCheck::Crl,
            Some("crl none") => RevocationCheck::CrlNone,
            Some("none") => RevocationCheck::None,
            Some(x) => {
                return Err(cx.err_at(
                    t.revocation_check.as_ref().unwrap(),
                    format!(
                        "revocation_check must be \"crl\", \"crl none\" or \"none\", not {x:?}"
                    ),
                ))
            }
        };
        if let (Some(_), Some(u)) = (&t.crl_file, &t.crl_url) {
            return Err(cx.err_at(u, "give crl_file or crl_url, not both"));
        }
        let crl_file = match &t.crl_file {
            Some(f) => Some(cx.readable_file(f, "CRL")?),
            None => None,
        };
        let crl_url = match &t.crl_url {
            Some(u) => {
                let s = u.get_ref();
                let host = s
                    .get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("http://"))
                    .map(|_| &s[7..]);
                if !host.is_some_and(|h| !h.is_empty() && !h.starts_with('/')) {
                    return Err(cx.err_at(
                        u,
                        format!("crl_url {s:?} is not an http:// URL (CRLs are fetched over HTTP)"),
                    ));
                }
                Some(s.clone())
            }
            None => None,
        };
        out.insert(
            name,
            TrustpointConfig {
                ca_certificates,
                certificate,
                private_key,
                revocation,
                crl_file,
                crl_url,
            },
        );
    }
    Ok(out)
}
