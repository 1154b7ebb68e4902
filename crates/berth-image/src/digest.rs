//! Content digests (`sha256:<64 hex>`), diff IDs and chain IDs.
//!
//! - a blob's **digest** covers its bytes as stored (compressed for layers);
//! - a layer's **diff ID** is the digest of its uncompressed tar;
//! - a **chain ID** names a layer together with everything below it:
//!   `ChainID(L1) = DiffID(L1)`, `ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))`.
//!   Snapshots are keyed by chain ID so images sharing a base share its directories.
//! - the **image ID** is the digest of the image's config blob (what `docker images` shows).

use std::fmt;

use sha2::{Digest as _, Sha256};

/// Errors of [`Digest::parse`].
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    Invalid(String),
}

/// A validated `sha256:<hex>` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

/// Image ID: the digest of the config blob.
pub type ImageId = Digest;
/// Digest of an uncompressed layer tar.
pub type DiffId = Digest;
/// Identity of a layer stack (see the module docs).
pub type ChainId = Digest;

impl Digest {
    /// Parses `sha256:<64 hex>`; other algorithms are refused (nothing in the field uses them).
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        match s.strip_prefix("sha256:") {
            Some(h)
                if h.len() == 64
                    && h.bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
            {
                Ok(Digest(s.to_string()))
            }
            _ => Err(DigestError::Invalid(s.to_string())),
        }
    }

    /// The digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_hasher(Sha256::new_with_prefix(data))
    }

    /// The digest a finished hasher computed.
    pub fn from_hasher(h: Sha256) -> Self {
        Digest(format!("sha256:{}", hex::encode(h.finalize())))
    }

    /// The 64 hex digits (used for file names).
    pub fn hex(&self) -> &str {
        &self.0[7..]
    }

    /// The 12-hex short form (`docker images`, progress ids).
    pub fn short(&self) -> &str {
        &self.0[7..19]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Digest {
    type Error = DigestError;
    fn try_from(s: String) -> Result<Self, DigestError> {
        Digest::parse(&s)
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Chain IDs for a stack of diff IDs, bottom first.
pub fn chain_ids(diff_ids: &[DiffId]) -> Vec<ChainId> {
    let mut out: Vec<ChainId> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::of(format!("{parent} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_chain() {
        let e = Digest::of(b"");
        assert_eq!(
            e.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(e.short(), "e3b0c44298fc");
        assert!(Digest::parse(
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
        )
        .is_err());
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
        let a = Digest::of(b"a");
        let c = chain_ids(&[e.clone(), a.clone()]);
        assert_eq!(c[0], e);
        assert_eq!(c[1], Digest::of(format!("{e} {a}").as_bytes()));
    }
}
