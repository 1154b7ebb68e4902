//! Registry authentication: `WWW-Authenticate` challenges, Docker's `config.json` credential
//! file (what `docker login` / `berth login` write), and the token reply.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;

/// A username/password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, <redacted>)", self.username)
    }
}

/// The user name Docker's credential helpers store an identity token under.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

impl Credentials {
    /// An identity token (an OAuth2 refresh token from `POST /auth`), kept the way Docker's
    /// credential helpers keep one: user `<token>`, the token as the secret.
    pub fn from_identity_token(token: impl Into<String>) -> Self {
        Credentials {
            username: IDENTITY_TOKEN_USER.into(),
            password: token.into(),
        }
    }

    /// The identity token, when these credentials are one.
    pub fn identity_token(&self) -> Option<&str> {
        (self.username == IDENTITY_TOKEN_USER && !self.password.is_empty())
            .then_some(self.password.as_str())
    }

    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

/// Parses `Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `k="v", k2=v2` (quoted values may contain commas).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => val.extend(chars.next()),
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(c) = chars.peek() {
                if *c == ',' {
                    break;
                }
                val.push(*c);
                chars.next();
            }
        }
        out.insert(key.trim().to_ascii_lowercase(), val.trim().to_string());
    }
    out
}

/// Errors reading a credential file.
#[derive(Debug, thiserror::Error)]
pub enum AuthFileError {
    #[error("cannot read credential file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("credential file {path} is not valid Docker config.json: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("cannot write credential file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

#[derive(serde::Deserialize, serde::Serialize, Default)]
struct DockerConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(serde::Deserialize, serde::Serialize, Default)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identitytoken: Option<String>,
}

/// The keys Docker uses for a registry in `auths` (Docker Hub's is the legacy index URL).
fn auth_keys(registry: &str) -> Vec<String> {
    if registry == crate::reference::DOCKER_HUB
        || registry == "index.docker.io"
        || registry == crate::reference::DOCKER_HUB_API
    {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
        ]
    } else {
        vec![
            registry.to_string(),
            format!("https://{registry}"),
            format!("http://{registry}"),
        ]
    }
}

/// Looks up credentials for `registry` in a Docker `config.json`; a missing file means none.
pub fn lookup(auth_file: &Path, registry: &str) -> Result<Option<Credentials>, AuthFileError> {
    let path = auth_file.display().to_string();
    let text = match std::fs::read_to_string(auth_file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(AuthFileError::Read { path, source }),
    };
    let file: DockerConfigFile =
        serde_json::from_str(&text).map_err(|source| AuthFileError::Parse { path, source })?;
    for key in auth_keys(registry) {
        let Some(e) = file
            .auths
            .get(&key)
            .or_else(|| file.auths.get(key.trim_end_matches('/')))
        else {
            continue;
        };
        // the docker CLI keeps `auth` = base64("user:") beside an identity token
        if let Some(t) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::from_identity_token(t)));
        }
        if let Some(a) = &e.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .unwrap_or_default();
            if let Some((u, p)) = String::from_utf8_lossy(&decoded).split_once(':') {
                return Ok(Some(Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                }));
            }
        }
        if let (Some(u), Some(p)) = (&e.username, &e.password) {
            return Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }));
        }
    }
    // credential helpers: `credHelpers` per registry, else the `credsStore` default
    let helper = auth_keys(registry)
        .iter()
        .find_map(|k| {
            file.other
                .get("credHelpers")
                .and_then(|h| h.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .or_else(|| {
            file.other
                .get("credsStore")
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    match helper {
        Some(h) => Ok(credential_helper(
            std::path::Path::new(&format!("docker-credential-{h}")),
            &auth_keys(registry)[0],
        )),
        None => Ok(None),
    }
}

/// Asks a Docker credential helper (`docker-credential-<name> get`, server URL on stdin,
/// `{"Username","Secret"}` on stdout). A missing helper or an unknown server means none.
pub(crate) fn credential_helper(program: &Path, server: &str) -> Option<Credentials> {
    use std::io::Write;
    let mut child = std::process::Command::new(program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let user = v.get("Username")?.as_str()?.to_string();
    let secret = v.get("Secret")?.as_str()?.to_string();
    // user `<token>` marks an identity token (used with the OAuth2 refresh-token flow)
    (!secret.is_empty()).then_some(Credentials {
        username: user,
        password: secret,
    })
}

/// Stores credentials for `registry` (what `berth login` does), keeping other entries;
/// written atomically with mode 0600.
pub fn store(
    auth_file: &Path,
    registry: &str,
    creds: Option<&Credentials>,
) -> Result<(), AuthFileError> {
    let path = auth_file.display().to_string();
    let mut file: DockerConfigFile = match std::fs::read_to_string(auth_file) {
        Ok(t) => serde_json::from_str(&t).map_err(|source| AuthFileError::Parse {
            path: path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerConfigFile::default(),
        Err(source) => return Err(AuthFileError::Read { path, source }),
    };
    let key = auth_keys(registry).remove(0);
    match creds {
        Some(c) => {
            let auth = base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", c.username, c.password));
            file.auths.insert(
                key,
                AuthEntry {
                    auth: Some(auth),
                    ..Default::default()
                },
            );
        }
        None => {
            for k in auth_keys(registry) {
                file.auths.remove(&k);
            }
        }
    }
    let json = serde_json::to_vec_pretty(&file).expect("config serialises");
    crate::fsutil::write_atomic(auth_file, &json, 0o600)
        .map_err(|source| AuthFileError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_helpers() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let helper = d.path().join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread server\n[ \"$1\" = get ] && [ \"$server\" = reg.example:5000 ] && echo '{\"Username\":\"hu\",\"Secret\":\"hs\"}' && exit 0\nexit 1\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = credential_helper(&helper, "reg.example:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("hu", "hs"));
        assert_eq!(credential_helper(&helper, "other"), None);
        assert_eq!(credential_helper(&d.path().join("missing"), "x"), None);
        // a config naming a helper that is not installed gives no credentials, no error
        let f = d.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"auths":{},"credsStore":"berth-test-not-installed"}"#,
        )
        .unwrap();
        assert_eq!(lookup(&f, "reg.example:5000").unwrap(), None);
    }

    #[test]
    fn challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/a:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/a:pull,push".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn config_json_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.json");
        assert_eq!(lookup(&f, "127.0.0.1:5000").unwrap(), None);
        std::fs::write(
            &f,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"credsStore":"x"}"#,
        )
        .unwrap();
        assert_eq!(lookup(&f, "docker.io").unwrap().unwrap().username, "u");
        let c = Credentials {
            username: "al".into(),
            password: "p:w".into(),
        };
        store(&f, "127.0.0.1:5000", Some(&c)).unwrap();
        assert_eq!(lookup(&f, "127.0.0.1:5000").unwrap(), Some(c));
        assert!(std::fs::read_to_string(&f).unwrap().contains("credsStore"));
        store(&f, "127.0.0.1:5000", None).unwrap();
        assert_eq!(lookup(&f, "127.0.0.1:5000").unwrap(), None);
        std::fs::write(&f, "nope").unwrap();
        assert!(lookup(&f, "x")
            .unwrap_err()
            .to_string()
            .contains("not valid Docker config.json"));
    }
}
