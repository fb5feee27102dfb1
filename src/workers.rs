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

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

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
    /// Starts `extra` worker threads; the `main` runtime is one more worker, so `extra + 1`
    /// threads serve sessions.
    pub fn start(main: Handle, extra: usize) -> std::io::Result<Self> {
        let mut workers = vec![Worker {
            handle: main,
            live: Arc::default(),
        }];
        let mut threads = Vec::with_capacity(extra);
        for i in 0..extra {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            workers.push(Worker {
                handle: runtime.handle().clone(),
                live: Arc::default(),
            });
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("sluice-worker-{}", i + 1))
                .spawn(move || {
                    // Dropping the runtime after `stopped` cancels what is still running
                    // there, exactly as the main runtime does at exit.
                    let _ = runtime.block_on(stopped);
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
