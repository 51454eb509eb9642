//! Polling for a short while after each request instead of letting the
//! runtime's threads sleep at once (`[server] idle_poll_us`).
//!
//! A program reading records one at a time sends its next request a few
//! microseconds after its answer arrives. If every thread of vsamrd went to
//! sleep in between, that request would first have to wake one: on a
//! virtual machine an idle vCPU halts, and waking it costs more than the
//! whole request. Measured on a 2-vCPU KVM guest with guest halt polling
//! off: with a low-priority process spinning to keep the vCPUs awake,
//! Redis and vsamrd (without polling) each read about 34,800 random GETs a
//! second at one connection, against 16,000-19,000 without it; polling
//! gives vsamrd 1.7-2.2 times its GETs at one connection (the README's
//! latency section). The same holds for a database's answer awaited in the
//! middle of a request.
//!
//! So while requests come, one task per runtime thread keeps polling: it
//! yields to the runtime (which then looks at the sockets without sleeping
//! and runs whatever became ready) and to the operating system (so that
//! another process that wants the core, a client or PostgreSQL on the same
//! machine, gets it first), until `idle_poll_us` passed without a request
//! arriving or an answer leaving. Then it sleeps until the next request,
//! and the server costs nothing while idle. This is what Seastar's reactor
//! does by default on each of its cores (`--idle-poll-time-us`, 200 us);
//! on a machine whose cores are overcommitted, or a laptop, 0 turns it off.
//!
//! Why one per thread, not one for the server: a single poller found the
//! socket that became ready on its own thread while the runtime's other
//! thread slept. Tokio then had two tasks ready on one thread (the poller,
//! woken again after its yield, and the task the socket woke), so it woke
//! the sleeping thread to take one, and that thread usually ran the
//! request: a futex wake of a halted vCPU twice per PostgreSQL GET (once
//! for the request, once for the database's answer), seen with `perf
//! trace` on vsamrd. With a poller on each thread, no thread sleeps while
//! requests come, and a task runs on the thread that found it. Measured
//! with the latency bench (four runs, this against one poller): 1.06-1.47
//! times the GETs at one connection on the in-memory plugin, 1.11-1.44 on
//! SQLite, 1.60-2.20 on PostgreSQL; at 16 connections within the noise.
//! Never more pollers than cores, though ([`pollers`]).

use crate::runtime::background::BackgroundWork;
use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often a long polling stretch reports its time to the metric: 10 ms.
const ACCOUNT_EVERY_NS: u64 = 10_000_000;

/// How often a poller paused for background work looks whether it ended.
const BACKGROUND_CHECK: Duration = Duration::from_millis(5);

/// The shared state of one server's pollers: how many requests came and
/// answers went, and how many pollers sleep.
pub struct IdlePoll {
    window_ns: u64,
    started: Instant,
    /// Requests and answers so far: a poller polls on for the window
    /// from when it sees this move. A count, not a time, so that a
    /// connection pays no clock read for it.
    activity: AtomicU64,
    /// Pollers asleep, waiting for a request.
    asleep: AtomicUsize,
    wake: Notify,
    /// Seconds spent polling (`vsamrd_idle_poll_seconds_total`).
    polled: Counter<f64, AtomicU64>,
    /// The server's background work, during which polling pauses.
    background: BackgroundWork,
}

impl IdlePoll {
    /// Pollers' state for polling `window` after each request, or `None`
    /// for a window of zero (sleep at once).
    pub fn new(
        window: Duration,
        polled: Counter<f64, AtomicU64>,
        background: BackgroundWork,
    ) -> Option<Arc<Self>> {
        (!window.is_zero()).then(|| {
            Arc::new(Self {
                window_ns: window.as_nanos().min(u128::from(u64::MAX)) as u64,
                started: Instant::now(),
                activity: AtomicU64::new(0),
                asleep: AtomicUsize::new(0),
                wake: Notify::new(),
                polled,
                background,
            })
        })
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// A request arrived or an answer left: poll for the window from now.
    /// An atomic add, and a wake-up only when a poller sleeps.
    pub fn touch(&self) {
        self.activity.fetch_add(1, Ordering::SeqCst);
        if self.asleep.load(Ordering::SeqCst) > 0 {
            self.wake.notify_waiters();
        }
    }

    /// A poller's task, one per runtime thread: runs until the server stops
    /// (which aborts it). One clock read per turn: on a virtual machine that
    /// is not free.
    pub async fn run(self: Arc<Self>) {
        let mut seen = self.activity.load(Ordering::SeqCst);
        loop {
            // Sleep until a request comes (`touch` counts before it looks
            // at the sleepers; this counts itself a sleeper and listens
            // before it looks at the count again, so no request goes
            // unseen). A wake-up with no new request sleeps again instead
            // of starting a window of polling for nothing.
            self.asleep.fetch_add(1, Ordering::SeqCst);
            loop {
                let notified = self.wake.notified();
                let mut notified = std::pin::pin!(notified);
                notified.as_mut().enable();
                if self.activity.load(Ordering::SeqCst) != seen {
                    break;
                }
                notified.await;
            }
            self.asleep.fetch_sub(1, Ordering::SeqCst);
            seen = self.activity.load(Ordering::SeqCst);
            let mut now = self.now_ns();
            let mut accounted = now;
            let mut until = now + self.window_ns;
            while now < until {
                if self.background.running() {
                    break;
                }
                // Another process that wants this core gets it first; then
                // the runtime runs its other tasks and polls the sockets
                // without sleeping before it polls this task again.
                std::thread::yield_now();
                tokio::task::yield_now().await;
                now = self.now_ns();
                let activity = self.activity.load(Ordering::SeqCst);
                if activity != seen {
                    seen = activity;
                    until = now + self.window_ns;
                }
                if now - accounted >= ACCOUNT_EVERY_NS {
                    self.account(accounted, now);
                    accounted = now;
                }
            }
            self.account(accounted, now);
            // A plugin version compiles: let the threads sleep, so that a
            // request wakes one, which takes its core from the compiler at
            // once (a poller yielding to it would wait for the next
            // scheduler tick, see `runtime::background`). Polling resumes
            // with the next request after the work ends.
            while self.background.running() {
                tokio::time::sleep(BACKGROUND_CHECK).await;
            }
        }
    }

    fn account(&self, from: u64, to: u64) {
        self.polled.inc_by(to.saturating_sub(from) as f64 / 1e9);
    }
}

/// How many pollers a server runs: one per runtime thread, but no more
/// than the `cores` it may run on. Threads beyond the cores (a large
/// `TOKIO_WORKER_THREADS`, a runtime shared with other work) cannot all
/// run at once: their pollers would only take turns spinning, each
/// yielding the core to the next, at the cost of the clients and the
/// database on the same machine, and a sleeping thread beyond them is woken
/// as without polling.
pub fn pollers(runtime_threads: usize, cores: usize) -> usize {
    runtime_threads.min(cores.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poller(window: Duration) -> Arc<IdlePoll> {
        IdlePoll::new(window, Counter::default(), BackgroundWork::default()).expect("a window")
    }

    #[tokio::test]
    async fn a_wake_up_without_a_request_starts_no_polling() {
        let poll = poller(Duration::from_millis(1));
        // A stray wake-up, left for the next listener (a `touch` wakes only
        // pollers already listening).
        poll.wake.notify_one();
        let running = tokio::spawn(poll.clone().run());
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(poll.polled.get(), 0.0, "polled with no request");
        // A request then starts a window, which ends.
        poll.touch();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let polled = poll.polled.get();
        assert!(polled >= 0.001, "a request's window was polled: {polled} s");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(poll.polled.get(), polled, "polling ended with its window");
        running.abort();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_wakes_every_poller_and_each_sleeps_after_its_window() {
        let window = Duration::from_millis(20);
        let poll = poller(window);
        let pollers: Vec<_> = (0..2).map(|_| tokio::spawn(poll.clone().run())).collect();
        let both_asleep = || async {
            let started = Instant::now();
            while poll.asleep.load(Ordering::SeqCst) != 2 {
                assert!(started.elapsed() < Duration::from_secs(5), "still polling");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        both_asleep().await;
        poll.touch();
        tokio::time::sleep(window).await;
        both_asleep().await;
        let polled = poll.polled.get();
        assert!(
            polled >= 2.0 * window.as_secs_f64(),
            "each poller polled its window: {polled} s"
        );
        tokio::time::sleep(window).await;
        assert_eq!(poll.polled.get(), polled, "no polling without requests");
        for poller in pollers {
            poller.abort();
        }
    }

    #[tokio::test]
    async fn polling_pauses_while_a_plugin_version_compiles() {
        let poll = poller(Duration::from_millis(20));
        let running = tokio::spawn(poll.clone().run());
        let background = poll.background.clone();
        let compiling = std::thread::spawn(move || background.begin())
            .join()
            .unwrap();
        for _ in 0..5 {
            poll.touch();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(poll.polled.get(), 0.0, "polled while a version compiled");
        drop(compiling);
        // The poller looks every few milliseconds whether the work ended,
        // then polls again from the next request.
        tokio::time::sleep(BACKGROUND_CHECK * 3).await;
        poll.touch();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let polled = poll.polled.get();
        assert!(
            polled >= 0.02,
            "a request after the work was polled: {polled} s"
        );
        running.abort();
    }
}
