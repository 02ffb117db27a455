//! Times as RFC 3339 UTC text: backup ids and manifests (seconds), records (microseconds).

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch as RFC 3339 UTC (Howard Hinnant's civil-from-days).
pub fn rfc3339(t: SystemTime) -> String {
    stamp(t, false)
}

/// RFC 3339 UTC with microseconds: records made in the same second (a plan, then the apply)
/// still order correctly.
pub fn rfc3339_micros(t: SystemTime) -> String {
    stamp(t, true)
}

fn stamp(t: SystemTime, micros: bool) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let fraction = if micros {
        format!(".{:06}", since.subsec_micros())
    } else {
        String::new()
    };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// An RFC 3339 UTC time (with or without a fraction) as (seconds, nanoseconds) since the
/// epoch, the inverse of [`rfc3339`] and [`rfc3339_micros`]: `summarize` orders records by it,
/// since whole-second stamps (`...:05Z`) and fractional ones (`...:05.250000Z`) do not sort as
/// text.
pub fn parse(t: &str) -> Option<(i64, u32)> {
    let b = t.as_bytes();
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' || !t.ends_with('Z') {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = &t[19..t.len() - 1];
    let nanos = match frac.strip_prefix('.') {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|c| c.is_ascii_digit()) => {
            f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32)
        }
        None if frac.is_empty() => 0,
        _ => return None,
    };
    // Days from civil (Howard Hinnant), the inverse of `stamp`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400 + hh * 3600 + mm * 60 + ss, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_795_000_000)),
            "2026-11-18T11:06:40Z"
        );
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn micros_keep_the_fraction() {
        let t = UNIX_EPOCH + Duration::from_micros(951_782_400_123_456);
        assert_eq!(rfc3339_micros(t), "2000-02-29T00:00:00.123456Z");
    }

    #[test]
    fn parse_orders_fractions_after_whole_seconds_and_inverts_stamp() {
        let t = |s| parse(s).unwrap();
        assert!(t("2026-01-01T00:00:05.250000Z") > t("2026-01-01T00:00:05Z"));
        assert!(t("2026-01-01T00:00:05.250000Z") < t("2026-01-01T00:00:05.3Z"));
        assert!(t("2026-03-01T00:00:00Z") > t("2026-02-28T23:59:59.999999Z"));
        let now = std::time::SystemTime::now();
        let d = now.duration_since(std::time::UNIX_EPOCH).unwrap();
        assert_eq!(
            t(&rfc3339_micros(now)),
            (d.as_secs() as i64, d.subsec_micros() * 1000)
        );
        assert_eq!(parse("yesterday"), None);
    }
}
