//! E2E, root tier: `login` / `logout` and private pulls and pushes through `berth daemon`,
//! with the real docker CLI, berth's CLI and docker-py, against a real `docker-registry` on
//! 127.0.0.1 behind a token server (berth-testkit's `Proxy` with `TokenAuth`).
//!
//! What is checked: the daemon checks credentials against the registry (`POST /auth`) and
//! stores none; the clients keep them in their config file (`--config DIR` /
//! `DOCKER_CONFIG`) and send them as `X-Registry-Auth`; wrong passwords, bad bodies and
//! unreachable registries get Docker's status codes and messages; after `logout` a pull is
//! refused again (tokens the daemon cached for one login serve nobody else).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use berth_testkit::images::{self, Format};
use berth_testkit::registry::{Fault, Proxy, RegistryGuard, TokenAuth};
use common::{docker_py, run_cmd, Daemon, Run};

const USER: &str = "alice";
const PASS: &str = "s3cret";
/// base64("alice:s3cret"): what `config.json` must hold after a login.
const AUTH_B64: &str = "YWxpY2U6czNjcmV0";

/// A registry with `private/bb:latest` (busybox), reachable only through a token server
/// that grants tokens to alice.
struct Private {
    /// `127.0.0.1:PORT` of the token-protected front.
    addr: String,
    /// `127.0.0.1:PORT/private/bb:latest`
    image: String,
    proxy: Proxy,
    /// The registry itself (no auth), for "a registry without auth takes any login".
    reg: RegistryGuard,
}

fn private_registry() -> Private {
    let reg = RegistryGuard::start().expect("loopback registry");
    let img = images::busybox_image().expect("busybox image");
    images::push(&reg.addr, "private/bb", "latest", &img, Format::Oci).expect("push busybox");
    let proxy = Proxy::start(
        &reg.addr,
        Some(TokenAuth {
            user: Some((USER.into(), PASS.into())),
        }),
        Fault::None,
    )
    .expect("token proxy");
    Private {
        addr: proxy.addr.clone(),
        image: format!("{}/private/bb:latest", proxy.addr),
        proxy,
        reg,
    }
}

/// The real docker CLI with its own config directory (`docker --config DIR`).
fn docker(d: &Daemon, cfg: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut c = Command::new(common::DOCKER);
    c.env("DOCKER_HOST", &d.host)
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_CONFIG")
        .arg("--config")
        .arg(cfg)
        .args(args);
    run_cmd(c, stdin, Duration::from_secs(90))
}

/// berth's CLI with `DOCKER_CONFIG=DIR`.
fn berth(d: &Daemon, cfg: &Path, args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut c = Command::new(common::BERTH);
    c.env("BERTH_HOST", &d.host)
        .env("DOCKER_CONFIG", cfg)
        .args(args);
    run_cmd(c, stdin, Duration::from_secs(90))
}

/// `auths.<key>` of a config directory's `config.json` (Null when absent).
fn auth_entry(cfg: &Path, key: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(cfg.join("config.json")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    v["auths"][key].clone()
}

#[track_caller]
fn failed_with(d: &Daemon, r: &Run, needle: &str) {
    assert_ne!(r.code, 0, "expected a failure: {r:?}");
    assert!(
        r.stderr.contains(needle),
        "stderr lacks {needle:?}: {r:?}\n--- daemon log ---\n{}",
        common::tail(&d.log(), 20)
    );
}

#[test]
fn docker_cli_login_pull_push_logout() {
    if !berth_testkit::require_root("docker_cli_login_pull_push_logout") {
        return;
    }
    let p = private_registry();
    let d = Daemon::start();
    let cfg = tempfile::tempdir().unwrap();
    let cfg = cfg.path();

    // anonymous: the token server refuses, so does the pull
    let r = docker(&d, cfg, &["pull", &p.image], None);
    failed_with(&d, &r, "unauthorized");

    // wrong password: Docker's message and exit code, nothing stored
    let r = docker(
        &d,
        cfg,
        &["login", "-u", USER, "-p", "wrong", &p.addr],
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("WARNING! Using --password via the CLI is insecure"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "Error response from daemon: Get \"http://{}/v2/\": unauthorized: incorrect username or password",
            p.addr
        )),
        "{r:?}"
    );
    assert!(auth_entry(cfg, &p.addr).is_null());

    let r = docker(
        &d,
        cfg,
        &["login", "-u", USER, "--password-stdin", &p.addr],
        Some(format!("{PASS}\n").as_bytes()),
    );
    common::ok(&d, &r);
    assert!(r.stdout.contains("Login Succeeded"), "{r:?}");
    assert_eq!(auth_entry(cfg, &p.addr)["auth"], AUTH_B64);

    // the CLI sends the stored credentials as X-Registry-Auth
    let r = docker(&d, cfg, &["pull", &p.image], None);
    common::ok(&d, &r);
    let r = docker(&d, cfg, &["images", "--format", "{{.Repository}}"], None);
    assert!(
        r.stdout.contains(&format!("{}/private/bb", p.addr)),
        "{r:?}"
    );
    let pushed = format!("{}/private/pushed:v1", p.addr);
    common::ok(&d, &docker(&d, cfg, &["tag", &p.image, &pushed], None));
    let r = docker(&d, cfg, &["push", &pushed], None);
    common::ok(&d, &r);
    assert!(r.stdout.contains("v1: digest: sha256:"), "{r:?}");
    assert!(
        p.proxy
            .requests()
            .iter()
            .any(|q| q.starts_with("PUT /v2/private/pushed/manifests/v1")),
        "{:?}",
        p.proxy.requests()
    );

    let r = docker(&d, cfg, &["logout", &p.addr], None);
    common::ok(&d, &r);
    assert!(
        r.stdout
            .contains(&format!("Removing login credentials for {}", p.addr)),
        "{r:?}"
    );
    assert!(auth_entry(cfg, &p.addr).is_null());

    // logged out: the daemon's token from the login serves nobody else
    common::ok(&d, &docker(&d, cfg, &["rmi", &p.image, &pushed], None));
    let r = docker(&d, cfg, &["pull", &p.image], None);
    failed_with(&d, &r, "unauthorized");
}

#[test]
fn berth_cli_login_pull_push_logout() {
    if !berth_testkit::require_root("berth_cli_login_pull_push_logout") {
        return;
    }
    let p = private_registry();
    let d = Daemon::start();
    let cfg = tempfile::tempdir().unwrap();
    let cfg = cfg.path();

    // Docker's usage errors
    let r = berth(
        &d,
        cfg,
        &["login", "--password-stdin", &p.addr],
        Some(b"x\n"),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("the --password-stdin option requires --username to be set"),
        "{r:?}"
    );
    let r = berth(
        &d,
        cfg,
        &["login", "-u", USER, "-p", "x", "--password-stdin", &p.addr],
        Some(b"x\n"),
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("conflicting options"), "{r:?}");
    // no terminal and nothing stored: no prompt, Docker's error
    let r = berth(&d, cfg, &["login", &p.addr], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("Cannot perform an interactive login from a non TTY device"),
        "{r:?}"
    );

    let r = berth(&d, cfg, &["pull", &p.image], None);
    failed_with(&d, &r, "unauthorized");

    let r = berth(&d, cfg, &["login", "-u", USER, "-p", "nope", &p.addr], None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("WARNING! Using --password via the CLI is insecure"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains(&format!(
            "Error response from daemon: Get \"http://{}/v2/\": unauthorized: incorrect username or password",
            p.addr
        )),
        "{r:?}"
    );
    assert!(auth_entry(cfg, &p.addr).is_null());

    let r = berth(
        &d,
        cfg,
        &["login", "--username", USER, "--password-stdin", &p.addr],
        Some(format!("{PASS}\n").as_bytes()),
    );
    common::ok(&d, &r);
    assert!(r.stdout.contains("Login Succeeded"), "{r:?}");
    assert_eq!(auth_entry(cfg, &p.addr)["auth"], AUTH_B64);
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(cfg.join("config.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);

    // stored credentials are tried first when none are given
    let r = berth(&d, cfg, &["login", &p.addr], None);
    common::ok(&d, &r);
    assert!(
        r.stderr
            .contains("Authenticating with existing credentials... [Username: alice]"),
        "{r:?}"
    );
    assert!(!r.stderr.contains("WARNING"), "{r:?}");
    assert!(r.stdout.contains("Login Succeeded"), "{r:?}");

    let r = berth(&d, cfg, &["pull", &p.image], None);
    common::ok(&d, &r);
    let pushed = format!("{}/private/pushed:b1", p.addr);
    common::ok(&d, &berth(&d, cfg, &["tag", &p.image, &pushed], None));
    let r = berth(&d, cfg, &["push", &pushed], None);
    common::ok(&d, &r);
    assert!(
        p.proxy
            .requests()
            .iter()
            .any(|q| q.starts_with("PUT /v2/private/pushed/manifests/b1")),
        "{:?}",
        p.proxy.requests()
    );
    // the docker CLI reads the same file: berth's login works for docker
    let r = docker(&d, cfg, &["pull", &pushed], None);
    common::ok(&d, &r);

    let r = berth(&d, cfg, &["logout", &p.addr], None);
    common::ok(&d, &r);
    assert!(
        r.stdout
            .contains(&format!("Removing login credentials for {}", p.addr)),
        "{r:?}"
    );
    assert!(auth_entry(cfg, &p.addr).is_null());
    common::ok(&d, &berth(&d, cfg, &["rmi", &p.image, &pushed], None));
    let r = berth(&d, cfg, &["pull", &p.image], None);
    failed_with(&d, &r, "unauthorized");
    let r = berth(&d, cfg, &["push", &pushed], None);
    assert_ne!(r.code, 0, "{r:?}");
}

const PY: &str = r#"
import os, sys, docker
addr, img, user, pw = sys.argv[1:5]
c = docker.DockerClient(base_url="unix://" + os.environ["BERTH_SOCK"], version="auto")
try:
    c.login(username=user, password="wrong", registry=addr, reauth=True)
    raise SystemExit("a wrong password was accepted")
except docker.errors.APIError as e:
    assert e.status_code == 401, (e.status_code, str(e))
    assert "unauthorized: incorrect username or password" in str(e), str(e)
try:
    c.images.pull(img)
    raise SystemExit("an anonymous pull of a private image worked")
except docker.errors.APIError as e:
    assert "unauthorized" in str(e), str(e)
r = c.login(username=user, password=pw, registry=addr, reauth=True)
assert r["Status"] == "Login Succeeded", r
assert r["IdentityToken"] == "", r
i = c.images.pull(img)
assert img in i.tags, i.tags
c.images.remove(img)
# explicit auth_config, no login
c2 = docker.DockerClient(base_url="unix://" + os.environ["BERTH_SOCK"], version="auto")
i = c2.images.pull(img, auth_config={"username": user, "password": pw})
assert img in i.tags, i.tags
print("docker-py login ok")
"#;

#[test]
fn docker_py_login() {
    if !berth_testkit::require_root("docker_py_login") || !docker_py::available("docker_py_login") {
        return;
    }
    let p = private_registry();
    let d = Daemon::start();
    let cfg = tempfile::tempdir().unwrap();
    docker_py::run_with_env(
        &d,
        PY,
        &[&p.addr, &p.image, USER, PASS],
        &[("DOCKER_CONFIG", cfg.path().as_os_str())],
        "docker-py login ok",
    );
}

/// `POST /auth` with a JSON body: (status, body).
fn post_auth(d: &Daemon, body: &str) -> (u16, serde_json::Value) {
    let (status, _, text) = d
        .raw("POST", "/v1.47/auth", Some(body))
        .expect("daemon answers");
    (status, serde_json::from_str(&text).unwrap_or_default())
}

/// A registry that answers every request with a Basic challenge and accepts alice's
/// password (the htpasswd kind). Serves until dropped.
struct BasicRegistry {
    addr: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl BasicRegistry {
    fn start() -> BasicRegistry {
        use std::sync::atomic::Ordering;
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        // Basic base64("alice:s3cret")
        let good = format!("authorization: basic {}", AUTH_B64.to_ascii_lowercase());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = s.set_nonblocking(false);
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut authed = false;
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    authed |= line.trim().to_ascii_lowercase() == good;
                }
                let reply = if authed {
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                } else {
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let mut s = s;
                let _ = s.write_all(reply.as_bytes());
            }
        });
        BasicRegistry { addr, stop }
    }
}

impl Drop for BasicRegistry {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn auth_endpoint_codes_and_messages() {
    if !berth_testkit::require_root("auth_endpoint_codes_and_messages") {
        return;
    }
    let p = private_registry();
    let d = Daemon::start();
    let body = |user: &str, pass: &str, server: &str| {
        serde_json::json!({"username": user, "password": pass, "serveraddress": server}).to_string()
    };

    let (s, v) = post_auth(&d, &body(USER, PASS, &p.addr));
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v,
        serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""})
    );
    // a scheme in the server address is dropped, as dockerd does
    let (s, v) = post_auth(&d, &body(USER, PASS, &format!("http://{}/", p.addr)));
    assert_eq!(s, 200, "{v}");

    let (s, v) = post_auth(&d, &body(USER, "wrong", &p.addr));
    assert_eq!(s, 401, "{v}");
    assert_eq!(
        v["message"],
        format!(
            "Get \"http://{}/v2/\": unauthorized: incorrect username or password",
            p.addr
        )
    );

    // a registry without authentication takes any login
    let (s, v) = post_auth(&d, &body("anyone", "anything", &p.reg.addr));
    assert_eq!(s, 200, "{v}");

    // a Basic-auth registry: dockerd's "login attempt ... failed with status" message
    let basic = BasicRegistry::start();
    let (s, v) = post_auth(&d, &body(USER, PASS, &basic.addr));
    assert_eq!(s, 200, "{v}");
    let (s, v) = post_auth(&d, &body(USER, "wrong", &basic.addr));
    assert_eq!(s, 401, "{v}");
    assert_eq!(
        v["message"],
        format!(
            "login attempt to http://{}/v2/ failed with status: 401 Unauthorized",
            basic.addr
        )
    );

    // nothing listens: 500 at once, saying which registry
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let t0 = Instant::now();
    let (s, v) = post_auth(&d, &body(USER, PASS, &closed_addr));
    assert_eq!(s, 500, "{v}");
    let m = v["message"].as_str().unwrap_or_default();
    assert!(
        m.contains("cannot reach registry")
            && m.contains(&format!("Get \"http://{closed_addr}/v2/\": "))
            && m.to_ascii_lowercase().contains("connection refused"),
        "{v}"
    );
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());

    // malformed bodies: 400 with the reason
    for bad in ["{\"username\":", "", "[1,2]", "{\"username\": 5}"] {
        let (s, v) = post_auth(&d, bad);
        assert_eq!(s, 400, "{bad:?}: {v}");
        assert!(
            v["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("invalid JSON"),
            "{bad:?}: {v}"
        );
    }
    // a server address that names no host: 400
    let (s, v) = post_auth(&d, &body(USER, PASS, "bad host:x"));
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("unable to parse server address"),
        "{v}"
    );
    // the daemon is still fine
    assert_eq!(d.raw("GET", "/_ping", None).unwrap().0, 200);
}

#[test]
fn auth_to_a_silent_registry_times_out() {
    if !berth_testkit::require_root("auth_to_a_silent_registry_times_out") {
        return;
    }
    // accepts connections and never answers (a registry behind a black hole; Docker Hub on
    // a machine without internet may look like this)
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let _conns: Vec<_> = l.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(40));
    });
    let d = Daemon::start();
    let t0 = Instant::now();
    let body =
        serde_json::json!({"username": USER, "password": PASS, "serveraddress": addr}).to_string();
    let (s, v) = post_auth(&d, &body);
    let took = t0.elapsed();
    assert_eq!(s, 500, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("within 20 s"),
        "{v}"
    );
    assert!(took < Duration::from_secs(28), "{took:?}");
    drop(held);
}

#[test]
fn identity_tokens_from_login_serve_pulls() {
    if !berth_testkit::require_root("identity_tokens_from_login_serve_pulls") {
        return;
    }
    let reg = RegistryGuard::start().expect("loopback registry");
    let img = images::busybox_image().expect("busybox image");
    images::push(&reg.addr, "private/bb", "latest", &img, Format::Oci).expect("push busybox");
    let front = berth_testkit::oauth::OAuthFront::start(&reg.addr, USER, PASS).expect("front");
    let image = format!("{}/private/bb:latest", front.addr);
    let d = Daemon::start();

    // the token server's refresh token comes back as the IdentityToken
    let body = serde_json::json!({"username": USER, "password": PASS, "serveraddress": front.addr})
        .to_string();
    let (s, v) = post_auth(&d, &body);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["IdentityToken"], front.refresh_token);

    drop(d);
    for cli in ["docker", "berth"] {
        // a daemon each: the first one's cached access token would serve the second pull
        let d = Daemon::start();
        let cfg = tempfile::tempdir().unwrap();
        let cfg = cfg.path();
        let run = |args: &[&str], stdin: Option<&[u8]>| match cli {
            "docker" => docker(&d, cfg, args, stdin),
            _ => berth(&d, cfg, args, stdin),
        };
        let r = run(
            &["login", "-u", USER, "--password-stdin", &front.addr],
            Some(PASS.as_bytes()),
        );
        common::ok(&d, &r);
        // the client keeps the identity token, not the password
        let e = auth_entry(cfg, &front.addr);
        assert_eq!(e["identitytoken"], front.refresh_token, "{cli}: {e}");
        let text = std::fs::read_to_string(cfg.join("config.json")).unwrap();
        assert!(!text.contains(AUTH_B64), "{cli}: password stored: {text}");
        // and the pull trades it for an access token (the refresh-token grant)
        let before = front
            .requests()
            .iter()
            .filter(|q| *q == "POST /token refresh_token")
            .count();
        common::ok(&d, &run(&["pull", &image], None));
        let after = front
            .requests()
            .iter()
            .filter(|q| *q == "POST /token refresh_token")
            .count();
        assert!(after > before, "{cli}: {:?}", front.requests());
        common::ok(&d, &run(&["rmi", &image], None));
    }
}

#[test]
fn login_prompts_on_a_terminal() {
    if !berth_testkit::require_root("login_prompts_on_a_terminal") {
        return;
    }
    let p = private_registry();
    let d = Daemon::start();
    for cli in [common::DOCKER, common::BERTH] {
        let cfg = tempfile::tempdir().unwrap();
        // script(1) gives the CLI a terminal; what we write to script's stdin is "typed"
        let cmd = format!("{cli} login {}", p.addr);
        let mut sc = Command::new("script");
        sc.args(["-qec", &cmd, "/dev/null"])
            .env("DOCKER_HOST", &d.host)
            .env("BERTH_HOST", &d.host)
            .env("DOCKER_CONFIG", cfg.path())
            .env_remove("DOCKER_CONTEXT");
        let typed = format!("{USER}\n{PASS}\n");
        let r = run_cmd(sc, Some(typed.as_bytes()), Duration::from_secs(60));
        assert_eq!(r.code, 0, "{cli}: {r:?}");
        assert!(r.stdout.contains("Username: "), "{cli}: {r:?}");
        assert!(r.stdout.contains("Password: "), "{cli}: {r:?}");
        assert!(r.stdout.contains("Login Succeeded"), "{cli}: {r:?}");
        assert_eq!(auth_entry(cfg.path(), &p.addr)["auth"], AUTH_B64, "{cli}");
    }
}

/// A `docker-credential-berthfake` helper keeping one login in `$BERTH_FAKE_HELPER_DIR`.
const FAKE_HELPER: &str = r#"#!/bin/sh
d="$BERTH_FAKE_HELPER_DIR"
echo "$1" >> "$d/log"
case "$1" in
store) cat > "$d/cred.json" ;;
get)
  read s
  if [ -f "$d/cred.json" ] && grep -q "\"ServerURL\":\"$s\"" "$d/cred.json"; then
    cat "$d/cred.json"
  else
    echo "credentials not found in native keychain"; exit 1
  fi ;;
erase)
  read s
  if [ -f "$d/cred.json" ] && grep -q "\"ServerURL\":\"$s\"" "$d/cred.json"; then rm -f "$d/cred.json"; fi ;;
*) exit 1 ;;
esac
"#;

#[test]
fn logins_go_to_a_configured_credential_helper() {
    if !berth_testkit::require_root("logins_go_to_a_configured_credential_helper") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let p = private_registry();
    let d = Daemon::start();
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-berthfake");
    std::fs::write(&helper, FAKE_HELPER).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for cli in [common::DOCKER, common::BERTH] {
        let cfg = tempfile::tempdir().unwrap();
        let store = tempfile::tempdir().unwrap();
        std::fs::write(
            cfg.path().join("config.json"),
            r#"{"auths":{},"credsStore":"berthfake"}"#,
        )
        .unwrap();
        let run = |args: &[&str], stdin: Option<&[u8]>| {
            let mut c = Command::new(cli);
            c.env("DOCKER_HOST", &d.host)
                .env("BERTH_HOST", &d.host)
                .env("DOCKER_CONFIG", cfg.path())
                .env("PATH", &path)
                .env("BERTH_FAKE_HELPER_DIR", store.path())
                .env_remove("DOCKER_CONTEXT")
                .args(args);
            run_cmd(c, stdin, Duration::from_secs(90))
        };
        let r = run(
            &["login", "-u", USER, "--password-stdin", &p.addr],
            Some(PASS.as_bytes()),
        );
        common::ok(&d, &r);
        assert!(r.stdout.contains("Login Succeeded"), "{cli}: {r:?}");
        assert!(!r.stderr.contains("unencrypted"), "{cli}: {r:?}");
        // the secret went to the helper; the file keeps an empty entry
        let kept = std::fs::read_to_string(store.path().join("cred.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&kept).unwrap();
        assert_eq!(
            (&v["ServerURL"], &v["Username"], &v["Secret"]),
            (
                &serde_json::json!(p.addr),
                &serde_json::json!(USER),
                &serde_json::json!(PASS)
            ),
            "{cli}"
        );
        assert_eq!(
            auth_entry(cfg.path(), &p.addr),
            serde_json::json!({}),
            "{cli}"
        );
        // pulls get the login from the helper
        common::ok(&d, &run(&["pull", &p.image], None));
        common::ok(&d, &run(&["rmi", &p.image], None));
        let r = run(&["logout", &p.addr], None);
        common::ok(&d, &r);
        assert!(
            !store.path().join("cred.json").exists(),
            "{cli}: helper still holds the login"
        );
        let log = std::fs::read_to_string(store.path().join("log")).unwrap();
        for action in ["store", "get", "erase"] {
            assert!(log.lines().any(|l| l == action), "{cli}: {log}");
        }
        let r = run(&["pull", &p.image], None);
        failed_with(&d, &r, "unauthorized");
    }
}
