//! E2E, root tier: the real docker CLI (28.2.2, /usr/local/bin/docker) against `berth
//! daemon`, images pulled from a loopback registry. Issue 4's "What it must show".

mod common;

use std::time::{Duration, Instant};

use common::{ok, Daemon};

fn setup(test: &str) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    common::docker_setup(test, false)
}

#[test]
fn docker_version_info_pull_images() {
    let Some((d, _reg, img)) = setup("docker_version_info_pull_images") else {
        return;
    };
    let v = d.docker(&["version"]);
    ok(&d, &v);
    assert!(v.stdout.contains("Server: berth"), "{}", v.stdout);
    assert!(v.stdout.contains("API version:      1.47"), "{}", v.stdout);
    let i = d.docker(&["info"]);
    ok(&d, &i);
    assert!(i.stdout.contains("Server Version:"), "{}", i.stdout);
    assert!(
        i.stdout.contains("Storage Driver: overlay2"),
        "{}",
        i.stdout
    );
    let p = d.docker(&["pull", &img]);
    ok(&d, &p);
    assert!(p.stdout.contains("Status: "), "{}", p.stdout);
    assert_eq!(p.stdout.lines().last(), Some(img.as_str()), "{}", p.stdout);
    let images = d.docker(&["images"]);
    ok(&d, &images);
    let repo = img.trim_end_matches(":latest");
    let header = images.stdout.lines().next().unwrap_or("");
    let cols: Vec<&str> = header
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cols,
        ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"],
        "{}",
        images.stdout
    );
    assert!(
        images
            .stdout
            .lines()
            .any(|l| l.starts_with(repo) && l.contains("latest")),
        "{}",
        images.stdout
    );
    let q = d.docker(&["images", "-q"]);
    ok(&d, &q);
    assert_eq!(q.stdout.trim().len(), 12, "{}", q.stdout);
    // Pulling again says it is up to date.
    let again = d.docker(&["pull", &img]);
    ok(&d, &again);
}

#[test]
fn docker_run_output_exit_codes_and_stdin() {
    let Some((d, _reg, img)) = setup("docker_run_output_exit_codes_and_stdin") else {
        return;
    };
    // No pull first: create → 404 "No such image" → pull → create again.
    let r = d.docker(&["run", "--rm", &img, "echo", "hello"]);
    ok(&d, &r);
    assert_eq!(r.stdout, "hello\n");
    assert!(r.stderr.contains("Unable to find image"), "{}", r.stderr);
    let r = d.docker(&["run", "--rm", &img, "sh", "-c", "exit 3"]);
    assert_eq!(r.code, 3, "{r:?}");
    let r = d.docker(&["run", "--rm", &img, "nosuchcmd"]);
    assert_eq!(r.code, 127, "{r:?}");
    let r = d.docker_in(
        &["run", "-i", "--rm", &img, "cat"],
        Some(b"hi\n"),
        Duration::from_secs(60),
    );
    ok(&d, &r);
    assert_eq!(r.stdout, "hi\n");
    let r = d.docker(&["run", "--rm", &img, "sh", "-c", "echo out; echo err >&2"]);
    ok(&d, &r);
    assert_eq!(r.stdout, "out\n");
    // Daemon warnings (e.g. networking unavailable on this host) may precede it.
    let stderr: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.starts_with("WARNING: "))
        .collect();
    assert_eq!(stderr, ["err"], "{r:?}");
    // --rm removed them all.
    let ps = d.docker(&["ps", "-aq"]);
    ok(&d, &ps);
    assert_eq!(ps.stdout.trim(), "", "{}", ps.stdout);
}

#[test]
fn docker_detached_web_lifecycle() {
    let Some((d, _reg, img)) = setup("docker_detached_web_lifecycle") else {
        return;
    };
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-m",
        "64m",
        &img,
        "sh",
        "-c",
        "echo started; exec httpd -f -p 80",
    ]);
    ok(&d, &r);
    let id = r.stdout.trim().to_string();
    assert_eq!(id.len(), 64, "{r:?}");
    let ps = d.docker(&["ps"]);
    ok(&d, &ps);
    let row = ps
        .stdout
        .lines()
        .find(|l| l.ends_with(" web"))
        .unwrap_or_else(|| panic!("web not in ps:\n{}", ps.stdout));
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("Up "), "{row}");
    assert!(common::eventually(Duration::from_secs(10), || d
        .docker(&["logs", "web"])
        .stdout
        == "started\n"));
    let h = d.docker(&["exec", "web", "cat", "/etc/hostname"]);
    ok(&d, &h);
    assert_eq!(h.stdout.trim(), &id[..12]);
    let e = d.docker(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(e.code, 7, "{e:?}");
    // exec -it with a real PTY, through script(1).
    let cmd = format!("{} exec -it web sh -c 'tty; echo pty-ok'", common::DOCKER);
    let config = d.dir.path().join("docker-config");
    let envs = [
        ("DOCKER_HOST", d.host.as_ref()),
        ("DOCKER_CONFIG", config.as_os_str()),
    ];
    let t = common::run_in_pty(&cmd, &envs, Duration::from_secs(60));
    assert_eq!(t.code, 0, "{t:?}");
    assert!(t.stdout.contains("/dev/pts/"), "{t:?}");
    assert!(t.stdout.contains("pty-ok"), "{t:?}");
    // stats --no-stream
    let s = d.docker(&["stats", "--no-stream", "web"]);
    ok(&d, &s);
    assert!(s.stdout.starts_with("CONTAINER ID   NAME"), "{}", s.stdout);
    assert!(s.stdout.contains(" web "), "{}", s.stdout);
    // inspect: a live PID in its own pid namespace, memory as set.
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    ok(&d, &pid);
    let pid: u32 = pid.stdout.trim().parse().expect("pid");
    assert!(pid > 0);
    let ours = std::fs::read_link("/proc/self/ns/pid").expect("our pid ns");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("container pid ns");
    assert_ne!(ours, theirs);
    let mem = d.docker(&["inspect", "-f", "{{.HostConfig.Memory}}", "web"]);
    ok(&d, &mem);
    assert_eq!(mem.stdout.trim(), (64u64 << 20).to_string());
    // Networking: the container has an address on our bridge and httpd answers on it.
    let ip = d.docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        "web",
    ]);
    ok(&d, &ip);
    let ip: std::net::IpAddr = ip
        .stdout
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no IP address: {ip:?}\n{}", d.log()));
    let addr = std::net::SocketAddr::new(ip, 80);
    assert!(
        common::eventually(Duration::from_secs(10), || {
            std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        }),
        "httpd not reachable at {addr}"
    );
    let full = d.docker(&["inspect", "web"]);
    ok(&d, &full);
    let v: serde_json::Value = serde_json::from_str(&full.stdout).expect("inspect JSON");
    assert_eq!(v[0]["Name"], "/web");
    assert_eq!(v[0]["State"]["Running"], true);
    // stop: SIGTERM is ignored by httpd as PID 1, so SIGKILL after the timeout.
    let t0 = Instant::now();
    let st = d.docker(&["stop", "-t", "2", "web"]);
    ok(&d, &st);
    assert!(
        t0.elapsed() >= Duration::from_millis(1900),
        "stop returned after {:?}",
        t0.elapsed()
    );
    let code = d.docker(&[
        "inspect",
        "-f",
        "{{.State.ExitCode}} {{.State.Running}}",
        "web",
    ]);
    assert_eq!(code.stdout.trim(), "137 false", "{code:?}");
    let again = d.docker(&["stop", "web"]);
    ok(&d, &again);
    let rm = d.docker(&["rm", "-f", "web"]);
    ok(&d, &rm);
    let gone = d.docker(&["inspect", "web"]);
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("No such object: web"), "{gone:?}");
}

#[test]
fn docker_memory_hog_is_oom_killed() {
    let Some((d, _reg, img)) = setup("docker_memory_hog_is_oom_killed") else {
        return;
    };
    ok(&d, &d.docker(&["pull", &img]));
    let r = d.docker(&[
        "run",
        "--name",
        "hog",
        "-m",
        "32m",
        &img,
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/null bs=128M count=1",
    ]);
    assert_eq!(r.code, 137, "{r:?}");
    let oom = d.docker(&["inspect", "-f", "{{.State.OOMKilled}}", "hog"]);
    ok(&d, &oom);
    assert_eq!(oom.stdout.trim(), "true");
}

#[test]
fn docker_named_volume_keeps_data() {
    let Some((d, _reg, img)) = setup("docker_named_volume_keeps_data") else {
        return;
    };
    ok(&d, &d.docker(&["pull", &img]));
    let c = d.docker(&["volume", "create", "keep"]);
    ok(&d, &c);
    assert_eq!(c.stdout.trim(), "keep");
    let ls = d.docker(&["volume", "ls"]);
    ok(&d, &ls);
    assert!(
        ls.stdout
            .lines()
            .any(|l| l.starts_with("local") && l.ends_with("keep")),
        "{}",
        ls.stdout
    );
    ok(
        &d,
        &d.docker(&[
            "run",
            "--rm",
            "-v",
            "keep:/data",
            &img,
            "sh",
            "-c",
            "echo kept > /data/f",
        ]),
    );
    let r = d.docker(&["run", "--rm", "-v", "keep:/data", &img, "cat", "/data/f"]);
    ok(&d, &r);
    assert_eq!(r.stdout, "kept\n");
    let rm = d.docker(&["volume", "rm", "keep"]);
    ok(&d, &rm);
    let missing = d.docker(&["volume", "inspect", "keep"]);
    assert_eq!(missing.code, 1, "{missing:?}");
}

#[test]
fn api_bad_input_gets_docker_status_codes() {
    let Some((d, _reg, img)) = setup("api_bad_input_gets_docker_status_codes") else {
        return;
    };
    let (s, _, b) = d
        .raw("POST", "/v1.47/containers/create", Some("{not json"))
        .expect("reply");
    assert_eq!(s, 400, "{b}");
    assert!(b.contains("\"message\""), "{b}");
    let (s, _, b) = d
        .raw("GET", "/v1.47/containers/nosuch/json", None)
        .expect("reply");
    assert_eq!(
        (s, b.trim()),
        (404, r#"{"message":"No such container: nosuch"}"#)
    );
    let (s, _, b) = d.raw("GET", "/v1.99/version", None).expect("reply");
    assert_eq!(s, 400);
    assert!(
        b.contains("client version 1.99 is too new. Maximum supported API version is 1.47"),
        "{b}"
    );
    let (s, h, _) = d.raw("GET", "/v1.24/_ping", None).expect("reply");
    assert_eq!(s, 200);
    assert!(h.to_lowercase().contains("api-version: 1.47"), "{h}");
    let (s, _, _) = d.raw("GET", "/v1.47/nosuch/endpoint", None).expect("reply");
    assert_eq!(s, 404);
    let (s, _, b) = d
        .raw(
            "POST",
            "/containers/create",
            Some(r#"{"Image":"nosuch:latest"}"#),
        )
        .expect("reply");
    assert_eq!(s, 404, "{b}");
    assert!(b.contains("No such image"), "{b}");
    let (s, _, b) = d
        .raw("GET", "/containers/json?filters=%7Bbroken", None)
        .expect("reply");
    assert_eq!(s, 400, "{b}");
    let (s, _, b) = d
        .raw(
            "POST",
            "/containers/create?name=bad%20name",
            Some(r#"{"Image":"x"}"#),
        )
        .expect("reply");
    assert_eq!(s, 400, "{b}");
    // Name conflicts and removing a running container.
    ok(&d, &d.docker(&["pull", &img]));
    ok(
        &d,
        &d.docker(&["run", "-d", "--name", "busy", &img, "sleep", "60"]),
    );
    let body = format!(r#"{{"Image":"{img}","Cmd":["true"]}}"#);
    let (s, _, b) = d
        .raw("POST", "/containers/create?name=busy", Some(&body))
        .expect("reply");
    assert_eq!(s, 409, "{b}");
    assert!(b.contains("is already in use"), "{b}");
    let (s, _, b) = d.raw("DELETE", "/containers/busy", None).expect("reply");
    assert_eq!(s, 409, "{b}");
    let (s, _, b) = d
        .raw("POST", "/containers/busy/start", None)
        .expect("reply");
    assert_eq!((s, b.as_str()), (304, ""));
    let dup = d.docker(&["run", "-d", "--name", "busy", &img, "true"]);
    assert_eq!(dup.code, 125, "{dup:?}");
    assert!(dup.stderr.contains("Conflict"), "{dup:?}");
    let rm = d.docker(&["rm", "busy"]);
    assert_eq!(rm.code, 1, "{rm:?}");
    let (s, _, b) = d
        .raw("DELETE", "/containers/busy?force=1", None)
        .expect("reply");
    assert_eq!(s, 204, "{b}");
    let (s, _, _) = d.raw("DELETE", "/containers/busy", None).expect("reply");
    assert_eq!(s, 404);
    // The daemon is still alive and well.
    let (s, _, b) = d.raw("GET", "/_ping", None).expect("reply");
    assert_eq!((s, b.as_str()), (200, "OK"));
}

#[test]
fn docker_save_load_tag_push() {
    let Some((d, reg, img)) = setup("docker_save_load_tag_push") else {
        return;
    };
    ok(&d, &d.docker(&["pull", &img]));
    let tar = d.dir.path().join("busybox.tar");
    let tar_s = tar.display().to_string();
    ok(&d, &d.docker(&["save", "-o", &tar_s, &img]));
    assert!(std::fs::metadata(&tar).map(|m| m.len()).unwrap_or(0) > 100_000);
    ok(&d, &d.docker(&["rmi", &img]));
    assert_eq!(d.docker(&["images", "-q"]).stdout.trim(), "");
    let l = d.docker(&["load", "-i", &tar_s]);
    ok(&d, &l);
    assert!(l.stdout.contains("Loaded image"), "{l:?}");
    let r = d.docker(&["run", "--rm", &img, "echo", "loaded"]);
    ok(&d, &r);
    assert_eq!(r.stdout, "loaded\n");
    let pushed = format!("{}/copy:v1", reg.addr);
    ok(&d, &d.docker(&["tag", &img, &pushed]));
    let p = d.docker(&["push", &pushed]);
    ok(&d, &p);
    assert!(p.stdout.contains("digest: sha256:"), "{p:?}");
    ok(&d, &d.docker(&["rmi", &pushed]));
    let back = d.docker(&["pull", &pushed]);
    ok(&d, &back);
}

#[test]
fn docker_networks() {
    let Some((d, _reg, img)) = setup("docker_networks") else {
        return;
    };
    ok(&d, &d.docker(&["pull", &img]));
    let ls = d.docker(&["network", "ls"]);
    ok(&d, &ls);
    for n in ["bridge", "host", "none"] {
        assert!(
            ls.stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(n)),
            "{n} missing:\n{}",
            ls.stdout
        );
    }
    let third = 1 + std::process::id() % 250;
    let subnet = format!("10.251.{third}.0/24");
    let name = berth_testkit::unique::name("net");
    let c = d.docker(&["network", "create", "--subnet", &subnet, &name]);
    ok(&d, &c);
    assert_eq!(c.stdout.trim().len(), 64, "{c:?}");
    let i = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Driver}}",
        &name,
    ]);
    ok(&d, &i);
    assert_eq!(i.stdout.trim(), format!("{subnet} bridge"));
    let r = d.docker(&[
        "run",
        "-d",
        "--name",
        "onnet",
        "--network",
        &name,
        &img,
        "sleep",
        "60",
    ]);
    ok(&d, &r);
    let ip = d.docker(&[
        "inspect",
        "-f",
        &format!("{{{{(index .NetworkSettings.Networks \"{name}\").IPAddress}}}}"),
        "onnet",
    ]);
    ok(&d, &ip);
    assert!(
        ip.stdout.trim().starts_with(&format!("10.251.{third}.")),
        "{ip:?}"
    );
    let members = d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}}{{end}}",
        &name,
    ]);
    assert_eq!(members.stdout.trim(), "onnet", "{members:?}");
    let busy = d.docker(&["network", "rm", &name]);
    assert_ne!(
        busy.code, 0,
        "removing a network in use must fail: {busy:?}"
    );
    ok(&d, &d.docker(&["rm", "-f", "onnet"]));
    ok(&d, &d.docker(&["network", "rm", &name]));
    let gone = d.docker(&["network", "inspect", &name]);
    assert_eq!(gone.code, 1, "{gone:?}");
}
