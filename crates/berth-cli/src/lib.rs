#![forbid(unsafe_code)]

/// Entry point of `berth cli` (argv after the face name). Returns the process exit code.
pub fn main(args: Vec<String>) -> i32 {
    let _ = args;
    eprintln!("berth cli: not built yet");
    125
}
