//! A fleet on one PostgreSQL: random GETs, and GET UPD + PUT pairs, by 6
//! connections spread over 1, 2 and 3 servers of one database (each
//! connection updating keys of its own, so no request waits); and the
//! latency of a refused GET UPD (X'14') when the record is held on the
//! same server and when it is held on another; and a browse of one
//! connection, one GET per record, on a server alone on the database (it
//! reads ahead) and once other servers joined (each record read when
//! asked: the price of never serving a record another server changed). On
//! one machine the servers share its cores, so the figure that matters is
//! the cost of a request in a fleet against one server (the throughput
//! ratio).

use anyhow::Result;
use hdrhistogram::Histogram;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vsam_client::{ChainedRecord, Connection, Dataset, OpenIntent, RplOptions};
use vsam_host::RunningServer;

const DATASET: &str = "BENCH.FLEET";
const CONNECTIONS: u64 = 6;
const RECORDS: u64 = 10_000;
/// How long each measured mix runs.
const RUN: Duration = Duration::from_secs(5);
/// Refusals timed for each conflict latency.
const REFUSALS: u32 = 1_000;

/// What one client did: requests (a GET UPD + PUT pair counts as one) and
/// their latencies.
async fn client(
    address: String,
    id: u64,
    update: bool,
    stop: Arc<AtomicBool>,
) -> Result<Histogram<u64>> {
    let conn = Connection::connect(&address).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Update, 1).await?;
    let mut latency = Histogram::<u64>::new(3)?;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (id + 1);
    while !stop.load(Ordering::Relaxed) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Its own keys: no request waits for another's record.
        let number = seed % (RECORDS / CONNECTIONS) * CONNECTIONS + id;
        let key = format!("{number:010}");
        let started = Instant::now();
        if update {
            ds.read_for_update(key.as_bytes()).await?;
            ds.put(0, RplOptions::direct().update(), 0, super::record(number))
                .await?;
        } else {
            ds.read(key.as_bytes()).await?;
        }
        latency.record(started.elapsed().as_nanos() as u64)?;
    }
    ds.close().await?;
    Ok(latency)
}

/// Runs the mix for `RUN` over `servers`: requests per second, p50 and
/// p99 in microseconds.
async fn mix(servers: &[RunningServer], update: bool) -> Result<(f64, f64, f64)> {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|id| {
            let address = servers[id as usize % servers.len()].addr.to_string();
            tokio::spawn(client(address, id, update, stop.clone()))
        })
        .collect();
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Histogram::<u64>::new(3)?;
    for task in tasks {
        all.add(task.await??)?;
    }
    let rate = all.len() as f64 / started.elapsed().as_secs_f64();
    Ok((
        rate,
        super::us(all.value_at_quantile(0.5)),
        super::us(all.value_at_quantile(0.99)),
    ))
}

/// The time of a GET UPD refused because `holder`'s connection holds the
/// record, asked through `asker`: p50 and p99 in microseconds.
async fn refusal(holder: &RunningServer, asker: &RunningServer) -> Result<(f64, f64)> {
    let held = Connection::connect(&holder.addr.to_string()).await?;
    let holding = Dataset::open(&held, DATASET, OpenIntent::Update, 1).await?;
    holding.read_for_update(b"0000000042").await?;
    let conn = Connection::connect(&asker.addr.to_string()).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Update, 1).await?;
    let mut latency = Histogram::<u64>::new(3)?;
    for _ in 0..REFUSALS {
        let started = Instant::now();
        let refused = ds.read_for_update(b"0000000042").await;
        latency.record(started.elapsed().as_nanos() as u64)?;
        anyhow::ensure!(
            refused
                .as_ref()
                .err()
                .and_then(|e| e.vsam())
                .is_some_and(|v| v.fdbk() == u8::from(vsam_protocol::fdbk::EXCLUSIVE_CONTROL)),
            "the GET UPD was not refused with X'14': {refused:?}"
        );
    }
    ds.close().await?;
    holding.close().await?;
    Ok((
        super::us(latency.value_at_quantile(0.5)),
        super::us(latency.value_at_quantile(0.99)),
    ))
}

/// Records per second of one connection browsing the whole dataset on
/// `server`, one sequential GET per record.
async fn browse(server: &RunningServer) -> Result<f64> {
    let conn = Connection::connect(&server.addr.to_string()).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Input, 1).await?;
    let started = Instant::now();
    let mut read = 0u64;
    loop {
        match ds.next().await {
            Ok(_) => read += 1,
            Err(e) if e.is_end_of_data() => break,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::ensure!(
        read == RECORDS,
        "the browse read {read} of {RECORDS} records"
    );
    ds.close().await?;
    Ok(read as f64 / started.elapsed().as_secs_f64())
}

/// Runs every measurement and returns the report lines.
pub async fn run(services: &super::Services) -> Result<Vec<String>> {
    let dirs: Vec<tempfile::TempDir> = (0..3)
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<_>>()?;
    let mut servers =
        vec![super::start("postgres (wasm)", dirs[0].path(), Some(services), 0).await?];
    let conn = Connection::connect(&servers[0].addr.to_string()).await?;
    vsam_client::define(&conn, super::bench_spec(DATASET)).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Output, 1).await?;
    let chain: Vec<ChainedRecord> = (0..RECORDS)
        .map(|key| ChainedRecord {
            address: 0,
            record: super::record(key),
        })
        .collect();
    let loaded = ds.put_chain(0, RplOptions::sequential(), chain).await?;
    if let Some(failure) = loaded.failure {
        anyhow::bail!("loading {DATASET}: {failure}");
    }
    ds.close().await?;
    drop(conn);
    let alone = browse(&servers[0]).await?;
    for dir in &dirs[1..] {
        servers.push(super::start("postgres (wasm)", dir.path(), Some(services), 0).await?);
    }
    let joined = browse(&servers[0]).await?;

    let mut lines = vec![format!(
        "a fleet on one PostgreSQL: {CONNECTIONS} connections spread over 1, 2 and 3 servers (in one process, sharing the machine's cores), {RECORDS} records, {} s per figure",
        RUN.as_secs()
    )];
    lines.push(format!(
        "  {:<22} {:>8} {:>10} {:>9} {:>9} {:>18}",
        "mix", "servers", "ops/s", "p50 us", "p99 us", "ops/s vs 1 server"
    ));
    for (update, what) in [(false, "random GET"), (true, "GET UPD + PUT")] {
        let mut one = 0.0;
        for count in 1..=3 {
            let (rate, p50, p99) = mix(&servers[..count], update).await?;
            if count == 1 {
                one = rate;
            }
            lines.push(format!(
                "  {what:<22} {count:>8} {rate:>10.0} {p50:>9.0} {p99:>9.0} {:>18.2}",
                rate / one
            ));
        }
    }
    lines.push(format!(
        "  browse, 1 connection, one GET per record: alone on the database (read-ahead) {alone:.0} records/s; in a fleet of 3 (no read-ahead) {joined:.0} records/s ({:.2} of alone)",
        joined / alone
    ));
    let (same50, same99) = refusal(&servers[0], &servers[0]).await?;
    let (other50, other99) = refusal(&servers[0], &servers[1]).await?;
    lines.push(format!(
        "  GET UPD refused (X'14'): held on the same server p50 {same50:.0} us, p99 {same99:.0} us; held on another server p50 {other50:.0} us, p99 {other99:.0} us"
    ));
    for server in servers {
        server.stop().await;
    }
    Ok(lines)
}
