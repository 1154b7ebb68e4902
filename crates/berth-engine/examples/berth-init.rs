//! A standalone `berth-init` (the `--init` PID 1), for tests and for hosts where the
//! `berth` binary is not statically linked: build it with
//! `RUSTFLAGS=-Ctarget-feature=+crt-static cargo build --release -p berth-engine --example berth-init`
//! and point `EngineConfig::init_binary` at it.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(berth_engine::init::main(args));
}
