//! API versions: `/v1.NN/` path prefixes, accepted between [`MIN_API_VERSION`] and
//! [`MAX_API_VERSION`].

use std::fmt;

/// A Docker Engine API version such as 1.47.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u32,
    pub minor: u32,
}

/// The newest version berth speaks (the swagger it follows).
pub const MAX_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 47,
};
/// The oldest version berth accepts (Docker's own minimum).
pub const MIN_API_VERSION: ApiVersion = ApiVersion {
    major: 1,
    minor: 24,
};

/// Why a version in a path prefix is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("client version {0} is too new. Maximum supported API version is {max}", max = MAX_API_VERSION)]
    TooNew(String),
    #[error("client version {0} is too old. Minimum supported API version is {min}, please upgrade your client to a newer version", min = MIN_API_VERSION)]
    TooOld(String),
    #[error("invalid API version {0:?}")]
    Invalid(String),
}

impl ApiVersion {
    pub const fn new(major: u32, minor: u32) -> Self {
        ApiVersion { major, minor }
    }

    /// Parses `1.47`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// Parses and checks the version against the supported range.
    pub fn check(s: &str) -> Result<ApiVersion, VersionError> {
        let v = ApiVersion::parse(s).ok_or_else(|| VersionError::Invalid(s.to_string()))?;
        if v > MAX_API_VERSION {
            Err(VersionError::TooNew(s.to_string()))
        } else if v < MIN_API_VERSION {
            Err(VersionError::TooOld(s.to_string()))
        } else {
            Ok(v)
        }
    }

    /// Splits `/v1.47/containers/json` into (`Some("1.47")`, `/containers/json`).
    /// Unversioned paths give `(None, path)`.
    pub fn split_path(path: &str) -> (Option<&str>, &str) {
        if let Some(rest) = path.strip_prefix("/v") {
            let end = rest.find('/').unwrap_or(rest.len());
            let ver = &rest[..end];
            if !ver.is_empty()
                && ver.chars().all(|c| c.is_ascii_digit() || c == '.')
                && ver.contains('.')
            {
                let tail = &rest[end..];
                return (Some(ver), if tail.is_empty() { "/" } else { tail });
            }
        }
        (None, path)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_checks_prefixes() {
        assert_eq!(
            ApiVersion::split_path("/v1.47/containers/json"),
            (Some("1.47"), "/containers/json")
        );
        assert_eq!(ApiVersion::split_path("/_ping"), (None, "/_ping"));
        assert_eq!(
            ApiVersion::split_path("/volumes/v1.2"),
            (None, "/volumes/v1.2")
        );
        assert_eq!(ApiVersion::split_path("/v1.24"), (Some("1.24"), "/"));
        assert!(ApiVersion::check("1.24").is_ok());
        assert!(ApiVersion::check("1.47").is_ok());
        assert_eq!(
            ApiVersion::check("1.99").unwrap_err().to_string(),
            "client version 1.99 is too new. Maximum supported API version is 1.47"
        );
        assert!(matches!(
            ApiVersion::check("1.12"),
            Err(VersionError::TooOld(_))
        ));
        assert!(matches!(
            ApiVersion::check("1.x"),
            Err(VersionError::Invalid(_))
        ));
        assert!(ApiVersion::new(1, 41) < ApiVersion::new(1, 42));
    }
}
