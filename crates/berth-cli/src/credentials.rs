//! Registry credentials on the client side, kept the way the docker CLI keeps them, so
//! `docker login` and `berth login` see each other's logins.
//!
//! The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`:
//!
//! ```json
//! {"auths": {"127.0.0.1:5000": {"auth": "base64(user:password)"},
//!            "https://index.docker.io/v1/": {"auth": "base64(user:)", "identitytoken": "…"}},
//!  "credsStore": "…", "psFormat": "…"}
//! ```
//!
//! Every other key of the file is kept as it is. Writes go to a temporary file with mode
//! 0600 in the same directory, fsynced and renamed over the old one (a crash leaves the
//! old file or the new one, never half of either). When a credential helper is configured
//! (`credHelpers[<server>]`, else `credsStore`), logins go to `docker-credential-<name>
//! store|get|erase` instead (the JSON protocol of docker's helpers), and the file keeps an
//! empty entry for the server, as the docker CLI does.
//!
//! Pulls and pushes send what is stored for the image's registry as `X-Registry-Auth`:
//! base64url of `{"username","password","serveraddress"}` (or `{"identitytoken"}`), or
//! `e30=` (`{}`) when there is nothing, exactly as the docker CLI does.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;

/// Docker Hub's key in `auths` (the legacy index URL the docker CLI uses).
pub const INDEX_SERVER: &str = "https://index.docker.io/v1/";

/// What went wrong with the credential file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("no credential file location: set DOCKER_CONFIG or HOME")]
    NoLocation,
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid Docker config.json ({source}); fix or remove it")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    #[error("error storing credentials in the docker-credential-{helper} helper: {message}")]
    Helper { helper: String, message: String },
}

/// One registry's login.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Login {
    pub username: String,
    pub password: String,
    /// An identity token the daemon's `/auth` returned; sent instead of the password.
    pub identity_token: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login({:?}, <redacted>)", self.username)
    }
}

#[derive(serde::Deserialize, serde::Serialize, Default, Clone)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    identitytoken: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(serde::Deserialize, serde::Serialize, Default)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// The docker CLI's config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> Result<PathBuf, CredentialsError> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".docker").join("config.json"))
        .ok_or(CredentialsError::NoLocation)
}

/// `http://host:5000/v2/` → `host:5000` (moby's `ConvertToHostname`).
pub fn hostname(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    s.split('/').next().unwrap_or("").to_string()
}

/// The `auths` key of a login to `server` (`berth login SERVER`): Docker Hub's index URL for
/// no server or a Docker Hub name, else the host name.
pub fn server_key(server: Option<&str>) -> String {
    match server.map(hostname).as_deref() {
        None
        | Some("")
        | Some("docker.io")
        | Some("index.docker.io")
        | Some("registry-1.docker.io") => INDEX_SERVER.to_string(),
        Some(h) => h.to_string(),
    }
}

/// The `auths` key for an image reference's registry (`127.0.0.1:5000/app:1` →
/// `127.0.0.1:5000`; `busybox`, `docker.io/library/x` → Docker Hub's key). The first path
/// component is a registry when it has a `.` or a `:`, is `localhost`, or has upper case.
pub fn key_for_image(image: &str) -> String {
    match image.split_once('/') {
        Some((first, _))
            if first.contains('.')
                || first.contains(':')
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            server_key(Some(first))
        }
        _ => INDEX_SERVER.to_string(),
    }
}

fn read(path: &Path) -> Result<ConfigFile, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(t) if t.trim().is_empty() => Ok(ConfigFile::default()),
        Ok(t) => serde_json::from_str(&t).map_err(|source| CredentialsError::Parse {
            path: path.display().to_string(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
        Err(source) => Err(CredentialsError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Writes `data` to `path` atomically with mode 0600 (temp file, fsync, rename, fsync dir).
fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    berth_sys::file::write_atomic(path, data, 0o600)
}

fn write(path: &Path, file: &ConfigFile) -> Result<(), CredentialsError> {
    // tab-indented, like the docker CLI writes it
    let mut json = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut json, fmt);
    serde::Serialize::serialize(file, &mut ser).map_err(|e| CredentialsError::Write {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    json.push(b'\n');
    write_atomic(path, &json).map_err(|source| CredentialsError::Write {
        path: path.display().to_string(),
        source,
    })
}

fn entry_login(e: &AuthEntry) -> Option<Login> {
    let mut l = Login::default();
    if let Some(a) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())?;
        let (u, p) = decoded.split_once(':')?;
        l.username = u.to_string();
        l.password = p.trim_end_matches('\0').to_string();
    } else if let Some(u) = &e.username {
        l.username = u.clone();
        l.password = e.password.clone().unwrap_or_default();
    }
    l.identity_token = e.identitytoken.clone().unwrap_or_default();
    (!l.username.is_empty() || !l.password.is_empty() || !l.identity_token.is_empty()).then_some(l)
}

/// The stored login for `key` (an `auths` key): the file's entry, also under the legacy
/// `http(s)://` forms of the key; else a credential helper's answer.
pub fn lookup(path: &Path, key: &str) -> Result<Option<Login>, CredentialsError> {
    let file = read(path)?;
    if let Some(l) = file.auths.get(key).and_then(entry_login) {
        return Ok(Some(l));
    }
    // legacy keys: `https://host`, `http://host/v1/`, …
    for (k, e) in &file.auths {
        if key != INDEX_SERVER && hostname(k) == key {
            if let Some(l) = entry_login(e) {
                return Ok(Some(l));
            }
        }
    }
    Ok(helper_for(&file, key).and_then(|h| helper_get(&helper_program(&h), key)))
}

/// The credential helper that keeps logins for `key`: `credHelpers[key]`, else
/// `credsStore` (names limited to what a `docker-credential-<name>` program can be).
fn helper_for(file: &ConfigFile, key: &str) -> Option<String> {
    file.other
        .get("credHelpers")
        .and_then(|h| h.get(key))
        .or_else(|| file.other.get("credsStore"))
        .and_then(|v| v.as_str())
        .filter(|h| {
            !h.is_empty()
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        })
        .map(str::to_string)
}

fn helper_program(name: &str) -> String {
    format!("docker-credential-{name}")
}

/// Runs `program action` with `input` on stdin: its stdout, or what it said when it failed.
fn run_helper(program: &str, action: &str, input: &[u8]) -> Result<Vec<u8>, String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        return Ok(out.stdout);
    }
    let said = String::from_utf8_lossy(if out.stdout.is_empty() {
        &out.stderr
    } else {
        &out.stdout
    })
    .trim()
    .to_string();
    Err(format!("{program} {action}: {}: {said}", out.status))
}

/// `docker-credential-<name> get` (server on stdin, `{"Username","Secret"}` on stdout).
/// A missing helper or an unknown server means no login.
fn helper_get(program: &str, server: &str) -> Option<Login> {
    let out = run_helper(program, "get", server.as_bytes()).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out).ok()?;
    let user = v.get("Username")?.as_str()?.to_string();
    let secret = v.get("Secret")?.as_str()?.to_string();
    if secret.is_empty() {
        return None;
    }
    Some(if user == "<token>" {
        Login {
            identity_token: secret,
            ..Default::default()
        }
    } else {
        Login {
            username: user,
            password: secret,
            identity_token: String::new(),
        }
    })
}

/// Where [`store`] put a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    /// In `config.json` itself (base64, not encrypted).
    File,
    /// In the named credential helper (`config.json` keeps an empty entry, as docker's).
    Helper(String),
}

/// Stores a login under `key`, keeping everything else in the file: in the credential
/// helper configured for `key` if there is one, else in the file. With an identity token
/// the password is not stored (the docker CLI does the same).
pub fn store(path: &Path, key: &str, login: &Login) -> Result<StoredIn, CredentialsError> {
    let mut file = read(path)?;
    if let Some(h) = helper_for(&file, key) {
        let (user, secret) = if login.identity_token.is_empty() {
            (login.username.as_str(), login.password.as_str())
        } else {
            ("<token>", login.identity_token.as_str())
        };
        let input = serde_json::json!({"ServerURL": key, "Username": user, "Secret": secret});
        run_helper(&helper_program(&h), "store", input.to_string().as_bytes()).map_err(
            |message| CredentialsError::Helper {
                helper: h.clone(),
                message,
            },
        )?;
        file.auths.insert(key.to_string(), AuthEntry::default());
        write(path, &file)?;
        return Ok(StoredIn::Helper(h));
    }
    let password = if login.identity_token.is_empty() {
        login.password.as_str()
    } else {
        ""
    };
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{password}", login.username));
    let entry = file.auths.entry(key.to_string()).or_default();
    entry.auth = Some(auth);
    entry.username = None;
    entry.password = None;
    entry.identitytoken = (!login.identity_token.is_empty()).then(|| login.identity_token.clone());
    write(path, &file)?;
    Ok(StoredIn::File)
}

/// Removes the logins stored under any of `keys`, from the file and from the credential
/// helper of each key. Returns whether the file had one. A missing file is not an error
/// (nothing to forget), nor is a helper that did not know a key.
pub fn erase(path: &Path, keys: &[String]) -> Result<bool, CredentialsError> {
    let mut file = read(path)?;
    let mut found = false;
    for k in keys {
        if let Some(h) = helper_for(&file, k) {
            let _ = run_helper(&helper_program(&h), "erase", k.as_bytes());
        }
        found |= file.auths.remove(k).is_some();
    }
    if found {
        write(path, &file)?;
    }
    Ok(found)
}

/// The `X-Registry-Auth` value for a stored login (`e30=`, i.e. `{}`, for none).
pub fn registry_auth_header(login: Option<&Login>, key: &str) -> String {
    let Some(l) = login else {
        return "e30=".to_string();
    };
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.to_string(), serde_json::Value::String(v.to_string()));
        }
    };
    put("username", &l.username);
    if l.identity_token.is_empty() {
        put("password", &l.password);
    } else {
        put("identitytoken", &l.identity_token);
    }
    put("serveraddress", key);
    let json = serde_json::Value::Object(m).to_string();
    base64::engine::general_purpose::URL_SAFE.encode(json)
}

/// The `X-Registry-Auth` value for pulling or pushing `image`, from the config file.
/// An unreadable file is reported on stderr and the request goes out anonymously, like
/// the docker CLI.
pub fn header_for_image(image: &str) -> String {
    let key = key_for_image(image);
    let login = match config_path().and_then(|p| lookup(&p, &key)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("WARNING: {e}");
            None
        }
    };
    registry_auth_header(login.as_ref(), &key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys() {
        assert_eq!(server_key(None), INDEX_SERVER);
        assert_eq!(server_key(Some("docker.io")), INDEX_SERVER);
        assert_eq!(server_key(Some(INDEX_SERVER)), INDEX_SERVER);
        assert_eq!(
            server_key(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(key_for_image("127.0.0.1:5000/a/b:1"), "127.0.0.1:5000");
        assert_eq!(key_for_image("localhost/a"), "localhost");
        assert_eq!(key_for_image("busybox"), INDEX_SERVER);
        assert_eq!(key_for_image("user/app:1"), INDEX_SERVER);
        assert_eq!(key_for_image("docker.io/library/busybox"), INDEX_SERVER);
    }

    #[test]
    fn store_lookup_erase_keep_other_keys() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/config.json");
        assert_eq!(lookup(&p, "r:1").unwrap(), None);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(
            &p,
            r#"{"auths":{"https://old:2":{"auth":"bzpw"}},"psFormat":"x"}"#,
        )
        .unwrap();
        let l = Login {
            username: "al".into(),
            password: "p:w".into(),
            identity_token: String::new(),
        };
        store(&p, "r:1", &l).unwrap();
        assert_eq!(lookup(&p, "r:1").unwrap(), Some(l));
        // a legacy `https://host` key still answers for `host`
        assert_eq!(lookup(&p, "old:2").unwrap().unwrap().username, "o");
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("psFormat"), "{text}");
        assert!(
            text.contains("\t\t\"r:1\": {\n\t\t\t\"auth\": \"YWw6cDp3\""),
            "{text}"
        );
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(erase(&p, &["r:1".into(), "http://r:1".into()]).unwrap());
        assert!(!erase(&p, &["r:1".into()]).unwrap());
        assert_eq!(lookup(&p, "r:1").unwrap(), None);
        // no temp files left behind
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("config.json")]);
        std::fs::write(&p, "nope").unwrap();
        assert!(lookup(&p, "r:1")
            .unwrap_err()
            .to_string()
            .contains("not a valid Docker config.json"));
    }

    #[test]
    fn identity_tokens() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        let l = Login {
            username: "al".into(),
            password: "secret".into(),
            identity_token: "tok".into(),
        };
        store(&p, "r:1", &l).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.contains(&base64::engine::general_purpose::STANDARD.encode("al:secret")));
        let got = lookup(&p, "r:1").unwrap().unwrap();
        assert_eq!(got.identity_token, "tok");
        let h = registry_auth_header(Some(&got), "r:1");
        let json = base64::engine::general_purpose::URL_SAFE.decode(h).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["identitytoken"], "tok");
        assert!(v.get("password").is_none());
    }

    #[test]
    fn helpers() {
        let f: ConfigFile = serde_json::from_str(
            r#"{"credsStore":"desktop","credHelpers":{"r:1":"ecr-login","bad":"../x"}}"#,
        )
        .unwrap();
        assert_eq!(helper_for(&f, "r:1").as_deref(), Some("ecr-login"));
        assert_eq!(helper_for(&f, "other").as_deref(), Some("desktop"));
        assert_eq!(helper_for(&f, "bad"), None);
        assert_eq!(helper_for(&ConfigFile::default(), "r:1"), None);
        let d = tempfile::tempdir().unwrap();
        let h = d.path().join("helper");
        std::fs::write(
            &h,
            "#!/bin/sh\nread s\n[ \"$1\" = get ] && [ \"$s\" = r:1 ] && echo '{\"Username\":\"<token>\",\"Secret\":\"t\"}' && exit 0\necho nope; exit 3\n",
        )
        .unwrap();
        std::fs::set_permissions(&h, std::fs::Permissions::from_mode(0o755)).unwrap();
        let prog = h.to_str().unwrap();
        assert_eq!(helper_get(prog, "r:1").unwrap().identity_token, "t");
        assert_eq!(helper_get(prog, "r:2"), None);
        let e = run_helper(prog, "store", b"{}").unwrap_err();
        assert!(e.contains("nope") && e.contains("store"), "{e}");
        assert!(run_helper("/nonexistent/helper", "get", b"")
            .unwrap_err()
            .contains("cannot run"));
    }

    #[test]
    fn headers() {
        assert_eq!(registry_auth_header(None, "r:1"), "e30=");
        let l = Login {
            username: "u".into(),
            password: "p?>".into(),
            identity_token: String::new(),
        };
        let h = registry_auth_header(Some(&l), "r:1");
        assert!(!h.contains('+') && !h.contains('/'), "{h}");
        let v: serde_json::Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE.decode(h).unwrap())
                .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"username":"u","password":"p?>","serveraddress":"r:1"})
        );
    }
}
