//! Engine types ⇄ wire types. The engine never sees the API; the API never sees the engine.

pub mod container;
pub mod image;
pub mod misc;

use chrono::{DateTime, SecondsFormat, Utc};

/// Go's zero time, which Docker prints for "never".
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// RFC 3339 with nanoseconds (as Go's `RFC3339Nano`), or the zero time.
pub fn rfc3339(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        None => ZERO_TIME.to_string(),
    }
}
