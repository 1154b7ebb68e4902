//! [`OAuthFront`]: a registry front on 127.0.0.1 whose token server hands out identity
//! (refresh) tokens, like Docker Hub's: `docker login` gets one back from `POST /auth`, the
//! client stores it instead of the password, and later pulls trade it for access tokens
//! with the OAuth2 refresh-token grant.
//!
//! ```text
//! GET  /token?service=…&offline_token=true&client_id=…   Basic user:password
//!   ← {"token":"at-…","refresh_token":"rt-…"}            (no refresh token without offline_token)
//! POST /token  grant_type=refresh_token&refresh_token=rt-…&service=…&scope=…
//!   ← {"access_token":"at-…","expires_in":300}
//! anything else: `Bearer at-…` required (else 401 + the challenge), then forwarded to the
//! backend registry as it is.
//! ```

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;

/// A token-authenticating front with refresh tokens; stops serving when dropped.
pub struct OAuthFront {
    /// `127.0.0.1:PORT`
    pub addr: String,
    /// The identity (refresh) token it hands out.
    pub refresh_token: String,
    log: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct Cfg {
    backend: String,
    addr: String,
    basic: String,
    access: String,
    refresh: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl OAuthFront {
    /// Starts a front for `backend` (`127.0.0.1:PORT`) that accepts `user`/`password`.
    pub fn start(backend: &str, user: &str, password: &str) -> Result<Self> {
        let l = TcpListener::bind("127.0.0.1:0")?;
        let addr = l.local_addr()?.to_string();
        l.set_nonblocking(true)?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let refresh = format!("rt-{}", crate::unique::name("r"));
        let cfg = Arc::new(Cfg {
            backend: backend.to_string(),
            addr: addr.clone(),
            basic: format!("Basic {}", b64(&format!("{user}:{password}"))),
            access: format!("at-{}", crate::unique::name("a")),
            refresh: refresh.clone(),
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
        Ok(OAuthFront {
            addr,
            refresh_token: refresh,
            log,
            stop,
            thread: Some(thread),
        })
    }

    /// `METHOD path [form]` of every request so far (`POST /token grant_type=refresh_token`).
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for OAuthFront {
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

/// `a=b&c=d` (percent-decoding `%XX` and `+`).
fn form_value(form: &str, key: &str) -> Option<String> {
    form.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| {
            let v = v.replace('+', " ");
            let mut out = Vec::new();
            let b = v.as_bytes();
            let mut i = 0;
            while i < b.len() {
                if b[i] == b'%' && i + 2 < b.len() {
                    if let Ok(x) = u8::from_str_radix(&v[i + 1..i + 3], 16) {
                        out.push(x);
                        i += 3;
                        continue;
                    }
                }
                out.push(b[i]);
                i += 1;
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    })
}

fn reply(s: &mut TcpStream, status: &str, extra: &str, body: &str) -> Result<()> {
    write!(
        s,
        "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    Ok(())
}

fn serve(client: TcpStream, cfg: &Cfg) -> Result<()> {
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
    let len = get("content-length")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    (&mut reader).take(len).read_to_end(&mut body)?;

    if path.starts_with("/token") {
        let query = path.split_once('?').map_or("", |(_, q)| q).to_string();
        let form = String::from_utf8_lossy(&body).into_owned();
        let grant = form_value(&form, "grant_type").unwrap_or_default();
        let entry = if method == "POST" {
            format!("POST /token {grant}")
        } else {
            format!("{method} /token")
        };
        cfg.log.lock().unwrap().push(entry);
        if method == "POST" {
            let ok = grant == "refresh_token"
                && form_value(&form, "refresh_token").as_deref() == Some(cfg.refresh.as_str());
            return if ok {
                reply(
                    &mut client,
                    "200 OK",
                    "",
                    &format!("{{\"access_token\":\"{}\",\"expires_in\":300}}", cfg.access),
                )
            } else {
                reply(
                    &mut client,
                    "401 Unauthorized",
                    "",
                    "{\"error\":\"invalid_grant\",\"error_description\":\"bad refresh token\"}",
                )
            };
        }
        if get("authorization").as_deref() != Some(cfg.basic.as_str()) {
            return reply(
                &mut client,
                "401 Unauthorized",
                "",
                "{\"details\":\"incorrect username or password\"}",
            );
        }
        let offline = form_value(&query, "offline_token").as_deref() == Some("true");
        let body = if offline {
            format!(
                "{{\"token\":\"{}\",\"refresh_token\":\"{}\",\"expires_in\":300}}",
                cfg.access, cfg.refresh
            )
        } else {
            format!("{{\"token\":\"{}\",\"expires_in\":300}}", cfg.access)
        };
        return reply(&mut client, "200 OK", "", &body);
    }
    cfg.log.lock().unwrap().push(format!("{method} {path}"));
    if get("authorization").as_deref() != Some(&format!("Bearer {}", cfg.access)) {
        return reply(
            &mut client,
            "401 Unauthorized",
            &format!(
                "WWW-Authenticate: Bearer realm=\"http://{}/token\",service=\"berth-oauth\"\r\n",
                cfg.addr
            ),
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    }
    // forward as it is (without our Authorization) and copy the reply back verbatim
    let mut backend = TcpStream::connect(&cfg.backend)?;
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    for (k, v) in &headers {
        if !k.eq_ignore_ascii_case("authorization") && !k.eq_ignore_ascii_case("connection") {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str("Connection: close\r\n\r\n");
    backend.write_all(req.as_bytes())?;
    backend.write_all(&body)?;
    std::io::copy(&mut backend, &mut client)?;
    client.flush()?;
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms() {
        let f = "grant_type=refresh_token&refresh_token=rt-a%2Bb&scope=repository%3Ax%3Apull";
        assert_eq!(
            super::form_value(f, "grant_type").as_deref(),
            Some("refresh_token")
        );
        assert_eq!(
            super::form_value(f, "refresh_token").as_deref(),
            Some("rt-a+b")
        );
        assert_eq!(
            super::form_value(f, "scope").as_deref(),
            Some("repository:x:pull")
        );
        assert_eq!(super::form_value(f, "nope"), None);
        assert_eq!(super::b64("alice:s3cret"), "YWxpY2U6czNjcmV0");
    }
}
