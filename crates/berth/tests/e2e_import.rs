//! E2E, root tier: `docker import` / `berth import` from a URL (a loopback HTTP server this
//! test starts on 127.0.0.1) and from stdin (`fromSrc=-`).

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{ok, Daemon};

/// A tiny HTTP/1.1 server on 127.0.0.1 serving fixed paths; stopped on drop.
struct Files {
    addr: String,
    stop: Arc<AtomicBool>,
    hits: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Files {
    fn serve(files: Vec<(&'static str, Vec<u8>)>) -> Files {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = l.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(Vec::new()));
        let (s, h) = (stop.clone(), hits.clone());
        let thread = std::thread::spawn(move || {
            for conn in l.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut c) = conn else { continue };
                let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut first = String::new();
                if r.read_line(&mut first).is_err() {
                    continue;
                }
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
                        break;
                    }
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                h.lock().unwrap().push(path.clone());
                match files.iter().find(|(p, _)| *p == path) {
                    Some((_, body)) => {
                        let _ = write!(
                            c,
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/x-tar\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = c.write_all(body);
                    }
                    None => {
                        let _ = c.write_all(
                            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
                        );
                    }
                }
            }
        });
        Files {
            addr,
            stop,
            hits,
            thread: Some(thread),
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut c = std::process::Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut si = c.stdin.take().unwrap();
    let d = data.to_vec();
    let w = std::thread::spawn(move || si.write_all(&d));
    let mut out = Vec::new();
    c.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    w.join().unwrap().unwrap();
    c.wait().unwrap();
    out
}

#[test]
fn import_from_url_and_stdin() {
    if !berth_testkit::require_root("import_from_url_and_stdin") {
        return;
    }
    let tar = berth_testkit::images::busybox_layer_tar().expect("busybox tar");
    let srv = Files::serve(vec![
        ("/busybox.tar", tar.clone()),
        ("/busybox.tar.gz", gzip(&tar)),
    ]);
    let d = Daemon::start();

    // docker import URL: the daemon fetches it; the id is the last line.
    let url = format!("http://{}/busybox.tar", srv.addr);
    let r = d.docker(&["import", &url, "fromurl:1"]);
    ok(&d, &r);
    assert!(
        r.stdout
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .starts_with("sha256:"),
        "{r:?}"
    );
    assert_eq!(
        d.docker_ok(&["run", "--rm", "fromurl:1", "echo", "imported"]),
        "imported\n"
    );

    // --change and --message: the config and the history comment.
    d.docker_ok(&[
        "import",
        "-c",
        r#"CMD ["sh", "-c", "echo $GREETING from change"]"#,
        "-c",
        "ENV GREETING=hello",
        "--change",
        "WORKDIR /tmp",
        "-m",
        "imported for a test",
        &url,
        "changed:1",
    ]);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "changed:1"]),
        "hello from change\n"
    );
    let r = d.docker_ok(&[
        "image",
        "inspect",
        "-f",
        "{{.Comment}}|{{.Config.WorkingDir}}",
        "changed:1",
    ]);
    assert_eq!(r.trim(), "imported for a test|/tmp");
    let r = d.docker(&["import", "-c", "RUN rm -rf /", &url, "bad:1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("RUN is not a valid change command"),
        "{r:?}"
    );
    d.berth_ok(&[
        "import",
        "-c",
        "CMD [\"echo\", \"berth change\"]",
        &url,
        "changed:2",
    ]);
    assert_eq!(d.berth_ok(&["run", "--rm", "changed:2"]), "berth change\n");

    // berth import URL (gzip), printed as the id only.
    let url = format!("http://{}/busybox.tar.gz", srv.addr);
    let id = d.berth_ok(&["import", &url, "fromurl:gz"]);
    assert_eq!(id.lines().count(), 1, "{id:?}");
    assert!(id.starts_with("sha256:"), "{id:?}");
    let group = d.berth_ok(&["run", "--rm", "fromurl:gz", "cat", "/etc/group"]);
    assert!(group.starts_with("root:x:0:"), "{group:?}");
    assert!(srv
        .hits
        .lock()
        .unwrap()
        .contains(&"/busybox.tar.gz".to_string()));

    // A missing file: the remote's status in the error.
    let r = d.docker(&["import", &format!("http://{}/missing.tar", srv.addr)]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("failed to GET") && r.stderr.contains("404"),
        "{r:?}"
    );
    // Not http(s): 400.
    let (s, _, body) = d
        .raw(
            "POST",
            "/images/create?fromSrc=ftp://127.0.0.1/x.tar",
            Some(""),
        )
        .unwrap();
    assert_eq!(s, 400, "{body}");
    // Nothing listening: an error, no image.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = closed.local_addr().unwrap().to_string();
    drop(closed);
    let r = d.docker(&["import", &format!("http://{dead}/x.tar"), "never:1"]);
    assert_ne!(r.code, 0, "{r:?}");
    assert_ne!(d.docker(&["image", "inspect", "never:1"]).code, 0);

    // fromSrc=-: docker import - < tar
    let r = d.docker_in(
        &["import", "-", "fromstdin:1"],
        Some(&tar),
        Duration::from_secs(120),
    );
    ok(&d, &r);
    assert_eq!(
        d.docker_ok(&["run", "--rm", "fromstdin:1", "echo", "stdin"]),
        "stdin\n"
    );
    // No download left behind in the data root.
    let leftovers: Vec<_> = std::fs::read_dir(d.dir.path().join("data"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".import-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
