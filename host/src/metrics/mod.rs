//! What a running server counts, for Prometheus: each server its own
//! registry (several servers in one process, as in tests and benchmarks,
//! count apart), rendered in the text format by `/metrics` (see
//! [`crate::probes`]).
//!
//! Labels are bounded: request kinds, outcome classes, FDBK codes, call
//! names and backends are fixed sets; dataset names appear only for the
//! datasets `[metrics] datasets` names (at most [`MAX_DATASETS`] of them,
//! the rest counted as `(other)`), and for migrations under way.

mod scrape;

pub use scrape::{BackendRow, Scrape};

use crate::after_panic::LockOrStop;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use vsam_protocol::Answer;

/// A request's kind, backend and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    /// `GET`, `PUT`, `OPEN`...
    kind: &'static str,
    /// The backend of the dataset it was about (empty for requests about
    /// none: PING, LIST, COMMIT...).
    backend: String,
    /// `ok`, `logical` (R15=8), `physical` (R15=12), `protocol`.
    outcome: &'static str,
    /// FDBK in hex for a logical error (`14`), else empty.
    fdbk: String,
}

/// A request's kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

/// A request on a dataset named for per-dataset series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatasetOutcome {
    dataset: String,
    kind: &'static str,
    outcome: &'static str,
}

/// Where a connection is: `handshaking` (TLS and HELLO) or `open`; over
/// `tcp` or `tls`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionState {
    state: &'static str,
    transport: &'static str,
}

/// Who held a record a request was refused (X'14'): another `string` or
/// `unit` of work on this server, or another `server` of the fleet.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HeldBy {
    held_by: &'static str,
}

/// Why a unit of work was rolled back by the server: a `deadlock`, its
/// age (`expired`), or an `operator`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RollbackReason {
    reason: &'static str,
}

/// Why a connection ended before it could send requests, or an admin
/// request was refused: see [`Refusal`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RefusalReason {
    reason: &'static str,
}

/// Why the server turned a connection (or an admin request) away: what an
/// operator watches for guessing and floods, whose log lines are limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A connection limit (in all, per address, in the handshake).
    Limit,
    /// A token or certificate that names no client, no credentials where
    /// they are needed, or plain TCP where TLS is required.
    Authentication,
    /// Not a redirector client: no HELLO in time, another major version,
    /// bytes that are not a frame, a `max_frame` below the minimum.
    Protocol,
    /// Closed before saying anything (a TCP health check, a scanner).
    Closed,
    /// A TLS handshake that failed (a certificate the other side does not
    /// trust, no protocol version in common), or TLS asked of a server
    /// without `[tls]`.
    Tls,
    /// A wrong admin token.
    AdminToken,
}

impl Refusal {
    /// Every reason, for the series to start at zero.
    const ALL: [Refusal; 6] = [
        Self::Limit,
        Self::Authentication,
        Self::Protocol,
        Self::Closed,
        Self::Tls,
        Self::AdminToken,
    ];

    fn label(self) -> &'static str {
        match self {
            Self::Limit => "limit",
            Self::Authentication => "authentication",
            Self::Protocol => "protocol",
            Self::Closed => "closed",
            Self::Tls => "tls",
            Self::AdminToken => "admin_token",
        }
    }
}

/// How a reload ended: `applied` or `refused`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadResult {
    result: &'static str,
}

/// Most datasets with series of their own; more are counted together.
pub const MAX_DATASETS: usize = 1000;

/// The series of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<Outcome, Counter>,
    latency: Family<Kind, Histogram>,
    in_flight: Gauge,
    connections_now: Family<ConnectionState, Gauge>,
    connections: Counter,
    received: Counter,
    sent: Counter,
    idle_poll: Counter<f64, AtomicU64>,
    lock_refusals: Family<HeldBy, Counter>,
    rollbacks: Family<RollbackReason, Counter>,
    reloads: Family<ReloadResult, Counter>,
    reload_last_ok: Gauge,
    reload_last_at: Gauge,
    tls_expiry: Gauge,
    refusals: Family<RefusalReason, Counter>,
    /// Patterns of the datasets with series of their own.
    dataset_patterns: Vec<String>,
    dataset_requests: Family<DatasetOutcome, Counter>,
    /// Names seen with series of their own (bounded by MAX_DATASETS).
    datasets_seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Vec::new(), false)
    }
}

impl Metrics {
    /// Every series at zero, registered; requests on datasets matching
    /// `dataset_patterns` are counted per dataset too, and with `tls` the
    /// end of the server's certificate is a series (without TLS there is
    /// none, so that an alert on it finds nothing rather than a zero).
    pub fn new(dataset_patterns: Vec<String>, tls: bool) -> Self {
        let mut registry = Registry::with_prefix("vsamrd");
        let requests = Family::<Outcome, Counter>::default();
        registry.register(
            "requests",
            "VSAM requests answered, by kind, backend and outcome (R15 class, FDBK)",
            requests.clone(),
        );
        let latency = Family::<Kind, Histogram>::new_with_constructor(|| {
            // 50 us to about 1.6 s.
            Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
        });
        registry.register(
            "request_seconds",
            "Time from a request read to its answer ready, by kind",
            latency.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "requests_in_flight",
            "Requests being served",
            in_flight.clone(),
        );
        let connections_now = Family::<ConnectionState, Gauge>::default();
        registry.register(
            "connections_now",
            "Client connections now, by state (handshaking: TLS and HELLO; open) and transport (tcp, tls)",
            connections_now.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "Client connections accepted",
            connections.clone(),
        );
        let received = Counter::default();
        registry.register(
            "received_bytes",
            "Bytes read from clients (protocol frames, TLS excluded)",
            received.clone(),
        );
        let sent = Counter::default();
        registry.register(
            "sent_bytes",
            "Bytes written to clients (protocol frames, TLS excluded)",
            sent.clone(),
        );
        let idle_poll = Counter::<f64, AtomicU64>::default();
        registry.register(
            "idle_poll_seconds",
            "Seconds the runtime's threads spent polling for the next request instead of sleeping, summed over the threads ([server] idle_poll_us after each request): the most CPU time polling cost",
            idle_poll.clone(),
        );
        let lock_refusals = Family::<HeldBy, Counter>::default();
        registry.register(
            "record_lock_refusals",
            "Requests refused X'14' because a record was held: VSAM does not wait for a record lock, so these are the lock waits (held_by: string, unit, server)",
            lock_refusals.clone(),
        );
        let rollbacks = Family::<RollbackReason, Counter>::default();
        registry.register(
            "units_rolled_back_by_server",
            "Units of work the server rolled back (reason: deadlock, expired, operator); ROLLBACK requests are in vsamrd_requests_total",
            rollbacks.clone(),
        );
        let reloads = Family::<ReloadResult, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of the configuration and plugins (result: applied, refused)",
            reloads.clone(),
        );
        let reload_last_ok = Gauge::default();
        registry.register(
            "reload_last_success",
            "1 if the last reload was applied, 0 if it was refused (1 before any)",
            reload_last_ok.clone(),
        );
        reload_last_ok.set(1);
        let reload_last_at = Gauge::default();
        registry.register(
            "reload_last_timestamp_seconds",
            "When the last reload ended, seconds since the Unix epoch (0 before any)",
            reload_last_at.clone(),
        );
        let refusals = Family::<RefusalReason, Counter>::default();
        registry.register(
            "connections_refused",
            "Connections turned away before their first request (reason: limit, authentication, protocol, closed, tls) and admin requests with a wrong token (admin_token)",
            refusals.clone(),
        );
        for refusal in Refusal::ALL {
            let _ = refusals.get_or_create(&RefusalReason {
                reason: refusal.label(),
            });
        }
        let tls_expiry = Gauge::default();
        if tls {
            registry.register(
                "tls_certificate_expiry_timestamp_seconds",
                "When the first certificate of the server's TLS chain ends, seconds since the Unix epoch: alert well before it",
                tls_expiry.clone(),
            );
        }
        let dataset_requests = Family::<DatasetOutcome, Counter>::default();
        registry.register(
            "dataset_requests",
            "Requests on the datasets [metrics] datasets names, by dataset, kind and outcome",
            dataset_requests.clone(),
        );
        // Every known label set from zero, so that a first event shows as
        // an increase.
        for held_by in ["string", "unit", "server"] {
            let _ = lock_refusals.get_or_create(&HeldBy { held_by });
        }
        for reason in ["deadlock", "expired", "operator"] {
            let _ = rollbacks.get_or_create(&RollbackReason { reason });
        }
        for result in ["applied", "refused"] {
            let _ = reloads.get_or_create(&ReloadResult { result });
        }
        Self {
            registry,
            requests,
            latency,
            in_flight,
            connections_now,
            connections,
            received,
            sent,
            idle_poll,
            lock_refusals,
            rollbacks,
            reloads,
            reload_last_ok,
            reload_last_at,
            tls_expiry,
            refusals,
            dataset_patterns,
            dataset_requests,
            datasets_seen: Default::default(),
        }
    }

    /// True if requests on some datasets are counted per dataset (the
    /// connection then looks up each request's dataset).
    pub fn per_dataset(&self) -> bool {
        !self.dataset_patterns.is_empty()
    }

    /// Counts a request on `dataset` if `[metrics] datasets` names it.
    pub fn dataset_request(&self, dataset: &str, kind: &'static str, answer: &Answer) {
        if !self
            .dataset_patterns
            .iter()
            .any(|pattern| crate::catalog::matches(pattern, dataset))
        {
            return;
        }
        let dataset = {
            let mut seen = self.datasets_seen.lock_or_stop();
            if seen.contains(dataset) || seen.len() < MAX_DATASETS {
                seen.insert(dataset.to_string());
                dataset.to_string()
            } else {
                "(other)".to_string()
            }
        };
        let (outcome, _) = outcome(answer);
        self.dataset_requests
            .get_or_create(&DatasetOutcome {
                dataset,
                kind,
                outcome,
            })
            .inc();
    }

    /// Counters of the bytes a connection reads and writes.
    pub fn byte_counters(&self) -> (Counter, Counter) {
        (self.received.clone(), self.sent.clone())
    }

    /// The counter of the time spent polling after requests.
    pub fn idle_poll_counter(&self) -> Counter<f64, AtomicU64> {
        self.idle_poll.clone()
    }

    /// A request refused X'14': `held_by` is `string`, `unit` or `server`.
    pub fn lock_refused(&self, held_by: &'static str) {
        self.lock_refusals.get_or_create(&HeldBy { held_by }).inc();
    }

    /// The server rolled a unit of work back: `reason` is `deadlock`,
    /// `expired` or `operator` (`rollback-unit`, or `disconnect` of a
    /// connection whose unit holds changes).
    pub fn unit_rolled_back(&self, reason: &'static str) {
        self.rollbacks
            .get_or_create(&RollbackReason { reason })
            .inc();
    }

    /// A reload ended at `at` (seconds since the Unix epoch).
    pub fn reloaded(&self, applied: bool, at: u64) {
        let result = if applied { "applied" } else { "refused" };
        self.reloads.get_or_create(&ReloadResult { result }).inc();
        self.reload_last_ok.set(i64::from(applied));
        self.reload_last_at.set(at as i64);
    }

    /// A connection (or admin request) turned away, and why.
    pub fn refused(&self, refusal: Refusal) {
        self.refusals
            .get_or_create(&RefusalReason {
                reason: refusal.label(),
            })
            .inc();
    }

    /// The server's TLS certificate chain ends at `not_after` (at start,
    /// and when a reload reads renewed files).
    pub fn set_tls_expiry(&self, not_after: std::time::SystemTime) {
        let seconds = not_after
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        self.tls_expiry
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
    }

    /// A request of `kind` started: counted in flight until its
    /// [`InFlight`] is finished.
    pub fn started(&self, kind: &'static str) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight {
            metrics: self,
            kind,
            started: std::time::Instant::now(),
        }
    }

    /// A connection was accepted: counted handshaking until
    /// [`Connection::opened`], then open, until the guard drops.
    pub fn connection(&self) -> Connection {
        self.connections.inc();
        let state = ConnectionState {
            state: "handshaking",
            transport: "tcp",
        };
        self.connections_now.get_or_create(&state).inc();
        Connection {
            family: self.connections_now.clone(),
            state,
        }
    }

    /// The text exposition of every series, with those read at this
    /// scrape.
    pub fn render(&self, scrape: Scrape) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut scraped = Registry::with_prefix("vsamrd");
        scrape::register(&mut scraped, scrape);
        let mut text = String::new();
        encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, &scraped))
            .and_then(|()| encode_eof(&mut text))
            .expect("writing to a String does not fail");
        text
    }

    fn answered(&self, kind: &'static str, backend: String, answer: &Answer, took: Duration) {
        let (outcome, fdbk) = outcome(answer);
        self.requests
            .get_or_create(&Outcome {
                kind,
                backend,
                outcome,
                fdbk,
            })
            .inc();
        self.latency
            .get_or_create(&Kind { kind })
            .observe(took.as_secs_f64());
    }
}

/// A request's outcome class and, for a logical error, its FDBK in hex.
fn outcome(answer: &Answer) -> (&'static str, String) {
    match answer {
        Answer::Result { status, .. } => match status.r15 {
            0 => ("ok", String::new()),
            8 => ("logical", format!("{:02X}", status.fdbk)),
            _ => ("physical", String::new()),
        },
        Answer::ProtocolError { .. } => ("protocol", String::new()),
        _ => ("ok", String::new()),
    }
}

/// A request being served (see [`Metrics::started`]).
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    started: std::time::Instant,
}

impl InFlight<'_> {
    /// The request, about a dataset of `backend` (if any), was answered
    /// with `answer`.
    pub fn answered(self, backend: Option<String>, answer: &Answer) {
        self.metrics.answered(
            self.kind,
            backend.unwrap_or_default(),
            answer,
            self.started.elapsed(),
        );
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// A connection, counted in its state (see [`Metrics::connection`]).
pub struct Connection {
    family: Family<ConnectionState, Gauge>,
    state: ConnectionState,
}

impl Connection {
    fn moved(&mut self, state: ConnectionState) {
        self.family.get_or_create(&self.state).dec();
        self.family.get_or_create(&state).inc();
        self.state = state;
    }

    /// The connection speaks TLS.
    pub fn tls(&mut self) {
        let state = ConnectionState {
            state: self.state.state,
            transport: "tls",
        };
        self.moved(state);
    }

    /// The handshake is done: the connection is open.
    pub fn opened(&mut self) {
        let state = ConnectionState {
            state: "open",
            transport: self.state.transport,
        };
        self.moved(state);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.family.get_or_create(&self.state).dec();
    }
}

#[cfg(test)]
mod tests;
