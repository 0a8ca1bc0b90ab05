//! The show commands' text, in IOS's layout: one module per command family, each a set of
//! `render_*(&[View]) -> String` functions over the plain views of [`super::view`].
//!
//! The layout follows the reference outputs (`shared/reference/ios-show-and-debug.md`): the
//! field names, their order, the indentation and blank lines of IOS 12.2 (the only samples
//! whose whitespace survived the documents), and where a newer IOS prints more (the status
//! column of `show crypto isakmp sa`, `current_peer ... port`, per-SA `Status:`), the newer
//! IOS's fields, because they carry what operators ask about. Each module's golden tests
//! compare with the samples and list every difference.
//!
//! Times are printed in UTC (`14:03:31 UTC Jun 19 2001`), whatever the host's zone.

pub mod engine;
pub mod ipsec;
pub mod isakmp;
pub mod map;
pub mod pki;

#[cfg(test)]
pub(crate) mod samples;

/// An SPI as IOS prints it in `show crypto ipsec sa`: hex and decimal, `0xD740971C(3611334428)`.
pub fn spi(spi: u32) -> String {
    format!("0x{spi:X}({spi})")
}

/// A Unix time as IOS prints dates (`14:03:31 UTC Jun 19 2001`), in UTC.
pub fn ios_time(unix: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{:02}:{:02}:{:02} UTC {} {} {}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
        MONTHS[(month - 1) as usize],
        day,
        year
    )
}

/// A duration as `hh:mm:ss` (hours may exceed 24), as IOS prints an ISAKMP SA's lifetime.
pub fn hms(seconds: u64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// The proleptic Gregorian (year, month, day) of a count of days since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`), so that dates need no time-zone library.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spi_is_hex_and_decimal() {
        assert_eq!(spi(0xD740971C), "0xD740971C(3611334428)");
        assert_eq!(spi(0x1B2C3D4E), "0x1B2C3D4E(455884110)");
        assert_eq!(spi(0), "0x0(0)");
    }

    #[test]
    fn dates_in_ios_words() {
        assert_eq!(ios_time(0), "00:00:00 UTC Jan 1 1970");
        // 22:03:31 UTC Jun 19 2001 (the PIX's time of the RA certificate in the reference).
        assert_eq!(ios_time(992_988_211), "22:03:31 UTC Jun 19 2001");
        assert_eq!(ios_time(951_782_400), "00:00:00 UTC Feb 29 2000");
        assert_eq!(ios_time(-1), "23:59:59 UTC Dec 31 1969");
    }

    #[test]
    fn lifetimes_as_hms() {
        assert_eq!(hms(86_398), "23:59:58");
        assert_eq!(hms(86_400), "24:00:00");
        assert_eq!(hms(5), "00:00:05");
    }
}
