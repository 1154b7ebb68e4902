//! Phase timings on stderr when `BERTH_RUNTIME_TIMING=1`, to see where start-up time goes.

use std::time::Instant;

pub(crate) struct Timer {
    name: &'static str,
    start: Instant,
    on: bool,
}

impl Timer {
    pub fn new(name: &'static str) -> Timer {
        Timer {
            name,
            start: Instant::now(),
            on: std::env::var_os("BERTH_RUNTIME_TIMING").is_some(),
        }
    }

    pub fn mark(&self, what: &str) {
        if self.on {
            eprintln!(
                "berth runtime: {} +{:.3} ms {what}",
                self.name,
                self.start.elapsed().as_secs_f64() * 1000.0
            );
        }
    }
}
