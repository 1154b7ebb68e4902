//! E2E, root tier: issue 4's scenario through berth's own CLI (`berth -H`/`BERTH_HOST`).

mod common;

use std::time::Duration;

use common::{berth_setup, ok, Daemon};

#[test]
fn berth_cli_daemon_not_running_says_how_to_start_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = std::process::Command::new(common::BERTH);
    c.args([
        "-H",
        &format!("unix://{}/none.sock", dir.path().display()),
        "ps",
    ]);
    let r = common::run_cmd(c, None, Duration::from_secs(30));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("cannot connect to the berth daemon at unix://"),
        "{r:?}"
    );
    assert!(r.stderr.contains("start it with `berth daemon`"), "{r:?}");
}

#[test]
fn berth_cli_output_into_a_closed_pipe_exits_quietly() {
    if !berth_testkit::require_root("berth_cli_output_into_a_closed_pipe_exits_quietly") {
        return;
    }
    let d = Daemon::start();
    // The reader (`true`) is gone before berth writes: the write gets EPIPE.
    let mut c = std::process::Command::new("sh");
    c.args([
        "-c",
        &format!(
            "{{ sleep 0.3; {} -H {} ps -a; echo rc=$? >&2; }} | true",
            common::BERTH,
            d.host
        ),
    ]);
    let r = common::run_cmd(c, None, Duration::from_secs(30));
    assert!(!r.stderr.contains("panicked"), "{r:?}");
    assert!(r.stderr.contains("rc=141"), "{r:?}");
}

#[test]
fn berth_cli_scenario() {
    let Some((d, _reg, img)) = berth_setup("berth_cli_scenario", false) else {
        return;
    };
    let v = d.berth_ok(&["version"]);
    assert!(v.contains("Server: berth"), "{v}");
    d.berth_ok(&["info"]);
    let p = d.berth_ok(&["pull", &img]);
    assert_eq!(p.lines().last(), Some(img.as_str()), "{p}");
    let images = d.berth_ok(&["images"]);
    assert!(images.contains(img.trim_end_matches(":latest")), "{images}");
    assert_eq!(
        d.berth_ok(&["run", "--rm", &img, "echo", "hello"]),
        "hello\n"
    );
    assert_eq!(
        d.berth(&["run", "--rm", &img, "sh", "-c", "exit 3"]).code,
        3
    );
    let nf = d.berth(&["run", "--rm", &img, "nosuchcmd"]);
    assert_eq!(nf.code, 127, "{nf:?}");
    let cat = d.berth_in(
        &["run", "-i", "--rm", &img, "cat"],
        Some(b"hi\n"),
        Duration::from_secs(60),
    );
    ok(&d, &cat);
    assert_eq!(cat.stdout, "hi\n");

    let web = d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-m",
        "48m",
        &img,
        "sh",
        "-c",
        "echo started; exec httpd -f -p 80",
    ]);
    ok(&d, &web);
    let id = web.stdout.trim().to_string();
    let ps = d.berth(&["ps"]);
    ok(&d, &ps);
    assert!(
        ps.stdout.starts_with("CONTAINER ID   IMAGE"),
        "{}",
        ps.stdout
    );
    assert!(
        ps.stdout
            .lines()
            .any(|l| l.starts_with(&id[..12]) && l.ends_with(" web")),
        "{}",
        ps.stdout
    );
    assert!(common::eventually(Duration::from_secs(10), || d
        .berth(&["logs", "web"])
        .stdout
        == "started\n"));
    let h = d.berth(&["exec", "web", "cat", "/etc/hostname"]);
    ok(&d, &h);
    assert_eq!(h.stdout.trim(), &id[..12]);
    let cmd = format!("{} exec -it web sh -c 'tty; echo pty-ok'", common::BERTH);
    let envs = [("BERTH_HOST", d.host.as_ref())];
    let t = common::run_in_pty(&cmd, &envs, Duration::from_secs(60));
    assert_eq!(t.code, 0, "{t:?}");
    assert!(
        t.stdout.contains("/dev/pts/") && t.stdout.contains("pty-ok"),
        "{t:?}"
    );
    let s = d.berth(&["stats", "--no-stream", "web"]);
    ok(&d, &s);
    assert!(s.stdout.starts_with("CONTAINER ID   NAME"), "{}", s.stdout);
    assert!(s.stdout.contains(" web "), "{}", s.stdout);
    let pid = d.berth(&["inspect", "-f", "{{.State.Pid}}", "web"]);
    ok(&d, &pid);
    let pid: u32 = pid.stdout.trim().parse().expect("pid");
    assert_ne!(
        std::fs::read_link("/proc/self/ns/pid").expect("ns"),
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).expect("ns")
    );
    let mem = d.berth(&["inspect", "-f", "{{.HostConfig.Memory}}", "web"]);
    assert_eq!(mem.stdout.trim(), (48u64 << 20).to_string(), "{mem:?}");
    ok(&d, &d.berth(&["stop", "-t", "1", "web"]));
    let st = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "web",
    ]);
    assert_eq!(st.stdout.trim(), "exited 137", "{st:?}");
    ok(&d, &d.berth(&["rm", "-f", "web"]));
    assert_eq!(d.berth(&["inspect", "web"]).code, 1);

    common::assert_memory_hog_is_oom_killed(&d, &img);

    ok(&d, &d.berth(&["volume", "create", "keep"]));
    let ls = d.berth(&["volume", "ls"]);
    assert!(
        ls.stdout
            .lines()
            .any(|l| l.starts_with("local") && l.ends_with("keep")),
        "{}",
        ls.stdout
    );
    ok(
        &d,
        &d.berth(&[
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
    let r = d.berth(&["run", "--rm", "-v", "keep:/data", &img, "cat", "/data/f"]);
    assert_eq!(r.stdout, "kept\n", "{r:?}");
    ok(&d, &d.berth(&["volume", "rm", "keep"]));

    let nets = d.berth(&["network", "ls"]);
    ok(&d, &nets);
    assert!(
        nets.stdout
            .starts_with("NETWORK ID     NAME      DRIVER    SCOPE"),
        "{}",
        nets.stdout
    );
    for n in ["bridge", "host", "none"] {
        assert!(
            nets.stdout
                .lines()
                .any(|l| l.split_whitespace().nth(1) == Some(n)),
            "{}",
            nets.stdout
        );
    }
    let net = berth_testkit::unique::name("bnet");
    let subnet = format!("10.252.{}.0/24", 1 + std::process::id() % 250);
    ok(
        &d,
        &d.berth(&["network", "create", "--subnet", &subnet, &net]),
    );
    let sub = d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        &net,
    ]);
    assert_eq!(sub.stdout.trim(), subnet, "{sub:?}");
    ok(&d, &d.berth(&["network", "rm", &net]));
    assert_eq!(d.berth(&["network", "inspect", &net]).code, 1);

    let bad = d.berth(&["rm", "nosuch"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("No such container: nosuch"), "{bad:?}");
    let usage = d.berth(&["run", "--no-such-flag", &img]);
    assert_eq!(usage.code, 125, "{usage:?}");
}
