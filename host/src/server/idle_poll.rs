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
//! So one task keeps polling while requests come: it yields to the runtime
//! (which then looks at the sockets without sleeping and runs whatever
//! became ready) and to the operating system (so that another process that
//! wants the core, a client or PostgreSQL on the same machine, gets it
//! first), until `idle_poll_us` passed without a request arriving or an
//! answer leaving. Then it sleeps until the next request, and the server
//! costs nothing while idle. This is what Seastar's reactor does by default
//! (`--idle-poll-time-us`, 200 us); on a machine whose cores are
//! overcommitted, or a laptop, 0 turns it off.

use prometheus_client::metrics::counter::Counter;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// How often a long polling stretch reports its time to the metric: 10 ms.
const ACCOUNT_EVERY_NS: u64 = 10_000_000;

/// The shared state of one server's poller: when a request last came or
/// went, and whether the poller sleeps.
pub struct IdlePoll {
    window_ns: u64,
    started: Instant,
    /// Nanoseconds after `started` of the last request or answer.
    last_activity: AtomicU64,
    asleep: AtomicBool,
    wake: Notify,
    /// Seconds spent polling (`vsamrd_idle_poll_seconds_total`).
    polled: Counter<f64, AtomicU64>,
}

impl IdlePoll {
    /// A poller that keeps polling for `window` after each request, or
    /// `None` for a window of zero (sleep at once, as before).
    pub fn new(window: Duration, polled: Counter<f64, AtomicU64>) -> Option<Arc<Self>> {
        (!window.is_zero()).then(|| {
            Arc::new(Self {
                window_ns: window.as_nanos().min(u128::from(u64::MAX)) as u64,
                started: Instant::now(),
                last_activity: AtomicU64::new(0),
                asleep: AtomicBool::new(false),
                wake: Notify::new(),
                polled,
            })
        })
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Whether a request came or went within the window before `now`.
    fn active_at(&self, now: u64) -> bool {
        now.saturating_sub(self.last_activity.load(Ordering::SeqCst)) < self.window_ns
    }

    /// A request arrived or an answer left: poll for the window from now.
    /// Costs a clock read and an atomic store while the poller runs.
    pub fn touch(&self) {
        self.last_activity.store(self.now_ns(), Ordering::SeqCst);
        if self.asleep.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }

    /// The poller's task: runs until the server stops (which aborts it).
    /// One clock read per turn: on a virtual machine that is not free.
    pub async fn run(self: Arc<Self>) {
        loop {
            let mut accounted = self.now_ns();
            let mut now = accounted;
            while self.active_at(now) {
                // Another process that wants this core gets it first; then
                // the runtime runs its other tasks and polls the sockets
                // without sleeping before it polls this task again.
                std::thread::yield_now();
                tokio::task::yield_now().await;
                now = self.now_ns();
                if now - accounted >= ACCOUNT_EVERY_NS {
                    self.account(accounted, now);
                    accounted = now;
                }
            }
            self.account(accounted, now);
            // Sleep, unless a request came between the check and the flag
            // (`touch` stores before it looks at the flag; this sets the
            // flag before it looks again).
            self.asleep.store(true, Ordering::SeqCst);
            if !self.active_at(self.now_ns()) {
                self.wake.notified().await;
            }
            self.asleep.store(false, Ordering::SeqCst);
        }
    }

    fn account(&self, from: u64, to: u64) {
        self.polled.inc_by(to.saturating_sub(from) as f64 / 1e9);
    }
}
