//! A minimal libtest-compatible runner for `harness = false` test binaries.
//!
//! Some of berth's root-tier test binaries must *also* be berth (the engine re-executes its own
//! executable as `<exe> shim ...`, as the daemon does), so they cannot use libtest's `main`.
//! [`run`] speaks the part of libtest's command line that `cargo test` and `cargo nextest` use:
//! `--list [--format terse] [--ignored]`, `--exact NAME`, substring filters, ignored flags; it
//! runs each selected test under `catch_unwind` and exits non-zero when any failed.

use std::time::Instant;

/// One test: a name and a function that panics on failure.
pub type Test = (&'static str, fn());

/// Run the selected tests from `args` (the full argv) and exit the process.
pub fn run(args: &[String], tests: &[Test]) -> ! {
    let list = args.iter().any(|a| a == "--list");
    let ignored = args.iter().any(|a| a == "--ignored");
    let exact = args.iter().any(|a| a == "--exact");
    let mut filter: Vec<&str> = Vec::new();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            // Flags that take a value.
            "--format" | "--test-threads" | "--color" | "--logfile" | "--skip" | "-Z" => {
                it.next();
            }
            _ if a.starts_with('-') => {}
            _ => filter.push(a),
        }
    }
    let selected = |name: &str| {
        filter.is_empty()
            || filter
                .iter()
                .any(|p| if exact { name == *p } else { name.contains(p) })
    };
    if list {
        if !ignored {
            for (name, _) in tests.iter().filter(|(n, _)| selected(n)) {
                println!("{name}: test");
            }
        }
        std::process::exit(0);
    }
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, f) in tests.iter().filter(|(n, _)| selected(n)) {
        ran += 1;
        let t = Instant::now();
        let r = std::panic::catch_unwind(f);
        let ms = t.elapsed().as_millis();
        match r {
            Ok(()) => println!("test {name} ... ok ({ms} ms)"),
            Err(_) => {
                println!("test {name} ... FAILED ({ms} ms)");
                failed.push(*name);
            }
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    for f in &failed {
        println!("    failed: {f}");
    }
    std::process::exit(if failed.is_empty() { 0 } else { 101 })
}
