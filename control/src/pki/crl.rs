//! Certificate revocation lists: the [`CrlCache`] and the revocation check.
//!
//! CRLs are kept per issuer (one, the newest, per CA name). They come from a file (the
//! trustpoint's `crl_file`, PEM or DER) or over HTTP from a URL: the trustpoint's `crl_url`,
//! or the CRL distribution point of the certificate being checked (IOS's default source).
//! The HTTP client is a minimal HTTP/1.0 GET over a `TcpStream` with a deadline
//! (`http://host[:port]/path`, status 200, Content-Length or read to close, DER or PEM
//! body).
//!
//! A CRL is used only when its signature verifies with the issuing CA's key (the issuer of
//! the certificate being checked, from the validated chain) and `thisUpdate <= now <
//! nextUpdate` (no nextUpdate: valid until replaced). A cached CRL is refreshed from its
//! source when it is within the refresh margin of its nextUpdate (10% of its validity
//! period, at least 5 minutes) or no longer valid, when it is needed and from
//! [`CrlCache::refresh_due`] (for a periodic timer), and on demand with
//! [`CrlCache::refresh`]. When a refresh fails, a still-valid CRL keeps being used; a
//! failed source is not tried again for [`CrlCache::retry_after`] seconds, so that an
//! unreachable server does not stall every exchange.
//!
//! What happens without a valid CRL depends on the trustpoint's `revocation-check` mode
//! ([`crate::pki::trustpoint::TrustStore::verify_peer`]): `crl` refuses the peer, `crl none`
//! accepts it, `none` does not look.

use std::collections::HashMap;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use openssl::pkey::{PKey, Public};
use openssl::x509::{CrlStatus, X509Crl, X509CrlRef, X509Name, X509NameRef, X509Ref};

use super::verify::serial_hex;
use super::{asn1_unix, dn_eq, dn_string};

/// The most a CRL download may be (a CRL with 100,000 entries is about 3 MB).
const MAX_CRL_BYTES: usize = 16 << 20;

/// Where a CRL came from, and where it is refreshed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum CrlSource {
    File(PathBuf),
    Http(String),
    /// Inserted by the caller; never refreshed.
    Memory,
}

impl fmt::Display for CrlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrlSource::File(p) => write!(f, "{}", p.display()),
            CrlSource::Http(u) => f.write_str(u),
            CrlSource::Memory => f.write_str("<memory>"),
        }
    }
}

/// Why a CRL could not be had.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CrlError {
    /// Reading or parsing a CRL file failed.
    #[error("CRL file {}: {reason}", file.display())]
    File { file: PathBuf, reason: String },
    /// The HTTP fetch failed (connection, status, timeout, body).
    #[error("CRL fetch from {url} failed: {reason}")]
    Http { url: String, reason: String },
    /// The CRL was read but is not acceptable (wrong issuer, bad signature, expired).
    #[error("CRL from {from}: {reason}")]
    Invalid { from: String, reason: String },
    /// Nothing is known about this issuer's CRL.
    #[error("no CRL source for {issuer}")]
    NoSource { issuer: String },
}

/// What the revocation check found for a peer's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevocationStatus {
    /// Every certificate that needed a CRL was checked against a valid one.
    Checked,
    /// `revocation-check crl none`: no valid CRL could be had for at least one certificate,
    /// which was accepted unchecked.
    Unavailable,
    /// `revocation-check none`.
    Skipped,
}

/// One certificate against its issuer's CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CertStatus {
    /// Not listed in a valid CRL.
    Good,
    /// Listed; the serial in hex.
    Revoked { serial: String },
    /// No valid CRL of the issuer could be had.
    NoCrl,
}

struct Entry {
    issuer: X509Name,
    crl: X509Crl,
    source: CrlSource,
    this_update: i64,
    next_update: Option<i64>,
    /// The issuer's key, once the CRL verified with it; a refreshed CRL must verify with
    /// the same key.
    issuer_key: Option<PKey<Public>>,
}

impl Entry {
    fn new(crl: X509Crl, source: CrlSource) -> Result<Entry, String> {
        let issuer = crl
            .issuer_name()
            .to_owned()
            .map_err(|e| format!("bad issuer name: {e}"))?;
        let this_update = asn1_unix(crl.last_update()).ok_or("bad thisUpdate")?;
        let next_update = match crl.next_update() {
            Some(t) => Some(asn1_unix(t).ok_or("bad nextUpdate")?),
            None => None,
        };
        Ok(Entry {
            issuer,
            crl,
            source,
            this_update,
            next_update,
            issuer_key: None,
        })
    }

    fn in_time(&self, now: i64) -> bool {
        self.this_update <= now && self.next_update.is_none_or(|n| now < n)
    }

    /// Whether the CRL is within the refresh margin of its nextUpdate (or past it).
    fn needs_refresh(&self, now: i64) -> bool {
        match self.next_update {
            None => false,
            Some(next) => {
                let period = (next - self.this_update).max(0);
                let margin = (period / 10).max(300).min(period);
                now >= next - margin
            }
        }
    }

    /// The CRL is signed by `issuer` (a CA certificate whose subject is the CRL's issuer).
    fn signed_by(&self, issuer: &X509Ref) -> bool {
        if !dn_eq(&self.issuer, issuer.subject_name()) {
            return false;
        }
        let Ok(key) = issuer.public_key() else {
            return false;
        };
        // Verified with this key already (`issuer_key` is only ever set to a key this CRL
        // verified with, and a CRL held does not change): an RSA verification per
        // certificate checked was a fiftieth of a hub's CPU under a burst of spokes.
        if self.issuer_key.as_ref().is_some_and(|k| k.public_eq(&key)) {
            return true;
        }
        self.crl.verify(&key).unwrap_or(false)
    }
}

/// CRLs per issuer; see the module documentation.
pub struct CrlCache {
    entries: Vec<Entry>,
    timeout: Duration,
    /// Seconds a failed source is left alone before it is tried again when a CRL is needed.
    pub retry_after: i64,
    /// Source -> time of its last failure.
    failures: HashMap<CrlSource, i64>,
}

impl Default for CrlCache {
    fn default() -> Self {
        CrlCache::new()
    }
}

impl fmt::Debug for CrlCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_list();
        for e in &self.entries {
            l.entry(&format_args!(
                "{} from {} (thisUpdate {}, nextUpdate {:?})",
                dn_string(&e.issuer),
                e.source,
                e.this_update,
                e.next_update
            ));
        }
        l.finish()
    }
}

/// Parses a CRL, PEM (`-----BEGIN X509 CRL-----`) or DER.
pub fn parse_crl(data: &[u8]) -> Result<X509Crl, String> {
    let pem = data.windows(10).any(|w| w == b"-----BEGIN");
    let r = if pem {
        X509Crl::from_pem(data)
    } else {
        X509Crl::from_der(data)
    };
    r.map_err(|e| format!("not a {} CRL: {e}", if pem { "PEM" } else { "DER" }))
}

/// The HTTP URLs of a certificate's CRL distribution points.
pub fn distribution_points(cert: &X509Ref) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(dps) = cert.crl_distribution_points() {
        for dp in &dps {
            if let Some(names) = dp.distpoint().and_then(|n| n.fullname()) {
                for gn in names {
                    if let Some(uri) = gn.uri() {
                        if uri.len() > 7 && uri[..7].eq_ignore_ascii_case("http://") {
                            out.push(uri.to_string());
                        }
                    }
                }
            }
        }
    }
    out
}

impl CrlCache {
    /// An empty cache; HTTP fetches time out after 5 seconds, failed sources are retried
    /// after 60.
    pub fn new() -> CrlCache {
        CrlCache {
            entries: Vec::new(),
            timeout: Duration::from_secs(5),
            retry_after: 60,
            failures: HashMap::new(),
        }
    }

    /// Sets the HTTP timeout (connection and whole transfer).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// The number of CRLs held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The issuers whose CRLs are held, IOS's one-line form.
    pub fn issuers(&self) -> Vec<String> {
        self.entries.iter().map(|e| dn_string(&e.issuer)).collect()
    }

    fn find(&self, issuer: &X509NameRef) -> Option<usize> {
        self.entries.iter().position(|e| dn_eq(&e.issuer, issuer))
    }

    /// Adds a CRL, replacing the one held for the same issuer unless that one is newer.
    /// Returns the issuer's name.
    pub fn insert(&mut self, crl: X509Crl, source: CrlSource) -> Result<String, CrlError> {
        let entry = Entry::new(crl, source.clone()).map_err(|reason| CrlError::Invalid {
            from: source.to_string(),
            reason,
        })?;
        let name = dn_string(&entry.issuer);
        match self.find(&entry.issuer) {
            Some(i) if self.entries[i].this_update > entry.this_update => {
                log::debug!("PKI: CRL of {name} from {source} is older than the one held; kept");
            }
            Some(i) => {
                let mut entry = entry;
                // A newer CRL must come from the same key as the one it replaces.
                if let Some(k) = self.entries[i].issuer_key.take() {
                    if !entry.crl.verify(&k).unwrap_or(false) {
                        self.entries[i].issuer_key = Some(k);
                        return Err(CrlError::Invalid {
                            from: source.to_string(),
                            reason: format!("signature does not verify with {name}'s key"),
                        });
                    }
                    entry.issuer_key = Some(k);
                }
                self.entries[i] = entry;
            }
            None => self.entries.push(entry),
        }
        Ok(name)
    }

    /// Reads a CRL file (PEM or DER) into the cache; it is refreshed from the same file.
    pub fn load_file(&mut self, path: impl Into<PathBuf>) -> Result<String, CrlError> {
        let path = path.into();
        let crl = read_file(&path)?;
        self.insert(crl, CrlSource::File(path))
    }

    /// Fetches a CRL over HTTP into the cache; it is refreshed from the same URL.
    pub fn fetch(&mut self, url: &str) -> Result<String, CrlError> {
        let crl = fetch_crl(url, self.timeout)?;
        self.insert(crl, CrlSource::Http(url.to_string()))
    }

    /// Whether a CRL of `issuer` is held (valid or not).
    pub fn holds(&self, issuer: &X509NameRef) -> bool {
        self.find(issuer).is_some()
    }

    /// The CRL held for `issuer` and where it came from (what `show crypto pki crls`
    /// prints: the list the checks use, whether it was read from a file or fetched).
    pub fn crl(&self, issuer: &X509NameRef) -> Option<(&X509CrlRef, &CrlSource)> {
        self.find(issuer)
            .map(|i| (self.entries[i].crl.as_ref(), &self.entries[i].source))
    }

    /// The nextUpdate (seconds since the epoch) of the CRL held for `issuer`.
    pub fn next_update(&self, issuer: &X509NameRef) -> Option<i64> {
        self.find(issuer).and_then(|i| self.entries[i].next_update)
    }

    /// Whether the CRL held for `issuer` is due for a refresh at `now` (within the margin
    /// before its nextUpdate, or past it). False when none is held.
    pub fn needs_refresh(&self, issuer: &X509NameRef, now: i64) -> bool {
        self.find(issuer)
            .is_some_and(|i| self.entries[i].needs_refresh(now))
    }

    /// The issuers whose CRLs are due for a refresh at `now`.
    pub fn due(&self, now: i64) -> Vec<X509Name> {
        self.entries
            .iter()
            .filter(|e| e.needs_refresh(now) && e.source != CrlSource::Memory)
            .filter_map(|e| e.issuer.to_owned().ok())
            .collect()
    }

    /// Reloads the CRL of `issuer` from its source now (on demand, as `crypto pki crl
    /// request`).
    pub fn refresh(&mut self, issuer: &X509NameRef) -> Result<String, CrlError> {
        let Some(i) = self.find(issuer) else {
            return Err(CrlError::NoSource {
                issuer: dn_string(issuer),
            });
        };
        let source = self.entries[i].source.clone();
        let crl = self.load_source(&source)?;
        if !dn_eq(crl.issuer_name(), issuer) {
            return Err(CrlError::Invalid {
                from: source.to_string(),
                reason: format!(
                    "issued by {}, not {}",
                    dn_string(crl.issuer_name()),
                    dn_string(issuer)
                ),
            });
        }
        self.insert(crl, source)
    }

    /// Refreshes every CRL that [`CrlCache::due`] names; for a periodic timer. Failures
    /// are logged and returned; the CRLs held stay in use while valid.
    pub fn refresh_due(&mut self, now: i64) -> Vec<(String, Result<String, CrlError>)> {
        let mut out = Vec::new();
        for issuer in self.due(now) {
            let r = self.refresh(&issuer);
            if let Err(e) = &r {
                log::warn!("%PKI-3-CRL_FETCH_FAIL: {e}");
            }
            out.push((dn_string(&issuer), r));
        }
        out
    }

    fn load_source(&self, source: &CrlSource) -> Result<X509Crl, CrlError> {
        match source {
            CrlSource::File(p) => read_file(p),
            CrlSource::Http(u) => fetch_crl(u, self.timeout),
            CrlSource::Memory => Err(CrlError::Invalid {
                from: source.to_string(),
                reason: "cannot be refreshed".into(),
            }),
        }
    }

    /// The index of a CRL of `issuer` that is valid at `now` and signed by it.
    fn valid(&mut self, issuer: &X509Ref, now: i64) -> Option<usize> {
        let i = self.find(issuer.subject_name())?;
        let e = &mut self.entries[i];
        if !e.in_time(now) {
            return None;
        }
        if !e.signed_by(issuer) {
            log::warn!(
                "PKI: CRL of {} from {} does not verify with the CA's key; ignored",
                dn_string(&e.issuer),
                e.source
            );
            return None;
        }
        if e.issuer_key.is_none() {
            e.issuer_key = issuer.public_key().ok();
        }
        Some(i)
    }

    /// Checks `cert` against the CRL of `issuer` (its issuer in the validated chain) at
    /// `now`, getting or refreshing the CRL when none valid is held or it is due: from the
    /// source of the one held, then `override_url` (the trustpoint's `crl_url`), then the
    /// certificate's distribution points.
    pub fn status(
        &mut self,
        cert: &X509Ref,
        issuer: &X509Ref,
        override_url: Option<&str>,
        now: i64,
    ) -> CertStatus {
        let name = issuer.subject_name();
        let fresh = self
            .valid(issuer, now)
            .is_some_and(|i| !self.entries[i].needs_refresh(now));
        if !fresh {
            let mut sources: Vec<CrlSource> = Vec::new();
            if let Some(i) = self.find(name) {
                sources.push(self.entries[i].source.clone());
            }
            if let Some(u) = override_url {
                sources.push(CrlSource::Http(u.to_string()));
            }
            sources.extend(distribution_points(cert).into_iter().map(CrlSource::Http));
            let mut tried = Vec::new();
            for s in sources {
                if s == CrlSource::Memory || tried.contains(&s) {
                    continue;
                }
                tried.push(s.clone());
                if self
                    .failures
                    .get(&s)
                    .is_some_and(|&t| now >= t && now - t < self.retry_after)
                {
                    continue;
                }
                match self.try_source(&s, issuer, now) {
                    Ok(()) => {
                        self.failures.remove(&s);
                        break;
                    }
                    Err(e) => {
                        log::warn!("%PKI-3-CRL_FETCH_FAIL: {e}");
                        self.failures.insert(s, now);
                    }
                }
            }
        }
        match self.valid(issuer, now) {
            Some(i) => match self.entries[i].crl.get_by_serial(cert.serial_number()) {
                CrlStatus::Revoked(_) => CertStatus::Revoked {
                    serial: serial_hex(cert),
                },
                CrlStatus::NotRevoked | CrlStatus::RemoveFromCrl(_) => CertStatus::Good,
            },
            None => CertStatus::NoCrl,
        }
    }

    /// Loads a CRL from `source` and keeps it if it is `issuer`'s, signed by it and valid.
    fn try_source(
        &mut self,
        source: &CrlSource,
        issuer: &X509Ref,
        now: i64,
    ) -> Result<(), CrlError> {
        let crl = self.load_source(source)?;
        let invalid = |reason: String| CrlError::Invalid {
            from: source.to_string(),
            reason,
        };
        let entry = Entry::new(crl, source.clone()).map_err(invalid)?;
        if !entry.signed_by(issuer) {
            return Err(invalid(format!(
                "not signed by {} (issuer {})",
                dn_string(issuer.subject_name()),
                dn_string(&entry.issuer)
            )));
        }
        if !entry.in_time(now) {
            return Err(invalid(format!(
                "not valid now (thisUpdate {}, nextUpdate {})",
                entry.crl.last_update(),
                entry
                    .crl
                    .next_update()
                    .map(|t| t.to_string())
                    .unwrap_or_else(|| "none".into())
            )));
        }
        let Entry {
            crl, source: src, ..
        } = entry;
        let name = self.insert(crl, src)?;
        log::info!("PKI: CRL of {name} loaded from {source}");
        Ok(())
    }
}

fn read_file(path: &PathBuf) -> Result<X509Crl, CrlError> {
    let err = |reason: String| CrlError::File {
        file: path.clone(),
        reason,
    };
    let data = std::fs::read(path).map_err(|e| err(format!("cannot read: {e}")))?;
    parse_crl(&data).map_err(err)
}

/// Fetches and parses a CRL over HTTP.
pub fn fetch_crl(url: &str, timeout: Duration) -> Result<X509Crl, CrlError> {
    let body = http_get(url, timeout)?;
    parse_crl(&body).map_err(|reason| CrlError::Http {
        url: url.to_string(),
        reason,
    })
}

/// `http://host[:port]/path` split into host, port and path (`/` when absent). An IPv6
/// literal is written `[addr]`.
pub(crate) fn parse_http_url(url: &str) -> Result<(String, u16, String), String> {
    let rest = url
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("http://"))
        .map(|_| &url[7..])
        .ok_or("only http:// URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') {
        return Err("user information in the URL is not supported".into());
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']').ok_or("unterminated [ in the host")?;
        let host = &v6[..end];
        let after = &v6[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| format!("bad port {p:?}"))?,
            None if after.is_empty() => 80,
            None => return Err(format!("junk after the host: {after:?}")),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| format!("bad port {p:?}"))?),
            None => (authority, 80),
        }
    };
    if host.is_empty() {
        return Err("no host".into());
    }
    let path = path.split('#').next().unwrap_or("/");
    Ok((host.to_string(), port, path.to_string()))
}

/// A minimal HTTP/1.0 GET: connects with `timeout`, sends the request, reads the answer
/// until the whole exchange has taken `timeout`. Status 200 only; the body ends at its
/// Content-Length or when the server closes.
pub fn http_get(url: &str, timeout: Duration) -> Result<Vec<u8>, CrlError> {
    let err = |reason: String| CrlError::Http {
        url: url.to_string(),
        reason,
    };
    let (host, port, path) = parse_http_url(url).map_err(err)?;
    let deadline = Instant::now() + timeout;
    let addrs: Vec<_> = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| err(format!("cannot resolve {host}: {e}")))?
        .collect();
    let mut stream = None;
    let mut last = String::from("no address");
    for a in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            last = "timed out".into();
            break;
        }
        match TcpStream::connect_timeout(&a, left) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("connect to {a}: {e}"),
        }
    }
    let mut stream = stream.ok_or_else(|| err(last))?;
    let host_header = match (host.contains(':'), port) {
        (true, 80) => format!("[{host}]"),
        (true, p) => format!("[{host}]:{p}"),
        (false, 80) => host.clone(),
        (false, p) => format!("{host}:{p}"),
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host_header}\r\nUser-Agent: ipsec-control\r\n\
         Accept: application/pkix-crl, */*\r\nConnection: close\r\n\r\n"
    );
    let io = |e: std::io::Error| {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            err("timed out".into())
        } else {
            err(e.to_string())
        }
    };
    let set_timeouts = |s: &TcpStream| -> Result<(), CrlError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(err("timed out".into()));
        }
        s.set_read_timeout(Some(left)).map_err(io)?;
        s.set_write_timeout(Some(left)).map_err(io)
    };
    set_timeouts(&stream)?;
    stream.write_all(request.as_bytes()).map_err(io)?;

    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let mut header: Option<(usize, Option<usize>)> = None; // (body start, content length)
    loop {
        if let Some((start, Some(len))) = header {
            if buf.len() >= start + len {
                break;
            }
        }
        set_timeouts(&stream)?;
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_CRL_BYTES {
            return Err(err(format!("answer larger than {MAX_CRL_BYTES} bytes")));
        }
        if header.is_none() {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                header = Some((end + 4, parse_head(&head).map_err(err)?));
            } else if buf.len() > 64 * 1024 {
                return Err(err("no end of the HTTP header".into()));
            }
        }
    }
    let Some((start, len)) = header else {
        return Err(err("connection closed before the HTTP header ended".into()));
    };
    let body = &buf[start..];
    match len {
        Some(len) if body.len() < len => Err(err(format!(
            "connection closed after {} of {len} bytes",
            body.len()
        ))),
        Some(len) => Ok(body[..len].to_vec()),
        None => Ok(body.to_vec()),
    }
}

/// Checks the status line and headers; returns the Content-Length, if any.
fn parse_head(head: &str) -> Result<Option<usize>, String> {
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    let mut parts = status.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let code = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(format!("not an HTTP answer: {status:?}"));
    }
    if code != "200" {
        return Err(format!(
            "HTTP status {}",
            status.get(version.len() + 1..).unwrap_or("")
        ));
    }
    let mut length = None;
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.trim().eq_ignore_ascii_case("content-length") {
            length = Some(v.parse().map_err(|_| format!("bad Content-Length {v:?}"))?);
        } else if k.trim().eq_ignore_ascii_case("transfer-encoding")
            && !v.eq_ignore_ascii_case("identity")
        {
            return Err(format!("Transfer-Encoding {v} not supported"));
        }
    }
    Ok(length)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            parse_http_url("http://ca.example.com/crl/sub.crl").unwrap(),
            ("ca.example.com".into(), 80, "/crl/sub.crl".into())
        );
        assert_eq!(
            parse_http_url("HTTP://10.1.1.1:8080").unwrap(),
            ("10.1.1.1".into(), 8080, "/".into())
        );
        assert_eq!(
            parse_http_url("http://[2001:db8::1]:81/a?b=c").unwrap(),
            ("2001:db8::1".into(), 81, "/a?b=c".into())
        );
        assert_eq!(
            parse_http_url("http://[::1]/x").unwrap(),
            ("::1".into(), 80, "/x".into())
        );
        for bad in [
            "https://ca/crl",
            "ldap://ca/cn=x",
            "http://",
            "http://:80/",
            "http://h:99999/",
            "http://u@h/",
            "http://[::1/",
            "ca/crl",
        ] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn heads() {
        assert_eq!(
            parse_head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX: y").unwrap(),
            Some(12)
        );
        assert_eq!(parse_head("HTTP/1.0 200 OK").unwrap(), None);
        let e = parse_head("HTTP/1.1 404 Not Found\r\nContent-Length: 3").unwrap_err();
        assert_eq!(e, "HTTP status 404 Not Found");
        assert!(parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked").is_err());
        assert!(parse_head("SSH-2.0-OpenSSH").is_err());
        assert!(parse_head("HTTP/1.1 200 OK\r\nContent-Length: x").is_err());
    }

    #[test]
    fn garbage_is_not_a_crl() {
        assert!(parse_crl(b"\x30\x03\x02\x01\x00").is_err());
        assert!(parse_crl(b"-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n").is_err());
    }

    #[test]
    fn unreachable_server_fails_quickly() {
        // A listener that is closed at once: connection refused.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let t = Instant::now();
        let e = http_get(
            &format!("http://127.0.0.1:{port}/x.crl"),
            Duration::from_secs(2),
        )
        .unwrap_err();
        assert!(matches!(e, CrlError::Http { .. }), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn silent_server_times_out() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = Instant::now();
        let e = http_get(
            &format!("http://127.0.0.1:{port}/x.crl"),
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        drop(l);
    }
}
