//! Thread-per-core session workers.
//!
//! Each worker is an OS thread driving its own single-threaded tokio runtime; the accept
//! loop hands every new client to the worker with the fewest live sessions, and the
//! session stays on that thread for its whole life. Why not tokio's work-stealing
//! runtime: a relayed query is two socket wake-ups with almost no work in between, and
//! on small machines (the 2-core sidecar case) the multi-thread scheduler's bookkeeping
//! (idle-worker hand-offs, global-queue checks, per-poll statistics) was a measurable
//! part of the added latency. Measured on a 2-core VM with sysbench point-selects at one
//! thread: a bare tokio relay adds ~20 µs per query on a current-thread runtime and ~28 µs
//! on the multi-thread one. The pool, metrics and credentials stay shared (`Arc`), so
//! which worker a session lands on never changes what it sees.
//!
//! Workers have no time driver: their timers are the control runtime's (the caller's,
//! which accepts and runs the pool's upkeep), made through `clock`. That keeps tokio's
//! timer bookkeeping out of each park of a worker, which is once per socket wake-up.
use std::cell::OnceCell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    /// On a worker thread, the runtime whose timer wheel serves it.
    static CONTROL: OnceCell<Handle> = const { OnceCell::new() };
}

/// Calls `f` with the control runtime when this thread is a worker (None elsewhere).
pub(crate) fn with_control<T>(f: impl FnOnce(Option<&Handle>) -> T) -> T {
    CONTROL.with(|control| f(control.get()))
}

/// Makes this thread's timers `control`'s (what a worker thread does first).
pub(crate) fn serve_timers_from(control: Handle) {
    CONTROL.with(|c| {
        let _ = c.set(control);
    });
}

struct Worker {
    handle: Handle,
    live: Arc<AtomicUsize>,
}

/// Where client sessions run. Empty means "on the caller's runtime" (in-process tests and
/// embedders that bring their own runtime).
#[derive(Default)]
pub struct Workers {
    workers: Vec<Worker>,
    threads: Mutex<Vec<(oneshot::Sender<()>, JoinHandle<()>)>>,
}

impl Workers {
    /// Starts `count` worker threads (at least one), whose timers run on `control`, the
    /// runtime that must keep running while they do (the caller's).
    pub fn start(control: Handle, count: usize) -> std::io::Result<Self> {
        let count = count.max(1);
        let mut workers = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for i in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()?;
            workers.push(Worker {
                handle: runtime.handle().clone(),
                live: Arc::default(),
            });
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("sluice-worker-{}", i + 1))
                .spawn({
                    let control = control.clone();
                    move || {
                        serve_timers_from(control);
                        // Dropping the runtime after `stopped` cancels what is still running
                        // there, exactly as the main runtime does at exit.
                        let _ = runtime.block_on(stopped);
                    }
                })?;
            threads.push((stop, thread));
        }
        Ok(Self {
            workers,
            threads: Mutex::new(threads),
        })
    }

    /// Runs a session on the least-loaded worker (the current runtime when there are none).
    pub fn spawn<F>(&self, session: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let Some(worker) = self
            .workers
            .iter()
            .min_by_key(|w| w.live.load(Ordering::Relaxed))
        else {
            tokio::spawn(session);
            return;
        };
        let live = worker.live.clone();
        live.fetch_add(1, Ordering::Relaxed);
        worker.handle.spawn(Counted {
            session,
            _live: LiveGuard(live),
        });
    }

    /// Stops the extra threads, cancelling sessions still on them, and waits for them.
    /// Call outside any runtime (it blocks), after the server has drained.
    pub fn stop(&self) {
        let threads = std::mem::take(&mut *self.threads.lock());
        for (stop, thread) in threads {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// Counts a session as live until it ends, however it ends (also when cancelled).
struct LiveGuard(Arc<AtomicUsize>);

pin_project_lite::pin_project! {
    /// A session with the guard that counts it on its worker. A struct rather than an
    /// `async move { let _live = guard; session.await }` block: such a block keeps the
    /// session's future twice (once captured, once being awaited), which doubled the
    /// memory of every client connection.
    struct Counted<F> {
        #[pin]
        session: F,
        _live: LiveGuard,
    }
}

impl<F: Future<Output = ()>> Future for Counted<F> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.project().session.poll(cx)
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_session_holds_its_future_once_and_counts_until_dropped() {
        let session = async {
            let state = [7u8; 4096];
            tokio::task::yield_now().await;
            assert_eq!(state[0], 7);
        };
        let size = std::mem::size_of_val(&session);
        let live = Arc::new(AtomicUsize::new(1));
        let counted = Counted {
            session,
            _live: LiveGuard(live.clone()),
        };
        assert!(std::mem::size_of_val(&counted) <= size + 16);
        drop(counted);
        assert_eq!(live.load(Ordering::Relaxed), 0);
    }
}
