//! Phase timings of a runtime operation: kept for the caller (`Created::phases`, which the
//! shim hands to the engine's start timeline) and printed on stderr when
//! `BERTH_RUNTIME_TIMING=1`, to see where start-up time goes.

use std::cell::RefCell;
use std::time::{Duration, Instant};

pub(crate) struct Timer {
    name: &'static str,
    start: Instant,
    on: bool,
    marks: RefCell<Vec<(&'static str, Duration)>>,
}

impl Timer {
    pub fn new(name: &'static str) -> Timer {
        Timer {
            name,
            start: Instant::now(),
            on: std::env::var_os("BERTH_RUNTIME_TIMING").is_some(),
            marks: RefCell::new(Vec::new()),
        }
    }

    /// The end of a step named `what`, measured from the start of the operation.
    pub fn mark(&self, what: &'static str) {
        let at = self.start.elapsed();
        self.marks.borrow_mut().push((what, at));
        if self.on {
            eprintln!(
                "berth runtime: {} +{:.3} ms {what}",
                self.name,
                at.as_secs_f64() * 1000.0
            );
        }
    }

    /// The marks as contiguous steps: (name, duration in microseconds).
    pub fn steps(&self) -> Vec<(String, u64)> {
        let mut last = Duration::ZERO;
        self.marks
            .borrow()
            .iter()
            .map(|(what, at)| {
                let d = at.saturating_sub(last);
                last = *at;
                (what.to_string(), d.as_micros() as u64)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn steps_are_contiguous() {
        let t = super::Timer::new("test");
        t.mark("a");
        std::thread::sleep(std::time::Duration::from_millis(2));
        t.mark("b");
        let s = t.steps();
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].0, "b");
        assert!(s[1].1 >= 2000, "{s:?}");
        let total: u64 = s.iter().map(|x| x.1).sum();
        assert!(total as u128 <= t.start.elapsed().as_micros());
    }
}
