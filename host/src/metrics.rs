//! What a running server counts, for Prometheus: each server its own
//! registry (several servers in one process, as in tests and benchmarks,
//! count apart), rendered in the text format by `/metrics` (see
//! [`crate::probes`]).
//!
//! Labels are bounded: request kinds, outcome classes, FDBK codes, call
//! names and backends are fixed sets; dataset names appear only for the
//! datasets `[metrics] datasets` names (at most [`MAX_DATASETS`] of them,
//! the rest counted as `(other)`), and for migrations under way.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
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
    /// Patterns of the datasets with series of their own.
    dataset_patterns: Vec<String>,
    dataset_requests: Family<DatasetOutcome, Counter>,
    /// Names seen with series of their own (bounded by MAX_DATASETS).
    datasets_seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Metrics {
    /// Every series at zero, registered; requests on datasets matching
    /// `dataset_patterns` are counted per dataset too.
    pub fn new(dataset_patterns: Vec<String>) -> Self {
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
            let mut seen = self.datasets_seen.lock().unwrap();
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
    /// `expired` or `operator`.
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
        scraped.register_collector(Box::new(Backends(scrape.backends)));
        scraped.register_collector(Box::new(Server {
            units_open: scrape.units_open,
            migrations: scrape.migrations,
        }));
        if let Some(mirrors) = scrape.mirrors {
            scraped.register_collector(Box::new(Mirrors(mirrors)));
        }
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

/// What a scrape reads from the server, beside the counters kept here.
#[derive(Debug, Default)]
pub struct Scrape {
    /// Each backend.
    pub backends: Vec<BackendRow>,
    /// Units of work holding changes now.
    pub units_open: usize,
    /// Migrations running, cut over, or recently ended.
    pub migrations: Vec<vsam_protocol::admin::MigrationRow>,
    /// The mirrors and the change log, if any follow changes.
    pub mirrors: Option<vsam_protocol::admin::MirrorsReport>,
}

/// One backend as a scrape reads it.
#[derive(Debug, Clone)]
pub struct BackendRow {
    /// Its configured name.
    pub backend: String,
    /// What its worker threads counted: plugin faults, group commits.
    pub counts: crate::runtime::worker::BackendCounts,
    /// Calls queued or running on it now.
    pub in_flight: usize,
}

/// The backends' series, read at a scrape.
#[derive(Debug)]
struct Backends(Vec<BackendRow>);

/// A backend's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BackendLabel {
    backend: String,
}

impl Backends {
    /// One series per backend: `value` of each row.
    fn family(
        &self,
        encoder: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        metric_type: MetricType,
        value: impl Fn(&BackendRow) -> f64,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
        for row in &self.0 {
            let label = BackendLabel {
                backend: row.backend.clone(),
            };
            let metric = family.encode_family(&label)?;
            match metric_type {
                MetricType::Counter => ConstCounter::new(value(row)).encode(metric)?,
                _ => ConstGauge::new(value(row)).encode(metric)?,
            }
        }
        Ok(())
    }
}

impl Collector for Backends {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counter = MetricType::Counter;
        let mut family = encoder.encode_descriptor(
            "plugin_faults",
            "Calls a backend's plugin failed, each replacing the instance, by cause: trap, timeout (its time limit), memory (its memory limit), start (an instance that would not start)",
            None,
            counter,
        )?;
        for row in &self.0 {
            for (cause, count) in crate::runtime::worker::FAULT_CAUSES
                .iter()
                .zip(row.counts.faults)
            {
                let label = FaultLabel {
                    backend: row.backend.clone(),
                    cause,
                };
                ConstCounter::new(count as f64).encode(family.encode_family(&label)?)?;
            }
        }
        self.family(
            &mut encoder,
            "syncs",
            "Group commits (plugin syncs) that succeeded",
            counter,
            |row| row.counts.syncs as f64,
        )?;
        self.family(
            &mut encoder,
            "synced_writes",
            "Write calls those syncs made durable (per sync: the group size)",
            counter,
            |row| row.counts.synced_writes as f64,
        )?;
        self.family(
            &mut encoder,
            "sync_seconds",
            "Time spent in syncs (per sync: the commit latency)",
            counter,
            |row| row.counts.sync_nanos as f64 / 1e9,
        )?;
        self.family(
            &mut encoder,
            "backend_calls_in_flight",
            "Calls queued or running on a backend now",
            MetricType::Gauge,
            |row| row.in_flight as f64,
        )?;
        self.family(
            &mut encoder,
            "plugin_memory_bytes",
            "Linear memory the backend's live plugin instances hold (writer and readers)",
            MetricType::Gauge,
            |row| row.counts.memory_bytes as f64,
        )?;
        let mut family = encoder.encode_descriptor(
            "plugin_call_seconds",
            "Time of each plugin call on its worker thread, by backend and contract function (sync: the commit latency)",
            None,
            MetricType::Histogram,
        )?;
        for row in &self.0 {
            for (call, histogram) in &row.counts.calls {
                let label = CallLabel {
                    backend: row.backend.clone(),
                    call,
                };
                encode_histogram(family.encode_family(&label)?, histogram)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "group_commit_size",
            "Writes each successful sync made durable at once (a group commit)",
            None,
            MetricType::Histogram,
        )?;
        for row in &self.0 {
            if let Some(histogram) = &row.counts.groups {
                let label = BackendLabel {
                    backend: row.backend.clone(),
                };
                encode_histogram(family.encode_family(&label)?, histogram)?;
            }
        }
        Ok(())
    }
}

/// A backend and the cause of a fault.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FaultLabel {
    backend: String,
    cause: &'static str,
}

/// A backend and one of its contract functions.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabel {
    backend: String,
    call: &'static str,
}

fn encode_histogram(
    mut metric: prometheus_client::encoding::MetricEncoder<'_>,
    histogram: &crate::runtime::worker::HistogramSnapshot,
) -> Result<(), std::fmt::Error> {
    metric.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        histogram.sum,
        histogram.count,
        &histogram.buckets,
        None,
    )
}

/// The server's series read at a scrape: units of work, migrations.
#[derive(Debug)]
struct Server {
    units_open: usize,
    migrations: Vec<vsam_protocol::admin::MigrationRow>,
}

/// A migration's dataset and backends.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MigrationLabel {
    dataset: String,
    from: String,
    to: String,
}

/// A migration's phase, as an info series (value 1).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MigrationPhase {
    dataset: String,
    phase: String,
}

impl Collector for Server {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let family = encoder.encode_descriptor(
            "units_open",
            "Units of work holding uncommitted changes now",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.units_open as i64).encode(family)?;
        for (name, help, value) in [
            (
                "migration_copied_records",
                "Records a migration has copied to its new backend",
                (|row: &vsam_protocol::admin::MigrationRow| row.copied as f64)
                    as fn(&vsam_protocol::admin::MigrationRow) -> f64,
            ),
            (
                "migration_records",
                "Records the dataset held when its migration counted them (0 until counted)",
                |row| row.total as f64,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for row in &self.migrations {
                let label = MigrationLabel {
                    dataset: row.dataset.clone(),
                    from: row.from.clone(),
                    to: row.to.clone(),
                };
                ConstGauge::new(value(row)).encode(family.encode_family(&label)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "migration_phase",
            "1 for the phase each migration is in (copy, verify, cut-over, finalized, rolled-back, failed...)",
            None,
            MetricType::Gauge,
        )?;
        for row in &self.migrations {
            let label = MigrationPhase {
                dataset: row.dataset.clone(),
                phase: row.phase.clone(),
            };
            ConstGauge::new(1).encode(family.encode_family(&label)?)?;
        }
        Ok(())
    }
}

/// The mirrors' series, read at a scrape.
#[derive(Debug)]
struct Mirrors(vsam_protocol::admin::MirrorsReport);

/// A mirror backend's name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MirrorLabel {
    mirror: String,
}

impl Collector for Mirrors {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let family = encoder.encode_descriptor(
            "change_log_committed_sequence",
            "Sequence number of the last change committed to the change log",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.0.committed as f64).encode(family)?;
        let family = encoder.encode_descriptor(
            "change_log_bytes",
            "Bytes the change log holds on disk",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(self.0.log_bytes as f64).encode(family)?;
        if let Some(stream) = &self.0.stream {
            let family = encoder.encode_descriptor(
                "change_stream_written_sequence",
                "Sequence number of the last change the change stream has written",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(stream.written as f64).encode(family)?;
            let family = encoder.encode_descriptor(
                "change_stream_failing",
                "1 while the change stream's last write failed, or it lacks changes of datasets it carries (other servers of a fleet write them)",
                None,
                MetricType::Gauge,
            )?;
            let failing = stream.last_error.is_some() || stream.missing.is_some();
            ConstGauge::new(f64::from(u8::from(failing))).encode(family)?;
        }
        type Value = fn(&vsam_protocol::admin::MirrorRow) -> f64;
        let series: [(&str, &str, Value); 4] = [
            (
                "mirror_queued_changes",
                "Changes committed that a mirror has not applied yet (its queue)",
                |row| row.queued as f64,
            ),
            (
                "mirror_lag_seconds",
                "Age of the oldest change a mirror has not applied yet (0 when it has caught up)",
                |row| row.lag_seconds,
            ),
            (
                "mirror_applied_sequence",
                "Sequence number up to which a mirror has applied every change",
                |row| row.applied as f64,
            ),
            (
                "mirror_failing",
                "1 while a mirror's last attempt failed or it stopped following",
                |row| {
                    f64::from(u8::from(
                        row.last_error.is_some() || row.phase.starts_with("stopped"),
                    ))
                },
            ),
        ];
        for (name, help, value) in series {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for row in &self.0.mirrors {
                let label = MirrorLabel {
                    mirror: row.backend.clone(),
                };
                ConstGauge::new(value(row)).encode(family.encode_family(&label)?)?;
            }
        }
        Ok(())
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
mod tests {
    use super::*;

    fn ok() -> Answer {
        Answer::Result {
            status: vsam_protocol::Status::ok(),
            records: Vec::new(),
        }
    }

    /// A pattern matching a flood of datasets gives at most MAX_DATASETS
    /// series; the rest are counted together, nothing is dropped.
    #[test]
    fn per_dataset_series_are_capped_and_the_rest_counted_as_other() {
        let metrics = Metrics::new(vec!["FLOOD.**".into()]);
        for n in 0..MAX_DATASETS + 5 {
            metrics.dataset_request(&format!("FLOOD.D{n}"), "GET", &ok());
        }
        metrics.dataset_request("FLOOD.D0", "GET", &ok());
        metrics.dataset_request("OTHER.D0", "GET", &ok());
        let text = metrics.render(Scrape::default());
        let series: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("vsamrd_dataset_requests_total"))
            .collect();
        assert_eq!(series.len(), MAX_DATASETS + 1, "{} series", series.len());
        assert!(
            text.contains(
                r#"vsamrd_dataset_requests_total{dataset="(other)",kind="GET",outcome="ok"} 5"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"vsamrd_dataset_requests_total{dataset="FLOOD.D0",kind="GET",outcome="ok"} 2"#
        ));
        assert!(!text.contains("OTHER.D0"), "only the datasets named");
    }
}
