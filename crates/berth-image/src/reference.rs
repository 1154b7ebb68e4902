//! Image references with Docker's normalisation.
//!
//! `busybox` → `docker.io/library/busybox:latest`; `localhost:5000/x` keeps its registry;
//! `name:tag@sha256:…` pulls the digest and keeps the tag for naming. Parsing is done by
//! oci-spec's `distribution::Reference` (its regexp and tests come from Docker's Go code);
//! this type adds the familiar display form and the API endpoint mapping.

use std::fmt;

use crate::digest::Digest;

/// The canonical domain of Docker Hub that normalised references carry.
pub const DOCKER_HUB: &str = "docker.io";
/// The API host behind `docker.io` (moby's `DefaultRegistryHost`).
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Errors of [`ImageRef::parse`].
#[derive(Debug, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format {input:?}: {reason}")]
    Invalid { input: String, reason: String },
}

/// A normalised image reference: registry, repository path, optional tag, optional digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ImageRef {
    /// Registry domain (`docker.io`, `127.0.0.1:5000`, `localhost`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// Digest to pull (wins over the tag).
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and normalises a reference as Docker does.
    pub fn parse(input: &str) -> Result<Self, ReferenceError> {
        let invalid = |reason: &str| ReferenceError::Invalid {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        if input.trim() != input || input.is_empty() {
            return Err(invalid("empty or surrounded by whitespace"));
        }
        let r: oci_spec::distribution::Reference = input
            .parse()
            .map_err(|e: oci_spec::distribution::ParseError| invalid(&e.to_string()))?;
        let digest = match r.digest() {
            Some(d) => Some(Digest::parse(d).map_err(|e| invalid(&e.to_string()))?),
            None => None,
        };
        // oci-spec normalises `index.docker.io` and adds `library/`, but only for
        // the legacy name; do both here so every Hub spelling ends up the same.
        let mut registry = r.registry().to_string();
        let mut repository = r.repository().to_string();
        if registry == "index.docker.io" {
            registry = DOCKER_HUB.to_string();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        Ok(ImageRef {
            registry,
            repository,
            tag: r.tag().map(str::to_string),
            digest,
        })
    }

    /// `registry/repository` without tag or digest (`docker.io/library/busybox`).
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// Docker's familiar form of the name (`busybox`, `user/app`, `127.0.0.1:5000/x`).
    pub fn familiar_name(&self) -> String {
        if self.registry == DOCKER_HUB {
            self.repository
                .strip_prefix("library/")
                .filter(|r| !r.contains('/'))
                .unwrap_or(&self.repository)
                .to_string()
        } else {
            self.name()
        }
    }

    /// `name:tag` when a tag is present (what `docker images` lists under REPOSITORY:TAG).
    pub fn tagged(&self) -> Option<String> {
        self.tag.as_ref().map(|t| format!("{}:{t}", self.name()))
    }

    /// Familiar `name:tag` or `name@digest` for messages (`busybox:latest`).
    pub fn familiar(&self) -> String {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => format!("{}@{d}", self.familiar_name()),
            (Some(t), None) => format!("{}:{t}", self.familiar_name()),
            (None, None) => self.familiar_name(),
        }
    }

    /// What to ask the registry for: the digest when present, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_string(),
        }
    }

    /// The host the registry API is served on (`docker.io` → `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageRef {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_like_docker() {
        let r = ImageRef::parse("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar(), "busybox:latest");
        assert_eq!(r.api_host(), "registry-1.docker.io");
        let r = ImageRef::parse("user/app:1.2").unwrap();
        assert_eq!(r.to_string(), "docker.io/user/app:1.2");
        let r = ImageRef::parse("index.docker.io/nginx").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        let r = ImageRef::parse("docker.io/alpine").unwrap();
        assert_eq!(r.repository, "library/alpine");
        let r = ImageRef::parse("localhost:5000/x").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str()),
            ("localhost:5000", "x")
        );
        assert_eq!(r.familiar(), "localhost:5000/x:latest");
        let r = ImageRef::parse("localhost/x").unwrap();
        assert_eq!(r.registry, "localhost");
        let r = ImageRef::parse("127.0.0.1:41000/busybox:v1").unwrap();
        assert_eq!(r.api_host(), "127.0.0.1:41000");
        assert_eq!(r.tag.as_deref(), Some("v1"));
    }

    #[test]
    fn digests_and_tag_with_digest() {
        let r = ImageRef::parse(&format!("busybox@{D}")).unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.manifest_reference(), D);
        let r = ImageRef::parse(&format!("busybox:1@{D}")).unwrap();
        assert_eq!(r.tag.as_deref(), Some("1"));
        assert_eq!(r.manifest_reference(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/busybox:1@{D}"));
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "",
            "UPPER",
            "a:b:c",
            "busybox@sha256:abc",
            "busybox@md5:d41d8cd98f00b204e9800998ecf8427e",
            "bad tag",
            " busybox",
            "busybox:-x",
            "a//b",
        ] {
            let e = ImageRef::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("invalid reference format"), "{e}");
        }
    }
}
