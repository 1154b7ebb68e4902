//! What the in-process daemon tests share.

use std::future::Future;

/// Runs `test` on a runtime like the daemon's, with the shim zygote turned off: in-process,
/// the engine's berth binary is the test binary itself (`current_exe`), which must never be
/// started as `shim zygote --socket ...` (the test harness would refuse the flags, or worse,
/// take the words for test filters and run the suite again). The variable is set before the
/// runtime's threads exist, so no thread reads the environment while it changes.
pub fn in_process<F: Future>(test: F) -> F::Output {
    std::env::set_var("BERTH_NO_SHIM_ZYGOTE", "1");
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(test)
}
