//! `berth runtime` without the rest of berth: `cargo run -p berth-runtime --example runtime-cli -- ARGS`.
fn main() {
    std::process::exit(berth_runtime::cli::main(std::env::args().skip(1).collect()));
}
