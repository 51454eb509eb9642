//! `vsam-bench`: throughput and p50/p99 latency of random GET by key,
//! batched browse and insert through vsamrd over TCP, at 1 and 16
//! connections, for the in-memory plugin, the CSV plugin, the SQL plugin on
//! SQLite and on PostgreSQL (a throwaway server started by
//! `scripts/postgres`), and the baselines measured in the same run: the
//! in-memory store compiled natively into the host (the cost of the
//! sandbox), and the SQL plugin's queries issued directly by a native client
//! (the cost of the redirector). The object-store plugin runs on a
//! throwaway SeaweedFS server beside a native S3 client making the same
//! object GETs and listings. Then latency during plugin swaps and a live
//! migration beside steady state, and `vsamr load` of a large file into
//! SQLite.

mod calls;
mod cobol;
mod cpu;
mod fleet;
mod latency;
mod mirrors;
mod objects;
mod sql;
mod swap;
mod units;

use anyhow::{Context, Result};
use clap::Parser;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};
use vsam_client::{Connection, Dataset, DatasetSpec, OpenIntent, Organization, RplOptions};
use vsam_host::RunningServer;
use vsam_host::config::Config;
use vsam_host::runtime::BackendHandle;
use vsam_host::runtime::call::NativeStore;
use vsam_plugin_sdk::Backend;

/// Measures vsamrd through its plugins.
#[derive(Parser)]
#[command(name = "vsam-bench", about)]
struct Args {
    /// Records loaded into each store (100 bytes each).
    #[arg(long, default_value_t = 20_000)]
    records: u64,
    /// Random GETs per run.
    #[arg(long, default_value_t = 100_000)]
    gets: u64,
    /// Records read per browse run.
    #[arg(long, default_value_t = 1_000_000)]
    browse: u64,
    /// Direct store calls per measurement of the bare call cost (no TCP).
    #[arg(long, default_value_t = 200_000)]
    calls: u64,
    /// Records in the large CSV file opened and browsed at the end (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    big_csv: u64,
    /// Records loaded into SQLite by `vsamr load` at the end (0: skip).
    #[arg(long, default_value_t = 1_000_000)]
    load: u64,
    /// Reader instances of the PostgreSQL backend (GETs and browses on
    /// their own connections; 0: the writer serves everything). SQLite
    /// runs without: its lookups do not wait on a network.
    #[arg(long, default_value_t = 0)]
    postgres_readers: usize,
    /// Random GETs per run on the object store (each reads an object).
    #[arg(long, default_value_t = 10_000)]
    s3_gets: u64,
    /// Records read per browse run on the object store.
    #[arg(long, default_value_t = 200_000)]
    s3_browse: u64,
    /// Records of the COBOL batch job.
    #[arg(long, default_value_t = 100_000)]
    cobol_records: u64,
    /// Rounds of the mirrors part (each runs every configuration for 6 s,
    /// in turn): more rounds, steadier medians on a machine whose speed
    /// drifts.
    #[arg(long, default_value_t = 3)]
    mirror_rounds: usize,
    /// Run only these configurations of the mirrors part (comma-separated:
    /// `none`, `stream`, `table`, `paused`, `async`, `sync`; default all): to
    /// profile one, or to compare two in more rounds. Ratios are to `none`
    /// when it runs, else to the first one run.
    #[arg(long, value_delimiter = ',')]
    mirror_configs: Vec<String>,
    /// Measure only the stores whose name starts with one of these
    /// (comma-separated, e.g. `sqlite,postgres`; the direct baselines come
    /// with their store); `units` for the online mix with units of work
    /// against single durable writes; `hot-swap` for latency during plugin swaps and a
    /// live migration; `cobol` for the COBOL batch job on GnuCOBOL and
    /// through the bridge; `fleet` for 1, 2 and 3 servers on one
    /// PostgreSQL; `latency` for random GETs through vsamrd as a process
    /// of its own beside Redis and pgbench; `mirrors` for the cost of an
    /// async and a sync mirror on PostgreSQL to a primary on SQLite, and
    /// the async mirror's lag.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The vsamrd binary the latency run measures (default: the one built
    /// beside this program).
    #[arg(long)]
    vsamrd: Option<std::path::PathBuf>,
    /// An earlier vsamrd binary the latency run measures beside it, for
    /// ratios of one run (build it from another checkout).
    #[arg(long)]
    baseline_vsamrd: Option<std::path::PathBuf>,
    /// Run each vsamrd of the latency run under `perf record -g`, writing
    /// its profile into this directory (`scripts/flamegraphs DIR` draws
    /// them).
    #[arg(long)]
    perf_dir: Option<std::path::PathBuf>,
    /// The latency run's backends through vsamrd (comma-separated:
    /// `memory`, `sqlite`, `postgres`; default all), to profile one.
    #[arg(long, value_delimiter = ',')]
    latency_backends: Vec<String>,
    /// The latency run's numbers of connections (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16])]
    latency_connections: Vec<usize>,
}

/// `vsamr load` (the real command, next to this binary) of `count`
/// 100-byte records from a file into a dataset on embedded SQLite.
async fn vsamr_load(count: u64) -> Result<String> {
    let vsamr = std::env::current_exe()?.with_file_name("vsamr");
    anyhow::ensure!(
        vsamr.exists(),
        "{} is missing: build it first (cargo build --release -p vsam-client)",
        vsamr.display()
    );
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("records.txt");
    let mut text = Vec::with_capacity(count as usize * (RECORD_LENGTH + 1));
    for i in 0..count {
        text.extend_from_slice(&record(i));
        text.push(b'\n');
    }
    std::fs::write(&file, text)?;
    let server = start("sqlite (wasm)", dir.path(), None, 0).await?;
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await?;
    vsam_client::define(&conn, bench_spec("BENCH.LOAD")).await?;
    let started = Instant::now();
    let mut command = std::process::Command::new(&vsamr);
    command
        .args(["--server", &address, "load", "BENCH.LOAD"])
        .arg(&file);
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        output.status.success(),
        "vsamr load failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    server.stop().await;
    Ok(format!(
        "vsamr load of {count} records of {RECORD_LENGTH} bytes into SQLite: {elapsed:.2} s, {:.0} records/s (vsamr says: {})",
        count as f64 / elapsed,
        String::from_utf8_lossy(&output.stdout).trim()
    ))
}

const KEY_LENGTH: usize = 10;
const RECORD_LENGTH: usize = 100;
const DATASET: &str = "BENCH.KSDS";

/// The benchmark datasets: KSDS, 10-byte keys, 100-byte records, on backend `b`.
fn bench_spec(name: &str) -> DatasetSpec {
    DatasetSpec {
        name: name.into(),
        organization: Organization::Ksds,
        key_offset: 0,
        key_length: KEY_LENGTH as u16,
        min_record: 0,
        max_record: RECORD_LENGTH as u32,
        codepage: "ascii".into(),
        backend: "b".into(),
        layout: String::new(),
    }
}

fn record(i: u64) -> Vec<u8> {
    let mut record = format!("{i:010}").into_bytes();
    record.resize(RECORD_LENGTH, b'.');
    record
}

/// One measured run.
struct Figure {
    store: &'static str,
    operation: &'static str,
    connections: usize,
    operations: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
    /// CPU per operation of each process (µs), where it was measured.
    cpu: Option<cpu::Usage>,
}

impl Figure {
    /// A run of `per` operations on each of `connections` connections.
    fn of(
        store: &'static str,
        operation: &'static str,
        connections: usize,
        per: u64,
        elapsed: Duration,
        latency: Histogram<u64>,
    ) -> Self {
        Self {
            store,
            operation,
            connections,
            operations: per * connections as u64,
            elapsed,
            latency,
            cpu: None,
        }
    }

    /// What [`each`] measured of `per` operations on each of `connections`
    /// connections, with the CPU its processes used.
    fn measured(
        store: &'static str,
        operation: &'static str,
        connections: usize,
        per: u64,
        run: Measured,
    ) -> Self {
        let mut figure = Self::of(store, operation, connections, per, run.elapsed, run.latency);
        figure.cpu = Some(
            run.cpu_before
                .per_operation(&run.cpu_after, figure.operations),
        );
        figure
    }

    /// A browse on one connection that read `read` records.
    fn browse(store: &'static str, read: u64, elapsed: Duration, latency: Histogram<u64>) -> Self {
        Self {
            store,
            operation: "browse (batched)",
            connections: 1,
            operations: read,
            elapsed,
            latency,
            cpu: None,
        }
    }

    fn per_second(&self) -> f64 {
        self.operations as f64 / self.elapsed.as_secs_f64()
    }
}

/// The servers the benchmark starts for the stores that need one.
struct Services {
    postgres: vsam_conformance::Postgres,
    seaweed: vsam_conformance::SeaweedFs,
}

pub(crate) async fn start(
    store: &'static str,
    dir: &Path,
    services: Option<&Services>,
    postgres_readers: usize,
) -> Result<RunningServer> {
    let services = || services.context("this store needs the benchmark's servers");
    let sql = |database: &str, readers: usize| {
        format!(
            "[plugins.p]\npath = \"builtin:sql\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"{database}\"\nreaders = {readers}\n"
        )
    };
    let (plugins, extra) = match store {
        "sqlite (wasm)" => (sql("sqlite:bench.db", 0), BTreeMap::new()),
        "postgres (wasm)" => (
            sql(&services()?.postgres.url, postgres_readers),
            BTreeMap::new(),
        ),
        "s3 (wasm)" => (
            format!(
                // A cache of 8 intervals: every browse pass reads the
                // bucket again, as a dataset larger than the cache would.
                "[plugins.p]\npath = \"builtin:s3\"\n[backends.b]\nplugin = \"p\"\nbucket = {}\nparams = {{ cache = \"8\" }}\n",
                services()?.seaweed.bucket_table()
            ),
            BTreeMap::new(),
        ),
        "memory (wasm)" => (
            "[plugins.p]\npath = \"builtin:memory\"\n[backends.b]\nplugin = \"p\"\n".to_string(),
            BTreeMap::new(),
        ),
        "csv (wasm)" => (
            "[plugins.p]\npath = \"builtin:csv\"\n[backends.b]\nplugin = \"p\"\ndirectory = \"csv\"\n".to_string(),
            BTreeMap::new(),
        ),
        _ => {
            let native = vsam_example_memory::MemoryStore::init(&[]).map_err(anyhow::Error::msg)?;
            let handle =
                BackendHandle::spawn(
                    "b",
                    vsam_host::runtime::VersionInfo::native("memory (native)"),
                    Box::new(NativeStore(native)),
                    Vec::new(),
                )?;
            (String::new(), BTreeMap::from([("b".to_string(), handle)]))
        }
    };
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n{plugins}",
        dir.display()
    );
    let config = Config::parse(&text, "<bench>", Path::new("."))?;
    RunningServer::start_with(&config, extra).await
}

/// `count` connections to `address`, each with `dataset` open.
async fn open_many(
    address: &str,
    dataset: &str,
    count: usize,
    intent: OpenIntent,
) -> Result<Vec<Dataset>> {
    let mut out = Vec::new();
    for _ in 0..count {
        let conn = Connection::connect(address).await?;
        out.push(Dataset::open(&conn, dataset, intent, 1).await?);
    }
    Ok(out)
}

/// Random GETs by key (keys below `keys`, each checked) of `dataset`
/// through the vsamrd at `address`, `gets` in all at 1 and then at 16
/// connections.
pub(crate) async fn random_gets(
    store: &'static str,
    address: &str,
    dataset: &str,
    gets: u64,
    keys: u64,
    counts: &[usize],
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for &connections in counts {
        let datasets = open_many(address, dataset, connections, OpenIntent::Input).await?;
        let per = gets / connections as u64;
        let run = each(datasets, per, move |ds: Dataset, c, i| async move {
            let (n, key) = sql::key(c, i, keys);
            let found = ds.reading(RplOptions::direct()).key(&key).records().await?;
            anyhow::ensure!(
                found.len() == 1 && found[0].data == record(n),
                "wrong record for key {n}"
            );
            Ok(ds)
        })
        .await?;
        figures.push(Figure::measured(store, "random GET", connections, per, run));
    }
    Ok(figures)
}

/// What [`each`] measured.
pub(crate) struct Measured {
    elapsed: Duration,
    latency: Histogram<u64>,
    cpu_before: cpu::Usage,
    cpu_after: cpu::Usage,
}

/// Runs `per` operations on each client concurrently, one at a time per
/// client, timing each; `operation(client, index, op)` gives the client
/// back. Returns the elapsed time, the latencies and the CPU used.
pub(crate) async fn each<C, F, Fut>(clients: Vec<C>, per: u64, operation: F) -> Result<Measured>
where
    C: Send + 'static,
    F: Fn(C, usize, u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<C>> + Send,
{
    let cpu_before = cpu::Usage::now()?;
    let started = Instant::now();
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(index, mut client)| {
            let operation = operation.clone();
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3)?;
                for i in 0..per {
                    let t = Instant::now();
                    client = operation(client, index, i).await?;
                    histogram.record(t.elapsed().as_nanos() as u64).ok();
                }
                anyhow::Ok((histogram, client))
            })
        })
        .collect();
    let mut total = Histogram::<u64>::new(3)?;
    let mut clients = Vec::new();
    for task in tasks {
        let (histogram, client) = task.await??;
        total.add(histogram).ok();
        clients.push(client);
    }
    let elapsed = started.elapsed();
    // Read while the clients are connected: a server process that serves
    // one connection (PostgreSQL's) takes its CPU time with it when it ends.
    let cpu_after = cpu::Usage::now()?;
    drop(clients);
    Ok(Measured {
        elapsed,
        latency: total,
        cpu_before,
        cpu_after,
    })
}

async fn bench_store(
    store: &'static str,
    args: &Args,
    services: &Services,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = start(store, dir.path(), Some(services), args.postgres_readers).await?;
    let (gets, browse) = match store {
        "s3 (wasm)" => (args.s3_gets, args.s3_browse),
        _ => (args.gets, args.browse),
    };
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await?;
    vsam_client::define(&conn, bench_spec(DATASET)).await?;

    // Insert: 1 connection loads the first half, 16 the second half.
    let half = args.records / 2;
    for (connections, base) in [(1usize, 0u64), (16, half)] {
        let datasets = open_many(&address, DATASET, connections, OpenIntent::Update).await?;
        let per = half / connections as u64;
        let run = each(datasets, per, move |ds: Dataset, c, i| async move {
            ds.put(
                0,
                RplOptions::direct(),
                0,
                record(base + c as u64 * per + i),
            )
            .await?;
            Ok(ds)
        })
        .await?;
        figures.push(Figure::measured(store, "insert", connections, per, run));
    }

    figures.extend(random_gets(store, &address, DATASET, gets, half, &[1, 16]).await?);

    // Browse: batched sequential GETs of 1,000 records, from the start again
    // at end of data, until `browse` records were read.
    let datasets = open_many(&address, DATASET, 1, OpenIntent::Input).await?;
    let target = browse;
    let started = Instant::now();
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let mut read = 0u64;
    let ds = &datasets[0];
    while read < target {
        let t = Instant::now();
        match ds.browse(1000).await {
            Ok(batch) => {
                read += batch.len() as u64;
                latency
                    .record(t.elapsed().as_nanos() as u64 / batch.len().max(1) as u64)
                    .ok();
            }
            Err(e) if e.is_end_of_data() => {
                ds.point(
                    0,
                    RplOptions::sequential().greater_or_equal(),
                    &[b'0'; KEY_LENGTH],
                    0,
                    0,
                )
                .await?
            }
            Err(e) => return Err(e.into()),
        }
    }
    figures.push(Figure::browse(store, read, started.elapsed(), latency));
    // The direct SQL baseline, on the table vsamrd loaded, vsamrd idle.
    match store {
        "sqlite (wasm)" => figures
            .extend(sql::sqlite(&dir.path().join("bench.db"), args.gets, args.browse, half).await?),
        "postgres (wasm)" => figures
            .extend(sql::postgres(&services.postgres.url, args.gets, args.browse, half).await?),
        "s3 (wasm)" => {
            figures.extend(objects::direct(&services.seaweed, gets, browse, half).await?)
        }
        _ => {}
    }
    server.stop().await;
    Ok(())
}

/// A CSV file of `count` records written directly (as a person or an export
/// job would), adopted by DEFINE, then opened, browsed and read at random.
async fn big_csv(count: u64) -> Result<Vec<String>> {
    use std::io::Write;
    let dir = tempfile::tempdir()?;
    let server = start("csv (wasm)", dir.path(), None, 0).await?;
    std::fs::create_dir_all(dir.path().join("csv"))?;
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(dir.path().join("csv/BENCH.BIG.csv"))?);
    writeln!(file, "key,record")?;
    for i in 0..count {
        let record = record(i);
        writeln!(file, "{i:010},{}", std::str::from_utf8(&record)?)?;
    }
    file.flush()?;
    drop(file);
    let size = std::fs::metadata(dir.path().join("csv/BENCH.BIG.csv"))?.len();
    let address = server.addr.to_string();
    let conn = Connection::connect(&address).await?;
    vsam_client::define(&conn, bench_spec("BENCH.BIG")).await?;
    let ds = Dataset::open(&conn, "BENCH.BIG", OpenIntent::Input, 1).await?;
    let started = Instant::now();
    ds.reading(RplOptions::direct())
        .key(format!("{:010}", count / 2).as_bytes())
        .records()
        .await?;
    let opened = started.elapsed();
    let started = Instant::now();
    ds.point(
        0,
        RplOptions::sequential().greater_or_equal(),
        &[b'0'; KEY_LENGTH],
        0,
        0,
    )
    .await?;
    let mut read = 0u64;
    loop {
        match ds.browse(1000).await {
            Ok(batch) => read += batch.len() as u64,
            Err(e) if e.is_end_of_data() => break,
            Err(e) => return Err(e.into()),
        }
    }
    let browse = started.elapsed();
    anyhow::ensure!(read == count, "browsed {read} of {count} records");
    let gets = 10_000u64;
    let started = Instant::now();
    for i in 0..gets {
        let n = i.wrapping_mul(2_654_435_761) % count;
        ds.reading(RplOptions::direct())
            .key(format!("{n:010}").as_bytes())
            .records()
            .await?;
    }
    let random = started.elapsed();
    server.stop().await;
    Ok(vec![
        format!(
            "large CSV: {count} records, {:.0} MB file",
            size as f64 / 1e6
        ),
        format!(
            "  first access (the plugin reads the file once): {:.2} s",
            opened.as_secs_f64()
        ),
        format!(
            "  browse all, batched: {:.2} s ({:.0} records/s)",
            browse.as_secs_f64(),
            read as f64 / browse.as_secs_f64()
        ),
        format!(
            "  random GET afterwards: {:.1} us each (no rereading)",
            random.as_secs_f64() * 1e6 / gets as f64
        ),
    ])
}

/// The vsamrd binary the process runs measure: `--vsamrd`, or the one
/// built beside this one.
fn vsamrd_binary(args: &Args) -> Result<std::path::PathBuf> {
    match &args.vsamrd {
        Some(path) => Ok(path.clone()),
        None => Ok(std::env::current_exe()?.with_file_name("vsamrd")),
    }
}

fn us(nanos: u64) -> f64 {
    nanos as f64 / 1000.0
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // On a plain thread: a call blocks its thread, which a tokio thread may not do.
    let calls = args.calls;
    let handle = runtime.handle().clone();
    // `--calls 0` leaves the part out (its figures would divide by zero).
    let (call_costs, call_notes) = match calls {
        0 => (Vec::new(), Vec::new()),
        _ => std::thread::spawn(move || calls::run(calls, handle))
            .join()
            .expect("call cost")?,
    };
    let (figures, big) = runtime.block_on(async {
        let mut figures = Vec::new();
        let services = Services {
            postgres: vsam_conformance::Postgres::start()?,
            seaweed: vsam_conformance::SeaweedFs::start()?,
        };
        for store in [
            "memory (native)",
            "memory (wasm)",
            "csv (wasm)",
            "sqlite (wasm)",
            "postgres (wasm)",
            "s3 (wasm)",
        ] {
            if args.only.is_empty()
                || args
                    .only
                    .iter()
                    .any(|only| store.starts_with(only.as_str()))
            {
                bench_store(store, &args, &services, &mut figures).await?;
            }
        }
        let mut fleet = Vec::new();
        if args.only.is_empty() || args.only.iter().any(|only| only == "fleet") {
            fleet = fleet::run(&services).await?;
        }
        if args.only.is_empty() || args.only.iter().any(|only| only == "latency") {
            let settings = latency::Settings {
                records: args.records,
                gets: args.gets,
                vsamrd: vsamrd_binary(&args)?,
                baseline: args.baseline_vsamrd.clone(),
                postgres_url: services.postgres.url.clone(),
                postgres_readers: args.postgres_readers,
                perf_dir: args.perf_dir.clone(),
                backends: args.latency_backends.clone(),
                connections: args.latency_connections.clone(),
            };
            let (measured, lines) = latency::run(&settings).await?;
            figures.extend(measured);
            fleet.extend(lines);
        }
        if args.only.is_empty() || args.only.iter().any(|only| only == "mirrors") {
            fleet.extend(
                mirrors::run(
                    &vsamrd_binary(&args)?,
                    &services.postgres.url,
                    args.mirror_rounds.max(1),
                    &args.mirror_configs,
                )
                .await?,
            );
        }
        drop(services);
        let mut hot_swap = Vec::new();
        if args.only.is_empty() || args.only.iter().any(|only| only == "hot-swap") {
            hot_swap = swap::run(args.records).await?;
        }
        if args.only.is_empty() || args.only.iter().any(|only| only == "units") {
            hot_swap.extend(units::run(args.records).await?);
        }
        if args.only.is_empty() || args.only.iter().any(|only| only == "cobol") {
            hot_swap.extend(cobol::run(args.cobol_records).await?);
        }
        let mut big = if args.big_csv > 0 {
            big_csv(args.big_csv).await?
        } else {
            Vec::new()
        };
        if args.load > 0 {
            big.push(vsamr_load(args.load).await?);
        }
        big.splice(0..0, hot_swap);
        big.splice(0..0, fleet);
        Ok::<_, anyhow::Error>((figures, big))
    })?;
    println!(
        "vsam-bench: {} records of {RECORD_LENGTH} bytes, {} random GETs, {} records browsed; PostgreSQL backend with {} readers; {} cores",
        args.records,
        args.gets,
        args.browse,
        args.postgres_readers,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if !figures.is_empty() {
        println!(
            "{:<17} {:<17} {:>5} {:>12} {:>10} {:>10}   cpu us per operation",
            "store", "operation", "conns", "ops/s", "p50 us", "p99 us"
        );
    }
    for f in &figures {
        println!(
            "{:<17} {:<17} {:>5} {:>12.0} {:>10.1} {:>10.1}   {}",
            f.store,
            f.operation,
            f.connections,
            f.per_second(),
            us(f.latency.value_at_quantile(0.5)),
            us(f.latency.value_at_quantile(0.99)),
            f.cpu.as_ref().map(cpu::Usage::summary).unwrap_or_default()
        );
    }
    let find = |store: &str, operation: &str, connections: usize| {
        figures
            .iter()
            .find(|f| f.store == store && f.operation == operation && f.connections == connections)
    };
    if !call_costs.is_empty() {
        println!(
            "\nplugin calls, no TCP, one thread (GET of 1000 records; INSERT without sync), same run:"
        );
    }
    for cost in &call_costs {
        // Each store beside its Rust component: the log store, and SQLite
        // through the SQL plugin.
        let family = cost.store.split(',').next().unwrap_or_default();
        let base = format!("{family}, Rust, wasm");
        let ratio = call_costs
            .iter()
            .find(|c| c.store == base && c.store != cost.store)
            .map(|base| {
                format!(
                    "  {:.2}x / {:.2}x the Rust component",
                    cost.get_us / base.get_us,
                    cost.insert_us / base.insert_us
                )
            })
            .unwrap_or_default();
        println!(
            "  {:<22} GET {:>8.2} us   INSERT {:>8.2} us{ratio}",
            cost.store, cost.get_us, cost.insert_us
        );
    }
    for note in &call_notes {
        println!("  {note}");
    }
    let memory = |store: &str| {
        call_costs
            .iter()
            .find(|c| c.store == store)
            .map(|c| c.get_us)
    };
    if let (Some(wasm_call), Some(native_call)) =
        (memory("memory, Rust, wasm"), memory("memory, Rust, native"))
    {
        println!("\nsandbox cost (memory store, wasm vs native, same run):");
        println!(
            "  bare GET call, no TCP: {wasm_call:.2} us wasm vs {native_call:.2} us native: {:+.2} us per call",
            wasm_call - native_call
        );
    }
    for (operation, connections) in [
        ("random GET", 1),
        ("random GET", 16),
        ("insert", 1),
        ("browse (batched)", 1),
    ] {
        if let (Some(wasm), Some(native)) = (
            find("memory (wasm)", operation, connections),
            find("memory (native)", operation, connections),
        ) {
            let per_op = |f: &Figure| {
                f.elapsed.as_secs_f64() * 1e6 * f.connections as f64 / f.operations as f64
            };
            println!(
                "  {operation:<17} {connections:>2} conn: {:+.2} us per operation ({:.2} vs {:.2} us), throughput ratio {:.2}",
                per_op(wasm) - per_op(native),
                per_op(wasm),
                per_op(native),
                wasm.per_second() / native.per_second()
            );
        }
    }
    let mut heading = Some(
        "\nredirector cost (SQL plugin through vsamrd vs the same SQL from a native client, same run):",
    );
    for database in ["sqlite", "postgres", "s3"] {
        for (operation, connections) in [
            ("random GET", 1),
            ("random GET", 16),
            ("browse (batched)", 1),
        ] {
            let through = format!("{database} (wasm)");
            let direct = format!("{database} (direct)");
            if let (Some(through), Some(direct)) = (
                find(&through, operation, connections),
                find(&direct, operation, connections),
            ) {
                if let Some(heading) = heading.take() {
                    println!("{heading}");
                }
                println!(
                    "  {database:<8} {operation:<17} {connections:>2} conn: {:>9.0} vs {:>9.0} ops/s direct, ratio {:.2}",
                    through.per_second(),
                    direct.per_second(),
                    through.per_second() / direct.per_second()
                );
            }
        }
    }
    // The redirector's own ceiling on this machine: a store that costs
    // nothing (native, in memory) behind the same TCP round trip.
    if let (Some(sqlite), Some(ceiling)) = (
        find("sqlite (wasm)", "random GET", 16),
        find("memory (native)", "random GET", 16),
    ) {
        println!(
            "  sqlite   random GET        16 conn: {:>9.0} vs {:>9.0} ops/s of a native in-memory store through vsamrd (the TCP ceiling), ratio {:.2}",
            sqlite.per_second(),
            ceiling.per_second(),
            sqlite.per_second() / ceiling.per_second()
        );
    }
    println!();
    for line in big {
        println!("{line}");
    }
    Ok(())
}
