//! `berth`: one binary, four faces. `argv[1]` picks the face:
//!
//! - `berth daemon ...`  → the Docker Engine API server (berth-daemon)
//! - `berth runtime ...` → the OCI runtime, runc-compatible CLI (berth-runtime)
//! - `berth shim ...`    → the per-container monitor (berth-shim), started by the daemon
//! - anything else       → the docker-compatible CLI (berth-cli)
//!
//! The runtime and shim faces never start an async runtime: they fork and clone, which must
//! happen in a single-threaded process.

#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("daemon") => berth_daemon::main(args[2..].to_vec()),
        Some("runtime") => berth_runtime::cli::main(args[2..].to_vec()),
        Some("shim") => berth_shim::main(args[2..].to_vec()),
        _ => berth_cli::main(args[1..].to_vec()),
    };
    std::process::exit(code);
}
