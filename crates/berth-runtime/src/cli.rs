//! `berth runtime`: the runc-compatible command line over [`crate::Runtime`].
//!
//! Exit codes: 0 on success, 1 on a runtime error (message on stderr, like runc), and for
//! `run`/`exec` (not detached) the container process's status (128+signal when killed).

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::{ConsoleMode, CreateOptions, Runtime};

const DEFAULT_CONFIG: &str = include_str!("data/default-config.json");

pub(crate) fn default_spec() -> String {
    DEFAULT_CONFIG.to_string()
}

#[derive(Parser, Debug)]
#[command(
    name = "berth runtime",
    about = "berth's OCI runtime (runc-compatible)"
)]
struct Cli {
    /// State directory.
    #[arg(long, global = true, default_value = crate::DEFAULT_ROOT)]
    root: PathBuf,
    /// Accepted for runc compatibility (containerd/docker pass them); ignored.
    #[arg(long, global = true)]
    log: Option<String>,
    #[arg(long = "log-format", global = true)]
    log_format: Option<String>,
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    #[arg(long, global = true)]
    debug: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Write a default config.json (like `runc spec`).
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long)]
        rootless: bool,
    },
    /// Create a container; its process waits for `start`.
    Create {
        id: String,
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
        #[arg(long = "preserve-fds", default_value_t = 0)]
        preserve_fds: u32,
    },
    /// Start a created container.
    Start { id: String },
    /// Create and start; waits and exits with the container's status unless --detach.
    Run {
        id: String,
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long = "no-pivot")]
        no_pivot: bool,
        #[arg(long = "no-new-keyring")]
        no_new_keyring: bool,
    },
    /// Print the OCI state JSON.
    State { id: String },
    /// Send a signal (default SIGTERM).
    Kill {
        id: String,
        signal: Option<String>,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a stopped container (--force: kill it first).
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Pids of the container's processes.
    Ps {
        id: String,
        #[arg(short, long, default_value = "table")]
        format: String,
    },
    /// Run a process inside a running container.
    Exec {
        id: String,
        #[arg(short, long)]
        tty: bool,
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        detach: bool,
        #[arg(long = "pid-file")]
        pid_file: Option<PathBuf>,
        #[arg(long = "console-socket")]
        console_socket: Option<PathBuf>,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long)]
        env: Vec<String>,
        /// uid[:gid]
        #[arg(short, long)]
        user: Option<String>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Freeze every process of the container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
}

/// Entry point of `berth runtime` (argv after `runtime`). Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let argv = std::iter::once("berth runtime".to_string()).chain(args);
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    if cli.systemd_cgroup {
        eprintln!(
            "berth runtime: warning: --systemd-cgroup ignored; berth uses the cgroupfs driver"
        );
    }
    let _ = (&cli.log, &cli.log_format, cli.debug);
    match run_cmd(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth runtime: {e:#}");
            1
        }
    }
}

fn run_cmd(cli: Cli) -> anyhow::Result<i32> {
    let rt = Runtime::new(cli.root);
    match cli.cmd {
        Cmd::Spec { bundle, rootless } => {
            let p = bundle.join("config.json");
            if p.exists() {
                anyhow::bail!("{} already exists; remove it first", p.display());
            }
            let mut s = default_spec();
            if rootless {
                eprintln!("berth runtime: warning: --rootless spec not supported yet; writing the rootful default");
                s = default_spec();
            }
            std::fs::write(&p, s)?;
            Ok(0)
        }
        Cmd::Create {
            id,
            bundle,
            pid_file,
            console_socket,
            preserve_fds,
            ..
        } => {
            if preserve_fds > 0 {
                eprintln!("berth runtime: warning: --preserve-fds is not supported yet; no extra descriptors are passed");
            }
            rt.create(
                &id,
                &bundle,
                CreateOptions {
                    pid_file,
                    console: console_socket.map(ConsoleMode::Socket).unwrap_or_default(),
                    ..Default::default()
                },
            )?;
            Ok(0)
        }
        Cmd::Start { id } => {
            rt.start(&id)?;
            Ok(0)
        }
        Cmd::Run {
            id,
            bundle,
            detach,
            pid_file,
            console_socket,
            ..
        } => {
            let own_tty = console_socket.is_none() && !detach;
            let console = match console_socket {
                Some(s) => ConsoleMode::Socket(s),
                None if own_tty => ConsoleMode::ReturnMaster,
                None => ConsoleMode::None,
            };
            let forward = (!detach).then(block_forwarded_signals);
            let created = rt.create(
                &id,
                &bundle,
                CreateOptions {
                    pid_file,
                    console,
                    ..Default::default()
                },
            )?;
            if let Some(set) = forward {
                forward_signals(set, created.pid, created.console_master.as_ref());
            }
            if let Err(e) = rt.start(&id) {
                let _ = rt.delete(&id, true);
                return Err(e.into());
            }
            if detach {
                return Ok(0);
            }
            let code = wait_with_console(created.pid, created.console_master);
            rt.delete(&id, true)?;
            Ok(code)
        }
        Cmd::State { id } => {
            let st = rt.state(&id)?;
            println!("{}", serde_json::to_string_pretty(&st)?);
            Ok(0)
        }
        Cmd::Kill { id, signal, all } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            rt.kill(&id, sig, all)?;
            Ok(0)
        }
        Cmd::Delete { id, force } => {
            rt.delete(&id, force)?;
            Ok(0)
        }
        Cmd::List { format, quiet } => {
            let all = rt.list()?;
            if quiet {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if format == "json" {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                println!(
                    "{:<20} {:<8} {:<10} {:<40} CREATED",
                    "ID", "PID", "STATUS", "BUNDLE"
                );
                for s in &all {
                    println!(
                        "{:<20} {:<8} {:<10} {:<40} {}",
                        s.id,
                        s.pid,
                        s.status,
                        s.bundle.display(),
                        s.created
                    );
                }
            }
            Ok(0)
        }
        Cmd::Ps { id, format } => {
            let pids = rt.ps(&id)?;
            if format == "json" {
                println!("{}", serde_json::to_string(&pids)?);
            } else {
                println!("PID");
                for p in pids {
                    println!("{p}");
                }
            }
            Ok(0)
        }
        Cmd::Exec {
            id,
            tty,
            process,
            detach,
            pid_file,
            console_socket,
            cwd,
            env,
            user,
            command,
        } => {
            let mut proc: oci_spec::runtime::Process = match process {
                Some(f) => {
                    let data = std::fs::read(&f)
                        .map_err(|e| anyhow::anyhow!("read {}: {e}", f.display()))?;
                    let mut de = serde_json::Deserializer::from_slice(&data);
                    serde_path_to_error::deserialize(&mut de).map_err(|e| {
                        anyhow::anyhow!("invalid process.json: {}: {}", e.path(), e.inner())
                    })?
                }
                None => {
                    if command.is_empty() {
                        anyhow::bail!("exec needs a command: berth runtime exec ID -- CMD...");
                    }
                    let st = rt.state(&id)?;
                    let spec = crate::spec::load(&st.bundle)?;
                    let mut p = spec.process().clone().unwrap_or_default();
                    p.set_args(Some(command.clone()));
                    p.set_terminal(Some(tty));
                    p
                }
            };
            if let Some(c) = cwd {
                proc.set_cwd(c);
            }
            if !env.is_empty() {
                let mut e = proc.env().clone().unwrap_or_default();
                e.extend(env);
                proc.set_env(Some(e));
            }
            if let Some(u) = user {
                let (uid, gid) = u.split_once(':').unwrap_or((&u, "0"));
                let mut us = proc.user().clone();
                us.set_uid(
                    uid.parse()
                        .map_err(|_| anyhow::anyhow!("--user {u}: uid must be numeric"))?,
                );
                us.set_gid(
                    gid.parse()
                        .map_err(|_| anyhow::anyhow!("--user {u}: gid must be numeric"))?,
                );
                proc.set_user(us);
            }
            let terminal = proc.terminal().unwrap_or(false);
            let console = match console_socket {
                Some(s) => ConsoleMode::Socket(s),
                None if terminal => ConsoleMode::ReturnMaster,
                None => ConsoleMode::None,
            };
            let forward = (!detach).then(block_forwarded_signals);
            let created = rt.exec(
                &id,
                &proc,
                CreateOptions {
                    pid_file,
                    console,
                    ..Default::default()
                },
            )?;
            if let Some(set) = forward {
                forward_signals(set, created.pid, created.console_master.as_ref());
            }
            if detach {
                return Ok(0);
            }
            Ok(wait_with_console(created.pid, created.console_master))
        }
        Cmd::Pause { id } => {
            rt.pause(&id)?;
            Ok(0)
        }
        Cmd::Resume { id } => {
            rt.resume(&id)?;
            Ok(0)
        }
    }
}

/// Block the signals `run`/`exec` relay to the container (a thread picks them up with
/// sigwait). The container's process resets its mask before exec, so it is not affected.
fn block_forwarded_signals() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
    ] {
        set.add(s);
    }
    let _ = set.thread_block();
    set
}

/// Relay blocked signals to `pid`. With a terminal, SIGWINCH instead copies our window
/// size to the container's terminal, and the kernel signals its foreground process group.
fn forward_signals(set: nix::sys::signal::SigSet, pid: i32, master: Option<&OwnedFd>) {
    let master = master.and_then(|m| m.try_clone().ok());
    if let Some(m) = &master {
        copy_window_size(m);
    }
    std::thread::spawn(move || loop {
        match set.wait() {
            Ok(nix::sys::signal::Signal::SIGWINCH) if master.is_some() => {
                copy_window_size(master.as_ref().expect("checked"));
            }
            Ok(sig) => {
                let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
            }
            Err(_) => return,
        }
    });
}

fn copy_window_size(master: &OwnedFd) {
    if let Ok(ws) = rustix::termios::tcgetwinsize(std::io::stdin()) {
        let _ = berth_sys::set_window_size(master.as_fd(), ws.ws_row, ws.ws_col);
    }
}

/// `9`, `KILL`, `SIGKILL` → 9.
pub fn parse_signal(s: &str) -> anyhow::Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    let sig: nix::sys::signal::Signal = name
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))?;
    Ok(sig as i32)
}

/// Wait for our child `pid`, copying between our stdio and the console master if any.
fn wait_with_console(pid: i32, master: Option<OwnedFd>) -> i32 {
    let _raw = master.as_ref().and_then(|_| RawMode::enter());
    if let Some(m) = master {
        let input = m.try_clone().ok();
        if let Some(input) = input {
            std::thread::spawn(move || {
                let mut w = std::fs::File::from(input);
                let mut buf = [0u8; 4096];
                let mut stdin = std::io::stdin();
                while let Ok(n) = stdin.read(&mut buf) {
                    if n == 0 {
                        // Our stdin ended: type ^D, as a user would, so a shell on the
                        // container's terminal sees end of input. Repeat it: a ^D that
                        // arrives while the program switches the terminal to raw mode
                        // (line editing) is read as a NUL instead of end of input.
                        for _ in 0..600 {
                            if w.write_all(b"\x04").is_err() {
                                break;
                            }
                            std::thread::sleep(std::time::Duration::from_millis(50));
                        }
                        break;
                    }
                    if w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
        let out = std::thread::spawn(move || {
            let mut r = std::fs::File::from(m);
            let mut buf = [0u8; 4096];
            let mut stdout = std::io::stdout();
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 || stdout.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = stdout.flush();
            }
        });
        let code = wait_code(pid);
        let _ = out.join();
        return code;
    }
    wait_code(pid)
}

fn wait_code(pid: i32) -> i32 {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(WaitStatus::Exited(_, c)) => return c,
            Ok(WaitStatus::Signaled(_, s, _)) => return 128 + s as i32,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return 255,
        }
    }
}

/// Put our terminal in raw mode while a container's terminal is attached; restored on drop.
struct RawMode(nix::sys::termios::Termios);

impl RawMode {
    fn enter() -> Option<RawMode> {
        use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg};
        let stdin = std::io::stdin();
        let orig = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = orig.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode(orig))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = nix::sys::termios::tcsetattr(
            std::io::stdin().as_fd(),
            nix::sys::termios::SetArg::TCSANOW,
            &self.0,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert!(parse_signal("NOPE").is_err());
    }

    #[test]
    fn default_spec_is_valid_oci() {
        let s: oci_spec::runtime::Spec = serde_json::from_str(DEFAULT_CONFIG).unwrap();
        crate::spec::validate(&s, true).unwrap();
    }

    #[test]
    fn runc_global_flags_are_accepted() {
        let c = Cli::try_parse_from([
            "x",
            "--root",
            "/tmp/r",
            "--log",
            "/dev/null",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "kill",
            "abc",
            "KILL",
            "--all",
        ])
        .unwrap();
        assert!(matches!(c.cmd, Cmd::Kill { all: true, .. }));
    }
}
