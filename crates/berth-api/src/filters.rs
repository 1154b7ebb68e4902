//! The `filters` query parameter: JSON in map form `{"label":{"a=b":true}}` (Go client) or
//! list form `{"label":["a=b"]}` (docker-py, old clients).

use std::collections::BTreeMap;

/// Parsed filters: key → values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters(pub BTreeMap<String, Vec<String>>);

/// A `filters` parameter that is not one of the two JSON forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter {0:?}: expected JSON like {{\"label\":{{\"a=b\":true}}}}")]
pub struct FilterError(pub String);

impl Filters {
    /// Parses the raw (already URL-decoded) parameter. Empty means no filters.
    pub fn parse(raw: &str) -> Result<Filters, FilterError> {
        if raw.trim().is_empty() {
            return Ok(Filters::default());
        }
        let v: serde_json::Value =
            serde_json::from_str(raw).map_err(|_| FilterError(raw.into()))?;
        let obj = v.as_object().ok_or_else(|| FilterError(raw.into()))?;
        let mut out = BTreeMap::new();
        for (k, vals) in obj {
            let list: Vec<String> = match vals {
                serde_json::Value::Object(m) => m
                    .iter()
                    .filter(|(_, on)| on.as_bool().unwrap_or(true))
                    .map(|(s, _)| s.clone())
                    .collect(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| FilterError(raw.into()))
                    })
                    .collect::<Result<_, _>>()?,
                serde_json::Value::String(s) => vec![s.clone()],
                _ => return Err(FilterError(raw.into())),
            };
            out.insert(k.clone(), list);
        }
        Ok(Filters(out))
    }

    pub fn get(&self, key: &str) -> &[String] {
        self.0.get(key).map_or(&[], Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn add(&mut self, key: &str, value: &str) {
        self.0
            .entry(key.to_string())
            .or_default()
            .push(value.to_string());
    }

    /// The map form the Go client sends.
    pub fn to_json(&self) -> String {
        let m: serde_json::Map<String, serde_json::Value> = self
            .0
            .iter()
            .map(|(k, vs)| {
                let inner: serde_json::Map<String, serde_json::Value> = vs
                    .iter()
                    .map(|v| (v.clone(), serde_json::Value::Bool(true)))
                    .collect();
                (k.clone(), serde_json::Value::Object(inner))
            })
            .collect();
        serde_json::Value::Object(m).to_string()
    }

    /// True when `labels` satisfy every `label` filter (`key` or `key=value`).
    pub fn match_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.get("label").iter().all(|f| match f.split_once('=') {
            Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
            None => labels.contains_key(f.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms() {
        let a = Filters::parse(r#"{"label":{"a=b":true},"status":{"running":true}}"#).unwrap();
        let b = Filters::parse(r#"{"label":["a=b"],"status":["running"]}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("status"), ["running"]);
        assert!(Filters::parse("[1]").is_err());
        assert!(Filters::parse("{oops").is_err());
        let round = Filters::parse(&a.to_json()).unwrap();
        assert_eq!(round, a);
        let mut l = BTreeMap::new();
        l.insert("a".to_string(), "b".to_string());
        assert!(a.match_labels(&l));
    }
}
