//! `pow` and `log10`, the only two functions of the C math library the `berth` binary calls
//! (tokio's scheduler statistics and the CLI's human-readable sizes), defined in the binary
//! itself from the `libm` crate (musl's libm, ported to Rust) so that it does not load
//! `libm.so.6` at all.
//!
//! Why: loading glibc's libm runs its IFUNC resolvers for cos, exp, pow, log and the others
//! (it relocates itself at every start), which touches ~0.45 MB of its code that then stays in
//! the long-lived daemon's resident set (the kernel maps 64 KB around each fault), and costs
//! every CLI invocation its loading and relocation. With these two symbols in the executable,
//! the linker's `--as-needed` drops libm from the binary's dependencies.
//!
//! Both are correctly rounded to within 1 ulp like glibc's; the unit tests compare them
//! against Rust's own `f64::powf` and `f64::log10`.

/// C's `double pow(double, double)`.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

/// C's `double log10(double)`.
#[no_mangle]
pub extern "C" fn log10(x: f64) -> f64 {
    libm::log10(x)
}

#[cfg(test)]
mod tests {
    fn close(a: f64, b: f64) -> bool {
        a == b || (a.is_nan() && b.is_nan()) || ((a - b) / b).abs() < 1e-15
    }

    #[test]
    fn agree_with_rust_math() {
        for &(x, y) in &[
            (2.0, 10.0),
            (0.5, 3.5),
            (1024.0, 0.1),
            (0.9, 1e6),
            (-2.0, 3.0),
            (0.0, 0.0),
            (10.0, -3.0),
        ] {
            assert!(close(super::pow(x, y), f64::powf(x, y)), "pow({x}, {y})");
        }
        for &x in &[1.0, 10.0, 1024.0, 1e-9, 123_456_789.0, 0.5] {
            assert!(close(super::log10(x), f64::log10(x)), "log10({x})");
        }
        assert!(super::log10(-1.0).is_nan());
    }
}
