//! Docker's `StrSlice`: `Cmd`, `Entrypoint` and `Shell` accept a JSON string or a list of
//! strings (old clients and compose files send `"Cmd":"echo hi"`). `null` is accepted too.

use serde::{Deserialize, Deserializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `deserialize_with` helper for `Option<Vec<String>>` fields.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let v: Option<OneOrMany> = Option::deserialize(d)?;
    Ok(v.map(|v| match v {
        OneOrMany::One(s) => vec![s],
        OneOrMany::Many(v) => v,
    }))
}

/// `deserialize_with` helper: `null` becomes the type's default (Go sends `null` for nil
/// slices and maps where a Rust `Vec`/`HashMap` field would otherwise be refused).
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
