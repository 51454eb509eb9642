//! The soak: many connections held open with mixed traffic for a long
//! time against SQLite, CSV and in-memory datasets. No request may fail,
//! vsamrd's memory must stay within a bound, every record must end as its
//! connection last wrote it; latency percentiles are reported.

use crate::records;
use crate::stores::{self, Rng};
use crate::vsamrd::Vsamrd;
use anyhow::Result;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use vsam_client::{ChainedRecord, Connection, Dataset, OpenIntent, RplOptions};

const RECORD_LENGTH: usize = 100;
/// Shared records per dataset, read by everyone.
const SHARED: u64 = 2000;
/// Records each connection owns (inserts, updates, erases).
const SLOTS: u64 = 8;
/// The datasets, one per backend.
const DATASETS: [(&str, &str); 3] = [
    ("SOAK.SQLITE", "sqlite"),
    ("SOAK.CSV", "csv"),
    ("SOAK.MEMORY", "memory"),
];

fn shared_key(n: u64) -> Vec<u8> {
    format!("S{n:07}").into_bytes()
}

fn slot_key(connection: usize, slot: u64) -> Vec<u8> {
    format!("C{connection:04}{slot:03}").into_bytes()
}

/// One connection's outcome.
struct Outcome {
    /// The version each of its slots holds, as far as it was told.
    slots: Vec<Option<u32>>,
    latency: Histogram<u64>,
    errors: Vec<String>,
}

/// Runs the soak and prints its figures.
pub async fn run(args: &crate::Args, rng: &mut Rng) -> Result<bool> {
    raise_file_limit(args.connections as u64 * 2 + 256);
    let dir = tempfile::tempdir()?;
    let limit = args.connections + 64;
    let sections = "[plugins.sql]\npath = \"builtin:sql\"\n[plugins.csv]\npath = \"builtin:csv\"\n[plugins.memory]\npath = \"builtin:memory\"\n\
         [backends.sqlite]\nplugin = \"sql\"\ndatabase = \"sqlite:soak.db\"\n[backends.csv]\nplugin = \"csv\"\ndirectory = \"csv\"\n[backends.memory]\nplugin = \"memory\"\n";
    let server = Vsamrd::start(
        dir.path(),
        &format!("max_connections = {limit}\nmax_connections_per_address = {limit}\nmax_handshakes = {limit}\nmax_handshakes_per_address = {limit}"),
        sections,
    )
    .await?;
    let conn = Connection::connect(&server.address).await?;
    for (dataset, backend) in DATASETS {
        vsam_client::define(&conn, stores::spec(dataset, backend, RECORD_LENGTH)).await?;
        let ds = Dataset::open(&conn, dataset, OpenIntent::Output, 1).await?;
        let chain = (0..SHARED)
            .map(|n| ChainedRecord {
                address: 0,
                record: records::record(&shared_key(n), 0, RECORD_LENGTH),
            })
            .collect();
        ds.put_chain(0, RplOptions::sequential(), chain).await?;
        ds.close().await?;
    }
    drop(conn);
    let rss_idle = server.rss_kib()?;

    let length = Duration::from_secs(args.soak_secs);
    let operations = Arc::new(AtomicU64::new(0));
    let opened = Instant::now();
    let mut tasks = Vec::new();
    for connection in 0..args.connections {
        let conn = Connection::connect(&server.address).await?;
        let (dataset, _) = DATASETS[connection % DATASETS.len()];
        let ds = Dataset::open(&conn, dataset, OpenIntent::Update, 1).await?;
        tasks.push((ds, rng.next()));
    }
    let open_time = opened.elapsed();
    let started = Instant::now();
    let deadline = started + length;
    let think = Duration::from_millis(args.think_ms);
    let tasks: Vec<_> = tasks
        .into_iter()
        .enumerate()
        .map(|(connection, (ds, seed))| {
            let operations = operations.clone();
            tokio::spawn(work(ds, connection, seed, think, deadline, operations))
        })
        .collect();

    // RSS: the start is taken once every connection has run a while (a
    // tenth of the soak), then sampled until the end.
    let mut samples = Vec::new();
    let warm = length / 10;
    tokio::time::sleep(warm).await;
    let rss_start = server.rss_kib()?;
    let cpu_start = server.cpu_seconds()?;
    let measured = Instant::now();
    let sample_every = (length / 20).max(Duration::from_secs(1));
    while Instant::now() + sample_every < deadline {
        tokio::time::sleep(sample_every).await;
        samples.push(server.rss_kib()?);
    }
    let mut latency = Histogram::<u64>::new(3)?;
    let mut errors = Vec::new();
    let mut outcomes = Vec::new();
    for task in tasks {
        let mut outcome = task.await?;
        latency.add(&outcome.latency)?;
        errors.append(&mut outcome.errors);
        outcomes.push(outcome.slots);
    }
    let elapsed = started.elapsed();
    let rss_end = server.rss_kib()?;
    let cpu = (server.cpu_seconds()? - cpu_start) / measured.elapsed().as_secs_f64();
    // Every slot holds what its connection was last told.
    let (mut lost, mut corrupted, mut checked) = (0u64, 0u64, 0u64);
    for (index, (dataset, _)) in DATASETS.iter().enumerate() {
        let found = stores::read_all(&server.address, dataset).await?;
        for (connection, slots) in outcomes.iter().enumerate() {
            if connection % DATASETS.len() != index {
                continue;
            }
            for (slot, expected) in slots.iter().enumerate() {
                let key = slot_key(connection, slot as u64);
                checked += 1;
                match (found.get(&key), expected) {
                    (None, None) => {}
                    (Some(record), Some(version)) => match records::version_of(&key, record) {
                        Some(v) if v == *version => {}
                        Some(_) => lost += 1,
                        None => corrupted += 1,
                    },
                    (Some(_), None) | (None, Some(_)) => lost += 1,
                }
            }
        }
        let shared_ok = (0..SHARED).all(|n| {
            let key = shared_key(n);
            found
                .get(&key)
                .is_some_and(|r| records::version_of(&key, r) == Some(0))
        });
        if !shared_ok {
            corrupted += 1;
        }
    }
    server.terminate().await?;

    let total = operations.load(Ordering::Relaxed);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let growth = rss_end as i64 - rss_start as i64;
    let peak = samples
        .iter()
        .copied()
        .chain([rss_end])
        .max()
        .unwrap_or(rss_end);
    println!(
        "\nSoak: {} connections held open for {} s on loopback, mixed traffic (GET 40%, browse 10%, insert/update/erase 40%, read-back 10%) over SQLite, CSV and memory datasets, {} ms mean pause",
        args.connections,
        elapsed.as_secs(),
        args.think_ms
    );
    println!(
        "  connections opened in {:.1} s; {total} requests, {:.0}/s; vsamrd used {:.0}% of one core; errors: {}",
        open_time.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        cpu * 100.0,
        errors.len()
    );
    for error in errors.iter().take(5) {
        println!("    error: {error}");
    }
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "  latency: p50 {:.0} us, p99 {:.0} us, p99.9 {:.0} us, max {:.0} us",
        us(0.5),
        us(0.99),
        us(0.999),
        latency.max() as f64 / 1000.0
    );
    println!(
        "  vsamrd RSS: {:.1} MiB idle before the connections, {:.1} MiB at start (after {} s), {:.1} MiB at the end, peak {:.1} MiB: growth {:+.1} MiB (bound {} MiB)",
        mib(rss_idle),
        mib(rss_start),
        warm.as_secs(),
        mib(rss_end),
        mib(peak),
        growth as f64 / 1024.0,
        args.rss_bound_mib
    );
    println!(
        "  RSS samples (MiB): {}",
        samples
            .iter()
            .map(|s| format!("{:.0}", mib(*s)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!("  records checked at the end: {checked}, lost {lost}, corrupted {corrupted}");
    if args.quick {
        println!("  (a quick run prints the RSS growth without judging it)");
    }
    Ok(errors.is_empty()
        && lost == 0
        && corrupted == 0
        && total > 0
        && (args.quick || growth <= (args.rss_bound_mib * 1024) as i64))
}

/// Connection `connection`'s traffic until `deadline`, a random pause of
/// `think` on average between requests.
async fn work(
    ds: Dataset,
    connection: usize,
    seed: u64,
    think: Duration,
    deadline: Instant,
    operations: Arc<AtomicU64>,
) -> Outcome {
    let mut rng = Rng::new(seed);
    let mut outcome = Outcome {
        slots: vec![None; SLOTS as usize],
        latency: Histogram::<u64>::new(3).expect("histogram"),
        errors: Vec::new(),
    };
    let mut version = 0u32;
    // Start at a random moment of the first pause: no thundering herd.
    tokio::time::sleep(think.mul_f64(rng.below(1000) as f64 / 500.0)).await;
    while Instant::now() < deadline {
        let started = Instant::now();
        let roll = rng.below(10);
        let result: Result<(), String> = match roll {
            0..4 => {
                let key = shared_key(rng.below(SHARED));
                match ds.reading(RplOptions::direct()).key(&key).records().await {
                    Ok(found)
                        if found.len() == 1
                            && records::version_of(&key, &found[0].data) == Some(0) =>
                    {
                        Ok(())
                    }
                    other => Err(format!("GET {}: {other:?}", String::from_utf8_lossy(&key))),
                }
            }
            4 => {
                let from = shared_key(rng.below(SHARED - 20));
                let browse = async {
                    ds.point(0, RplOptions::sequential().greater_or_equal(), &from, 0, 0)
                        .await?;
                    ds.browse(20).await
                };
                match browse.await {
                    Ok(found) if found.len() == 20 && found[0].key == from => Ok(()),
                    other => Err(format!("browse: {other:?}")),
                }
            }
            5..9 => {
                let slot = rng.below(SLOTS);
                let key = slot_key(connection, slot);
                version += 1;
                let record = records::record(&key, version, RECORD_LENGTH);
                let held = outcome.slots[slot as usize];
                let (result, now) = match (held, rng.below(2)) {
                    (None, _) => (
                        ds.put(0, RplOptions::direct(), 0, record).await.map(drop),
                        Some(version),
                    ),
                    (Some(_), 0) => (
                        async {
                            ds.reading(RplOptions::direct().update())
                                .key(&key)
                                .records()
                                .await?;
                            ds.put(0, RplOptions::direct().update(), 0, record).await
                        }
                        .await
                        .map(drop),
                        Some(version),
                    ),
                    (Some(_), _) => (
                        async {
                            ds.reading(RplOptions::direct().update())
                                .key(&key)
                                .records()
                                .await?;
                            ds.erase(0).await
                        }
                        .await,
                        None,
                    ),
                };
                match result {
                    Ok(()) => {
                        outcome.slots[slot as usize] = now;
                        Ok(())
                    }
                    Err(error) => Err(error.to_string()),
                }
            }
            _ => {
                let slot = rng.below(SLOTS);
                let key = slot_key(connection, slot);
                let result = ds.reading(RplOptions::direct()).key(&key).records().await;
                match (result, outcome.slots[slot as usize]) {
                    (Ok(found), Some(v))
                        if records::version_of(&key, &found[0].data) == Some(v) =>
                    {
                        Ok(())
                    }
                    (Err(e), None)
                        if e.vsam()
                            .is_some_and(|v| v.fdbk() == vsam_protocol::fdbk::NOT_FOUND) =>
                    {
                        Ok(())
                    }
                    (other, expected) => Err(format!(
                        "read back {}: expected {expected:?}, got {other:?}",
                        String::from_utf8_lossy(&key)
                    )),
                }
            }
        };
        outcome
            .latency
            .record(started.elapsed().as_nanos() as u64)
            .ok();
        operations.fetch_add(1, Ordering::Relaxed);
        if let Err(error) = result {
            outcome.errors.push(error);
        }
        tokio::time::sleep(think.mul_f64(rng.below(1000) as f64 / 500.0)).await;
    }
    outcome
}

/// Raises this process's open-file limit (inherited by vsamrd) to `want`
/// if the hard limit allows: each connection is a socket on both sides.
fn raise_file_limit(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a struct to fill, then the same struct back.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
