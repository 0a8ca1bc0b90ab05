//! Prometheus metrics: the text exposition format (version 0.0.4) of the same views the
//! show commands print, and [`MetricsServer`], a tiny non-blocking HTTP server that answers
//! `GET /metrics` with it, polled from the daemon's event loop like the ctl server.
//!
//! Families (all labels are strings):
//! - `ipsec_sa_packets_total`, `ipsec_sa_bytes_total` (counters) and
//!   `ipsec_sa_remaining_seconds`, `ipsec_sa_remaining_kilobytes` (gauges), per ESP SA,
//!   labels `spi` (`0xD740971C`), `direction` (`inbound`/`outbound`), `peer`, `crypto_map`;
//! - `ipsec_sa_drops_total`: the same labels and `reason`;
//! - `ipsec_lcore_*_total` (rx, tx, encaps, decaps, handoff_in, handoff_out, punted,
//!   bursts, idle_sleeps) per worker, labels `lcore`, `worker`; `ipsec_lcore_drops_total`
//!   adds `reason`;
//! - `ipsec_drops_total`: drops by `reason`, summed over the lcores;
//! - `ipsec_ike_sas`: phase 1 SAs by `state` (`QM_IDLE`, `MM_KEY_EXCH`...);
//! - `ipsec_dh_keypairs_ready` and `ipsec_dh_keypairs_target` (gauges),
//!   `ipsec_dh_keypairs_precomputed_total`, `ipsec_dh_keypairs_taken_total` and
//!   `ipsec_dh_keypairs_on_demand_total` (counters): ipsec-control's Diffie-Hellman key
//!   pairs made ahead of need, label `group`;
//! - `ipsec_ipsec_flows`: flows shown by `show crypto ipsec sa`;
//! - `ipsec_scrape_errors`: 1 per view the daemon could not give (label `view`), so that a
//!   disconnected dataplane shows up as such rather than as missing series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::ctl::backend::CtlBackend;
use crate::ctl::view::{DhKeyPairsView, EspSaView, IpsecSaView, IsakmpSaView, LcoreStatsView};

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `{a="x",b="y"}`.
fn labels(pairs: &[(&str, &str)]) -> String {
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    format!("{{{}}}", inner.join(","))
}

/// Writes the HELP and TYPE lines of a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The metrics of the given views. A None view is one the daemon could not give: its
/// families are left out and `ipsec_scrape_errors` says so.
pub fn render(
    isakmp: Option<&[IsakmpSaView]>,
    ipsec: Option<&[IpsecSaView]>,
    lcores: Option<&[LcoreStatsView]>,
    dh: Option<&[DhKeyPairsView]>,
) -> String {
    let mut out = String::new();
    if let Some(dh) = dh {
        render_dh(&mut out, dh);
    }
    if let Some(flows) = ipsec {
        render_sas(&mut out, flows);
    }
    if let Some(lcores) = lcores {
        render_lcores(&mut out, lcores);
    }
    if let Some(sas) = isakmp {
        let mut by_state: BTreeMap<&str, u64> = BTreeMap::new();
        for s in sas {
            *by_state.entry(s.state.as_str()).or_default() += 1;
        }
        family(
            &mut out,
            "ipsec_ike_sas",
            "gauge",
            "Phase 1 (ISAKMP) SAs by state.",
        );
        for (state, n) in by_state {
            let _ = writeln!(out, "ipsec_ike_sas{} {n}", labels(&[("state", state)]));
        }
    }
    family(
        &mut out,
        "ipsec_scrape_errors",
        "gauge",
        "1 for each view the daemon could not provide at this scrape.",
    );
    for (view, missing) in [
        ("isakmp_sas", isakmp.is_none()),
        ("ipsec_sas", ipsec.is_none()),
        ("lcores", lcores.is_none()),
        ("dh_key_pairs", dh.is_none()),
    ] {
        let _ = writeln!(
            out,
            "ipsec_scrape_errors{} {}",
            labels(&[("view", view)]),
            u8::from(missing)
        );
    }
    out
}

/// A per-SA family: name, type, help, and the value it takes from an SA.
type SaFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&EspSaView) -> u64,
);

/// A per-lcore counter family: name, help, and the value it takes from an lcore.
type LcoreFamily = (&'static str, &'static str, fn(&LcoreStatsView) -> u64);

fn render_sas(out: &mut String, flows: &[IpsecSaView]) {
    family(
        out,
        "ipsec_ipsec_flows",
        "gauge",
        "IPsec flows (proxy identity pairs) with SAs.",
    );
    let _ = writeln!(out, "ipsec_ipsec_flows {}", flows.len());
    // (spi, direction, peer, crypto map) and the SA, for every ESP SA.
    let sas: Vec<_> = flows
        .iter()
        .flat_map(|f| {
            let peer = f.current_peer.to_string();
            f.inbound_esp
                .iter()
                .map(move |sa| ("inbound", sa))
                .chain(f.outbound_esp.iter().map(|sa| ("outbound", sa)))
                .map(move |(dir, sa)| {
                    let spi = format!("0x{:08X}", sa.spi);
                    let l = [
                        ("spi", spi.as_str()),
                        ("direction", dir),
                        ("peer", peer.as_str()),
                        ("crypto_map", sa.crypto_map.as_str()),
                    ];
                    (labels(&l), l.map(|(k, v)| (k, v.to_string())), sa)
                })
        })
        .collect();
    let per_sa: [SaFamily; 4] = [
        (
            "ipsec_sa_packets_total",
            "counter",
            "Packets an ESP SA protected (outbound) or accepted (inbound).",
            |sa| sa.packets,
        ),
        (
            "ipsec_sa_bytes_total",
            "counter",
            "Plaintext bytes of an ESP SA (what its kilobyte lifetime counts).",
            |sa| sa.bytes,
        ),
        (
            "ipsec_sa_remaining_seconds",
            "gauge",
            "Seconds left in an ESP SA's lifetime.",
            |sa| sa.remaining_seconds,
        ),
        (
            "ipsec_sa_remaining_kilobytes",
            "gauge",
            "Kilobytes left in an ESP SA's lifetime.",
            |sa| sa.remaining_kilobytes,
        ),
    ];
    for (name, kind, help, value) in per_sa {
        family(out, name, kind, help);
        for (l, _, sa) in &sas {
            let _ = writeln!(out, "{name}{l} {}", value(sa));
        }
    }
    family(
        out,
        "ipsec_sa_drops_total",
        "counter",
        "Packets of an ESP SA dropped, by reason.",
    );
    for (_, pairs, sa) in &sas {
        for (reason, n) in &sa.drops {
            let mut l: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            l.push(("reason", reason));
            let _ = writeln!(out, "ipsec_sa_drops_total{} {n}", labels(&l));
        }
    }
}

/// A per-group family of the Diffie-Hellman key pairs: name, type, help, and its value.
type DhFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&DhKeyPairsView) -> u64,
);

fn render_dh(out: &mut String, groups: &[DhKeyPairsView]) {
    let per_group: [DhFamily; 5] = [
        (
            "ipsec_dh_keypairs_ready",
            "gauge",
            "Diffie-Hellman key pairs precomputed and not used yet.",
            |g| g.ready,
        ),
        (
            "ipsec_dh_keypairs_target",
            "gauge",
            "Diffie-Hellman key pairs kept precomputed (0: the group is not).",
            |g| g.target,
        ),
        (
            "ipsec_dh_keypairs_precomputed_total",
            "counter",
            "Diffie-Hellman key pairs made ahead of need.",
            |g| g.precomputed,
        ),
        (
            "ipsec_dh_keypairs_taken_total",
            "counter",
            "Precomputed Diffie-Hellman key pairs an exchange used.",
            |g| g.taken,
        ),
        (
            "ipsec_dh_keypairs_on_demand_total",
            "counter",
            "Diffie-Hellman key pairs made during an exchange because none was ready.",
            |g| g.on_demand,
        ),
    ];
    for (name, kind, help, value) in per_group {
        family(out, name, kind, help);
        for g in groups {
            let group = g.group.to_string();
            let _ = writeln!(out, "{name}{} {}", labels(&[("group", &group)]), value(g));
        }
    }
}

fn render_lcores(out: &mut String, lcores: &[LcoreStatsView]) {
    let per_lcore: [LcoreFamily; 9] = [
        (
            "ipsec_lcore_rx_packets_total",
            "Frames a worker received from the ports.",
            |l| l.rx,
        ),
        (
            "ipsec_lcore_tx_packets_total",
            "Frames a worker sent to the ports.",
            |l| l.tx,
        ),
        (
            "ipsec_lcore_encaps_total",
            "Packets a worker encapsulated.",
            |l| l.encaps,
        ),
        (
            "ipsec_lcore_decaps_total",
            "Packets a worker decapsulated.",
            |l| l.decaps,
        ),
        (
            "ipsec_lcore_handoff_in_total",
            "Packets a worker received from other workers (SAs it owns).",
            |l| l.handoff_in,
        ),
        (
            "ipsec_lcore_handoff_out_total",
            "Packets a worker handed to the owner of their SA.",
            |l| l.handoff_out,
        ),
        (
            "ipsec_lcore_punted_total",
            "Packets a worker sent to the main lcore (ARP, ICMP, IKE).",
            |l| l.punted,
        ),
        (
            "ipsec_lcore_bursts_total",
            "Non-empty bursts a worker processed.",
            |l| l.bursts,
        ),
        (
            "ipsec_lcore_idle_sleeps_total",
            "Times a worker slept with its queues empty (rx_mode adaptive).",
            |l| l.idle_sleeps,
        ),
    ];
    for (name, help, value) in per_lcore {
        family(out, name, "counter", help);
        for l in lcores {
            let (lcore, worker) = (l.lcore.to_string(), l.worker.to_string());
            let _ = writeln!(
                out,
                "{name}{} {}",
                labels(&[("lcore", &lcore), ("worker", &worker)]),
                value(l)
            );
        }
    }
    family(
        out,
        "ipsec_lcore_drops_total",
        "counter",
        "Packets a worker dropped, by reason.",
    );
    let mut total: BTreeMap<&str, u64> = BTreeMap::new();
    for l in lcores {
        let (lcore, worker) = (l.lcore.to_string(), l.worker.to_string());
        for (reason, n) in &l.drops {
            *total.entry(reason.as_str()).or_default() += n;
            let _ = writeln!(
                out,
                "ipsec_lcore_drops_total{} {n}",
                labels(&[("lcore", &lcore), ("worker", &worker), ("reason", reason)])
            );
        }
    }
    family(
        out,
        "ipsec_drops_total",
        "counter",
        "Packets the dataplane dropped, by reason.",
    );
    for (reason, n) in total {
        let _ = writeln!(
            out,
            "ipsec_drops_total{} {n}",
            labels(&[("reason", reason)])
        );
    }
}

/// The metrics of everything the backend gives now.
pub fn render_from(backend: &mut dyn CtlBackend) -> String {
    let isakmp = backend.isakmp_sas().ok();
    let ipsec = backend.ipsec_sas().ok();
    let lcores = backend.lcore_stats().ok();
    let dh = backend.dh_key_pairs().ok();
    render(
        isakmp.as_deref(),
        ipsec.as_deref(),
        lcores.as_deref(),
        dh.as_deref(),
    )
}

/// The longest request head read; beyond it the client gets 431.
const MAX_HEAD: usize = 8 * 1024;

/// A connection that has been silent this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// One HTTP connection: its request head as it arrives, then the response being written.
struct HttpConn {
    stream: TcpStream,
    head: Vec<u8>,
    response: Option<Vec<u8>>,
    last_activity: Instant,
    done: bool,
}

/// The metrics endpoint: HTTP/1.x, one request per connection (`Connection: close`).
pub struct MetricsServer {
    listener: TcpListener,
    conns: Vec<HttpConn>,
}

impl MetricsServer {
    /// Listens on `addr` (e.g. `127.0.0.1:9477`; port 0 picks one).
    pub fn bind(addr: SocketAddr) -> io::Result<MetricsServer> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(MetricsServer {
            listener,
            conns: Vec::new(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The descriptors to watch for readability (the listener and every connection).
    pub fn fds(&self) -> Vec<RawFd> {
        std::iter::once(self.listener.as_raw_fd())
            .chain(self.conns.iter().map(|c| c.stream.as_raw_fd()))
            .collect()
    }

    /// Accepts, reads and answers what it can without blocking; the number of responses
    /// completed and connections accepted.
    pub fn poll(&mut self, backend: &mut dyn CtlBackend) -> usize {
        let mut work = 0;
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    work += 1;
                    if stream.set_nonblocking(true).is_ok() {
                        self.conns.push(HttpConn {
                            stream,
                            head: Vec::new(),
                            response: None,
                            last_activity: Instant::now(),
                            done: false,
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if e.kind() != io::ErrorKind::WouldBlock {
                        log::warn!("metrics: accept: {e}");
                    }
                    break;
                }
            }
        }
        for c in &mut self.conns {
            if c.response.is_none() {
                read_head(c);
                if let Some(response) = respond(&c.head, backend) {
                    c.response = Some(response);
                }
            }
            if let Some(response) = &mut c.response {
                while !response.is_empty() {
                    match c.stream.write(response) {
                        Ok(0) => {
                            c.done = true;
                            break;
                        }
                        Ok(n) => {
                            response.drain(..n);
                            c.last_activity = Instant::now();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            c.done = true;
                            break;
                        }
                    }
                }
                if response.is_empty() {
                    work += 1;
                    c.done = true;
                }
            }
            if c.last_activity.elapsed() > IDLE_TIMEOUT {
                c.done = true;
            }
        }
        self.conns.retain(|c| !c.done);
        work
    }
}

/// Reads what has arrived of a request head.
fn read_head(c: &mut HttpConn) {
    let mut buf = [0u8; 2048];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => {
                c.done = c.head.is_empty() || !head_complete(&c.head);
                break;
            }
            Ok(n) => {
                c.head.extend_from_slice(&buf[..n]);
                c.last_activity = Instant::now();
                if head_complete(&c.head) || c.head.len() > MAX_HEAD {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                c.done = true;
                break;
            }
        }
    }
}

fn head_complete(head: &[u8]) -> bool {
    head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n")
}

/// The response to a complete request head; None while it is incomplete.
fn respond(head: &[u8], backend: &mut dyn CtlBackend) -> Option<Vec<u8>> {
    if head.len() > MAX_HEAD {
        return Some(http(
            431,
            "Request Header Fields Too Large",
            "text/plain",
            "too large\n",
        ));
    }
    if !head_complete(head) {
        return None;
    }
    let text = String::from_utf8_lossy(head);
    let mut request_line = text.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (request_line.next(), request_line.next());
    let path = target.map(|t| t.split('?').next().unwrap_or(t));
    Some(match (method, path) {
        (Some("GET"), Some("/metrics")) => http(
            200,
            "OK",
            "text/plain; version=0.0.4; charset=utf-8",
            &render_from(backend),
        ),
        (Some("GET"), _) => http(404, "Not Found", "text/plain", "try /metrics\n"),
        _ => http(405, "Method Not Allowed", "text/plain", "GET only\n"),
    })
}

fn http(status: u16, reason: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::testing::{self, TestBackend};

    #[test]
    fn exposition_format() {
        let text = render(
            Some(&testing::router_isakmp_sas()),
            Some(&testing::router_ipsec_sas()),
            Some(&testing::lcores()),
            Some(&testing::dh_key_pairs()),
        );
        for line in [
            "# HELP ipsec_sa_packets_total Packets an ESP SA protected (outbound) or accepted (inbound).",
            "# TYPE ipsec_sa_packets_total counter",
            "ipsec_sa_packets_total{spi=\"0xD740971C\",direction=\"inbound\",peer=\"172.16.172.34\",crypto_map=\"vpn\"} 3",
            "ipsec_sa_packets_total{spi=\"0x3803A0C1\",direction=\"outbound\",peer=\"172.16.172.34\",crypto_map=\"vpn\"} 3",
            "ipsec_sa_remaining_seconds{spi=\"0x3803A0C1\",direction=\"outbound\",peer=\"172.16.172.34\",crypto_map=\"vpn\"} 3141",
            "ipsec_sa_drops_total{spi=\"0xD740971C\",direction=\"inbound\",peer=\"172.16.172.34\",crypto_map=\"vpn\",reason=\"replay\"} 1",
            "# TYPE ipsec_lcore_rx_packets_total counter",
            "ipsec_lcore_rx_packets_total{lcore=\"1\",worker=\"0\"} 100",
            "ipsec_lcore_handoff_out_total{lcore=\"1\",worker=\"0\"} 4",
            "ipsec_lcore_drops_total{lcore=\"1\",worker=\"0\",reason=\"auth-failed\"} 1",
            "# TYPE ipsec_drops_total counter",
            "ipsec_drops_total{reason=\"replay\"} 2",
            "# TYPE ipsec_ike_sas gauge",
            "ipsec_ike_sas{state=\"QM_IDLE\"} 1",
            "ipsec_ipsec_flows 1",
            "ipsec_scrape_errors{view=\"lcores\"} 0",
            "# TYPE ipsec_dh_keypairs_ready gauge",
            "ipsec_dh_keypairs_ready{group=\"14\"} 1536",
            "ipsec_dh_keypairs_target{group=\"19\"} 0",
            "# TYPE ipsec_dh_keypairs_taken_total counter",
            "ipsec_dh_keypairs_taken_total{group=\"14\"} 1024",
            "ipsec_dh_keypairs_on_demand_total{group=\"19\"} 2",
            "ipsec_scrape_errors{view=\"dh_key_pairs\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        // Every sample line belongs to a family declared before it, once.
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                assert!(declared.insert(rest.split(' ').next().unwrap().to_string()));
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{line}");
                assert!(
                    line.rsplit(' ').next().unwrap().parse::<f64>().is_ok(),
                    "{line}"
                );
            }
        }
    }

    #[test]
    fn missing_views_and_escaping() {
        let text = render(None, None, None, None);
        assert!(text.contains("ipsec_scrape_errors{view=\"ipsec_sas\"} 1\n"));
        assert!(!text.contains("ipsec_sa_packets_total"));
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
    }

    fn get(addr: SocketAddr, server: &mut MetricsServer, request: &str) -> String {
        let mut backend = TestBackend::default();
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut response = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            assert!(Instant::now() < deadline, "no response");
            server.poll(&mut backend);
            let mut buf = [0u8; 4096];
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(e) => panic!("{e}"),
            }
        }
        String::from_utf8(response).unwrap()
    }

    #[test]
    fn serves_get_metrics_over_tcp() {
        let mut server = MetricsServer::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = server.local_addr().unwrap();
        let r = get(
            addr,
            &mut server,
            "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let (head, body) = r.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(body, render_from(&mut TestBackend::default()));
        let r = get(addr, &mut server, "GET /other HTTP/1.0\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404 "));
        let r = get(addr, &mut server, "POST /metrics HTTP/1.0\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405 "));
        assert!(server.conns.is_empty());
    }
}
