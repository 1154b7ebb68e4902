//! `berth-shim`: the shim face alone, in a small binary (no HTTP, no async runtime linked),
//! so an idle shim maps and touches far fewer pages than the full `berth` binary. Same
//! arguments as `berth shim`; the launcher re-executes `<this> shim ...`.

#![forbid(unsafe_code)]

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("shim") {
        args.remove(0);
    }
    std::process::exit(berth_shim::main(args));
}
