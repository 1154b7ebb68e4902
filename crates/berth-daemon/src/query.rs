//! Query-string helpers with Docker's parsing rules.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use berth_api::filters::Filters;
use chrono::{DateTime, TimeZone, Utc};

use crate::error::ApiError;

/// The query's pairs, every value in order. Single-valued reads take the FIRST value of a
/// key, as Go's `url.Values.Get` (moby's `r.Form.Get`) does; [`Q::all`] gives every value of
/// a repeated key (`changes=CMD+sh&changes=ENV+A=1`, `names=a&names=b`). A query Go's
/// `url.ParseQuery` refuses (a bad `%` escape, a `;` separator) is a 400 with Go's words,
/// as moby's `httputils.ParseForm` answers.
#[derive(Debug, Clone, Default)]
pub struct Q(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Q {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        check_query(q).map_err(ApiError::bad_request)?;
        Ok(Q::parse(q))
    }
}

/// Decodes `a=1&b=x%20y` (application/x-www-form-urlencoded).
pub fn form_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

/// The first error Go's `url.ParseQuery` reports for `q`, in its words.
pub fn check_query(q: &str) -> Result<(), String> {
    for kv in q.split('&').filter(|s| !s.is_empty()) {
        if kv.contains(';') {
            return Err("invalid semicolon separator in query".into());
        }
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        for part in [k, v] {
            let b = part.as_bytes();
            if let Some(i) = (0..b.len()).find(|&i| {
                b[i] == b'%'
                    && (i + 2 >= b.len()
                        || !b[i + 1].is_ascii_hexdigit()
                        || !b[i + 2].is_ascii_hexdigit())
            }) {
                let bad: String = part[i..].chars().take(3).collect();
                return Err(format!("invalid URL escape {bad:?}"));
            }
        }
    }
    Ok(())
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match h {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Q {
    /// Parses a raw query string (`a=1&b=x%20y&a=2`).
    pub fn parse(q: &str) -> Q {
        Q(form_pairs(q))
    }

    /// The first value of `k`, like Go's `url.Values.Get` (None when absent).
    pub fn str(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `k`, in the order the client sent them (empty when absent).
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Whether `k` is present at all, even with an empty value (`_, ok := r.Form[k]`).
    pub fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(key, _)| key == k)
    }

    /// moby's `BoolValue`: anything but "", 0, no, false, none is true.
    pub fn bool(&self, k: &str) -> bool {
        self.str(k).is_some_and(|v| {
            !matches!(
                v.trim().to_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            )
        })
    }

    /// Like [`Q::bool`] but with a default when the key is absent.
    pub fn bool_or(&self, k: &str, default: bool) -> bool {
        if self.has(k) {
            self.bool(k)
        } else {
            default
        }
    }

    pub fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.str(k).map(|s| s.trim()) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {k}: {v:?} is not an integer"))
            }),
        }
    }

    pub fn filters(&self) -> Result<Filters, ApiError> {
        Filters::parse(self.str("filters").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// A Unix timestamp with optional fraction (`1700000000.123456789`), or RFC 3339.
    pub fn time(&self, k: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
        match self.str(k).map(|s| s.trim()) {
            None | Some("") | Some("0") => Ok(None),
            Some(v) => parse_time(v).map(Some).ok_or_else(|| {
                ApiError::bad_request(format!("invalid value for {k}: {v:?} is not a timestamp"))
            }),
        }
    }
}

pub fn parse_time(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    let (s, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = s.parse().ok()?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        let f: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        f.parse().ok()?
    };
    Utc.timestamp_opt(secs, nanos).single()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_query_values() {
        let q = Q::parse("force=1&v=False&filters=%7B%22a%22%3A%5B%22b%22%5D%7D&t=5&x=%zz");
        assert!(q.bool("force"));
        assert!(!q.bool("v"));
        assert!(!q.bool("missing"));
        assert_eq!(q.int("t").unwrap(), Some(5));
        assert_eq!(q.filters().unwrap().get("a"), ["b"]);
        // Decoding is lenient; the extractor refuses such a query first (check_query).
        assert_eq!(q.str("x"), Some("%zz"));
        assert_eq!(
            parse_time("1700000000.5").unwrap().timestamp_subsec_nanos(),
            500_000_000
        );
        assert!(parse_time("nope").is_none());
    }

    #[test]
    fn repeated_keys_keep_every_value_and_get_takes_the_first() {
        let q = Q::parse("changes=CMD+sh&t=1&changes=ENV%20A%3D1&t=2&changes=&names=a&names=b");
        // Go's url.Values.Get: the first value.
        assert_eq!(q.str("t"), Some("1"));
        assert_eq!(q.int("t").unwrap(), Some(1));
        assert_eq!(q.all("changes"), ["CMD sh", "ENV A=1", ""]);
        assert_eq!(q.all("names"), ["a", "b"]);
        assert!(q.all("missing").is_empty());
        assert!(q.str("missing").is_none());
    }

    #[test]
    fn bad_queries_are_refused_in_gos_words() {
        assert_eq!(check_query(""), Ok(()));
        assert_eq!(check_query("a=%41&b=x+y&c&&d="), Ok(()));
        assert_eq!(
            check_query("force=1&x=%zz").unwrap_err(),
            r#"invalid URL escape "%zz""#
        );
        assert_eq!(
            check_query("x=ab%4").unwrap_err(),
            r#"invalid URL escape "%4""#
        );
        assert_eq!(
            check_query("%g1=1").unwrap_err(),
            r#"invalid URL escape "%g1""#
        );
        assert_eq!(
            check_query("a=1;b=2").unwrap_err(),
            "invalid semicolon separator in query"
        );
    }

    #[test]
    fn presence_counts_even_with_an_empty_value() {
        let q = Q::parse("stream&follow=&tail=all");
        assert!(q.has("stream"));
        assert!(q.has("follow"));
        assert!(!q.has("since"));
        // An empty value is false for BoolValue but present for bool_or.
        assert!(!q.bool("follow"));
        assert!(!q.bool_or("follow", true));
        assert!(q.bool_or("since", true));
        assert_eq!(q.str("tail"), Some("all"));
    }

    #[test]
    fn first_value_wins_for_bools_and_times() {
        let q = Q::parse("force=0&force=1&since=10&since=20");
        assert!(!q.bool("force"));
        assert_eq!(q.time("since").unwrap().unwrap().timestamp(), 10);
    }
}
