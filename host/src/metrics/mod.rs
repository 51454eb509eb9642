//! What a running server counts, for Prometheus: each server its own
//! registry (several servers in one process, as in tests and benchmarks,
//! count apart), rendered in the text format by `/metrics` (see [`http`]).
//!
//! Labels are bounded: request kinds, outcome classes and FDBK codes are
//! fixed sets; no dataset or client names appear.

pub mod http;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::time::Duration;
use vsam_protocol::Answer;

/// A request's kind and how it ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    /// `GET`, `PUT`, `OPEN`...
    kind: &'static str,
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

/// The series of one server.
pub struct Metrics {
    registry: Registry,
    requests: Family<Outcome, Counter>,
    latency: Family<Kind, Histogram>,
    in_flight: Gauge,
    connections_open: Gauge,
    connections: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every series at zero, registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vsamrd");
        let requests = Family::<Outcome, Counter>::default();
        registry.register(
            "requests",
            "VSAM requests answered, by kind and outcome (R15 class, FDBK)",
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
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Client connections open now",
            connections_open.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "Client connections accepted",
            connections.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            in_flight,
            connections_open,
            connections,
        }
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

    /// A connection was accepted: counted open until the guard drops.
    pub fn connection(&self) -> OpenConnection<'_> {
        self.connections.inc();
        self.connections_open.inc();
        OpenConnection(self)
    }

    /// The text exposition of every series, with those read from the
    /// backends at this scrape.
    pub fn render(&self, backends: Vec<BackendRow>) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut scraped = Registry::with_prefix("vsamrd");
        scraped.register_collector(Box::new(Backends(backends)));
        let mut text = String::new();
        encode_registry(&mut text, &self.registry)
            .and_then(|()| encode_registry(&mut text, &scraped))
            .and_then(|()| encode_eof(&mut text))
            .expect("writing to a String does not fail");
        text
    }

    fn answered(&self, kind: &'static str, answer: &Answer, took: Duration) {
        let (outcome, fdbk) = match answer {
            Answer::Result { status, .. } => match status.r15 {
                0 => ("ok", String::new()),
                8 => ("logical", format!("{:02X}", status.fdbk)),
                _ => ("physical", String::new()),
            },
            Answer::ProtocolError { .. } => ("protocol", String::new()),
            _ => ("ok", String::new()),
        };
        self.requests
            .get_or_create(&Outcome {
                kind,
                outcome,
                fdbk,
            })
            .inc();
        self.latency
            .get_or_create(&Kind { kind })
            .observe(took.as_secs_f64());
    }
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
        self.family(
            &mut encoder,
            "plugin_faults",
            "Calls a backend's plugin failed by a trap, its time limit or its memory limit (each replaced the instance)",
            counter,
            |row| row.counts.faults as f64,
        )?;
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
        )
    }
}

/// A request being served (see [`Metrics::started`]).
pub struct InFlight<'a> {
    metrics: &'a Metrics,
    kind: &'static str,
    started: std::time::Instant,
}

impl InFlight<'_> {
    /// The request was answered with `answer`.
    pub fn answered(self, answer: &Answer) {
        self.metrics
            .answered(self.kind, answer, self.started.elapsed());
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// An open connection (see [`Metrics::connection`]).
pub struct OpenConnection<'a>(&'a Metrics);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}
