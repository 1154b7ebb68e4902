//! Giving memory back when the daemon goes idle.
//!
//! A burst of work (`run --rm` × 20, a pull, `logs` of a big container) leaves megabytes of
//! freed buffers in glibc's arenas, which glibc keeps for the next burst. An idle daemon
//! should be small (target: 12 MB RSS), so [`trim_when_idle`] hands free heap pages back to
//! the kernel once requests have stopped for [`QUIET`]: one `malloc_trim` per burst, none
//! while requests keep coming. A trim every [`PERIOD`] covers work that no request starts
//! (container exits, restarts, log rotation).
//!
//! [`track`] is the middleware that counts requests. Streams that stay open (`events`,
//! `logs -f`, attach) count only until their headers are sent: an open `docker events` must
//! not keep the daemon from trimming.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Notify;

/// How long requests must have stopped before the heap is trimmed. Longer than the blocking
/// pool's keep-alive (see `lib.rs`), so that the threads of the burst have exited and given
/// their malloc caches back by then.
pub const QUIET: Duration = Duration::from_secs(3);

/// Trim at least this often, for work no request starts.
pub const PERIOD: Duration = Duration::from_secs(60);

/// Requests in flight and finished, and a wake-up for the trimming task.
pub struct Activity {
    in_flight: AtomicUsize,
    finished: AtomicU64,
    wake: Notify,
}

impl Activity {
    pub const fn new() -> Activity {
        Activity {
            in_flight: AtomicUsize::new(0),
            finished: AtomicU64::new(0),
            wake: Notify::const_new(),
        }
    }

    /// Marks a request as started; it is finished when the guard drops (also when the
    /// connection goes away mid-request).
    pub fn begin(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self)
    }

    /// A count that changes whenever a request finishes.
    fn finished(&self) -> u64 {
        self.finished.load(Ordering::SeqCst)
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

impl Default for Activity {
    fn default() -> Self {
        Activity::new()
    }
}

/// One request in flight (see [`Activity::begin`]).
pub struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.finished.fetch_add(1, Ordering::SeqCst);
        self.0.wake.notify_one();
    }
}

/// The daemon's requests (process-wide, as the heap is).
pub static REQUESTS: Activity = Activity::new();

/// Middleware: counts the request in [`REQUESTS`] until its response head is ready.
pub async fn track(req: Request, next: Next) -> Response {
    let _busy = REQUESTS.begin();
    next.run(req).await
}

/// Runs `trim` once after each burst of requests has been quiet for `quiet`, and at least
/// every `period`. Never returns.
pub async fn trim_when_idle<F, Fut>(activity: &Activity, quiet: Duration, period: Duration, trim: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut trimmed_at = activity.finished();
    loop {
        // A finished request left a permit, or a period went by.
        let woken = tokio::time::timeout(period, activity.wake.notified())
            .await
            .is_ok();
        if woken && activity.finished() == trimmed_at {
            continue; // a permit left by requests of the burst already trimmed
        }
        // Each finished request restarts the quiet time.
        loop {
            let finished = tokio::time::timeout(quiet, activity.wake.notified()).await;
            if finished.is_err() && activity.in_flight() == 0 {
                trimmed_at = activity.finished();
                break;
            }
        }
        trim().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    use super::*;

    const Q: Duration = QUIET;
    const P: Duration = PERIOD;

    async fn advance(d: Duration) {
        tokio::time::sleep(d).await;
    }

    fn start(activity: &'static Activity) -> Arc<AtomicU32> {
        let trims = Arc::new(AtomicU32::new(0));
        let t = trims.clone();
        tokio::spawn(trim_when_idle(activity, Q, P, move || {
            let t = t.clone();
            async move {
                t.fetch_add(1, Ordering::SeqCst);
            }
        }));
        trims
    }

    #[tokio::test(start_paused = true)]
    async fn one_trim_per_burst_after_the_quiet_time() {
        static A: Activity = Activity::new();
        let trims = start(&A);
        advance(Duration::from_millis(10)).await;
        // A burst: 20 requests 50 ms apart.
        for _ in 0..20 {
            drop(A.begin());
            advance(Duration::from_millis(50)).await;
        }
        assert_eq!(trims.load(Ordering::SeqCst), 0, "no trim during a burst");
        advance(Q).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1, "one trim once quiet");
        advance(Q * 3).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1, "no more trims while idle");
        // The next burst gets its own trim.
        drop(A.begin());
        advance(Q + Duration::from_millis(100)).await;
        assert_eq!(trims.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_trim_while_a_request_is_in_flight() {
        static A: Activity = Activity::new();
        let trims = start(&A);
        drop(A.begin());
        let long = A.begin();
        advance(Q * 5).await;
        assert_eq!(
            trims.load(Ordering::SeqCst),
            0,
            "a request is still running"
        );
        drop(long);
        advance(Q + Duration::from_millis(100)).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn trims_every_period_without_requests() {
        static A: Activity = Activity::new();
        let trims = start(&A);
        advance(P + Q + Duration::from_millis(100)).await;
        assert_eq!(trims.load(Ordering::SeqCst), 1);
        advance(P + Q).await;
        assert_eq!(trims.load(Ordering::SeqCst), 2);
    }
}
