//! Timers for code that may run on a session worker.
//!
//! Session workers run tokio without its time driver (see `workers`): with it, every
//! park of a worker's thread (two per relayed query) also read the clock twice, looked
//! through the timer wheel for the next deadline and fired what was due: about 1,150
//! instructions per query of the 12,700 Sluice spent. A session's timers (its idle
//! limits, a handshake's deadline, a write that stalls) are few and rarely fire, so
//! they are registered with the control runtime's timer wheel instead: the one thread
//! that accepts, serves the admin endpoint and runs the pool's upkeep. When a timer
//! fires there, the control thread wakes the session's task on its worker.
//!
//! Every timer in Sluice is made here (clippy's `disallowed-methods` keeps it so): a
//! timer made with tokio's own functions on a worker would panic, as tokio does when a
//! runtime has no time driver. On any other thread (the control runtime, an embedder's
//! runtime, a test's) these are tokio's functions unchanged.
#![allow(clippy::disallowed_methods)]

use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use tokio::time::{Interval, Sleep, Timeout};

use crate::workers;

/// Runs `make` where this thread's timers live.
fn on_timer_wheel<T>(make: impl FnOnce() -> T) -> T {
    workers::with_control(|control| match control {
        Some(handle) => {
            let _timers = handle.enter();
            make()
        }
        None => make(),
    })
}

/// `tokio::time::sleep`, on this thread's timer wheel.
pub fn sleep(duration: Duration) -> Sleep {
    on_timer_wheel(|| tokio::time::sleep(duration))
}

/// `tokio::time::sleep_until`, on this thread's timer wheel.
pub fn sleep_until(deadline: Instant) -> Sleep {
    on_timer_wheel(|| tokio::time::sleep_until(deadline.into()))
}

/// `tokio::time::timeout`, on this thread's timer wheel.
pub fn timeout<F: IntoFuture>(duration: Duration, future: F) -> Timeout<F::IntoFuture> {
    on_timer_wheel(|| tokio::time::timeout(duration, future))
}

/// `tokio::time::timeout_at`, on this thread's timer wheel.
pub fn timeout_at<F: IntoFuture>(deadline: Instant, future: F) -> Timeout<F::IntoFuture> {
    on_timer_wheel(|| tokio::time::timeout_at(deadline.into(), future))
}

/// `tokio::time::interval`, on this thread's timer wheel.
pub fn interval(period: Duration) -> Interval {
    on_timer_wheel(|| tokio::time::interval(period))
}

/// Runs `work` on the control runtime and waits for it there: for clients of other
/// crates (the AWS SDK, hyper) that make tokio timers of their own. None when the
/// control runtime stopped it (it is shutting down) or it panicked. Dropping the wait
/// does not stop `work`: it runs to its own end, which its own timeouts bound.
pub async fn on_control<F>(work: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match workers::with_control(|control| control.cloned()) {
        Some(handle) => handle.spawn(work).await.ok(),
        None => Some(work.await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_without_a_time_driver_sleeps_and_times_out_on_the_control_runtime() {
        let control = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let handle = control.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let driver = std::thread::spawn(move || {
            let _ = control.block_on(stopped);
        });
        let worker = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .unwrap();
        workers::serve_timers_from(handle);
        let (slept, timed_out, ran) = worker.block_on(async {
            let started = Instant::now();
            sleep(Duration::from_millis(20)).await;
            let slept = started.elapsed();
            let never = std::future::pending::<()>();
            let timed_out = timeout(Duration::from_millis(5), never).await.is_err();
            // The work runs where timers are (it makes one with tokio's own function).
            let ran = on_control(async {
                tokio::time::sleep(Duration::from_millis(1)).await;
                7
            })
            .await;
            (slept, timed_out, ran)
        });
        assert!(slept >= Duration::from_millis(20), "slept {slept:?}");
        assert!(timed_out);
        assert_eq!(ran, Some(7));
        let _ = stop.send(());
        driver.join().unwrap();
    }

    #[test]
    fn without_a_control_runtime_timers_are_the_current_runtimes() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let ran = rt.block_on(async {
            sleep(Duration::from_millis(1)).await;
            on_control(async { 3 }).await
        });
        assert_eq!(ran, Some(3));
    }
}
