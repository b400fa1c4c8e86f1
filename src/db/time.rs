//! UTC calendar arithmetic and the time specs users type.
//!
//! Day files are named by UTC date, and every time a user gives or sees is
//! UTC: the database never consults the local time zone.

use std::fmt;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// A UTC calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, e.g. 2026.
    pub year: i32,
    /// Month, 1-12.
    pub month: u32,
    /// Day of month, 1-31.
    pub day: u32,
}

/// Days since 1970-01-01 for a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

impl Date {
    /// The UTC date of a Unix time.
    pub fn of(time: i64) -> Date {
        let (y, m, d) = civil_from_days(time.div_euclid(DAY));
        Date {
            year: y as i32,
            month: m as u32,
            day: d as u32,
        }
    }

    /// Unix time of this date's midnight.
    pub fn start(self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        ) * DAY
    }

    /// The following day.
    pub fn next(self) -> Date {
        Date::of(self.start() + DAY)
    }

    /// The day before.
    pub fn prev(self) -> Date {
        Date::of(self.start() - DAY)
    }

    /// `YYYYMMDD`, the stem of day-file names.
    pub fn stem(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// Parse a `YYYYMMDD` stem; `None` for anything else.
    pub fn from_stem(stem: &str) -> Option<Date> {
        if stem.len() != 8 || !stem.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year = stem[..4].parse().ok()?;
        let month = stem[4..6].parse().ok()?;
        let day = stem[6..].parse().ok()?;
        let date = Date { year, month, day };
        (Date::of(date.start()) == date).then_some(date)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time.
pub fn iso(time: i64) -> String {
    let d = Date::of(time);
    let s = time.rem_euclid(DAY);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year,
        d.month,
        d.day,
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A time spec that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTimeSpec(pub String);

impl fmt::Display for BadTimeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad time spec {:?} (use now, HH:MM, YYYY-MM-DDTHH:MM[:SS], YYYY-MM-DD, -Nd, -Nh, -Nm or @UNIX, all UTC)",
            self.0
        )
    }
}

impl std::error::Error for BadTimeSpec {}

fn num(s: &str, digits: usize) -> Option<i64> {
    (s.len() == digits && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// Parse a time spec relative to `now`, in UTC:
/// `now`; `HH:MM` (the most recent such time, today or yesterday);
/// `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD`; `-Nd`, `-Nh`, `-Nm`, `-Ns`
/// (that long ago); `@N` (Unix seconds).
pub fn parse_time_spec(spec: &str, now: i64) -> Result<i64, BadTimeSpec> {
    let bad = || BadTimeSpec(spec.to_string());
    let s = spec.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(unix) = s.strip_prefix('@') {
        return unix.parse().map_err(|_| bad());
    }
    if let Some(ago) = s.strip_prefix('-') {
        let (n, unit) = ago.split_at(ago.len().saturating_sub(1));
        let n: i64 = n.parse().map_err(|_| bad())?;
        let scale = match unit {
            "d" => DAY,
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad()),
        };
        return n
            .checked_mul(scale)
            .and_then(|d| now.checked_sub(d))
            .ok_or_else(bad);
    }
    let clock = |hm: &str| -> Option<i64> {
        let mut parts = hm.split(':');
        let h = num(parts.next()?, 2)?;
        let m = num(parts.next()?, 2)?;
        let sec = match parts.next() {
            Some(x) => num(x, 2)?,
            None => 0,
        };
        (parts.next().is_none() && h < 24 && m < 60 && sec < 60).then_some(h * 3600 + m * 60 + sec)
    };
    if s.len() == 5 && s.as_bytes()[2] == b':' {
        let of_day = clock(s).ok_or_else(bad)?;
        let today = now.div_euclid(DAY) * DAY + of_day;
        return Ok(if today > now { today - DAY } else { today });
    }
    let (date, clock_part) = match s.split_once('T') {
        Some((d, c)) => (d, Some(c.trim_end_matches('Z'))),
        None => (s, None),
    };
    let mut ymd = date.split('-');
    let (Some(y), Some(m), Some(d), None) = (ymd.next(), ymd.next(), ymd.next(), ymd.next()) else {
        return Err(bad());
    };
    let (y, m, d) = (
        num(y, 4).ok_or_else(bad)?,
        num(m, 2).ok_or_else(bad)?,
        num(d, 2).ok_or_else(bad)?,
    );
    let date = Date {
        year: y as i32,
        month: m as u32,
        day: d as u32,
    };
    if Date::of(date.start()) != date {
        return Err(bad());
    }
    let of_day = match clock_part {
        Some(c) => clock(c).ok_or_else(bad)?,
        None => 0,
    };
    Ok(date.start() + of_day)
}

/// Parse an age such as `30d`, `12h`, `90m` or `3600` (seconds).
pub fn parse_age(spec: &str) -> Result<i64, BadTimeSpec> {
    let bad = || BadTimeSpec(spec.to_string());
    let s = spec.trim();
    let (n, scale) = match s.char_indices().last() {
        Some((i, 'd')) => (&s[..i], DAY),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 's')) => (&s[..i], 1),
        _ => (s, 1),
    };
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n < 0 {
        return Err(bad());
    }
    n.checked_mul(scale).ok_or_else(bad)
}

/// Seconds since the epoch of an ISO 8601 UTC time as Keystone and
/// other APIs write it: `2026-12-01T10:00:00[.000000][Z]`.
pub fn parse_iso(text: &str) -> Option<i64> {
    let t = text.trim().trim_end_matches('Z');
    let t = t.split('.').next()?;
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut h = time.split(':').map(|x| x.parse::<i64>().ok());
    let (hh, mm) = (h.next()??, h.next()??);
    let ss = h.next().flatten().unwrap_or(0);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(
            Date::of(0),
            Date {
                year: 1970,
                month: 1,
                day: 1
            }
        );
        let d = Date {
            year: 2024,
            month: 2,
            day: 29,
        };
        assert_eq!(Date::of(d.start() + DAY - 1), d);
        assert_eq!(
            d.next(),
            Date {
                year: 2024,
                month: 3,
                day: 1
            }
        );
        assert_eq!(d.next().prev(), d);
        assert_eq!(Date::from_stem("20240229"), Some(d));
        assert_eq!(Date::from_stem("20230229"), None);
        assert_eq!(iso(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(
            Date::of(-1),
            Date {
                year: 1969,
                month: 12,
                day: 31
            }
        );
    }

    #[test]
    fn time_specs() {
        let now = 1_700_000_000; // 2023-11-14T22:13:20Z
        assert_eq!(parse_time_spec("now", now), Ok(now));
        assert_eq!(parse_time_spec("-2h", now), Ok(now - 7200));
        assert_eq!(parse_time_spec("-1d", now), Ok(now - DAY));
        assert_eq!(parse_time_spec("22:00", now), Ok(now - 800));
        assert_eq!(parse_time_spec("23:00", now), Ok(now - 800 + 3600 - DAY));
        assert_eq!(parse_time_spec("2023-11-14T22:13", now), Ok(now - 20));
        assert_eq!(parse_time_spec("2023-11-14T22:13:20Z", now), Ok(now));
        assert_eq!(parse_time_spec("2023-11-14", now), Ok(now - 80_000));
        assert_eq!(parse_time_spec("@42", now), Ok(42));
        for bad in [
            "",
            "yesterday",
            "25:00",
            "2023-02-30",
            "-5x",
            "2023-11-14T22",
            "-d",
        ] {
            assert!(parse_time_spec(bad, now).is_err(), "{bad}");
        }
        assert_eq!(parse_age("30d"), Ok(30 * DAY));
        assert_eq!(parse_age("90"), Ok(90));
        assert!(parse_age("-1d").is_err());
    }
}
