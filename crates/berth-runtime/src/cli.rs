//! `berth runtime`: the runc-compatible command line.

/// Entry point of `berth runtime` (argv after `runtime`). Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let _ = args;
    eprintln!("berth runtime: not built yet");
    125
}
