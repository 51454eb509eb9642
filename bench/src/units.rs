//! The online mix with units of work: 8 connections of random GETs (70%),
//! GET UPD + PUT (20%) and inserts (10%) on one dataset on SQLite, as in
//! the hot-swap measurement, run twice in one server: every write durable
//! on its own (`sync` durability), then in `commit` durability with a
//! COMMIT after every 5 writes.

use anyhow::Result;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vsam_client::{ChainedRecord, Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::access;

const DATASET: &str = "BENCH.MIX";
const CONNECTIONS: u64 = 8;
/// Writes per unit of work in `commit` durability.
const UNIT: u64 = 5;
/// How long each durability runs.
const RUN: Duration = Duration::from_secs(10);

fn record(key: u64, tag: u64) -> Vec<u8> {
    let mut record = format!("{key:010}-{tag:06}").into_bytes();
    record.resize(100, b' ');
    record
}

/// One client until `stop`: returns the operations it completed.
async fn client(
    address: String,
    id: u64,
    records: u64,
    commit: bool,
    stop: Arc<AtomicBool>,
) -> Result<u64> {
    let conn = Connection::connect(&address).await?;
    let bits = if commit { access::COMMIT } else { 0 };
    let ds = Dataset::open_with_access(&conn, DATASET, OpenIntent::Update, bits, 1).await?;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (id + 1) ^ u64::from(commit);
    let mut operations = 0u64;
    let mut writes = 0u64;
    let mut next_insert = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let key = seed % records;
        match seed % 10 {
            0..7 => {
                ds.read(format!("{key:010}").as_bytes()).await?;
            }
            7..9 => {
                // Its own keys: no waiting on another's records.
                let key = (key - key % CONNECTIONS + id).min(records - 1);
                ds.read_for_update(format!("{key:010}").as_bytes()).await?;
                ds.put(
                    0,
                    RplOptions::direct().update(),
                    0,
                    record(key, seed % 1000),
                )
                .await?;
                writes += 1;
            }
            _ => {
                let key =
                    1_000_000_000 + id * 10_000_000 + next_insert + u64::from(commit) * 5_000_000;
                next_insert += 1;
                ds.put(0, RplOptions::direct(), 0, record(key, 0)).await?;
                writes += 1;
            }
        }
        if commit && writes == UNIT {
            vsam_client::commit(&conn).await?;
            writes = 0;
        }
        operations += 1;
    }
    ds.close().await?;
    Ok(operations)
}

/// Runs both durabilities and returns the report lines.
pub async fn run(records: u64) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let server = crate::start("sqlite (wasm)", dir.path(), None, 0).await?;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await?;
    vsam_client::define(&conn, crate::bench_spec(DATASET)).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Output, 1).await?;
    let chain: Vec<ChainedRecord> = (0..records)
        .map(|key| ChainedRecord {
            address: 0,
            record: record(key, 0),
        })
        .collect();
    ds.put_chain(0, RplOptions::sequential(), chain).await?;
    ds.close().await?;
    let mut lines = vec![format!(
        "online mix with units of work: {CONNECTIONS} connections of random GETs (70%), GET UPD + PUT (20%), inserts (10%) on {records} records, SQLite backend, {} s each",
        RUN.as_secs()
    )];
    let mut rates = Vec::new();
    for (commit, what) in [
        (false, "sync (each write durable)"),
        (true, "commit every 5 writes"),
    ] {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|id| tokio::spawn(client(address.clone(), id, records, commit, stop.clone())))
            .collect();
        tokio::time::sleep(RUN).await;
        stop.store(true, Ordering::Relaxed);
        let mut operations = 0;
        for task in tasks {
            operations += task.await??;
        }
        let rate = operations as f64 / started.elapsed().as_secs_f64();
        rates.push(rate);
        lines.push(format!(
            "  {what:<28} {operations:>8} ops   {rate:>8.0} ops/s"
        ));
    }
    lines.push(format!(
        "  commit / sync throughput    {:.2}",
        rates[1] / rates[0]
    ));
    server.stop().await;
    Ok(lines)
}
