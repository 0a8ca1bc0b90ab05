//! Logging to stderr in the style of IOS: one line per event, a timestamp and the message,
//! whose text starts with its facility-severity-mnemonic tag, e.g.
//!
//! ```text
//! *Nov 22 14:26:15.123: %CRYPTO-6-SA_INSTALL: outbound SA spi 0x5 (esp-gcm 128) on lcore 1
//! ```
//!
//! Messages are written by the modules with the tag already in them; a message without a tag
//! gets one derived from its level and the process's facility (`%DATAPLANE-<sev>-LOG`), or,
//! for a process without one (`ipsec-control`, whose untagged lines are IOS `debug crypto`
//! lines such as `ISAKMP:(0): beginning Main Mode exchange`), is printed as it is. Keys are
//! never formatted: the types that hold them redact themselves in `Debug`.
//!
//! Run by systemd, stderr is a stream into journald: each line then starts with `<N>`, the
//! syslog priority (the severity of its IOS tag), which journald files it under
//! (SyslogLevelPrefix, on by default), and the timestamp is left to journald.
//!
//! Shared by both processes (not behind the `dpdk` feature).

use std::io::Write;
use std::sync::OnceLock;

/// IOS severity number for a `log` level.
fn severity(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Formats a UNIX time as IOS does: `Nov 22 14:26:15.123` (UTC).
pub fn ios_timestamp(secs: u64, millis: u32) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{} {:2} {:02}:{:02}:{:02}.{:03}",
        MONTHS[(month - 1) as usize],
        day,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        millis
    )
}

/// Whether stderr is connected to journald: systemd names the stream it connected in
/// `JOURNAL_STREAM` (`DEVICE:INODE`), and stderr is that stream when fstat(2) agrees (a
/// child whose stderr was redirected inherits the variable, but not the stream).
pub fn stderr_is_journal() -> bool {
    static JOURNAL: OnceLock<bool> = OnceLock::new();
    *JOURNAL.get_or_init(|| {
        let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
            return false;
        };
        let Some((dev, ino)) = v.to_str().and_then(|s| s.split_once(':')) else {
            return false;
        };
        let (Ok(dev), Ok(ino)) = (dev.parse::<u64>(), ino.parse::<u64>()) else {
            return false;
        };
        // SAFETY: fstat writes a `stat` into the zeroed struct we own; fd 2 may be closed,
        // which fstat reports as an error.
        let st = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(2, &mut st) != 0 {
                return false;
            }
            st
        };
        st.st_dev as u64 == dev && st.st_ino as u64 == ino
    })
}

/// The syslog priority of a line: the severity of its IOS tag (`%CRYPTO-4-RELOAD: ...` is
/// 4), else that of its `log` level.
pub fn priority(message: &str, level: log::Level) -> u8 {
    message
        .strip_prefix('%')
        .and_then(|t| t.split('-').nth(1))
        .and_then(|n| n.parse::<u8>().ok())
        .filter(|n| *n <= 7)
        .unwrap_or_else(|| severity(level))
}

/// A line for stderr: `*Nov 22 14:26:15.123: MESSAGE`, or `<N>MESSAGE` into journald.
pub fn stderr_line(message: &str, level: log::Level) -> String {
    if stderr_is_journal() {
        return format!("<{}>{message}", priority(message, level));
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "*{}: {message}",
        ios_timestamp(now.as_secs(), now.subsec_millis())
    )
}

/// Installs env_logger (level from `RUST_LOG`, `info` by default) with the IOS-like format;
/// untagged messages get `%FACILITY-<sev>-LOG` when `facility` is given.
pub fn init(facility: Option<&'static str>) {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            let msg = record.args().to_string();
            let msg = match facility {
                Some(f) if !msg.starts_with('%') => {
                    format!("%{f}-{}-LOG: {msg}", severity(record.level()))
                }
                _ => msg,
            };
            writeln!(buf, "{}", stderr_line(&msg, record.level()))
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_priority_is_the_tag_s_severity() {
        assert_eq!(priority("%CRYPTO-4-RELOAD: x", log::Level::Info), 4);
        assert_eq!(priority("%CRYPTO-6-IKMP_ON: x", log::Level::Warn), 6);
        assert_eq!(priority("ISAKMP:(0): beginning", log::Level::Debug), 7);
        assert_eq!(priority("%BAD-X-Y: x", log::Level::Error), 3);
        // not run by systemd: IOS's timestamped lines
        if std::env::var_os("JOURNAL_STREAM").is_none() {
            assert!(stderr_line("%CRYPTO-6-X: y", log::Level::Info).starts_with('*'));
        }
    }

    #[test]
    fn timestamps_look_like_ios() {
        // 2026-11-22 14:26:15 UTC
        assert_eq!(ios_timestamp(1_795_357_575, 123), "Nov 22 14:26:15.123");
        assert_eq!(ios_timestamp(0, 0), "Jan  1 00:00:00.000");
    }
}
