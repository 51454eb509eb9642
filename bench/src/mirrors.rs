//! What a mirror costs its primary: 8 connections of mixed writes (inserts
//! 50%, GET UPD + PUT 40%, GET UPD + ERASE 10%) on a dataset on SQLite, in
//! one run each without a mirror, with the change stream (to files, to a
//! PostgreSQL table), with an async
//! mirror on PostgreSQL paused during the load (what recording the changes
//! costs, without applying them), with it following, and with a sync one;
//! the async mirror's lag from commit to applied.
//!
//! vsamrd runs as a process of its own, as in production: its threads
//! serve it alone, not the load's clients too. Beside each rate, the CPU
//! time an operation cost vsamrd, the clients (this process) and
//! PostgreSQL's processes (the mirror), from `/proc`: a figure steadier
//! than the rate on a machine whose speed drifts, and one that tells where
//! a mirror's cost lies.
//!
//! Each run has a fresh server and data dir: the dataset is loaded without
//! a mirror, the server starts again with the run's configuration (a
//! mirror copies the records first), and the load starts once every mirror
//! follows.

use crate::latency::Process;
use anyhow::Result;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vsam_client::admin::{AdminClient, read_token};
use vsam_client::{ChainedRecord, Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::admin::{AdminCommand, MirrorRow};

const CONNECTIONS: u64 = 8;
const RUN: Duration = Duration::from_secs(6);
const RECORDS: u64 = 20_000;

fn record(key: u64, tag: u64) -> Vec<u8> {
    let mut record = format!("{key:010}-{tag:06}").into_bytes();
    record.resize(crate::RECORD_LENGTH, b' ');
    record
}

/// vsamrd from `binary` as a process of its own, as in production (its
/// threads are not the load's), with the dataset's backend `b` on SQLite,
/// backend `pg` on PostgreSQL and `mirror`'s sections, its files in `dir`;
/// its admin address.
async fn server(
    dir: tempfile::TempDir,
    binary: &Path,
    postgres: &str,
    mirror: &str,
) -> Result<(Process, String)> {
    let admin_address = format!("127.0.0.1:{}", crate::latency::free_port()?);
    let sections = format!(
        "[admin]\nlisten = \"{admin_address}\"\nwatch_files = false\n\
         [plugins.p]\npath = \"builtin:sql\"\n\
         [backends.b]\nplugin = \"p\"\ndatabase = \"sqlite:bench.db\"\n\
         [backends.pg]\nplugin = \"p\"\ndatabase = \"{postgres}\"\n\
         [routing]\ndefault = \"b\"\n{mirror}"
    );
    let process = crate::latency::vsamrd_in(dir, binary, &sections, None).await?;
    Ok((process, admin_address))
}

/// An admin client of `process`, at `address`.
async fn admin_of(process: &Process, address: &str) -> Result<AdminClient> {
    let token = read_token(&process.data_dir().join("admin.token"))?;
    AdminClient::connect(address, token).await
}

/// One writer until `stop`: its completed operations.
async fn writer(address: String, dataset: String, id: u64, stop: Arc<AtomicBool>) -> Result<u64> {
    let conn = Connection::connect(&address).await?;
    let ds = Dataset::open(&conn, &dataset, OpenIntent::Update, 1).await?;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (id + 1);
    let mut operations = 0u64;
    let mut next_insert = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Its own keys among the loaded ones: no waiting on another's.
        let mine = (seed % RECORDS) / CONNECTIONS * CONNECTIONS + id;
        let key = format!("{mine:010}");
        match seed % 10 {
            0..5 => {
                let key = 1_000_000_000 + id * 10_000_000 + next_insert;
                next_insert += 1;
                ds.put(0, RplOptions::direct(), 0, record(key, 0)).await?;
            }
            5..9 => {
                // An erased record comes back as an insert.
                match ds.read_for_update(key.as_bytes()).await {
                    Ok(_) => {
                        ds.put(
                            0,
                            RplOptions::direct().update(),
                            0,
                            record(mine, seed % 1000),
                        )
                        .await?;
                    }
                    Err(e) if e.vsam().is_some_and(|e| e.status.r15 == 8) => {
                        ds.put(0, RplOptions::direct(), 0, record(mine, 1)).await?;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            _ => match ds.read_for_update(key.as_bytes()).await {
                Ok(_) => ds.erase(0).await?,
                Err(e) if e.vsam().is_some_and(|e| e.status.r15 == 8) => {}
                Err(e) => return Err(e.into()),
            },
        }
        operations += 1;
    }
    ds.close().await?;
    Ok(operations)
}

async fn mirror_rows(admin: &mut AdminClient) -> Result<Vec<MirrorRow>> {
    Ok(admin.mirror_status().await?.mirrors)
}

/// Waits until every mirror has copied and applied everything.
async fn caught_up(admin: &mut AdminClient) -> Result<Duration> {
    let started = Instant::now();
    admin
        .mirrors_caught_up(Duration::from_millis(20), Duration::from_secs(600))
        .await?;
    Ok(started.elapsed())
}

/// What one run measured.
struct Run {
    /// Operations per second.
    rate: f64,
    /// CPU time per operation (µs).
    cpu_us: crate::cpu::Usage,
    /// The mirror's row after the run (a mirrored run).
    row: Option<MirrorRow>,
    /// Lags sampled every 10 ms during the load (ms).
    lags: Vec<f64>,
}

/// One run of `mirror`'s configuration on a fresh server; with `paused`,
/// its mirror is paused once it has caught up, so the load's changes are
/// recorded in the change log and wait there.
async fn run_one(
    binary: &Path,
    postgres: &str,
    dataset: &str,
    mirror: &str,
    paused: bool,
) -> Result<Run> {
    let (plain, _) = server(tempfile::tempdir()?, binary, postgres, "").await?;
    let conn = Connection::connect(plain.address()).await?;
    vsam_client::define(&conn, crate::bench_spec(dataset)).await?;
    let ds = Dataset::open(&conn, dataset, OpenIntent::Output, 1).await?;
    let chain: Vec<ChainedRecord> = (0..RECORDS)
        .map(|key| ChainedRecord {
            address: 0,
            record: record(key, 0),
        })
        .collect();
    ds.put_chain(0, RplOptions::sequential(), chain).await?;
    ds.close().await?;
    drop(conn);
    let dir = plain.stop()?;

    let (server, admin_address) = server(dir, binary, postgres, mirror).await?;
    let address = server.address().to_string();
    let mut admin = admin_of(&server, &admin_address).await?;
    let mirrored = !mirror.is_empty();
    if mirrored {
        caught_up(&mut admin).await?;
    }
    if paused {
        admin
            .request(AdminCommand::MirrorPause {
                backend: "pg".into(),
            })
            .await?;
    }
    let sampled = mirrored && !paused;
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        let mut admin = admin_of(&server, &admin_address).await?;
        tokio::spawn(async move {
            let mut lags = Vec::new();
            while sampled && !stop.load(Ordering::Relaxed) {
                if let Ok(rows) = mirror_rows(&mut admin).await {
                    lags.extend(rows.iter().map(|m| m.lag_seconds * 1000.0));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            lags
        })
    };
    eprintln!("mirrors: load for {} s", RUN.as_secs());
    let cpu_before = crate::cpu::Usage::now()?;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|id| {
            tokio::spawn(writer(
                address.clone(),
                dataset.to_string(),
                id,
                stop.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(RUN).await;
    stop.store(true, Ordering::Relaxed);
    let mut operations = 0;
    for task in tasks {
        operations += task.await??;
    }
    let rate = operations as f64 / started.elapsed().as_secs_f64();
    let cpu_us = cpu_before.per_operation(&crate::cpu::Usage::now()?, operations);
    let mut lags = sampler.await?;
    let row = if sampled {
        caught_up(&mut admin).await?;
        mirror_rows(&mut admin).await?.into_iter().next()
    } else {
        None
    };
    lags.sort_by(f64::total_cmp);
    Ok(Run {
        rate,
        cpu_us,
        row,
        lags,
    })
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Where a configuration names the stream's table; each run gets its own.
const STREAM_TABLE: &str = "stream_table_of_the_run";

/// Runs without a mirror, with the change stream only (to files, to a
/// PostgreSQL table), with an async mirror paused and following, and with a sync one (or those of `only`,
/// by short name), `rounds` times in turn (this machine's speed drifts by
/// a fifth between minutes: each ratio is the median of the ratios of
/// runs of one round, printed with their range); the report lines.
pub async fn run(
    binary: &Path,
    postgres: &str,
    rounds: usize,
    only: &[String],
) -> Result<Vec<String>> {
    let rule = |mode: &str| {
        format!("[[mirrors]]\ndatasets = \"BENCH.**\"\nbackends = [\"pg\"]\nmode = \"{mode}\"\n")
    };
    let all = [
        ("none", "no mirror", String::new(), false),
        (
            "stream",
            "change stream only",
            "[changes]\nstream = \"file\"\n".to_string(),
            false,
        ),
        (
            "table",
            "stream to a table",
            format!(
                "[changes]\nstream = \"postgres\"\nstream_database = \"{postgres}\"\nstream_table = \"{STREAM_TABLE}\"\n"
            ),
            false,
        ),
        ("paused", "async mirror paused", rule("async"), true),
        ("async", "async mirror", rule("async"), false),
        ("sync", "sync mirror", rule("sync"), false),
    ];
    if let Some(unknown) = only
        .iter()
        .find(|name| !all.iter().any(|(short, ..)| short == name))
    {
        anyhow::bail!(
            "--mirror-configs: no configuration {unknown:?}; the configurations are none, stream, table, paused, async and sync"
        );
    }
    let variants: Vec<(&str, String, bool)> = all
        .into_iter()
        .filter(|(short, ..)| only.is_empty() || only.iter().any(|name| name == short))
        .map(|(_, what, config, paused)| (what, config, paused))
        .collect();
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut vsamrd_cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut clients_cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut postgres_cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut lags: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut rows: Vec<Vec<MirrorRow>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for (i, (what, config, paused)) in variants.iter().enumerate() {
            let dataset = format!("BENCH.R{round}V{i}");
            eprintln!("mirrors: round {}, {what}", round + 1);
            // A table of its own for each run: a table belongs to one
            // server's change log, and each run's server is new.
            let config = config.replace(STREAM_TABLE, &format!("bench_stream_r{round}v{i}"));
            let run = run_one(binary, postgres, &dataset, &config, *paused).await?;
            rates[i].push(run.rate);
            vsamrd_cpu[i].push(run.cpu_us.of("vsamrd"));
            clients_cpu[i].push(run.cpu_us.of("bench"));
            postgres_cpu[i].push(run.cpu_us.of("postgres"));
            lags[i].extend(run.lags);
            rows[i].extend(run.row);
        }
    }
    let median = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        percentile(values, 0.5)
    };
    // Each round's ratio, of runs minutes apart at most: the machine's
    // drift between rounds cancels out of it.
    let mut paired: Vec<Vec<f64>> = rates
        .iter()
        .map(|rates_of| {
            rates_of
                .iter()
                .zip(&rates[0])
                .map(|(rate, base)| rate / base)
                .collect()
        })
        .collect();
    let base_name = variants[0].0;
    let mut lines = vec![format!(
        "mirrors: {CONNECTIONS} connections of mixed writes (inserts 50%, GET UPD + PUT 40%, GET UPD + ERASE 10%) on {RECORDS} records on SQLite, mirror on PostgreSQL; {rounds} rounds of {} s runs in turn, medians; ratio: the median of each round's ratio, and the lowest and highest",
        RUN.as_secs()
    )];
    for (i, (what, _, _)) in variants.iter().enumerate() {
        let rate = median(&mut rates[i]);
        let ratio = median(&mut paired[i]);
        let mut line = format!(
            "  {what:<19} {rate:>8.0} ops/s   ratio to {base_name} {ratio:.2} ({:.2}-{:.2})   CPU per op: vsamrd {:.0} us, clients {:.0} us, PostgreSQL {:.0} us",
            paired[i][0],
            paired[i][paired[i].len() - 1],
            median(&mut vsamrd_cpu[i]),
            median(&mut clients_cpu[i]),
            median(&mut postgres_cpu[i])
        );
        if let Some(worst) = rows[i].iter().max_by_key(|r| r.lag_p99_ms) {
            lags[i].sort_by(f64::total_cmp);
            line.push_str(&format!(
                "   commit-to-applied p99 {} ms (worst run); lag sampled every 10 ms: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
                worst.lag_p99_ms,
                percentile(&lags[i], 0.5),
                percentile(&lags[i], 0.99),
                lags[i].last().copied().unwrap_or(0.0)
            ));
        }
        lines.push(line);
    }
    Ok(lines)
}
