//! Manifests, indexes (manifest lists), descriptors, and platform selection.
//!
//! Docker schema2 and OCI manifests share one JSON shape (`config` + `layers`), as do the
//! Docker manifest list and the OCI index (`manifests[]` with `platform`). The kind is decided
//! from the `Content-Type`, then the body's `mediaType`, then the body's shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// The `Accept` header for manifest requests.
pub const ACCEPT_MANIFESTS: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Largest manifest accepted (a cap before reading a body).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A content descriptor.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An image manifest (Docker schema2 or OCI).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A manifest list / OCI index.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A platform (`linux/arm64/v8`), Go names for architectures.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

/// Errors parsing manifests and platforms.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported manifest media type {0:?} (schema1 images are deprecated; re-push the image with a current client)")]
    Unsupported(String),
    #[error("no manifest for platform {wanted} in the manifest list (available: {available})")]
    NoPlatform { wanted: String, available: String },
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
    BadPlatform(String),
    #[error("manifest lists nest deeper than 4 levels")]
    TooDeep,
}

/// What a manifest response turned out to be.
#[derive(Clone, Debug)]
pub enum AnyManifest {
    Image(Box<Manifest>),
    Index(Index),
}

impl AnyManifest {
    /// Decides the kind from `content_type`, then the body's `mediaType`, then its shape.
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ManifestError> {
        let v: serde_json::Value = serde_json::from_slice(body)?;
        let ct = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let body_mt = v
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_string);
        let kind = [ct, body_mt]
            .into_iter()
            .flatten()
            .find(|m| !m.is_empty() && m != "application/json" && m != "text/plain");
        match kind.as_deref() {
            Some(OCI_INDEX | DOCKER_LIST) => Ok(AnyManifest::Index(serde_json::from_value(v)?)),
            Some(OCI_MANIFEST | DOCKER_MANIFEST) => {
                Ok(AnyManifest::Image(Box::new(serde_json::from_value(v)?)))
            }
            Some(other)
                if other.contains("schema1")
                    || other == DOCKER_SCHEMA1
                    || other.ends_with("v1+json") && other.contains("docker.distribution") =>
            {
                Err(ManifestError::Unsupported(other.to_string()))
            }
            _ if v.get("manifests").is_some() => Ok(AnyManifest::Index(serde_json::from_value(v)?)),
            _ if v.get("layers").is_some() => {
                Ok(AnyManifest::Image(Box::new(serde_json::from_value(v)?)))
            }
            other => Err(ManifestError::Unsupported(
                other.unwrap_or("unknown").to_string(),
            )),
        }
    }
}

impl Platform {
    /// The platform berth runs on (Go architecture names).
    pub fn host() -> Self {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "loongarch64" => "loong64",
            other => other,
        };
        let variant = match arch {
            "arm" => Some("v7".to_string()),
            _ => None,
        };
        Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant,
            os_version: None,
        }
    }

    /// Parses `os/arch[/variant]` (as `--platform` and `platform=` give it), case-insensitive.
    pub fn parse(s: &str) -> Result<Self, ManifestError> {
        let lower = s.to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let ok = |p: &&str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: norm_arch(arch),
                variant: None,
                os_version: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_string(),
                architecture: norm_arch(arch),
                variant: Some(v.to_string()),
                os_version: None,
            }),
            _ => Err(ManifestError::BadPlatform(s.to_string())),
        }
    }
}

fn norm_arch(a: &str) -> String {
    match a {
        "x86_64" | "x86-64" => "amd64".into(),
        "aarch64" => "arm64".into(),
        other => other.into(),
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// How well `candidate` serves `wanted`: `None` = not at all, higher is better.
fn score(wanted: &Platform, candidate: &Platform) -> Option<u32> {
    if candidate.os != wanted.os || candidate.architecture != wanted.architecture {
        return None;
    }
    let base = |a: &str| match a {
        "arm64" => Some("v8"),
        _ => None,
    };
    let cv = candidate
        .variant
        .as_deref()
        .or(base(&candidate.architecture));
    let wv = wanted.variant.as_deref().or(base(&wanted.architecture));
    match (wv, cv) {
        (None, None) => Some(100),
        (Some(w), Some(c)) if w == c => Some(100),
        // amd64 v2/v3 entries need a CPU we do not check for; prefer the baseline
        (None, Some(_)) => None,
        (Some(w), None) => Some(if wanted.architecture == "arm" && w.is_empty() {
            50
        } else {
            10
        }),
        // arm: a lower variant runs on a higher CPU (v7 runs v6 and v5)
        (Some(w), Some(c)) => {
            let n = |s: &str| s.trim_start_matches('v').parse::<u32>().ok();
            match (n(w), n(c)) {
                (Some(w), Some(c)) if c < w => Some(50 + c),
                _ => None,
            }
        }
    }
}

/// Picks the manifest for `wanted` from an index: attestation and `unknown/unknown` entries
/// skipped, the best variant match wins, the first in index order among equals.
pub fn select_platform<'a>(
    index: &'a Index,
    wanted: &Platform,
) -> Result<&'a Descriptor, ManifestError> {
    let runnable = |d: &&Descriptor| {
        let attest = d
            .annotations
            .as_ref()
            .and_then(|a| a.get("vnd.docker.reference.type"))
            .is_some_and(|t| t == "attestation-manifest");
        let unknown = d
            .platform
            .as_ref()
            .is_some_and(|p| p.os == "unknown" || p.architecture == "unknown");
        !attest && !unknown
    };
    let mut best: Option<(u32, &Descriptor)> = None;
    for d in index.manifests.iter().filter(runnable) {
        let Some(p) = &d.platform else { continue };
        if let Some(s) = score(wanted, p) {
            if best.is_none_or(|(b, _)| s > b) {
                best = Some((s, d));
            }
        }
    }
    best.map(|(_, d)| d)
        .ok_or_else(|| ManifestError::NoPlatform {
            wanted: wanted.to_string(),
            available: index
                .manifests
                .iter()
                .filter(runnable)
                .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(arch: &str, variant: Option<&str>, n: u8) -> serde_json::Value {
        let mut p = serde_json::json!({"os":"linux","architecture":arch});
        if let Some(v) = variant {
            p["variant"] = v.into();
        }
        serde_json::json!({"mediaType":OCI_MANIFEST,"digest":Digest::of(&[n]).to_string(),"size":1,"platform":p})
    }

    #[test]
    fn selects_platforms() {
        let mut att = entry("unknown", None, 9);
        att["platform"]["os"] = "unknown".into();
        att["annotations"] =
            serde_json::json!({"vnd.docker.reference.type":"attestation-manifest"});
        let body = serde_json::json!({"schemaVersion":2,"mediaType":OCI_INDEX,"manifests":[
            att, entry("amd64", None, 1), entry("arm", Some("v6"), 2), entry("arm", Some("v7"), 3),
            entry("arm64", None, 4), entry("amd64", Some("v3"), 5)]});
        let AnyManifest::Index(ix) = AnyManifest::parse(None, body.to_string().as_bytes()).unwrap()
        else {
            panic!()
        };
        let pick =
            |p: &str| select_platform(&ix, &Platform::parse(p).unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64").unwrap(), Digest::of(&[1]));
        assert_eq!(pick("linux/arm/v7").unwrap(), Digest::of(&[3]));
        assert_eq!(pick("linux/arm/v6").unwrap(), Digest::of(&[2]));
        assert_eq!(pick("linux/arm64/v8").unwrap(), Digest::of(&[4]));
        assert_eq!(pick("LINUX/ARM64").unwrap(), Digest::of(&[4]));
        let e = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            e.contains("linux/s390x") && e.contains("linux/amd64") && !e.contains("unknown"),
            "{e}"
        );
        assert!(Platform::parse("linux").is_err());
    }

    #[test]
    fn kinds() {
        let m = serde_json::json!({"schemaVersion":2,"config":{"mediaType":OCI_CONFIG,"digest":Digest::of(b"c").to_string(),"size":1},"layers":[]});
        assert!(matches!(
            AnyManifest::parse(Some("application/json"), m.to_string().as_bytes()).unwrap(),
            AnyManifest::Image(_)
        ));
        assert!(matches!(
            AnyManifest::parse(Some(DOCKER_SCHEMA1), b"{}"),
            Err(ManifestError::Unsupported(_))
        ));
        assert!(AnyManifest::parse(None, b"<html>").is_err());
    }
}
