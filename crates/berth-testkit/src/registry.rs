//! A real registry on 127.0.0.1 for tests: Debian's `docker-registry` (distribution 2.8)
//! started on a free port in a temp dir and killed (by PID) when the guard drops; and
//! [`Proxy`], a tiny HTTP front that can demand Bearer tokens (a test token server), log
//! requests and inject faults (cut a blob mid-stream, corrupt or truncate it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Status, lower-cased headers and body of a reply.
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// A running `docker-registry`; killed and its storage removed on drop.
pub struct RegistryGuard {
    child: Child,
    /// `127.0.0.1:PORT`
    pub addr: String,
    dir: tempfile::TempDir,
}

impl RegistryGuard {
    /// Starts a registry on a free loopback port and waits until `/v2/` answers.
    pub fn start() -> Result<Self> {
        Self::start_with(None, false)
    }

    /// A second registry serving the same storage over HTTPS with a self-made certificate
    /// for 127.0.0.1 signed by a self-made CA (push fixtures to `self`, pull from the TLS
    /// one). The CA certificate is at [`RegistryGuard::cert`].
    pub fn tls_twin(&self) -> Result<Self> {
        Self::start_with(Some(self.storage()), true)
    }

    /// The CA certificate (PEM) that signed a TLS registry's certificate.
    pub fn cert(&self) -> Option<std::path::PathBuf> {
        let p = self.dir.path().join("ca.pem");
        p.exists().then_some(p)
    }

    fn start_with(storage: Option<std::path::PathBuf>, tls: bool) -> Result<Self> {
        let mut last = None;
        for _ in 0..5 {
            match Self::try_start(storage.clone(), tls) {
                Ok(g) => return Ok(g),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("tried at least once"))
    }

    fn try_start(storage: Option<std::path::PathBuf>, tls: bool) -> Result<Self> {
        let bin = ["/usr/bin/docker-registry", "/usr/sbin/docker-registry"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .context("docker-registry is not installed (apt-get install docker-registry)")?;
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()?;
        let port = crate::unique::free_port();
        let addr = format!("127.0.0.1:{port}");
        let cfg = dir.path().join("config.yml");
        let storage = storage.unwrap_or_else(|| dir.path().join("data"));
        let mut yml = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            storage.display()
        );
        if tls {
            let d = dir.path();
            let (cert, key) = (d.join("cert.pem"), d.join("key.pem"));
            std::fs::write(
                d.join("leaf.ext"),
                "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            )?;
            let ec = [
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
            ];
            let steps: [Vec<&str>; 3] = [
                [
                    &["req", "-x509"][..],
                    &ec,
                    &[
                        "-days",
                        "2",
                        "-subj",
                        "/CN=berth-test-ca",
                        "-keyout",
                        "ca.key",
                        "-out",
                        "ca.pem",
                    ],
                ]
                .concat(),
                [
                    &["req"][..],
                    &ec,
                    &[
                        "-subj",
                        "/CN=127.0.0.1",
                        "-keyout",
                        "key.pem",
                        "-out",
                        "leaf.csr",
                    ],
                ]
                .concat(),
                vec![
                    "x509",
                    "-req",
                    "-in",
                    "leaf.csr",
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    "leaf.ext",
                    "-out",
                    "cert.pem",
                ],
            ];
            for args in steps {
                let out = Command::new("openssl")
                    .args(&args)
                    .current_dir(d)
                    .output()
                    .context("running openssl (apt-get install openssl)")?;
                if !out.status.success() {
                    bail!(
                        "openssl {}: {}",
                        args.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            }
            yml.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        std::fs::write(&cfg, yml)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new(bin)
            .arg("serve")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry")?;
        let mut g = RegistryGuard { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = g.child.try_wait()? {
                let log =
                    std::fs::read_to_string(g.dir.path().join("registry.log")).unwrap_or_default();
                bail!("docker-registry exited with {st}: {log}");
            }
            if let Ok((status, _, _)) = http(&g.addr, "GET", "/v2/", &[], &[]) {
                // a TLS registry answers a plain request with 400: it is up
                if status == 200 || (tls && status == 400) {
                    return Ok(g);
                }
            }
            if Instant::now() > deadline {
                bail!("docker-registry on {} did not answer within 10 s", g.addr);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Storage directory of the registry.
    pub fn storage(&self) -> std::path::PathBuf {
        std::fs::read_to_string(self.dir.path().join("config.yml"))
            .ok()
            .and_then(|y| {
                y.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix("rootdirectory: ")
                        .map(std::path::PathBuf::from)
                })
            })
            .unwrap_or_else(|| self.dir.path().join("data"))
    }
}

impl Drop for RegistryGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request with `Connection: close`: (status, headers lower-cased, body).
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let (status, hdrs) = read_response_head(&mut r)?;
    let mut out = Vec::new();
    if method != "HEAD" {
        match hdrs
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            Some(n) => {
                out.resize(n, 0);
                r.read_exact(&mut out)?;
            }
            None => {
                r.read_to_end(&mut out)?;
            }
        }
    }
    Ok((status, hdrs, out))
}

fn read_response_head(r: &mut impl BufRead) -> Result<(u16, Vec<(String, String)>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .context("bad status line")?
        .parse()?;
    let mut hdrs = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            hdrs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Ok((status, hdrs))
}

/// Faults [`Proxy`] can inject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Send the headers and this many body bytes of the first (non-range) blob GET, then close.
    CutBlobOnce(usize),
    /// Flip one byte in every blob of at least `min_size` bytes.
    CorruptBlobs {
        min_size: usize,
    },
    /// Serve half of every blob larger than `min_size`, with a matching Content-Length.
    TruncateBlobs {
        min_size: usize,
    },
    /// Answer every manifest request with 429 Too Many Requests (Docker Hub's rate limit).
    RateLimitManifests,
    /// Answer blob GETs with `307` to the same path on another address (blob storage / CDN).
    RedirectBlobs(std::net::SocketAddr),
}

/// A logging, optionally token-authenticating, fault-injecting front for a registry.
pub struct Proxy {
    /// `127.0.0.1:PORT` to pull from.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Bearer-token settings of a [`Proxy`].
#[derive(Clone, Debug)]
pub struct TokenAuth {
    /// Credentials the token endpoint accepts; `None` = anonymous tokens.
    pub user: Option<(String, String)>,
}

struct ProxyCfg {
    backend: String,
    self_addr: String,
    auth: Option<TokenAuth>,
    token: String,
    fault: Fault,
    faults_done: AtomicUsize,
    log: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// Starts a proxy in front of `backend` (`127.0.0.1:PORT`).
    pub fn start(backend: &str, auth: Option<TokenAuth>, fault: Fault) -> Result<Self> {
        Self::start_on("127.0.0.1", backend, auth, fault)
    }

    /// Like [`Proxy::start`], listening on another loopback address (`127.0.0.2`: a different
    /// host for redirect tests).
    pub fn start_on(
        ip: &str,
        backend: &str,
        auth: Option<TokenAuth>,
        fault: Fault,
    ) -> Result<Self> {
        let l = TcpListener::bind((ip, 0))?;
        let addr = l.local_addr()?.to_string();
        l.set_nonblocking(true)?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = Arc::new(ProxyCfg {
            backend: backend.to_string(),
            self_addr: addr.clone(),
            auth,
            token: format!("tok-{}", crate::unique::name("t")),
            fault,
            faults_done: AtomicUsize::new(0),
            log: log.clone(),
        });
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        let cfg = cfg.clone();
                        std::thread::spawn(move || {
                            let _ = serve(s, &cfg);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Proxy {
            addr,
            log,
            stop,
            thread: Some(thread),
        })
    }

    /// `METHOD path [Range: …] [Authorization]` of every request seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// How many blob GETs (downloads) were made.
    pub fn blob_gets(&self) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains("/blobs/"))
            .count()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap().clear();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn serve(client: TcpStream, cfg: &ProxyCfg) -> Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let mut l = String::new();
        reader.read_line(&mut l)?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let mut range = get("range")
        .map(|r| format!(" [Range: {r}]"))
        .unwrap_or_default();
    if get("authorization").is_some() {
        range.push_str(" [Authorization]");
    }
    cfg.log
        .lock()
        .unwrap()
        .push(format!("{method} {path}{range}"));

    if let Some(auth) = &cfg.auth {
        if path.starts_with("/token") {
            let ok = match &auth.user {
                None => true,
                Some((u, p)) => get("authorization")
                    .is_some_and(|a| a == format!("Basic {}", b64(&format!("{u}:{p}")))),
            };
            let (status, body) = if ok {
                (
                    200,
                    format!("{{\"token\":\"{}\",\"expires_in\":300}}", cfg.token),
                )
            } else {
                (
                    401,
                    "{\"details\":\"incorrect username or password\"}".to_string(),
                )
            };
            write!(client, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())?;
            return Ok(());
        }
        if get("authorization").as_deref() != Some(&format!("Bearer {}", cfg.token)) {
            let body =
                r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            write!(
                client,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{}/token\",service=\"berth-test\"\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                cfg.self_addr,
                body.len()
            )?;
            return Ok(());
        }
    }

    if let Fault::RedirectBlobs(to) = cfg.fault {
        if method == "GET" && path.contains("/blobs/") {
            write!(
                client,
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{to}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
    }
    if cfg.fault == Fault::RateLimitManifests && path.contains("/manifests/") {
        let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#;
        write!(
            client,
            "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let mut backend = TcpStream::connect(&cfg.backend)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        if !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("connection") {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str("Connection: close\r\n\r\n");
    backend.write_all(req.as_bytes())?;
    // forward a request body (pushes)
    if let Some(n) = get("content-length").and_then(|v| v.parse::<u64>().ok()) {
        std::io::copy(&mut (&mut reader).take(n), &mut backend)?;
    }
    let mut br = BufReader::new(backend);
    let (status, rh) = read_response_head(&mut br)?;
    let len = rh
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let is_blob_get = method == "GET" && path.contains("/blobs/") && status == 200;
    let mut body_limit: Option<usize> = None;
    let mut corrupt = false;
    let mut new_len = len;
    match cfg.fault {
        Fault::CutBlobOnce(n)
            if is_blob_get
                && len.is_some_and(|l| l > n)
                && cfg.faults_done.fetch_add(1, Ordering::SeqCst) == 0 =>
        {
            body_limit = Some(n);
        }
        Fault::CorruptBlobs { min_size } if is_blob_get && len.is_some_and(|l| l >= min_size) => {
            corrupt = true
        }
        Fault::TruncateBlobs { min_size } if is_blob_get && len.is_some_and(|l| l >= min_size) => {
            new_len = len.map(|l| l / 2);
            body_limit = new_len;
        }
        _ => {}
    }
    let mut head = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in &rh {
        if k != "connection" && k != "content-length" {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if let Some(l) = new_len {
        head.push_str(&format!("Content-Length: {l}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    client.write_all(head.as_bytes())?;
    let mut body = Vec::new();
    br.read_to_end(&mut body)?;
    if corrupt && !body.is_empty() {
        let i = body.len() / 2;
        body[i] ^= 0xff;
    }
    let end = body_limit.unwrap_or(body.len()).min(body.len());
    client.write_all(&body[..end])?;
    client.flush()?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}
