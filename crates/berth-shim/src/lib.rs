#![forbid(unsafe_code)]

/// Entry point of `berth shim` (argv after the face name). Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let _ = args;
    eprintln!("berth shim: not built yet");
    125
}
