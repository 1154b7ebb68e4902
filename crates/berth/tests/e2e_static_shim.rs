//! E2E, root tier: the static `berth-shim` that scripts/build-static-shim.sh makes (glibc,
//! linked by lld with its steady state's symbols side by side; what bench/run.sh measures).
//! The daemon runs from a copy of berth with that shim beside it: containers run, log, take an
//! exec and a tty, get OOM-killed and stopped, all through the static zygote and its shims.
//!
//! scripts/test.sh builds the static shim first. Run alone without it, the test says so and
//! passes without checking anything.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, ok, registry, Daemon, BERTH};

fn static_shim() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/static");
    ["x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl"]
        .iter()
        .map(|t| root.join(t).join("release/berth-shim"))
        .find(|p| p.is_file())
}

fn exe_of(pid: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default()
}

fn children(pid: u32) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-P", &pid.to_string()])
        .output()
        .expect("pgrep");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn kb(pid: &str, key: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .map(|l| l.trim_start_matches(key).trim().to_string())
        .unwrap_or_default()
}

#[test]
fn containers_run_under_the_static_shim() {
    if !berth_testkit::require_root("containers_run_under_the_static_shim") {
        return;
    }
    let Some(shim) = static_shim() else {
        eprintln!("skipped: no static berth-shim (run scripts/build-static-shim.sh)");
        return;
    };
    // berth and the static shim side by side: the engine takes the shim beside its own binary
    // when both report the same build id (built from the same sources).
    let bin = tempfile::Builder::new()
        .prefix("berth-static-")
        .tempdir()
        .expect("tempdir");
    std::fs::copy(BERTH, bin.path().join("berth")).expect("copy berth");
    std::fs::copy(&shim, bin.path().join("berth-shim")).expect("copy the static shim");
    let (_reg, img) = registry();
    let d = Daemon::start_from(&bin.path().join("berth"));
    ok(&d, &d.berth(&["pull", &img]));

    let hello = d.berth(&["run", "--rm", &img, "echo", "hello"]);
    ok(&d, &hello);
    assert_eq!(hello.stdout, "hello\n");

    // The zygote and the shims it forks are the static binary (else the build ids differed
    // and the engine fell back to `berth shim`: the static shim is stale).
    let zygotes = children(d.pid());
    let zygote = zygotes
        .iter()
        .find(|p| exe_of(p).ends_with("berth-shim"))
        .unwrap_or_else(|| {
            panic!(
                "no static shim zygote among the daemon's children {zygotes:?} ({:?}): \
                 is {} stale? rerun scripts/build-static-shim.sh",
                zygotes.iter().map(|p| exe_of(p)).collect::<Vec<_>>(),
                shim.display()
            )
        })
        .clone();

    let script = "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.05; done";
    ok(
        &d,
        &d.berth(&["run", "-d", "--name", "logger", &img, "sh", "-c", script]),
    );
    let shims = children(zygote.parse().expect("zygote pid"));
    assert_eq!(shims.len(), 1, "one shim forked by the zygote: {shims:?}");
    assert_eq!(exe_of(&shims[0]), bin.path().join("berth-shim"));
    assert!(
        eventually(Duration::from_secs(10), || d
            .berth(&["logs", "logger"])
            .stdout
            .contains("line 20\n")),
        "the static shim's log writer: {:?}",
        d.berth(&["logs", "logger"])
    );
    let logs = d.berth(&["logs", "-t", "logger"]);
    let first = logs.stdout.lines().next().unwrap_or_default().to_string();
    // `logs -t` prints the json-file entry's time as the hand-written formatter made it.
    assert!(
        first.len() > 31 && first.as_bytes()[10] == b'T' && first.ends_with(" line 0"),
        "{first:?}"
    );
    let exec = d.berth(&["exec", "logger", "cat", "/etc/hostname"]);
    ok(&d, &exec);
    assert_eq!(exec.stdout.trim().len(), 12, "{exec:?}");
    let tty = d.berth(&["run", "--rm", "-t", &img, "tty"]);
    ok(&d, &tty);
    assert!(tty.stdout.starts_with("/dev/pts/"), "{tty:?}");

    common::assert_memory_hog_is_oom_killed(&d, &img);

    // Idle for 2 s: the shim has dropped its start-up code (its size is for the record only;
    // bench/run.sh measures it).
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "  idle static shim: VmRSS {}, RssFile {}; zygote VmRSS {}",
        kb(&shims[0], "VmRSS:"),
        kb(&shims[0], "RssFile:"),
        kb(&zygote, "VmRSS:")
    );
    // Code dropped from the page tables faults back in: the shim still serves requests.
    ok(&d, &d.berth(&["stop", "-t", "1", "logger"]));
    let st = d.berth(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.ExitCode}}",
        "logger",
    ]);
    assert_eq!(st.stdout.trim(), "exited 137", "{st:?}");
    let after = d.berth(&["logs", "--tail", "1", "logger"]);
    assert!(after.stdout.starts_with("line "), "{after:?}");
    ok(&d, &d.berth(&["rm", "-f", "logger", "hog"]));
}
