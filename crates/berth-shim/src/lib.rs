//! # berth-shim: the per-container monitor
//!
//! One small process per container, started by the daemon, that **outlives the daemon**:
//! it holds the container's stdio (pipes, or the PTY master for `-t`), writes the json-file
//! log with rotation, serves attach/exec/resize/kill/wait on a unix socket, reaps the
//! container's processes, and records how the container ended. A restarted daemon re-adopts a
//! running container by connecting to its shim; if the shim is gone, `exit.json` tells the end.
//!
//! Lifecycle:
//! 1. daemon runs `berth shim --id ID --bundle DIR --state-dir DIR --runtime-root DIR
//!    --log-path FILE [--tty] [--stdin]` → prints `{"shim_pid":N,"pid":M}` once the container
//!    is *created* (its init waits before exec) and `STATE-DIR/shim.sock` listens;
//! 2. `START` over the socket → the process execs; `ATTACH`, `EXEC`, `RESIZE`, `KILL`, `WAIT`;
//! 3. on exit: `exit.json` {exit_code, oom_killed, finished_at, pid} (atomic), runtime delete,
//!    `EXIT <code> <oom>` to waiters, streams drained and closed, socket removed.
//!
//! Files in STATE-DIR: `shim.sock`, `shim.json`, `exit.json`, `exec-<id>.json`, `shim.log`
//! (the shim's own stderr). The wire protocol is in [`protocol`]; [`client`] is a sync client.
//!
//! Runtimes ([`backend::Backend`]): berth's runtime in-process (default, [`lib_backend`]);
//! `--runtime /usr/sbin/runc` any runc-compatible binary ([`cli_backend`]); `--runtime process`
//! a host-process test double without isolation ([`process_backend`], tests only).
//!
//! No async runtime, no threads: a `poll(2)` loop ([`server`]) and one signalfd.

#![forbid(unsafe_code)]

pub mod args;
pub mod backend;
pub mod cli_backend;
pub mod client;
mod conn;
mod fdio;
pub mod launch;
pub mod lib_backend;
pub mod logfile;
pub mod process_backend;
pub mod protocol;
pub mod records;
pub mod server;
pub mod zygote;

/// How long a shim or the zygote stays idle after its last one-off work (set-up, a request,
/// a fork) before it drops the page mappings of the code that work ran
/// ([`berth_sys::memory::release_startup_pages`]).
pub(crate) const RELEASE_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// A hash of the sources this shim was built from (see `build.rs`). `berth shim --build-id`
/// and `berth-shim --build-id` print it: the engine uses the small binary only when they match.
pub const BUILD_ID: &str = env!("BERTH_SHIM_BUILD_ID");

/// Entry point of `berth shim` (argv after the face name). Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    if args.len() == 1 && args[0] == "--build-id" {
        println!("{BUILD_ID}");
        return 0;
    }
    if args.first().map(String::as_str) == Some("zygote") {
        return zygote::main(&args[1..]);
    }
    let cfg = match args::Config::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            println!(
                "{}",
                serde_json::to_string(&launch::LaunchReply::Err {
                    error: e,
                    kind: "invalid_argument".into()
                })
                .unwrap_or_default()
            );
            return 1;
        }
    };
    if cfg.detached {
        launch::serve(cfg)
    } else {
        launch::launch(&cfg)
    }
}
