//! The store behind a backend stopped and restarted under load
//! (PostgreSQL, the S3 server): requests fail with R15=12 naming the
//! dataset and the store, the connection stays up, service resumes by
//! itself, and nothing acknowledged is lost.

use crate::ledger::{self, Check, Ledger, State};
use crate::stores::{self, Rng, Services, Store};
use crate::vsamrd::Vsamrd;
use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};

const DATASET: &str = "OUTAGE.KSDS";
const RECORD_LENGTH: usize = 64;
/// Longest wait, once the store is back, for every writer to write again.
const RESUME_LIMIT: Duration = Duration::from_secs(30);

/// How one writer fared.
struct Writer {
    ledger: Ledger,
    /// Requests answered with R15=12.
    failed_r15_12: u64,
    /// Requests that failed otherwise (a dropped connection, another code).
    failed_otherwise: Vec<String>,
    /// Reads that returned a record other than the one written.
    wrong_reads: u64,
    /// The first R15=12 message.
    sample: Option<String>,
    /// The last R15=12 message.
    last: Option<String>,
    /// When the first request after the store's restart succeeded.
    resumed: Option<Instant>,
}

/// One outage's figures.
struct Row {
    store: Store,
    check: Check,
    failed_r15_12: u64,
    failed_otherwise: Vec<String>,
    wrong_reads: u64,
    resumed_after: Option<Duration>,
    sample: String,
    /// Which writes were lost, if any.
    losses: Vec<String>,
}

/// Stops and restarts PostgreSQL, then SeaweedFS, under load; prints the
/// table. True when every promise held.
pub async fn run(args: &crate::Args, services: &mut Services, rng: &mut Rng) -> Result<bool> {
    let outage = Duration::from_secs(if args.quick { 2 } else { 5 });
    let mut rows = Vec::new();
    for store in [Store::Postgres, Store::Objects] {
        rows.push(one(store, args.writers, outage, services, rng).await?);
    }
    println!(
        "\nStore stopped for {} s and restarted under load ({} writers inserting and reading)",
        outage.as_secs(),
        args.writers
    );
    println!(
        "{:<12} {:>12} {:>6} {:>9} {:>13} {:>13} {:>10} {:>11}",
        "backend",
        "acknowledged",
        "lost",
        "corrupted",
        "failed R15=12",
        "failed other",
        "bad reads",
        "resumed in"
    );
    let mut ok = true;
    for row in &rows {
        println!(
            "{:<12} {:>12} {:>6} {:>9} {:>13} {:>13} {:>10} {:>11}",
            row.store.name(),
            row.check.acknowledged,
            row.check.lost,
            row.check.corrupted,
            row.failed_r15_12,
            row.failed_otherwise.len(),
            row.wrong_reads,
            row.resumed_after.map_or("never".to_string(), |d| format!(
                "{:.0} ms",
                d.as_secs_f64() * 1e3
            ))
        );
        println!("    {}", row.sample.replace('\n', "\n    "));
        for other in row.failed_otherwise.iter().take(3) {
            println!("    other failure: {other}");
        }
        for loss in &row.losses {
            println!("    lost: {loss}");
        }
        ok &= row.check.clean()
            && row.failed_otherwise.is_empty()
            && row.wrong_reads == 0
            && row.failed_r15_12 > 0
            && row.resumed_after.is_some()
            && row.sample.contains(DATASET);
    }
    Ok(ok)
}

async fn one(
    store: Store,
    writers: usize,
    outage: Duration,
    services: &mut Services,
    rng: &mut Rng,
) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let sections = services.sections(store, "outage")?;
    let server = Vsamrd::start(dir.path(), "", &sections).await?;
    let conn = Connection::connect(&server.address).await?;
    vsam_client::define(&conn, stores::spec(DATASET, "b", RECORD_LENGTH)).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let restarted: Arc<std::sync::OnceLock<Instant>> = Arc::default();
    let resumed = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for w in 0..writers {
        tasks.push(tokio::spawn(write(
            server.address.clone(),
            Ledger::new(w, RECORD_LENGTH),
            rng.next(),
            stop.clone(),
            restarted.clone(),
            resumed.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stopping = Instant::now();
    tokio::task::block_in_place(|| match store {
        Store::Postgres => services.postgres()?.stop(),
        _ => services.seaweed()?.stop(),
    })?;
    let stopped_in = stopping.elapsed();
    tokio::time::sleep(outage).await;
    let restarting = Instant::now();
    tokio::task::block_in_place(|| match store {
        Store::Postgres => services.postgres()?.restart(),
        _ => services.seaweed()?.restart(),
    })?;
    let restart = Instant::now();
    let restarted_in = restart - restarting;
    let _ = restarted.set(restart);
    // Run on until every writer went through (30 s at most), and a moment
    // more.
    while resumed.load(Ordering::Relaxed) < writers && restart.elapsed() < RESUME_LIMIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let mut row = Row {
        store,
        check: Check::default(),
        failed_r15_12: 0,
        failed_otherwise: Vec::new(),
        wrong_reads: 0,
        resumed_after: Some(Duration::ZERO),
        sample: String::new(),
        losses: Vec::new(),
    };
    // Every writer has stopped, its last write answered, before the
    // records are read: a write still in flight would be acknowledged after
    // the read passed its key, and counted lost.
    let mut stopped = Vec::with_capacity(tasks.len());
    for task in tasks {
        stopped.push(task.await?);
    }
    let found = stores::read_all(&server.address, DATASET).await?;
    let (split, foreign) = ledger::by_writer(found, writers);
    row.check.corrupted += foreign;
    let mut last = None;
    for (mut writer, found) in stopped.into_iter().zip(&split) {
        last = writer.last.take().or(last);
        row.check += writer.ledger.check(found);
        row.losses.append(&mut writer.ledger.losses);
        row.failed_r15_12 += writer.failed_r15_12;
        row.failed_otherwise.append(&mut writer.failed_otherwise);
        row.wrong_reads += writer.wrong_reads;
        if row.sample.is_empty() {
            row.sample = writer.sample.unwrap_or_default();
        }
        row.resumed_after = match (row.resumed_after, writer.resumed) {
            (Some(so_far), Some(at)) => Some(so_far.max(at.duration_since(restart))),
            _ => None,
        };
    }
    if !row.losses.is_empty() {
        // What to look at first: a store whose stop took its script's 10 s
        // was killed, and may have lost what it had acknowledged.
        println!(
            "{} lost acknowledged writes: its stop took {:.1} s, its restart {:.1} s; vsamrd's log:\n{}",
            store.name(),
            stopped_in.as_secs_f64(),
            restarted_in.as_secs_f64(),
            server.log_tail()
        );
        if store != Store::Postgres {
            // Its log says whether it stopped by itself or was killed, and
            // what it did meanwhile (the stop and the restart are marked).
            println!("SeaweedFS's log:\n{}", services.seaweed()?.log_tail(80));
        }
    }
    if row.resumed_after.is_none() {
        println!(
            "{} never came back; the last failure:\n{}\nvsamrd's log:\n{}",
            store.name(),
            last.unwrap_or_default(),
            server.log_tail()
        );
    }
    server.terminate().await?;
    Ok(row)
}

/// Inserts new records and reads back written ones until `stop`; a failed
/// insert is in doubt (the store may have committed it before the answer
/// was lost), and the writer goes on.
async fn write(
    address: String,
    ledger: Ledger,
    seed: u64,
    stop: Arc<AtomicBool>,
    restarted: Arc<std::sync::OnceLock<Instant>>,
    resumed: Arc<AtomicUsize>,
) -> Writer {
    let mut rng = Rng::new(seed);
    let mut writer = Writer {
        ledger,
        failed_r15_12: 0,
        failed_otherwise: Vec::new(),
        wrong_reads: 0,
        sample: None,
        last: None,
        resumed: None,
    };
    let ds = match Connection::connect(&address).await {
        Ok(conn) => Dataset::open(&conn, DATASET, OpenIntent::Update, 1).await,
        Err(error) => Err(error),
    };
    let ds = match ds {
        Ok(ds) => ds,
        Err(error) => {
            writer.failed_otherwise.push(error.to_string());
            return writer;
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let read = rng.below(4) == 0;
        let result = match writer.ledger.present_key(rng.next()) {
            Some(key) if read => {
                let State::Present(version) = writer.ledger.state(&key) else {
                    unreachable!("a present key")
                };
                let expected = writer.ledger.record(&key, version);
                let result = ds.reading(RplOptions::direct()).key(&key).records().await;
                if let Ok(records) = &result
                    && records.first().map(|r| &r.data) != Some(&expected)
                {
                    writer.wrong_reads += 1;
                }
                result.map(drop)
            }
            _ => {
                let key = writer.ledger.new_key();
                let version = writer.ledger.new_version();
                let record = writer.ledger.record(&key, version);
                let result = ds.put(0, RplOptions::direct(), 0, record).await;
                match result {
                    Ok(_) => writer.ledger.acknowledge(key, State::Present(version)),
                    Err(_) => writer.ledger.in_doubt(key, State::Present(version)),
                }
                result.map(drop)
            }
        };
        match result {
            Ok(()) => {
                // Service is back when a write goes through (reads may be
                // answered from the plugin's cache).
                if !read && writer.resumed.is_none() && restarted.get().is_some() {
                    writer.resumed = Some(Instant::now());
                    resumed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(ClientError::Vsam(error)) if error.r15() == 12 => {
                writer.failed_r15_12 += 1;
                writer.sample.get_or_insert_with(|| error.to_string());
                writer.last = Some(error.to_string());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(other) => {
                writer.failed_otherwise.push(other.to_string());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    writer
}
