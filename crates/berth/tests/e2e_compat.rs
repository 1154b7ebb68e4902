//! E2E, root tier: Docker-compatibility details, checked through the real docker CLI and
//! berth's own CLI side by side: Go-template sub-pipelines and `table` formats, `top` with
//! ps options, `history`, `attach` and detach keys.

mod common;

use std::time::Duration;

use common::{ok, Daemon};

fn setup(test: &str) -> Option<(Daemon, berth_testkit::registry::RegistryGuard, String)> {
    common::docker_setup(test, true)
}

/// The same template through both CLIs gives the same output.
#[test]
fn templates_sub_pipelines_and_table_formats() {
    let Some((d, _reg, img)) = setup("templates_sub_pipelines_and_table_formats") else {
        return;
    };
    let r = d.docker(&[
        "run", "-d", "--name", "tpl", "-l", "a=b", "-l", "c=d", &img, "sleep", "300",
    ]);
    ok(&d, &r);
    let ip = d.docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "tpl"]);
    ok(&d, &ip);
    let ip = ip.stdout.trim().to_string();
    assert!(ip.contains('.'), "container IP: {ip:?}");
    let cases: &[(&str, &str)] = &[
        (
            r#"{{(index .NetworkSettings.Networks "bridge").IPAddress}}"#,
            ip.as_str(),
        ),
        (r#"{{(index .Config.Labels "a")}}"#, "b"),
        (r#"{{(index .Config.Labels "a") | upper}}"#, "B"),
        (
            r#"{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}"#,
            "a=b;c=d;",
        ),
        (
            r#"{{if eq .State.Status "running"}}up{{else}}down{{end}} {{len .Config.Labels}}"#,
            "up 2",
        ),
        (
            r#"{{join (split "x:y" ":") ","}} {{.Name | lower}}"#,
            "x,y /tpl",
        ),
        (r#"{{json .Config.Labels}}"#, r#"{"a":"b","c":"d"}"#),
    ];
    for (tpl, want) in cases {
        let dk = d.docker(&["inspect", "-f", tpl, "tpl"]);
        ok(&d, &dk);
        let bt = d.berth(&["inspect", "-f", tpl, "tpl"]);
        ok(&d, &bt);
        assert_eq!(dk.stdout.trim_end(), *want, "docker {tpl}");
        assert_eq!(bt.stdout, dk.stdout, "berth vs docker for {tpl}");
    }
    // A bad template: docker's message and exit code (64) from both.
    for bad in ["{{nosuch .Name}}", "{{(index .Config.Labels \"a\"}}"] {
        let dk = d.docker(&["inspect", "-f", bad, "tpl"]);
        let bt = d.berth(&["inspect", "-f", bad, "tpl"]);
        assert_eq!(dk.code, 64, "{dk:?}");
        assert_eq!(bt.code, 64, "{bt:?}");
        assert!(
            bt.stderr
                .starts_with("template parsing error: template: :1: "),
            "{bt:?}"
        );
    }
    assert_eq!(
        d.docker(&["inspect", "-f", "{{nosuch}}", "tpl"]).stderr,
        d.berth(&["inspect", "-f", "{{nosuch}}", "tpl"]).stderr
    );
    // `table` formats of list commands: same header and rows.
    for args in [
        &["ps", "--format", "table {{.Names}}\t{{.Image}}\t{{.State}}"][..],
        &["ps", "--format", "{{.Names}} {{.Labels}}"][..],
        &[
            "ps",
            "--format",
            r#"{{.Names}} {{.Label "c"}} [{{.Label "zz"}}]"#,
        ][..],
        &["images", "--format", "table {{.Repository}}\t{{.Tag}}"][..],
        &[
            "images",
            "--format",
            "{{.Repository}} {{.Containers}} {{.VirtualSize}} {{.SharedSize}} {{.UniqueSize}}",
        ][..],
        &["volume", "ls", "--format", "table {{.Name}}"][..],
    ] {
        let dk = d.docker(args);
        ok(&d, &dk);
        let bt = d.berth(args);
        ok(&d, &bt);
        assert_eq!(bt.stdout, dk.stdout, "berth vs docker for {args:?}");
    }
    let st = [
        "stats",
        "--no-stream",
        "--format",
        "table {{.Name}}\t{{.PIDs}}",
    ];
    let (dk, bt) = (d.docker(&st), d.berth(&st));
    ok(&d, &bt);
    assert_eq!(bt.stdout, dk.stdout, "stats table");
    assert_eq!(bt.stdout, "NAME      PIDS\ntpl       1\n");
    for args in [
        &["events", "--format", "{{nosuch}}"][..],
        &["version", "--format", "{{.X"][..],
    ] {
        let (dk, bt) = (d.docker(args), d.berth(args));
        assert_eq!((bt.code, dk.code), (64, 64), "{args:?}: {bt:?} {dk:?}");
        assert_eq!(
            bt.stderr.split(": template").next(),
            dk.stderr.split(": template").next(),
            "{args:?}"
        );
    }
    let t = d.berth(&["ps", "--format", "table {{.Names}}\t{{.State}}"]);
    assert_eq!(t.stdout, "NAMES     STATE\ntpl       running\n", "{t:?}");
    let bad = d.berth(&["ps", "--format", "{{nosuch}}"]);
    let dbad = d.docker(&["ps", "--format", "{{nosuch}}"]);
    assert_eq!((bad.code, dbad.code), (1, 1), "{bad:?} {dbad:?}");
    assert_eq!(bad.stderr, dbad.stderr);
    let _ = d.berth_in(&["rm", "-f", "tpl"], None, Duration::from_secs(30));
}

/// `top CONTAINER [ps OPTIONS]`: the host's ps, only the container's rows.
#[test]
fn top_with_ps_options() {
    let Some((d, _reg, img)) = setup("top_with_ps_options") else {
        return;
    };
    ok(
        &d,
        &d.docker(&["run", "-d", "--name", "toppy", &img, "sleep", "301"]),
    );
    let pid = d.docker(&["inspect", "-f", "{{.State.Pid}}", "toppy"]);
    ok(&d, &pid);
    let pid = pid.stdout.trim().to_string();
    for cli in ["docker", "berth"] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        // Without options: ps -ef columns (the /proc fast path).
        let t = run(&["top", "toppy"]);
        ok(&d, &t);
        let head: Vec<&str> = t
            .stdout
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            head,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"],
            "{cli}: {t:?}"
        );
        // BSD options: ps aux columns, one row: the container's sleep.
        let t = run(&["top", "toppy", "aux"]);
        ok(&d, &t);
        let lines: Vec<&str> = t.stdout.lines().collect();
        assert!(
            lines[0].starts_with("USER")
                && lines[0].contains("%CPU")
                && lines[0].ends_with("COMMAND"),
            "{cli}: {t:?}"
        );
        assert_eq!(lines.len(), 2, "{cli}: only the container's process: {t:?}");
        assert!(
            lines[1].contains(&format!(" {pid} ")) && lines[1].ends_with("sleep 301"),
            "{cli}: {t:?}"
        );
        // Chosen columns.
        let t = run(&["top", "toppy", "-o", "pid,comm"]);
        ok(&d, &t);
        assert_eq!(
            t.stdout
                .lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>()),
            Some(vec![pid.as_str(), "sleep"]),
            "{cli}: {t:?}"
        );
        // Bad options: ps's own complaint as a 500; a renamed PID column is refused.
        let t = run(&["top", "toppy", "--no-such-ps-option"]);
        assert_eq!(t.code, 1, "{cli}: {t:?}");
        assert!(
            t.stderr.contains("Error response from daemon: ps: "),
            "{cli}: {t:?}"
        );
        let t = run(&["top", "toppy", "-o", "comm=PID"]);
        assert_eq!(t.code, 1, "{cli}: {t:?}");
        assert!(
            t.stderr.contains("specifying \"comm=PID\" is not allowed"),
            "{cli}: {t:?}"
        );
    }
    // Unknown and stopped containers: the same errors from both CLIs.
    ok(&d, &d.docker(&["run", "--name", "done", &img, "true"]));
    for args in [["top", "nosuch"], ["top", "done"]] {
        let (dk, bt) = (d.docker(&args), d.berth(&args));
        assert_eq!(dk.code, 1, "{dk:?}");
        assert_eq!(
            (bt.code, bt.stderr.as_str()),
            (dk.code, dk.stderr.as_str()),
            "{args:?}"
        );
    }
    // The same table from both CLIs (stable columns only).
    let args = ["top", "toppy", "-o", "pid,user,comm"];
    let (dk, bt) = (d.docker(&args), d.berth(&args));
    ok(&d, &bt);
    assert_eq!(bt.stdout, dk.stdout, "top table");
    let (s, _, body) = d
        .raw("GET", "/containers/toppy/top?ps_args=-o%20pid,user", None)
        .expect("top reply");
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("top json");
    assert_eq!(v["Titles"], serde_json::json!(["PID", "USER"]));
    assert_eq!(v["Processes"], serde_json::json!([[pid, "root"]]));
    let (s, _, _) = d
        .raw("GET", "/containers/toppy/top?ps_args=-o%20comm%3DPID", None)
        .expect("top reply");
    assert_eq!(s, 400);
    let _ = d.berth_in(&["rm", "-f", "toppy"], None, Duration::from_secs(30));
}

/// busybox plus a layer of our own, with empty-layer steps between (as a Dockerfile build
/// makes them), pushed to the loopback registry as `hist:v1`.
fn push_image_with_history(reg: &berth_testkit::registry::RegistryGuard) -> String {
    use berth_testkit::images::{self, Compression, LayerBuilder, TestImage, TestLayer};
    let base = images::busybox_image().expect("busybox image");
    let mut lb = LayerBuilder::new();
    lb.file("hi", 0o644, &[b'x'; 2500]);
    let mut layers = base.layers.clone();
    layers.push(TestLayer::new(lb.finish(), Compression::Gzip));
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id()).collect();
    let cfg = serde_json::json!({
        "architecture": images::host_arch(), "os": "linux", "created": "2023-11-14T22:13:23Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {"created": "2023-11-14T22:13:20Z", "created_by": "ADD rootfs.tar / # buildkit", "comment": "buildkit.dockerfile.v0"},
            {"created": "2023-11-14T22:13:21Z", "created_by": "ENV A=1", "empty_layer": true},
            {"created": "2023-11-14T22:13:22Z", "created_by": "RUN /bin/sh -c head -c 2500 /dev/zero | tr '\\0' x > /hi # a long command line", "comment": "buildkit.dockerfile.v0"},
            {"created": "2023-11-14T22:13:23Z", "created_by": "CMD [\"sh\"]", "empty_layer": true},
        ],
    });
    let img = TestImage {
        config: serde_json::to_vec(&cfg).expect("config json"),
        layers,
    };
    images::push(&reg.addr, "hist", "v1", &img, images::Format::Docker).expect("push hist:v1");
    format!("{}/hist:v1", reg.addr)
}

/// `history` through the API, the docker CLI and berth's CLI.
#[test]
fn image_history() {
    let Some((d, reg, _img)) = setup("image_history") else {
        return;
    };
    let hist = push_image_with_history(&reg);
    ok(&d, &d.docker(&["pull", "-q", &hist]));
    let id = d.docker(&["inspect", "-f", "{{.Id}}", &hist]);
    ok(&d, &id);
    let id = id.stdout.trim().to_string();
    let path = format!("/images/{hist}/history");
    let (s, _, body) = d.raw("GET", &path, None).expect("history reply");
    assert_eq!(s, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("history json");
    let rows = v.as_array().expect("a list");
    assert_eq!(rows.len(), 4, "{v:#}");
    assert_eq!(rows[0]["Id"], id.as_str());
    assert_eq!(rows[0]["Tags"], serde_json::json!([hist.as_str()]));
    assert_eq!(rows[0]["CreatedBy"], "CMD [\"sh\"]");
    assert_eq!(rows[0]["Size"], 0);
    assert_eq!(rows[0]["Created"], 1_700_000_003);
    assert_eq!(rows[1]["Id"], "<missing>");
    assert_eq!(rows[1]["Size"], 2500);
    assert_eq!(rows[1]["Comment"], "buildkit.dockerfile.v0");
    assert_eq!(
        (rows[2]["Id"].as_str(), rows[2]["Size"].as_i64()),
        (Some("<missing>"), Some(0))
    );
    assert!(
        rows[3]["Size"].as_i64().unwrap_or(0) > 100_000,
        "busybox layer: {v:#}"
    );
    let (s, _, body) = d
        .raw("GET", "/images/nosuch:v9/history", None)
        .expect("reply");
    assert_eq!(s, 404, "{body}");
    assert!(body.contains("No such image: nosuch:v9"), "{body}");

    // Both CLIs print the same table, in every mode.
    for args in [
        vec!["history", hist.as_str()],
        vec!["history", "--no-trunc", hist.as_str()],
        vec!["history", "-q", hist.as_str()],
        vec![
            "history",
            "--format",
            "{{.ID}} {{.Size}}",
            &id["sha256:".len().."sha256:".len() + 12],
        ],
        vec!["history", "-q", "--no-trunc", id.as_str()],
        vec![
            "history",
            "--format",
            "table {{.ID}}\t{{.CreatedBy}}\t{{.Size}}",
            hist.as_str(),
        ],
        vec![
            "history",
            "--format",
            "{{.ID}}|{{.CreatedAt}}|{{.Comment}}",
            hist.as_str(),
        ],
        vec!["image", "history", "--format", "json", hist.as_str()],
    ] {
        let dk = d.docker(&args);
        ok(&d, &dk);
        let bt = d.berth(&args);
        ok(&d, &bt);
        assert_eq!(bt.stdout, dk.stdout, "berth vs docker for {args:?}");
    }
    // `-H=false` (docker's short form of --human) and `--human=false`: raw sizes and dates.
    let dk = d.docker(&["history", "-H=false", &hist]);
    ok(&d, &dk);
    for form in ["-H=false", "--human=false"] {
        let bt = d.berth(&["history", form, &hist]);
        ok(&d, &bt);
        assert_eq!(bt.stdout, dk.stdout, "{form}");
    }
    assert!(dk.stdout.contains(" 2500 "), "{dk:?}");
    let t = d.berth(&["history", &hist]);
    let lines: Vec<&str> = t.stdout.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE")
            && lines[0].contains("CREATED BY")
            && lines[0].ends_with("COMMENT"),
        "{t:?}"
    );
    assert!(
        lines[1].starts_with(&id["sha256:".len().."sha256:".len() + 12]),
        "{t:?}"
    );
    assert!(
        lines[2].starts_with("<missing>") && lines[2].contains("…") && lines[2].contains("2.5kB"),
        "{t:?}"
    );
    let q = d.berth(&["history", "-q", &hist]);
    assert_eq!(
        q.stdout.lines().filter(|l| *l == "<missing>").count(),
        3,
        "{q:?}"
    );
    let nf = d.berth(&["history", "nosuch:v9"]);
    assert_eq!(nf.code, 1);
    assert_eq!(nf.stderr, d.docker(&["history", "nosuch:v9"]).stderr);

    // An imported image: one step, with the import's comment.
    let tar = berth_testkit::images::LayerBuilder::new().finish();
    let imp = d.docker_in(
        &["import", "-", "imported:v1"],
        Some(&tar),
        Duration::from_secs(60),
    );
    ok(&d, &imp);
    let h = d.berth(&[
        "history",
        "--format",
        "{{.ID}} {{.Size}} {{.Comment}}",
        "imported:v1",
    ]);
    ok(&d, &h);
    assert_eq!(h.stdout.lines().count(), 1, "{h:?}");
    assert!(h.stdout.ends_with(" 0B Imported from -\n"), "{h:?}");
}

/// A command run under `script` (a real pty, as a user's terminal), fed keystrokes by the
/// test; killed by its PID on drop.
struct Pty {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    out: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    fn start(cmd: &str, envs: &[(&str, &str)]) -> Pty {
        use std::process::{Command, Stdio};
        let mut c = Command::new("script");
        c.args(["-qfec", cmd, "/dev/null"])
            .env("TERM", "xterm")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in envs {
            c.env(k, v);
        }
        let mut child = c.spawn().expect("spawn script");
        let stdin = child.stdin.take();
        let out = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        for mut r in [
            Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().expect("stderr")),
        ] {
            let out = out.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    out.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
        Pty { child, stdin, out }
    }

    fn output(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    #[track_caller]
    fn expect(&self, needle: &str) {
        let found = common::eventually(Duration::from_secs(20), || self.output().contains(needle));
        assert!(
            found,
            "{needle:?} never appeared; output:\n{}",
            self.output()
        );
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let s = self.stdin.as_mut().expect("stdin");
        s.write_all(bytes).expect("write to the pty");
        s.flush().expect("flush");
    }

    /// The exit code, or None if it did not exit within 20 s.
    fn wait(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // Only the process this test started, by its PID.
            let _ = std::process::Command::new("kill")
                .arg("-9")
                .arg(self.child.id().to_string())
                .status();
            let _ = self.child.wait();
        }
    }
}

/// `run -it` + ctrl-p ctrl-q leaves the container running; `attach` gets back in and
/// detaches again (`read escape sequence`, exit 1), `--detach-keys` changes the keys, `exec
/// -it` detaches the same way, and `exit` in an attached shell ends attach with the
/// container's code. Through the real docker CLI and berth's CLI, each under a real pty.
#[test]
fn attach_and_detach_keys_under_a_pty() {
    let Some((d, _reg, img)) = setup("attach_and_detach_keys_under_a_pty") else {
        return;
    };
    let cfg = tempfile::tempdir().expect("docker config dir");
    let cfg_path = cfg.path().display().to_string();
    let envs = [
        ("DOCKER_HOST", d.host.as_str()),
        ("BERTH_HOST", d.host.as_str()),
        ("DOCKER_CONFIG", cfg_path.as_str()),
    ];
    for (cli, name) in [(common::DOCKER, "det-docker"), (common::BERTH, "det-berth")] {
        let running = || {
            let r = d.docker(&["inspect", "-f", "{{.State.Running}}", name]);
            r.stdout.trim() == "true"
        };
        let mut p = Pty::start(&format!("{cli} run -it --name {name} {img} sh"), &envs);
        p.expect("# ");
        p.send(b"echo ready-$((40+2))\r");
        p.expect("ready-42");
        p.send(b"\x10\x11");
        assert_eq!(
            p.wait(),
            Some(0),
            "{cli} run -it: detach exits 0:\n{}",
            p.output()
        );
        assert!(!p.output().contains("escape"), "{}", p.output());
        assert!(
            running(),
            "{cli}: the container keeps running after a detach"
        );

        let mut p = Pty::start(&format!("{cli} attach {name}"), &envs);
        std::thread::sleep(Duration::from_millis(300));
        p.send(b"echo again-$((2+2))\r");
        p.expect("again-4");
        p.send(b"\x10\x11");
        assert_eq!(p.wait(), Some(1), "{cli} attach: detach:\n{}", p.output());
        p.expect("read escape sequence");
        assert!(running(), "{cli}: running after detaching from attach");

        let mut p = Pty::start(
            &format!("{cli} attach --detach-keys ctrl-x,x {name}"),
            &envs,
        );
        std::thread::sleep(Duration::from_millis(300));
        // The default keys are plain input now.
        p.send(b"\x10\x11echo three-$((1+2))\r");
        p.expect("three-3");
        p.send(b"\x18x");
        assert_eq!(
            p.wait(),
            Some(1),
            "{cli} attach --detach-keys:\n{}",
            p.output()
        );
        assert!(running(), "{cli}: running after custom detach keys");

        let mut p = Pty::start(&format!("{cli} exec -it {name} sh"), &envs);
        p.expect("# ");
        p.send(b"echo four-$((2+2))\r");
        p.expect("four-4");
        p.send(b"\x10\x11");
        assert_eq!(p.wait(), Some(1), "{cli} exec -it detach:\n{}", p.output());
        p.expect("read escape sequence");
        assert!(running(), "{cli}: running after detaching from exec");

        let mut p = Pty::start(&format!("{cli} attach {name}"), &envs);
        std::thread::sleep(Duration::from_millis(300));
        p.send(b"exit 7\r");
        assert_eq!(
            p.wait(),
            Some(7),
            "{cli} attach: exit code:\n{}",
            p.output()
        );
        assert!(
            common::eventually(Duration::from_secs(10), || !running()),
            "{cli}: the container ended with its shell"
        );
        // Attaching to a stopped container is refused as docker does.
        let r = if cli == common::DOCKER {
            d.docker(&["attach", name])
        } else {
            d.berth(&["attach", name])
        };
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stderr
                .contains("cannot attach to a stopped container, start it first"),
            "{r:?}"
        );
        // `start -ai` attaches to the new run, and detaching leaves it running (exit 0).
        let mut p = Pty::start(&format!("{cli} start -ai {name}"), &envs);
        std::thread::sleep(Duration::from_millis(300));
        p.send(b"echo six-$((3+3))\r");
        p.expect("six-6");
        p.send(b"\x10\x11");
        assert_eq!(p.wait(), Some(0), "{cli} start -ai detach:\n{}", p.output());
        assert!(running(), "{cli}: running after detaching from start -ai");
    }
    let (dk, bt) = (
        d.docker(&["attach", "nosuch"]),
        d.berth(&["attach", "nosuch"]),
    );
    assert_eq!(
        (bt.code, bt.stderr.as_str()),
        (dk.code, dk.stderr.as_str()),
        "attach nosuch"
    );
    // `detachKeys` in the docker CLI's config.json is the default for both CLIs.
    std::fs::write(
        cfg.path().join("config.json"),
        r#"{"auths":{},"detachKeys":"ctrl-e,e"}"#,
    )
    .expect("config.json");
    for (cli, name) in [(common::DOCKER, "cfg-docker"), (common::BERTH, "cfg-berth")] {
        let mut p = Pty::start(&format!("{cli} run -it --name {name} {img} sh"), &envs);
        p.expect("# ");
        p.send(b"echo five-$((2+3))\r");
        p.expect("five-5");
        p.send(b"\x05e");
        assert_eq!(
            p.wait(),
            Some(0),
            "{cli}: config detachKeys:\n{}",
            p.output()
        );
        let r = d.docker(&["inspect", "-f", "{{.State.Running}}", name]);
        assert_eq!(r.stdout.trim(), "true", "{cli}");
    }
}

/// `-t` without `-i`: the docker CLI half-closes at once (it has no stdin to send); the
/// session must go on until the output ends (only a stdin session ends on the client's EOF).
#[test]
fn tty_without_stdin_keeps_the_output() {
    let Some((d, _reg, img)) = setup("tty_without_stdin_keeps_the_output") else {
        return;
    };
    for cli in [common::DOCKER, common::BERTH] {
        let run = |args: &[&str]| {
            if cli == common::DOCKER {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        let r = run(&[
            "run",
            "--rm",
            "-t",
            &img,
            "sh",
            "-c",
            "sleep 0.3; echo late-t",
        ]);
        ok(&d, &r);
        assert!(r.stdout.contains("late-t"), "{cli}: {r:?}");
    }
    ok(
        &d,
        &d.docker(&["run", "-d", "--name", "tt", &img, "sleep", "300"]),
    );
    for cli in [common::DOCKER, common::BERTH] {
        let args = ["exec", "-t", "tt", "sh", "-c", "sleep 0.3; echo exec-late"];
        let r = if cli == common::DOCKER {
            d.docker(&args)
        } else {
            d.berth(&args)
        };
        ok(&d, &r);
        assert!(r.stdout.contains("exec-late"), "{cli}: {r:?}");
    }
}

/// Without a TTY the daemon finds the detach keys in the stdin bytes and ends the session,
/// leaving the container (and its stdin) alone; bad keys are a 400.
#[test]
fn daemon_detach_keys_without_a_tty() {
    use std::io::{Read, Write};
    let Some((d, _reg, img)) = setup("daemon_detach_keys_without_a_tty") else {
        return;
    };
    ok(
        &d,
        &d.docker(&["run", "-d", "-i", "--name", "cat", &img, "cat"]),
    );
    let attach = |query: &str| {
        let mut s = std::os::unix::net::UnixStream::connect(&d.sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        write!(
            s,
            "POST /containers/cat/attach?stream=1&stdin=1&stdout=1&stderr=1{query} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut b).unwrap_or(0) == 0 {
                break;
            }
            head.push(b[0]);
        }
        (s, String::from_utf8_lossy(&head).into_owned())
    };
    let read_until_eof = |s: &mut std::os::unix::net::UnixStream| {
        let mut all = Vec::new();
        let t = std::time::Instant::now();
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => return (all, true),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(_) => return (all, false),
            }
            if t.elapsed() > Duration::from_secs(10) {
                return (all, false);
            }
        }
    };
    // A second stdin attacher stays for the whole test: berth's shim closes a non-TTY
    // container's stdin when its last stdin attacher goes, even without StdinOnce (dockerd
    // keeps it open then), so this checks the detach itself, not that shim rule.
    let (mut keeper, head) = attach("");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for (query, keys) in [("", &b"\x10\x11"[..]), ("&detachKeys=ctrl-a,z", b"\x01z")] {
        let (mut s, head) = attach(query);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        s.write_all(b"one\n").unwrap();
        let mut frame = [0u8; 12];
        s.read_exact(&mut frame).unwrap();
        assert_eq!(&frame[8..], b"one\n");
        s.write_all(keys).unwrap();
        let (rest, eof) = read_until_eof(&mut s);
        assert!(eof, "the daemon ends the session on {keys:?}; got {rest:?}");
        let r = d.docker(&["inspect", "-f", "{{.State.Running}}", "cat"]);
        assert_eq!(
            r.stdout.trim(),
            "true",
            "cat keeps running (its stdin open)"
        );
    }
    // The stdin is still open and the keys were not sent: a new attach echoes only this.
    let (mut s, _) = attach("");
    s.write_all(b"two\n").unwrap();
    let mut frame = [0u8; 12];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(&frame[8..], b"two\n");
    drop(s);
    // Everything cat printed, as the keeper saw it: no detach key bytes reached cat.
    let mut seen = Vec::new();
    while !seen.ends_with(b"two\n") {
        let mut h = [0u8; 8];
        keeper.read_exact(&mut h).expect("keeper frame header");
        let n = u32::from_be_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let mut p = vec![0u8; n];
        keeper.read_exact(&mut p).expect("keeper frame");
        seen.extend_from_slice(&p);
    }
    assert_eq!(String::from_utf8_lossy(&seen), "one\none\ntwo\n");
    let (_, head) = attach("&detachKeys=ctrl-1");
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    let (s, _, body) = d
        .raw(
            "POST",
            "/containers/cat/exec",
            Some(r#"{"Cmd":["true"],"AttachStdin":true,"DetachKeys":"bogus"}"#),
        )
        .expect("exec create");
    assert_eq!(s, 400, "{body}");
    assert!(
        body.contains("Invalid escape keys (bogus) provided"),
        "{body}"
    );
    let (s, _, body) = d
        .raw(
            "POST",
            "/containers/cat/exec",
            Some(r#"{"Cmd":["true"],"DetachKeys":"ctrl-x"}"#),
        )
        .expect("exec create");
    assert_eq!(s, 201, "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (_, _, body) = d
        .raw(
            "GET",
            &format!("/exec/{}/json", id["Id"].as_str().unwrap()),
            None,
        )
        .expect("exec inspect");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["DetachKeys"], "ctrl-x");
    // An exec's own DetachKeys end its hijacked session the same way.
    let (st, _, body) = d
        .raw(
            "POST",
            "/containers/cat/exec",
            Some(r#"{"Cmd":["cat"],"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-x"}"#),
        )
        .expect("exec create");
    assert_eq!(st, 201, "{body}");
    let id: serde_json::Value = serde_json::from_str(&body).unwrap();
    let start = r#"{"Detach":false,"Tty":false}"#;
    let mut s = std::os::unix::net::UnixStream::connect(&d.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "POST /exec/{}/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: {}\r\n\r\n{start}",
        id["Id"].as_str().unwrap(),
        start.len()
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    s.write_all(b"ex\n").unwrap();
    let mut frame = [0u8; 11];
    s.read_exact(&mut frame).unwrap();
    assert_eq!(&frame[8..], b"ex\n");
    s.write_all(b"\x18").unwrap();
    let (rest, eof) = read_until_eof(&mut s);
    assert!(eof, "the exec session ends on its DetachKeys; got {rest:?}");
}
