//! # berth-cli: the docker-compatible command line
//!
//! `berth run --rm busybox echo hello` does what `docker run` does, through the same API
//! calls in the same order (create → pull on 404 → create; attach; wait; start; exit with
//! the container's code). Tables are Go-tabwriter shaped; exit codes follow Docker: 125 for
//! daemon or usage errors, 126 when the command cannot be executed, 127 when it is not found,
//! otherwise the container's own code for `run` and `start -a`.

#![forbid(unsafe_code)]

pub mod app;
pub mod cmd;
pub mod credentials;
pub mod detach;
pub mod listfmt;
pub mod table;
pub mod template;
pub mod tty;
pub mod units;

use berth_client::{Client, ClientError};
use clap::Parser;

/// A command's failure: what to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Failure {
            code: 1,
            message: e.to_string(),
        }
    }
}

/// A command's result: the exit code.
pub type CmdResult = Result<i32, Failure>;

/// Entry point of `berth cli` (argv after the face name). Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    cmd::explain::mark_client_start();
    quiet_broken_stdout();
    let args = cmd::history::human_short_flag(args);
    let argv = std::iter::once("berth".to_string()).chain(args);
    let cli = match app::Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let client = match Client::from_host(cli.host.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 125;
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    let code = match rt.block_on(cmd::dispatch(client, cli.command)) {
        Ok(code) => code,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("{}", f.message);
            }
            f.code
        }
    };
    // Do not wait for a blocking stdin read (import/load) that may never return.
    rt.shutdown_background();
    code
}

/// `berth ps -q | head -1`: when the reader of stdout goes away, exit quietly with 141 (what a
/// shell reports for SIGPIPE), as the docker CLI does, instead of a panic. Rust ignores SIGPIPE
/// and `println!` panics on EPIPE; restoring SIGPIPE's default would also kill the CLI on a
/// write to the daemon's socket, where an error message is wanted. So only the panic `print!`
/// raises for a broken stdout/stderr is turned into the quiet exit; every other panic keeps the
/// default report.
fn quiet_broken_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}
