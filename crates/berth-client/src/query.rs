//! Query strings.

/// A query string builder (`?a=1&b=x%20y`).
#[derive(Debug, Clone, Default)]
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn new() -> Self {
        Query::default()
    }

    pub fn add(mut self, k: &str, v: impl ToString) -> Self {
        self.0.push((k.to_string(), v.to_string()));
        self
    }

    /// Adds `k=1` when `on`.
    pub fn flag(self, k: &str, on: bool) -> Self {
        if on {
            self.add(k, "1")
        } else {
            self
        }
    }

    /// Adds `k=v` when `v` is set and not empty.
    pub fn opt(self, k: &str, v: Option<impl ToString>) -> Self {
        match v.map(|v| v.to_string()).filter(|s| !s.is_empty()) {
            Some(s) => self.add(k, s),
            None => self,
        }
    }

    /// `""` or `?k=v&…`.
    pub fn encode(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        format!("?{}", parts.join("&"))
    }
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes() {
        let q = super::Query::new()
            .add("filters", "{\"a\":[\"b c\"]}")
            .flag("all", true)
            .flag("x", false)
            .opt("t", None::<i32>);
        assert_eq!(
            q.encode(),
            "?filters=%7B%22a%22%3A%5B%22b%20c%22%5D%7D&all=1"
        );
    }
}
