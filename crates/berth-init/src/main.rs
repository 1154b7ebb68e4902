//! `berth-init -- CMD ARGS...`: see the library docs.

#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(berth_init::main(args));
}
