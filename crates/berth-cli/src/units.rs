//! Sizes and durations the way Docker prints and parses them (go-units).

use chrono::{DateTime, Utc};

/// Decimal units of go-units' `HumanSize*`.
const DECIMAL: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
/// Binary units of go-units' `BytesSize`.
const BINARY: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/// go-units' `CustomSize`: `size` divided by `base` until under it (or the last unit), then
/// printed with `digits` significant digits.
fn custom_size(size: f64, base: f64, units: &[&str], digits: i32) -> String {
    let mut s = size;
    let mut i = 0;
    while s >= base && i < units.len() - 1 {
        s /= base;
        i += 1;
    }
    format!("{}{}", g(s, digits), units[i])
}

/// `HumanSizeWithPrecision(size, 3)`: decimal units, 3 significant digits (`4.26MB`).
pub fn human_size(size: f64) -> String {
    custom_size(size, 1000.0, &DECIMAL, 3)
}

/// `HumanSize`: [`human_size`] with 4 significant digits (`4.261MB`).
pub fn human_size_4(size: f64) -> String {
    custom_size(size, 1000.0, &DECIMAL, 4)
}

/// `BytesSize`: binary units (`1.5MiB`), as `docker stats` prints memory.
pub fn bytes_size(size: f64) -> String {
    custom_size(size, 1024.0, &BINARY, 3)
}

/// Go's `%.{p}g` for the magnitudes sizes have.
fn g(v: f64, p: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let digits = v.abs().log10().floor() as i32 + 1;
    let decimals = (p - digits).max(0) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `RAMInBytes`: `32m`, `1g`, `512k`, `100` (binary multipliers, optional `b`).
pub fn parse_ram(s: &str) -> Result<i64, String> {
    let t = s.trim().to_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('p') => (&t[..t.len() - 1], 1 << 50),
        _ => (t, 1),
    };
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    if n < 0.0 {
        return Err(format!("invalid size: '{s}'"));
    }
    Ok((n * mult as f64) as i64)
}

/// `HumanDuration`: `Less than a second`, `5 seconds`, `About a minute`, `2 hours`, ...
pub fn human_duration(d: chrono::Duration) -> String {
    let secs = d.num_seconds();
    let mins = d.num_minutes();
    let hours = d.num_hours();
    if secs < 1 {
        "Less than a second".into()
    } else if secs == 1 {
        "1 second".into()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if mins == 1 {
        "About a minute".into()
    } else if mins < 60 {
        format!("{mins} minutes")
    } else if (hours as f64 + 0.5).round() as i64 == 1 && hours < 2 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// `5 minutes ago` for a Unix timestamp.
pub fn ago(unix: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp(unix, 0).unwrap_or_else(Utc::now);
    format!("{} ago", human_duration(Utc::now() - t))
}

/// `--since`/`--until` values: a duration (`10m`, `1h30m`, `5s`) relative to now, a Unix
/// timestamp, or RFC 3339. Returns Docker's `seconds.nanoseconds` form.
pub fn parse_timestamp(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(String::new());
    }
    if t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Ok(t.to_string());
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(format!(
            "{}.{:09}",
            d.timestamp(),
            d.timestamp_subsec_nanos()
        ));
    }
    let d = parse_go_duration(t)
        .ok_or_else(|| format!("invalid value {s:?}: use a duration like 10m or a timestamp"))?;
    let when = Utc::now() - d;
    Ok(format!(
        "{}.{:09}",
        when.timestamp(),
        when.timestamp_subsec_nanos()
    ))
}

/// `1h30m`, `10m`, `5s`, `250ms`.
pub fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphabetic() {
                unit.push(n);
                chars.next();
            } else {
                break;
            }
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return None,
        };
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(chrono::Duration::nanoseconds((total * 1e9) as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(human_size(4_261_000.0), "4.26MB");
        assert_eq!(human_size_4(4_261_000.0), "4.261MB");
        assert_eq!(human_size_4(4_260_000.0), "4.26MB");
        assert_eq!(human_size(999.0), "999B");
        assert_eq!(human_size(1_000.0), "1kB");
        assert_eq!(bytes_size(1536.0 * 1024.0), "1.5MiB");
        assert_eq!(parse_ram("32m").unwrap(), 32 << 20);
        assert_eq!(parse_ram("1G").unwrap(), 1 << 30);
        assert_eq!(parse_ram("512kb").unwrap(), 512 << 10);
        assert!(parse_ram("lots").is_err());
        assert_eq!(human_duration(chrono::Duration::seconds(5)), "5 seconds");
        assert_eq!(
            human_duration(chrono::Duration::seconds(90)),
            "About a minute"
        );
        assert_eq!(human_duration(chrono::Duration::minutes(5)), "5 minutes");
        assert_eq!(human_duration(chrono::Duration::hours(3)), "3 hours");
        assert_eq!(
            parse_go_duration("1h30m").unwrap(),
            chrono::Duration::minutes(90)
        );
        assert!(parse_go_duration("10x").is_none());
        assert_eq!(parse_timestamp("1700000000").unwrap(), "1700000000");
    }
}
