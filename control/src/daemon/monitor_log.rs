//! The logger of `ipsec-control`: what `dataplane::logging` writes to stderr (the same IOS
//! format: `*Nov 22 14:26:15.123: message`, filtered by `RUST_LOG`, `info` by default), and
//! the same lines pushed to the ctl sessions that turned a trace on, the way IOS's
//! `terminal monitor` shows `debug crypto ...` output on a vty:
//!
//! - `debug crypto isakmp`: every line of the IKE code (Main Mode, Quick Mode,
//!   informational exchanges, the daemon, PKI), debug level included;
//! - `debug crypto ipsec`: the lines that start with `IPSEC` (SA requests, installation,
//!   deletion, lifetimes);
//! - `debug crypto engine`: the lines of the dataplane link.
//!
//! A session that asks for a trace must get it even when `RUST_LOG` keeps stderr at
//! `info`: the debug lines are not even formatted unless the `log` crate's maximum level
//! lets them through, so [`refresh_level`] (called by the event loop after every ctl poll)
//! raises the maximum to `debug` while any session is debugging and lowers it back to the
//! `RUST_LOG` level afterwards. Stderr keeps its own filter either way.
//!
//! `RUST_LOG` is read with env_logger's directive syntax (`info`, `control::ike=debug,info`:
//! the most specific target prefix wins); regex filters are not supported. Keys never reach
//! a log line: the types that hold them redact themselves in `Debug`.

use std::io::Write;
use std::sync::{OnceLock, RwLock};

use log::{LevelFilter, Log, Metadata, Record};

use crate::ctl::{DebugFacility, Monitor};

/// `RUST_LOG` directives: a default level and levels per target prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    default: LevelFilter,
    /// Longest prefix first, so that the first match is the most specific.
    targets: Vec<(String, LevelFilter)>,
}

fn parse_level(s: &str) -> Option<LevelFilter> {
    match s.trim().to_ascii_lowercase().as_str() {
        "off" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

impl Filter {
    /// Parses `RUST_LOG`'s value; unknown words are ignored, as env_logger does.
    pub fn parse(spec: &str) -> Filter {
        let mut f = Filter {
            default: LevelFilter::Info,
            targets: Vec::new(),
        };
        let spec = spec.split('/').next().unwrap_or_default();
        let mut saw_default = false;
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match d.split_once('=') {
                Some((target, level)) => {
                    if let Some(l) = parse_level(level) {
                        f.targets.push((target.trim().to_string(), l));
                    }
                }
                None => match parse_level(d) {
                    Some(l) => {
                        f.default = l;
                        saw_default = true;
                    }
                    // a bare module name means "everything from it"
                    None => f.targets.push((d.to_string(), LevelFilter::Trace)),
                },
            }
        }
        if !saw_default && !f.targets.is_empty() {
            // env_logger: with only per-target directives, everything else is off
            f.default = LevelFilter::Off;
        }
        f.targets.sort_by_key(|t| std::cmp::Reverse(t.0.len()));
        f
    }

    /// The level let through for `target`.
    pub fn level_for(&self, target: &str) -> LevelFilter {
        self.targets
            .iter()
            .find(|(t, _)| target.starts_with(t.as_str()))
            .map(|(_, l)| *l)
            .unwrap_or(self.default)
    }

    /// The most verbose level any target gets.
    pub fn max(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, Ord::max)
    }
}

/// The trace a line belongs to, if any: see the module documentation.
pub fn facility(target: &str, message: &str) -> Option<DebugFacility> {
    if message.starts_with("IPSEC") {
        return Some(DebugFacility::Ipsec);
    }
    if target.starts_with("control::dplink")
        || target.starts_with("dataplane")
        || message.contains("-DATAPLANE")
    {
        return Some(DebugFacility::Engine);
    }
    const IKE: [&str; 8] = [
        "control::ike",
        "control::isakmp",
        "control::daemon",
        "control::sessions",
        "control::credentials",
        "control::pki",
        "control::ikecrypto",
        "control::config",
    ];
    IKE.iter()
        .any(|m| target.starts_with(m))
        .then_some(DebugFacility::Isakmp)
}

/// One log line in IOS's format (the timestamp as `dataplane::logging` writes it).
fn line(message: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let ts = dataplane::logging::ios_timestamp(now.as_secs(), now.subsec_millis());
    // the exchange being processed names its ISAKMP SA's conn-id (`ISAKMP:(1)`)
    let message = crate::ike::log_context::with_conn_id(message);
    format!("*{ts}: {message}")
}

/// The logger: stderr through the `RUST_LOG` filter, and the monitor once attached.
pub struct MonitorLogger {
    filter: Filter,
    monitor: RwLock<Option<Monitor>>,
}

impl MonitorLogger {
    pub fn new(filter: Filter) -> MonitorLogger {
        MonitorLogger {
            filter,
            monitor: RwLock::new(None),
        }
    }

    fn monitor(&self) -> Option<Monitor> {
        self.monitor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The `log` crate's maximum level now: the filter's, or debug while a session traces.
    pub fn wanted_level(&self) -> LevelFilter {
        let tracing = self
            .monitor()
            .is_some_and(|m| DebugFacility::ALL.into_iter().any(|f| m.enabled(f)));
        if tracing {
            self.filter.max().max(LevelFilter::Debug)
        } else {
            self.filter.max()
        }
    }

    /// Writes `record` where it belongs; the stderr part goes to `err`.
    fn emit(&self, record: &Record, err: &mut dyn Write) {
        let to_stderr = record.level() <= self.filter.level_for(record.target());
        let monitor = self.monitor();
        if !to_stderr && monitor.is_none() {
            return;
        }
        let message = record.args().to_string();
        let mut text: Option<String> = None;
        if to_stderr {
            if dataplane::logging::stderr_is_journal() {
                let m = crate::ike::log_context::with_conn_id(&message);
                let _ = writeln!(
                    err,
                    "{}",
                    dataplane::logging::stderr_line(&m, record.level())
                );
            } else {
                let t = text.get_or_insert_with(|| line(&message));
                let _ = writeln!(err, "{t}");
            }
        }
        if let Some(m) = monitor {
            if let Some(f) = facility(record.target(), &message).filter(|f| m.enabled(*f)) {
                let t = text.get_or_insert_with(|| line(&message));
                m.line(f, t.clone());
            }
        }
    }
}

impl Log for MonitorLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= self.filter.level_for(metadata.target())
            || self
                .monitor()
                .is_some_and(|m| DebugFacility::ALL.into_iter().any(|f| m.enabled(f)))
    }

    fn log(&self, record: &Record) {
        self.emit(record, &mut std::io::stderr().lock());
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}

static LOGGER: OnceLock<MonitorLogger> = OnceLock::new();

/// Installs the logger (the `RUST_LOG` filter, `info` when unset). A second call, or a
/// logger installed by someone else, leaves things as they are.
pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let logger = LOGGER.get_or_init(|| MonitorLogger::new(Filter::parse(&spec)));
    if log::set_logger(logger).is_ok() {
        log::set_max_level(logger.filter.max());
    }
}

/// Starts feeding the ctl sessions (the server's [`Monitor`]).
pub fn attach(monitor: Monitor) {
    if let Some(l) = LOGGER.get() {
        *l.monitor.write().unwrap_or_else(|e| e.into_inner()) = Some(monitor);
        refresh_level();
    }
}

/// Stops feeding them (the server is going away).
pub fn detach() {
    if let Some(l) = LOGGER.get() {
        *l.monitor.write().unwrap_or_else(|e| e.into_inner()) = None;
        refresh_level();
    }
}

/// Sets the `log` crate's maximum level to what stderr and the debugging sessions need;
/// cheap, called after every ctl poll.
pub fn refresh_level() {
    if let Some(l) = LOGGER.get() {
        log::set_max_level(l.wanted_level());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_directives() {
        let f = Filter::parse("info");
        assert_eq!(f.level_for("control::ike::main_mode"), LevelFilter::Info);
        assert_eq!(f.max(), LevelFilter::Info);
        let f = Filter::parse("warn,control::ike=debug,control::ike::quick_mode=trace");
        assert_eq!(f.level_for("control::daemon"), LevelFilter::Warn);
        assert_eq!(f.level_for("control::ike::main_mode"), LevelFilter::Debug);
        assert_eq!(f.level_for("control::ike::quick_mode"), LevelFilter::Trace);
        assert_eq!(f.max(), LevelFilter::Trace);
        let f = Filter::parse("control=debug");
        assert_eq!(f.level_for("dataplane::channel"), LevelFilter::Off);
        assert_eq!(f.level_for("control::daemon"), LevelFilter::Debug);
        assert_eq!(Filter::parse("").level_for("x"), LevelFilter::Info);
    }

    #[test]
    fn lines_go_to_the_trace_they_belong_to() {
        use DebugFacility::*;
        let f = |t, m| facility(t, m);
        assert_eq!(
            f(
                "control::ike::main_mode",
                "ISAKMP:(0): beginning Main Mode exchange"
            ),
            Some(Isakmp)
        );
        assert_eq!(
            f("control::daemon", "IPSEC(delete_sa): deleting SA"),
            Some(Ipsec)
        );
        assert_eq!(
            f(
                "control::ike::quick_mode",
                "IPSEC(spi_response): getting spi"
            ),
            Some(Ipsec)
        );
        assert_eq!(
            f("control::daemon::run", "%CRYPTO-6-DATAPLANE: connected"),
            Some(Engine)
        );
        assert_eq!(f("control::ctl::server", "ctl: connection refused"), None);
    }

    /// Debug lines reach a session that asked for `debug crypto isakmp`, with stderr kept
    /// at info; nothing is formatted for a trace nobody asked for.
    #[test]
    fn a_debugging_session_gets_debug_lines_stderr_does_not() {
        use crate::ctl::protocol::{encode, Request};
        use crate::ctl::testing::TestBackend;
        use crate::ctl::{CtlServer, CtlServerOptions};
        use std::io::Read;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ctl.sock");
        let mut server = CtlServer::bind(&path, CtlServerOptions::default()).unwrap();
        let logger = MonitorLogger::new(Filter::parse("info"));
        *logger.monitor.write().unwrap() = Some(server.monitor());
        assert_eq!(logger.wanted_level(), LevelFilter::Info);

        let mut client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let req = Request {
            command: "debug crypto isakmp".into(),
            json: false,
        };
        client.write_all(&encode(&req)).unwrap();
        let mut backend = TestBackend::default();
        for _ in 0..50 {
            server.poll(&mut backend);
            if logger.wanted_level() == LevelFilter::Debug {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(logger.wanted_level(), LevelFilter::Debug);

        let mut err = Vec::new();
        for (msg, target, level) in [
            (
                "ISAKMP:(0): beginning Main Mode exchange",
                "control::ike::main_mode",
                log::Level::Debug,
            ),
            (
                "IPSEC(delete_sa): deleting SA",
                "control::daemon",
                log::Level::Info,
            ),
            (
                "%CRYPTO-5-IKMP_SA_UP: up",
                "control::daemon",
                log::Level::Info,
            ),
        ] {
            logger.emit(
                &Record::builder()
                    .args(format_args!("{msg}"))
                    .target(target)
                    .level(level)
                    .build(),
                &mut err,
            );
        }
        server.poll(&mut backend);
        let err = String::from_utf8(err).unwrap();
        assert!(!err.contains("Main Mode"), "debug line on stderr: {err}");
        assert!(err.contains("IPSEC(delete_sa)") && err.contains("IKMP_SA_UP"));

        client
            .set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = client.read(&mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&got);
        assert!(text.contains("beginning Main Mode exchange"), "{text}");
        assert!(text.contains("IKMP_SA_UP"), "{text}");
        assert!(
            !text.contains("IPSEC(delete_sa)"),
            "ipsec trace not asked for: {text}"
        );
    }
}
