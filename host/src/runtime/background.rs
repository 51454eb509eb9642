//! Work that runs beside requests and must not slow them down: compiling
//! and starting a new plugin version while clients keep working.
//!
//! Its threads run at a low priority ([`lower_priority`]), and while a
//! server's runs, that server's idle polling pauses ([`BackgroundWork`],
//! `server::idle_poll`): Linux gives a core back from a running thread to a
//! runnable one only at a scheduler tick (4 ms with the common `HZ=250`),
//! unless the runnable one is woken (a thread that was asleep preempts a
//! low-priority one at once). A poller never sleeps: each time it yields, a
//! compiling thread may take its core until the next tick, and a request
//! arriving meanwhile waits that long. With polling paused, the runtime's
//! threads sleep between requests, and a request wakes one at once. Measured
//! with the hot-swap bench (8 connections, ten swaps, each a compile of the
//! SQL plugin, three runs of each build in turn): p99 during the swaps
//! 2.2-2.6 times steady state's with polling through the compiles, 1.4-1.5
//! with polling paused.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The background work of one server: how many pieces of it run now.
/// Clones count together.
#[derive(Clone, Default)]
pub struct BackgroundWork(Arc<AtomicUsize>);

impl BackgroundWork {
    /// Marks a piece of background work as running until the value
    /// returned is dropped, and lowers the calling thread's priority (call
    /// it on the thread that does the work).
    pub fn begin(&self) -> Running {
        lower_priority();
        self.0.fetch_add(1, Ordering::SeqCst);
        Running(self.0.clone())
    }

    /// True while a piece of background work runs.
    pub fn running(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

/// Held while a piece of background work runs.
pub struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Lowers the calling thread's priority (nice 10), for background work
/// (and the threads it hands work to, such as the compiler's). Not the
/// idle class: these threads take wasmtime's registry locks, and a lock
/// holder starved by busy request threads would stall them all.
pub fn lower_priority() {
    // SAFETY: setpriority with PRIO_PROCESS and this thread's id changes
    // only this thread's nice value; a failure leaves it as it was.
    unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, 10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scheduling of the calling thread, as Linux shows it.
    fn own_sched(field: &str) -> Option<u64> {
        let text = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        text.lines()
            .find(|line| line.split_whitespace().next() == Some(field))
            .and_then(|line| line.rsplit(':').next())
            .and_then(|value| value.trim().parse().ok())
    }

    #[test]
    fn background_work_is_seen_while_it_runs_and_lowers_its_thread() {
        let work = BackgroundWork::default();
        let other_server = BackgroundWork::default();
        let seen = std::thread::spawn({
            let work = work.clone();
            move || {
                let before = own_sched("prio");
                let running = work.begin();
                let prio = own_sched("prio");
                (before, prio, running)
            }
        })
        .join()
        .unwrap();
        let (before, prio, running) = seen;
        assert!(work.running(), "background work not seen while it ran");
        assert!(!other_server.running(), "another server's work seen");
        let before = before.expect("the thread's priority");
        assert_eq!(prio, Some((before + 10).min(139)), "nice 10 while working");
        drop(running);
        assert!(!work.running(), "background work still seen once it ended");
    }
}
