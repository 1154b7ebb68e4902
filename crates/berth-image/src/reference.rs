//! Image references with Docker's normalisation.
//!
//! `busybox` → `docker.io/library/busybox:latest`; `localhost:5000/x` keeps its registry;
//! `name:tag@sha256:…` pulls the digest and keeps the tag for naming. The grammar is Docker's
//! (distribution/reference `ReferenceRegexp`, Go's ASCII `\w`), checked by hand in
//! `split`: oci-spec's `Reference` compiles that regexp with Unicode `\w{0,127}` into a 5 MB
//! NFA plus lazy-DFA caches (~8 MB) that a long-running daemon keeps for good.

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
        let parts = split(input).ok_or_else(|| invalid("invalid reference format"))?;
        let digest = match parts.digest {
            Some(d) => Some(Digest::parse(d).map_err(|e| invalid(&e.to_string()))?),
            None => None,
        };
        // Docker's `splitDomain`: the first component is a registry only when it looks like
        // a host (a dot, a port or `localhost`); every Hub spelling ends up `docker.io/library/x`.
        let (mut registry, mut repository) = match parts.name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DOCKER_HUB.to_string(), parts.name.to_string()),
        };
        if registry == "index.docker.io" {
            registry = DOCKER_HUB.to_string();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        if repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(&format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        let tag = match (parts.tag, parts.digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.map(str::to_string),
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
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

/// Longest repository path Docker accepts (`NameTotalLengthMax`).
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A reference split as Docker's grammar reads it: `name[:tag][@digest]`.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    name: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Splits and checks a reference against Docker's grammar; `None` when it does not match:
///
/// ```text
/// reference := name [ ":" tag ] [ "@" digest ]
/// name      := [ domain "/" ] path-component [ "/" path-component ]*
/// domain    := domain-component [ "." domain-component ]* [ ":" [0-9]+ ]
/// domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
/// path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"* ) [a-z0-9]+ )*
/// tag       := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
/// digest    := [A-Za-z][A-Za-z0-9]* ( [-_+.][A-Za-z][A-Za-z0-9]* )* ":" [0-9a-fA-F]{32,}
/// ```
fn split(input: &str) -> Option<Parts<'_>> {
    // Neither name nor tag may hold `@`; a tag is what follows the last `:` when no `/` follows
    // it (`host:5000/repo` has a port, not a tag).
    let (rest, digest) = match input.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (input, None),
    };
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let ok = digest.is_none_or(is_digest) && tag.is_none_or(is_tag) && is_name(name);
    ok.then_some(Parts { name, tag, digest })
}

fn is_name(name: &str) -> bool {
    // The domain is optional: a name matches if it is all path, or a domain and then a path.
    is_path(name)
        || name
            .split_once('/')
            .is_some_and(|(domain, path)| is_domain(domain) && is_path(path))
}

fn is_path(path: &str) -> bool {
    path.split('/').all(is_path_component)
}

fn is_path_component(c: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if !b.first().is_some_and(alnum) || !b.last().is_some_and(alnum) {
        return false;
    }
    // Between runs of [a-z0-9]: exactly ".", "_", "__", or any number of "-".
    b.split(alnum)
        .all(|sep| matches!(sep, b"" | b"." | b"_" | b"__") || sep.iter().all(|&x| x == b'-'))
}

fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            b.first().is_some_and(u8::is_ascii_alphanumeric)
                && b.last().is_some_and(u8::is_ascii_alphanumeric)
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

fn is_tag(tag: &str) -> bool {
    let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
    let b = tag.as_bytes();
    b.len() <= 128
        && b.first().is_some_and(word)
        && b[1..].iter().all(|x| word(x) || *x == b'.' || *x == b'-')
}

fn is_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
        && algorithm.split(['-', '_', '+', '.']).all(|part| {
            part.as_bytes().first().is_some_and(u8::is_ascii_alphabetic)
                && part.bytes().all(|b| b.is_ascii_alphanumeric())
        })
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
            ":justtag",
            "Uppercase:tag",
            "test:5000/Uppercase/lowercase:tag",
            "aa/asdf$$^/aa",
            "a/b:é",
            "a..b",
            "a___b",
            "a-.b",
            "-a",
            "a-",
            "host:/x",
            "host:5x/x",
            "-host/x",
            "x@sha256:",
            "x@1sha:e3b0c44298fc1c149afbf4c8996fb924",
        ] {
            let e = ImageRef::parse(bad).expect_err(bad);
            assert!(e.to_string().contains("invalid reference format"), "{e}");
        }
        let long = format!("x/{}", "a".repeat(255));
        let e = ImageRef::parse(&long).unwrap_err();
        assert!(e.to_string().contains("not be more than 255"), "{e}");
        let tag129 = format!("x:{}", "t".repeat(129));
        assert!(ImageRef::parse(&tag129).is_err());
        assert!(ImageRef::parse(&tag129[..130]).is_ok());
    }

    /// Docker's own cases (distribution/reference tests, as oci-spec carries them).
    #[test]
    fn docker_grammar_cases() {
        let f = "f".repeat(64);
        for (input, registry, repository, tag) in [
            ("test.com:tag", "docker.io", "library/test.com", Some("tag")),
            (
                "test.com:5000",
                "docker.io",
                "library/test.com",
                Some("5000"),
            ),
            ("test.com/repo:tag", "test.com", "repo", Some("tag")),
            ("test:5000/repo", "test:5000", "repo", Some("latest")),
            ("test:5000/repo:tag", "test:5000", "repo", Some("tag")),
            (
                "lowercase:Uppercase",
                "docker.io",
                "library/lowercase",
                Some("Uppercase"),
            ),
            (
                "sub-dom1.foo.com/bar/baz/quux",
                "sub-dom1.foo.com",
                "bar/baz/quux",
                Some("latest"),
            ),
            (
                "b.gcr.io/test.example.com/my-app:test.example.com",
                "b.gcr.io",
                "test.example.com/my-app",
                Some("test.example.com"),
            ),
            (
                "xn--n3h.com/myimage:xn--n3h.com",
                "xn--n3h.com",
                "myimage",
                Some("xn--n3h.com"),
            ),
            (
                "foo_bar.com:8080",
                "docker.io",
                "library/foo_bar.com",
                Some("8080"),
            ),
            (
                "foo/foo_bar.com:8080",
                "docker.io",
                "foo/foo_bar.com",
                Some("8080"),
            ),
            (
                "opensuse/leap:15.3",
                "docker.io",
                "opensuse/leap",
                Some("15.3"),
            ),
            (
                "Uppercase/lowercase:tag",
                "docker.io",
                "Uppercase/lowercase",
                Some("tag"),
            ),
            (
                "a__b/c---d/e_f.g:T_1.-x",
                "docker.io",
                "a__b/c---d/e_f.g",
                Some("T_1.-x"),
            ),
        ] {
            let r = ImageRef::parse(input).expect(input);
            assert_eq!(
                (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
                (registry, repository, tag),
                "{input}"
            );
        }
        let r = ImageRef::parse(&format!("test:5000/repo@sha256:{f}")).unwrap();
        assert_eq!((r.registry.as_str(), r.tag.as_deref()), ("test:5000", None));
        assert_eq!(r.digest.unwrap().to_string(), format!("sha256:{f}"));
        assert!(ImageRef::parse(&format!("repo@sha256:{}", &f[..34])).is_err());
        assert!(ImageRef::parse(&format!("validname@invaliddigest:{f}")).is_err());
    }
}
