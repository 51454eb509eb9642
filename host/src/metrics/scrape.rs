//! What a scrape reads from the running server beside the counters the
//! registry keeps (backends, units of work, migrations, mirrors), as
//! collectors that encode it in Prometheus's text format.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

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
    /// Panics of vsamrd's own code since it started.
    panics: u64,
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
        let family = encoder.encode_descriptor(
            "panics",
            "Bugs met in vsamrd's own code (panics), each logged with its place and connection: alert on any",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(self.panics).encode(family)?;
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

/// Registers what `scrape` read in `registry`, for one rendering.
pub(super) fn register(registry: &mut Registry, scrape: Scrape) {
    registry.register_collector(Box::new(Backends(scrape.backends)));
    registry.register_collector(Box::new(Server {
        units_open: scrape.units_open,
        panics: crate::logging::panics(),
        migrations: scrape.migrations,
    }));
    if let Some(mirrors) = scrape.mirrors {
        registry.register_collector(Box::new(Mirrors(mirrors)));
    }
}
