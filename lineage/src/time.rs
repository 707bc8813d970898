//! Time as the database stores it: nanoseconds since the Unix epoch (for ordering and exact
//! round trips) next to RFC 3339 UTC text with milliseconds (for people reading the file).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats `t` as RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:34:56.789Z`.
/// Times before 1970 are formatted too; the millisecond part is truncated, not rounded.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// let t = UNIX_EPOCH + Duration::from_millis(1_714_566_896_789);
/// assert_eq!(shark_lineage::rfc3339(t), "2024-05-01T12:34:56.789Z");
/// ```
pub fn rfc3339(t: SystemTime) -> String {
    let ms = to_nanos(t).div_euclid(1_000_000);
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (h, m) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (s, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Nanoseconds since the epoch, negative before it, saturating outside about 1677..2262.
pub(crate) fn to_nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

/// The inverse of [`to_nanos`].
pub(crate) fn from_nanos(n: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(n.unsigned_abs());
    if n >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// A duration in nanoseconds, saturating at about 292 years.
pub(crate) fn duration_nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The inverse of [`duration_nanos`]; a negative count (never written) reads as zero.
pub(crate) fn duration_from_nanos(n: i64) -> Duration {
    Duration::from_nanos(u64::try_from(n).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> SystemTime {
        from_nanos(ms * 1_000_000)
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400_000)), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(at(1_709_251_199_999)), "2024-02-29T23:59:59.999Z");
        assert_eq!(rfc3339(at(4_102_444_800_000)), "2100-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(-1)), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(at(-86_400_000 * 365)), "1969-01-01T00:00:00.000Z");
    }

    #[test]
    fn truncates_below_a_millisecond() {
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(rfc3339(t), "1970-01-01T00:00:00.001Z");
    }

    #[test]
    fn nanos_round_trip() {
        for n in [0, 1, -1, 1_714_566_896_789_123_456, -123_456_789_012] {
            assert_eq!(to_nanos(from_nanos(n)), n);
        }
        let d = Duration::new(3, 7);
        assert_eq!(duration_from_nanos(duration_nanos(d)), d);
    }
}
