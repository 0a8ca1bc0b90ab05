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
//! Shared by both processes (not behind the `dpdk` feature).

use std::io::Write;

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

/// Installs env_logger (level from `RUST_LOG`, `info` by default) with the IOS-like format;
/// untagged messages get `%FACILITY-<sev>-LOG` when `facility` is given.
pub fn init(facility: Option<&'static str>) {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .target(env_logger::Target::Stderr)
        .format(move |buf, record| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let ts = ios_timestamp(now.as_secs(), now.subsec_millis());
            let msg = record.args().to_string();
            match facility {
                Some(f) if !msg.starts_with('%') => {
                    writeln!(buf, "*{ts}: %{f}-{}-LOG: {msg}", severity(record.level()))
                }
                _ => writeln!(buf, "*{ts}: {msg}"),
            }
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_look_like_ios() {
        // 2026-11-22 14:26:15 UTC
        assert_eq!(ios_timestamp(1_795_357_575, 123), "Nov 22 14:26:15.123");
        assert_eq!(ios_timestamp(0, 0), "Jan  1 00:00:00.000");
    }
}
