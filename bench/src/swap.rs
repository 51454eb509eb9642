//! Latency while the plugin is swapped and while the dataset moves to
//! another backend, beside steady state, in one run: 8 connections of
//! random GETs, updates and inserts against one dataset on SQLite; then ten
//! swaps to new versions of the SQL plugin (each one compiled, started and
//! swapped in); then live migrations of the dataset to another SQLite
//! database and on to the object store (a local directory).

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};
use vsam_client::admin::{AdminClient, read_token};
use vsam_client::{ChainedRecord, Connection, Dataset, OpenIntent, RplOptions};
use vsam_host::RunningServer;
use vsam_host::reload::ConfigSource;
use vsam_protocol::admin::{AdminAnswer, AdminCommand, StatusReport};

const DATASET: &str = "BENCH.SWAP";
const CONNECTIONS: usize = 8;
const PHASES: [&str; 4] = [
    "steady state",
    "during swaps",
    "migration to sqlite",
    "migration to objects",
];

/// The SQL plugin with a custom section naming `version`: a new version.
fn version(version: u32) -> Vec<u8> {
    let mut bytes = vsam_host::runtime::builtin::SQL.to_vec();
    let name = b"bench-version";
    let payload = version.to_be_bytes();
    bytes.push(0);
    bytes.push((1 + name.len() + payload.len()) as u8);
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(&payload);
    bytes
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn record(i: u64, tag: u64) -> Vec<u8> {
    let mut record = format!("{i:010}-{tag}").into_bytes();
    record.resize(100, b'.');
    record
}

async fn status(admin: &mut AdminClient) -> Result<StatusReport> {
    match admin.request(AdminCommand::Status).await? {
        AdminAnswer::Status(status) => Ok(status),
        other => anyhow::bail!("not a status: {other:?}"),
    }
}

/// What one swap took.
struct Swap {
    /// When the new file was written: its compile and start began.
    began: Instant,
    /// From the new file to the reload's answer (compile, start, switch).
    reload_ms: f64,
    /// When the reload answered: the switch.
    switched: Instant,
    /// From the new file until the old version had drained.
    effect_ms: f64,
}

/// Deploys version `n` of the SQL plugin, reloads, and waits until the
/// old version has finished its last call.
async fn swap_to(
    server: &RunningServer,
    admin: &mut AdminClient,
    plugin: &Path,
    n: u32,
) -> Result<Swap> {
    let started = Instant::now();
    write_atomically(plugin, &version(n))?;
    let report = server.reloader.reload("bench").await;
    anyhow::ensure!(report.error.is_none(), "swap to {n}: {:?}", report.error);
    let reload_ms = started.elapsed().as_secs_f64() * 1e3;
    let switched = Instant::now();
    while status(admin).await?.backends.iter().any(|b| b.draining > 0) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(Swap {
        began: started,
        reload_ms,
        switched,
        effect_ms: started.elapsed().as_secs_f64() * 1e3,
    })
}

/// One client: random GETs (70%), GET UPD + PUT (20%), inserts (10%),
/// each timed into the histogram of the phase it started in.
async fn client(
    address: String,
    id: u64,
    records: u64,
    phase: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
) -> Result<(Vec<Histogram<u64>>, Vec<(Instant, u64)>)> {
    let conn = Connection::connect(&address).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Update, 1).await?;
    // One more, not reported: between phases (finalizing, settling).
    let mut histograms = vec![Histogram::<u64>::new(3)?; PHASES.len() + 1];
    let mut seed = 0x2545_F491_4F6C_DD1D ^ (id + 1);
    let mut next_insert = 0u64;
    // Operations during the swaps, by start time, to find those around
    // each switch.
    let mut swap_samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let key = seed % records;
        let now = phase.load(Ordering::Relaxed) as usize;
        let started = Instant::now();
        match seed % 10 {
            0..7 => {
                ds.reading(RplOptions::direct())
                    .key(format!("{key:010}").as_bytes())
                    .records()
                    .await?;
            }
            7..9 => {
                let key = key - key % CONNECTIONS as u64 + id; // its own keys: no waiting on locks
                let key = key.min(records - 1);
                ds.reading(RplOptions::direct().update())
                    .key(format!("{key:010}").as_bytes())
                    .records()
                    .await?;
                ds.put(
                    0,
                    RplOptions::direct().update(),
                    0,
                    record(key, seed % 1000),
                )
                .await?;
            }
            _ => {
                let key = 1_000_000_000 + id * 10_000_000 + next_insert;
                next_insert += 1;
                ds.put(0, RplOptions::direct(), 0, record(key, 0)).await?;
            }
        }
        let nanos = started.elapsed().as_nanos() as u64;
        histograms[now].record(nanos).ok();
        if now == 1 {
            swap_samples.push((started, nanos));
        }
    }
    ds.close().await?;
    Ok((histograms, swap_samples))
}

/// Runs the measurement and returns the lines of its report.
pub async fn run(records: u64) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let plugin = dir.path().join("sql.wasm");
    write_atomically(&plugin, &version(0))?;
    let config = dir.path().join("vsamrd.toml");
    std::fs::write(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n[admin]\nwatch_files = false\n\
         [plugins.sql]\npath = \"sql.wasm\"\n[backends.sqlite]\nplugin = \"sql\"\ndatabase = \"sqlite:bench.db\"\n\
         [backends.sqlite2]\nplugin = \"sql\"\ndatabase = \"sqlite:other.db\"\n\
         [plugins.s3]\npath = \"builtin:s3\"\n\
         [backends.objects]\nplugin = \"s3\"\nbucket = { directory = \"objects\" }\n[routing]\ndefault = \"sqlite\"\n",
    )?;
    let server = RunningServer::start_source(ConfigSource::file(config), BTreeMap::new()).await?;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await?;
    let mut spec = crate::bench_spec(DATASET);
    spec.backend = "sqlite".into();
    vsam_client::define(&conn, spec).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Output, 1).await?;
    let chain = (0..records)
        .map(|i| ChainedRecord {
            address: 0,
            record: record(i, 0),
        })
        .collect();
    ds.put_chain(0, RplOptions::sequential(), chain).await?;
    ds.close().await?;
    let token = read_token(&dir.path().join("data/admin.token"))?;
    let mut admin = AdminClient::connect(
        &server.admin_addr.context("admin enabled")?.to_string(),
        token,
    )
    .await?;

    let phase = Arc::new(AtomicU8::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CONNECTIONS as u64)
        .map(|id| {
            tokio::spawn(client(
                address.clone(),
                id,
                records,
                phase.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let mut lines = Vec::new();

    tokio::time::sleep(Duration::from_secs(1)).await; // warm up
    let steady_started = Instant::now();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let steady = steady_started.elapsed();

    phase.store(1, Ordering::Relaxed);
    let swaps_started = Instant::now();
    let mut reload_ms = Vec::new();
    let mut switches = Vec::new();
    let mut compiles = Vec::new();
    let mut effect_ms = Vec::new();
    for n in 1..=10u32 {
        let swap = swap_to(&server, &mut admin, &plugin, n).await?;
        reload_ms.push(swap.reload_ms);
        switches.push(swap.switched);
        compiles.push((swap.began, swap.switched));
        effect_ms.push(swap.effect_ms);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let swaps = swaps_started.elapsed();
    // Back to versions compiled before: the plugin cache has them.
    phase.store(PHASES.len() as u8, Ordering::Relaxed);
    let mut cached_ms = Vec::new();
    for n in [5u32, 6, 7] {
        cached_ms.push(swap_to(&server, &mut admin, &plugin, n).await?.effect_ms);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let mut migrations = Vec::new();
    for (index, to) in [(2u8, "sqlite2"), (3, "objects")] {
        phase.store(index, Ordering::Relaxed);
        let started = Instant::now();
        let AdminAnswer::Migration(_) = admin
            .request(AdminCommand::Migrate {
                dataset: DATASET.into(),
                to: to.into(),
            })
            .await?
        else {
            anyhow::bail!("no migration");
        };
        let row = loop {
            let row = status(&mut admin)
                .await?
                .migrations
                .into_iter()
                .next_back()
                .context("migration shown")?;
            match row.phase.as_str() {
                "counting" | "copying" | "verifying" => {}
                "cut-over" => break row,
                _ => anyhow::bail!("migration ended {row:?}"),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        migrations.push((row, started.elapsed()));
        phase.store(PHASES.len() as u8, Ordering::Relaxed);

        let AdminAnswer::Migration(_) = admin
            .request(AdminCommand::Finalize {
                dataset: DATASET.into(),
            })
            .await?
        else {
            anyhow::bail!("no finalize");
        };

        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut totals = vec![Histogram::<u64>::new(3)?; PHASES.len() + 1];
    // Operations that started from 100 ms before a switch (the end of the
    // new version's compile and start) to 100 ms after it (the handover).
    let mut at_switch = Histogram::<u64>::new(3)?;
    // The rest, apart: those that started while a new version compiled and
    // started (up to 100 ms before its switch), and those in between.
    let mut compiling = Histogram::<u64>::new(3)?;
    let mut between = Histogram::<u64>::new(3)?;
    let window = Duration::from_millis(100);
    for client in clients {
        let (histograms, samples) = client.await??;
        for (total, histogram) in totals.iter_mut().zip(histograms) {
            total.add(histogram).ok();
        }
        for (started, nanos) in samples {
            let near = switches
                .iter()
                .any(|switch| started + window >= *switch && started <= *switch + window);
            if near {
                at_switch.record(nanos).ok();
            } else if compiles
                .iter()
                .any(|(began, switched)| started >= *began && started + window < *switched)
            {
                compiling.record(nanos).ok();
            } else {
                between.record(nanos).ok();
            }
        }
    }
    server.stop().await;

    lines.push(format!(
        "hot swap and migration: {CONNECTIONS} connections of random GETs (70%), GET UPD + PUT (20%), inserts (10%) on {records} records, SQLite backend"
    ));
    lines.push(format!(
        "{:<18} {:>8} {:>9} {:>9} {:>9} {:>10} {:>11}",
        "phase", "ops", "ops/s", "p50 us", "p99 us", "max us", "p99 ratio"
    ));
    let durations = [steady, swaps, migrations[0].1, migrations[1].1];
    let steady_p99 = totals[0].value_at_quantile(0.99) as f64;
    for ((name, histogram), duration) in PHASES.iter().zip(&totals).zip(durations) {
        lines.push(format!(
            "{:<18} {:>8} {:>9.0} {:>9.1} {:>9.1} {:>10.1} {:>11.2}",
            name,
            histogram.len(),
            histogram.len() as f64 / duration.as_secs_f64(),
            crate::us(histogram.value_at_quantile(0.5)),
            crate::us(histogram.value_at_quantile(0.99)),
            crate::us(histogram.max()),
            histogram.value_at_quantile(0.99) as f64 / steady_p99
        ));
    }
    for (name, histogram) in [
        ("  at the switches", &at_switch),
        ("  while compiling", &compiling),
        ("  between swaps", &between),
    ] {
        lines.push(format!(
            "{:<18} {:>8} {:>9} {:>9.1} {:>9.1} {:>10.1} {:>11.2}",
            name,
            histogram.len(),
            "",
            crate::us(histogram.value_at_quantile(0.5)),
            crate::us(histogram.value_at_quantile(0.99)),
            crate::us(histogram.max()),
            histogram.value_at_quantile(0.99) as f64 / steady_p99
        ));
    }
    let spread = |values: &[f64]| {
        let max = values.iter().cloned().fold(0.0, f64::max);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        format!("mean {mean:.0} ms, max {max:.0} ms")
    };
    lines.push(format!(
        "swaps (new SQL plugin version each, compiled, started, swapped): reload {}; in effect (old version drained) {}",
        spread(&reload_ms),
        spread(&effect_ms)
    ));
    lines.push(format!(
        "swaps back to versions compiled before (plugin cache): in effect {}",
        spread(&cached_ms)
    ));
    for (row, took) in &migrations {
        lines.push(format!(
            "migration {} -> {} under load: {} records copied at {:.0} records/s, verified {} (SHA-256 {}), cut over in {:.1} s",
            row.from,
            row.to,
            row.copied,
            row.rate,
            row.verified.unwrap_or(0),
            &row.checksum.clone().unwrap_or_default()[..16],
            took.as_secs_f64()
        ));
    }
    Ok(lines)
}
