//! One request at a time against the servers vsamrd is compared with:
//! random GETs by key at 1 and 16 connections through vsamrd running as a
//! process of its own (as operators run it, so the client and the server
//! share nothing but the loopback), beside Redis GET (a redis-server of
//! this run, read by a client in this program the same way, and by
//! redis-benchmark) and PostgreSQL lookups (a direct tokio-postgres client
//! on the table vsamrd wrote, and `pgbench -S -M prepared`).
//!
//! `--baseline-vsamrd PATH` measures an earlier build of vsamrd in the same
//! run, so a change to the request path is judged by a ratio, not by
//! figures from another hour of a machine whose speed varies.

use crate::{Figure, RECORD_LENGTH, bench_spec, each, record, sql};
use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::codec::{Decoder, Encoder};
use vsam_client::{ChainedRecord, Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::{
    Answer, ClientCodec, DEFAULT_MAX_FRAME, Get, Hello, Open, PROTOCOL_MAJOR, PROTOCOL_MINOR,
    Request, StringRef,
};

/// What the latency run measures, and with which vsamrd builds.
pub struct Settings {
    /// Records in each store (keys 0 to `records - 1`).
    pub records: u64,
    /// Random GETs per measurement, spread over its connections.
    pub gets: u64,
    /// The vsamrd binary measured.
    pub vsamrd: PathBuf,
    /// An earlier vsamrd binary measured beside it, if any.
    pub baseline: Option<PathBuf>,
    /// The PostgreSQL server of this run.
    pub postgres_url: String,
    /// Reader instances of the PostgreSQL backend.
    pub postgres_readers: usize,
    /// If set, each vsamrd runs under `perf record -g`, its profile
    /// written here as `STORE.data` (`scripts/flamegraphs` draws them).
    pub perf_dir: Option<PathBuf>,
    /// The backends measured through vsamrd (`memory`, `sqlite`,
    /// `postgres`); empty: all.
    pub backends: Vec<String>,
    /// The numbers of connections measured.
    pub connections: Vec<usize>,
}

impl Settings {
    /// Refuses a narrowing that would measure nothing or divide by zero: a
    /// backend name that is not one of the run's (a typo would otherwise
    /// print an empty table), or 0 connections.
    fn check(&self) -> Result<()> {
        let known: Vec<&str> = backends(self).iter().map(|(name, _)| *name).collect();
        if let Some(unknown) = self.backends.iter().find(|b| !known.contains(&b.as_str())) {
            bail!(
                "--latency-backends: no backend {unknown:?} in the latency run; it has {}",
                known.join(", ")
            );
        }
        anyhow::ensure!(
            !self.connections.is_empty() && !self.connections.contains(&0),
            "--latency-connections: give one or more numbers of connections, each at least 1"
        );
        Ok(())
    }
}

/// A server process of this run, killed when dropped (a profiler around
/// it is interrupted instead, so that it writes its profile).
pub(crate) struct Process {
    child: Child,
    address: String,
    profiled: bool,
    _dir: tempfile::TempDir,
}

impl Process {
    /// The address it serves.
    pub(crate) fn address(&self) -> &str {
        &self.address
    }

    /// Its data dir (a vsamrd's).
    pub(crate) fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    /// Stops it as its operator would (SIGTERM, then waits for it to
    /// exit): its directory, for a server started again on the same data.
    pub(crate) fn stop(mut self) -> Result<tempfile::TempDir> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        self.child.wait()?;
        let dir = tempfile::tempdir()?;
        Ok(std::mem::replace(&mut self._dir, dir))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.profiled {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on now.
pub(crate) fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until `ready` succeeds, or the process exits or 60 s pass.
async fn wait_ready<F, Fut>(child: &mut Child, what: &str, log: &Path, ready: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "{what} exited at start ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if ready().await {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{what} did not answer within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// vsamrd from `binary`, serving one backend `b` configured by `backend`;
/// under `perf record` into `profile`, if given.
pub(crate) async fn vsamrd(
    binary: &Path,
    backend: &str,
    profile: Option<PathBuf>,
) -> Result<Process> {
    vsamrd_in(tempfile::tempdir()?, binary, backend, profile).await
}

/// [`vsamrd`] with its files in `dir` (a server's before it, whose data it
/// takes over).
pub(crate) async fn vsamrd_in(
    dir: tempfile::TempDir,
    binary: &Path,
    backend: &str,
    profile: Option<PathBuf>,
) -> Result<Process> {
    anyhow::ensure!(
        binary.exists(),
        "{} is missing: build it first (cargo build --release -p vsam-host)",
        binary.display()
    );
    let address = format!("127.0.0.1:{}", free_port()?);
    let config = dir.path().join("vsamrd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"{address}\"\ndata_dir = \"{}\"\n{backend}",
            dir.path().join("data").display()
        ),
    )?;
    let log = dir.path().join("vsamrd.log");
    let mut command = match &profile {
        Some(data) => {
            let mut perf = Command::new("perf");
            perf.args(["record", "-g", "-F", "1999", "-q", "-o"])
                .arg(data)
                .arg("--")
                .arg(binary);
            perf
        }
        None => Command::new(binary),
    };
    let mut child = command
        .arg("--config")
        .arg(&config)
        .env("VSAMRD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    wait_ready(&mut child, "vsamrd", &log, || async {
        Connection::connect(&address).await.is_ok()
    })
    .await?;
    Ok(Process {
        child,
        address,
        profiled: profile.is_some(),
        _dir: dir,
    })
}

/// A redis-server of this run: in memory only, on a loopback port.
async fn redis() -> Result<Process> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let log = dir.path().join("redis.log");
    let mut child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no", "--logfile"])
        .arg(&log)
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .spawn()
        .context("starting redis-server (scripts/setup installs it)")?;
    let address = format!("127.0.0.1:{port}");
    wait_ready(&mut child, "redis-server", &log, || async {
        match Resp::connect(&address).await {
            Ok(mut client) => client.command(&[b"PING"]).await.is_ok(),
            Err(_) => false,
        }
    })
    .await?;
    Ok(Process {
        child,
        address,
        profiled: false,
        _dir: dir,
    })
}

/// A Redis client of a few lines (RESP2 commands, bulk string or simple
/// answers), so that Redis is read the way this program reads vsamrd: one
/// request, then its answer, per connection.
struct Resp {
    stream: BufReader<TcpStream>,
    line: Vec<u8>,
}

impl Resp {
    async fn connect(address: &str) -> Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::new(stream),
            line: Vec::new(),
        })
    }

    /// Sends one command and returns its answer: a bulk string's bytes, or
    /// a simple answer's text.
    async fn command(&mut self, parts: &[&[u8]]) -> Result<Vec<u8>> {
        let mut request = format!("*{}\r\n", parts.len()).into_bytes();
        for part in parts {
            request.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
            request.extend_from_slice(part);
            request.extend_from_slice(b"\r\n");
        }
        self.stream.get_mut().write_all(&request).await?;
        self.line.clear();
        self.stream.read_until(b'\n', &mut self.line).await?;
        let header = std::str::from_utf8(&self.line)?.trim_end();
        match header.as_bytes().first() {
            Some(b'$') => {
                let length: usize = header[1..].parse().context("a bulk string length")?;
                let mut value = vec![0; length + 2];
                self.stream.read_exact(&mut value).await?;
                value.truncate(length);
                Ok(value)
            }
            Some(b'+') => Ok(header.as_bytes()[1..].to_vec()),
            _ => bail!("Redis answered {header:?}"),
        }
    }
}

/// A client of vsamrd's protocol of a few lines, the counterpart of
/// [`Resp`]: one socket, a request written whole, then its answer read, in
/// the caller's task. The client library does more per request (answers
/// routed by id to any number of callers, failover, repositioning), and on
/// two cores shared with the server its CPU is the server's loss: beside
/// it, this client tells what the server alone is worth.
struct Minimal {
    stream: TcpStream,
    codec: ClientCodec,
    input: BytesMut,
    output: BytesMut,
    handle: u32,
}

impl Minimal {
    /// Connects, shakes hands and opens `dataset` for input.
    async fn connect(address: &str, dataset: &str) -> Result<Self> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let mut client = Self {
            stream,
            codec: ClientCodec::new(DEFAULT_MAX_FRAME as usize),
            input: BytesMut::with_capacity(4096),
            output: BytesMut::with_capacity(4096),
            handle: 0,
        };
        let hello = Request::Hello(Hello {
            major: PROTOCOL_MAJOR,
            minor: PROTOCOL_MINOR,
            max_frame: DEFAULT_MAX_FRAME,
            client: "vsam-bench minimal client".into(),
            token: None,
        });
        match client.call(hello).await? {
            Answer::Welcome(_) => {}
            other => bail!("handshake answered {other:?}"),
        }
        let open = Request::Open(Open {
            dataset: dataset.into(),
            intent: OpenIntent::Input,
            access: 0,
            strings: 1,
        });
        match client.call(open).await? {
            Answer::Opened { handle, .. } => client.handle = handle,
            other => bail!("OPEN {dataset} answered {other:?}"),
        }
        Ok(client)
    }

    /// Sends one request and reads its answer.
    async fn call(&mut self, request: Request) -> Result<Answer> {
        self.output.clear();
        self.codec.encode((1, request), &mut self.output)?;
        self.stream.write_all(&self.output).await?;
        loop {
            if let Some(incoming) = self.codec.decode(&mut self.input)? {
                return Ok(incoming.message?);
            }
            if self.stream.read_buf(&mut self.input).await? == 0 {
                bail!("vsamrd closed the connection");
            }
        }
    }

    /// The record of `key` (a direct GET).
    async fn get(&mut self, key: &[u8]) -> Result<Vec<u8>> {
        let get = Request::Get(Get {
            target: StringRef {
                handle: self.handle,
                string: 0,
            },
            options: RplOptions::direct().to_bits(),
            key: key.to_vec(),
            generic_length: 0,
            address: 0,
            max_records: 1,
        });
        match self.call(get).await? {
            Answer::Result { status, records } if status.r15 == 0 && records.len() == 1 => {
                Ok(records
                    .into_iter()
                    .next()
                    .map(|r| r.data)
                    .unwrap_or_default())
            }
            other => bail!("GET answered {other:?}"),
        }
    }
}

/// Random GETs at 1 and 16 connections through the vsamrd at `address`,
/// by [`Minimal`] clients, on `dataset` (loaded with `records` records).
async fn minimal_gets(
    store: &'static str,
    address: &str,
    dataset: &str,
    settings: &Settings,
) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for &connections in &settings.connections {
        let mut clients = Vec::new();
        for _ in 0..connections {
            clients.push(Minimal::connect(address, dataset).await?);
        }
        let per = settings.gets / connections as u64;
        let records = settings.records;
        let run = each(clients, per, move |mut client: Minimal, c, i| async move {
            let (n, key) = sql::key(c, i, records);
            let found = client.get(&key).await?;
            anyhow::ensure!(found == record(n), "wrong record for key {n}");
            Ok(client)
        })
        .await?;
        figures.push(Figure::measured(store, "random GET", connections, per, run));
    }
    Ok(figures)
}

/// A name that lives as long as the program (figures are named statically).
fn name(text: String) -> &'static str {
    Box::leak(text.into_boxed_str())
}

/// Random GETs at 1 and 16 connections through a vsamrd at `address`, on
/// dataset `dataset` with `records` records loaded first.
async fn vsamrd_gets(
    store: &'static str,
    address: &str,
    dataset: &str,
    settings: &Settings,
) -> Result<Vec<Figure>> {
    let conn = Connection::connect(address).await?;
    vsam_client::define(&conn, bench_spec(dataset)).await?;
    let loader = Dataset::open(&conn, dataset, OpenIntent::Output, 1).await?;
    for start in (0..settings.records).step_by(500) {
        let chain = (start..(start + 500).min(settings.records))
            .map(|n| ChainedRecord {
                address: 0,
                record: record(n),
            })
            .collect();
        let outcome = loader.put_chain(0, RplOptions::sequential(), chain).await?;
        if let Some(failure) = outcome.failure {
            bail!("loading {dataset}: {failure}");
        }
    }
    loader.close().await?;
    crate::random_gets(
        store,
        address,
        dataset,
        settings.gets,
        settings.records,
        &settings.connections,
    )
    .await
}

/// The three backends measured through vsamrd, as `[plugins]` and
/// `[backends]` sections; `tag` keeps two builds' PostgreSQL tables apart.
fn backends(settings: &Settings) -> [(&'static str, String); 3] {
    [
        (
            "memory",
            "[plugins.p]\npath = \"builtin:memory\"\n[backends.b]\nplugin = \"p\"\n".into(),
        ),
        (
            "sqlite",
            "[plugins.p]\npath = \"builtin:sql\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"sqlite:bench.db\"\n".into(),
        ),
        (
            "postgres",
            format!(
                "[plugins.p]\npath = \"builtin:sql\"\n[backends.b]\nplugin = \"p\"\ndatabase = \"{}\"\nreaders = {}\n",
                settings.postgres_url, settings.postgres_readers
            ),
        ),
    ]
}

/// Every figure of the latency run, and the lines that hold them against
/// the targets.
pub async fn run(settings: &Settings) -> Result<(Vec<Figure>, Vec<String>)> {
    settings.check()?;
    let mut figures = Vec::new();
    // Redis, read by this program's client, then by redis-benchmark.
    let server = redis().await?;
    let mut loader = Resp::connect(&server.address).await?;
    for n in 0..settings.records {
        let key = format!("{n:010}");
        loader
            .command(&[b"SET", key.as_bytes(), &record(n)])
            .await?;
    }
    for &connections in &settings.connections {
        let mut clients = Vec::new();
        for _ in 0..connections {
            clients.push(Resp::connect(&server.address).await?);
        }
        let per = settings.gets / connections as u64;
        let records = settings.records;
        let run = each(clients, per, move |mut client: Resp, c, i| async move {
            let (n, key) = sql::key(c, i, records);
            let found = client.command(&[b"GET", &key]).await?;
            anyhow::ensure!(found == record(n), "Redis: wrong record for key {n}");
            Ok(client)
        })
        .await?;
        figures.push(Figure::measured(
            "redis",
            "random GET",
            connections,
            per,
            run,
        ));
    }
    let mut lines = Vec::new();
    let mut redis_benchmark = Vec::new();
    for &connections in &settings.connections {
        let rps = redis_benchmark_get(&server.address, connections, settings)?;
        redis_benchmark.push((connections, rps));
    }
    drop(server);

    // vsamrd, this build and the baseline build.
    let mut builds = vec![("", settings.vsamrd.clone())];
    if let Some(baseline) = &settings.baseline {
        builds.push((" (baseline)", baseline.clone()));
    }
    let measured = |backend: &str| {
        settings.backends.is_empty() || settings.backends.iter().any(|b| b == backend)
    };
    for (backend, section) in backends(settings) {
        if !measured(backend) {
            continue;
        }
        for (index, (tag, binary)) in builds.iter().enumerate() {
            let profile = settings.perf_dir.as_ref().map(|dir| {
                dir.join(format!(
                    "{backend}{}.data",
                    if index == 0 { "" } else { "-baseline" }
                ))
            });
            let server = vsamrd(binary, &section, profile).await?;
            let store = name(format!("vsamrd {backend}{tag}"));
            let dataset = format!("LATENCY.B{index}");
            figures.extend(vsamrd_gets(store, &server.address, &dataset, settings).await?);
            if backend == "memory" {
                let minimal = name(format!("vsamrd memory{tag}, minimal client"));
                figures.extend(minimal_gets(minimal, &server.address, &dataset, settings).await?);
            }
            if backend == "postgres" && index == 0 {
                // The direct client, on the table vsamrd just wrote.
                let table = dataset.to_lowercase().replace('.', "_");
                figures.extend(
                    sql::postgres_gets(
                        &settings.postgres_url,
                        &table,
                        settings.gets,
                        settings.records,
                        &settings.connections,
                    )
                    .await?,
                );
            }
        }
    }
    let pgbench = if measured("postgres") {
        pgbench(&settings.postgres_url)?
    } else {
        [0.0; 2]
    };

    let find = |store: &str, connections: usize| {
        figures
            .iter()
            .find(|f| f.store == store && f.connections == connections)
            .map(Figure::per_second)
    };
    lines.push(
        "latency targets (vsamrd as a process of its own; the same client program reads vsamrd and Redis):"
            .into(),
    );
    for &(connections, benchmark) in &redis_benchmark {
        if let (Some(ours), Some(redis)) = (
            find("vsamrd memory", connections),
            find("redis", connections),
        ) {
            lines.push(format!(
                "  memory plugin GET  {connections:>2} conn: {ours:>8.0} vs Redis {redis:>8.0} ops/s, ratio {:.2} (target 1.00); redis-benchmark {:.0}/s, ratio {:.2}",
                ours / redis,
                benchmark,
                ours / benchmark
            ));
        }
    }
    if let (Some(ours), Some(direct)) = (find("vsamrd postgres", 1), find("postgres (direct)", 1)) {
        lines.push(format!(
            "  PostgreSQL GET      1 conn: {ours:>8.0} vs the direct client {direct:>8.0} ops/s, ratio {:.2} (target 0.75); pgbench -S {:.0} tps",
            ours / direct,
            pgbench[0]
        ));
    }
    if let Some(ours) = find("vsamrd postgres", 16) {
        lines.push(format!(
            "  PostgreSQL GET     16 conn: {ours:>8.0} vs pgbench -S {:>8.0} tps, ratio {:.2} (target 1.00); direct client {:.0}/s",
            pgbench[1],
            ours / pgbench[1],
            find("postgres (direct)", 16).unwrap_or(0.0)
        ));
    }
    if settings.baseline.is_some() {
        for backend in ["memory", "sqlite", "postgres"] {
            for &connections in &settings.connections {
                let now = find(&format!("vsamrd {backend}"), connections);
                let before = find(&format!("vsamrd {backend} (baseline)"), connections);
                if let (Some(now), Some(before)) = (now, before) {
                    lines.push(format!(
                        "  {backend:<8} GET {connections:>2} conn: {now:>8.0} vs {before:>8.0} ops/s of the baseline build, ratio {:.2}{}",
                        now / before,
                        if backend == "sqlite" && connections == 1 {
                            " (target 2.00)"
                        } else {
                            ""
                        }
                    ));
                }
            }
        }
    }
    Ok((figures, lines))
}

/// redis-benchmark's GET throughput at `connections` on the keys it wrote
/// first (100-byte values).
fn redis_benchmark_get(address: &str, connections: usize, settings: &Settings) -> Result<f64> {
    let (host, port) = address.rsplit_once(':').context("an address")?;
    let output = Command::new("redis-benchmark")
        .args(["-h", host, "-p", port, "-t", "set,get", "-d"])
        .arg(RECORD_LENGTH.to_string())
        .args(["-r", &settings.records.to_string()])
        .args(["-n", &settings.gets.to_string()])
        .args(["-c", &connections.to_string(), "--csv"])
        .output()
        .context("running redis-benchmark (scripts/setup installs it)")?;
    anyhow::ensure!(
        output.status.success(),
        "redis-benchmark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| {
            let mut fields = line.split(',').map(|f| f.trim_matches('"'));
            (fields.next()? == "GET").then(|| fields.next()?.parse().ok())?
        })
        .with_context(|| format!("no GET line in redis-benchmark's output: {text}"))
}

/// `pgbench -S -M prepared` (select-only, prepared statements) at 1 and 16
/// connections, 5 s each, on its own tables at scale 1 (100,000 rows).
fn pgbench(url: &str) -> Result<[f64; 2]> {
    let run = |args: &[&str]| -> Result<String> {
        let output = Command::new("pgbench")
            .args(args)
            .arg(url)
            .output()
            .context("running pgbench (scripts/setup installs PostgreSQL)")?;
        anyhow::ensure!(
            output.status.success(),
            "pgbench {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    run(&["-i", "-s", "1", "-q"])?;
    let mut tps = [0.0; 2];
    for (slot, (clients, threads)) in tps.iter_mut().zip([("1", "1"), ("16", "2")]) {
        let text = run(&[
            "-S", "-M", "prepared", "-n", "-T", "5", "-c", clients, "-j", threads,
        ])?;
        *slot = text
            .lines()
            .find_map(|line| line.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .with_context(|| format!("no tps in pgbench's output: {text}"))?;
    }
    Ok(tps)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(backends: &[&str], connections: &[usize]) -> Settings {
        Settings {
            records: 10,
            gets: 10,
            vsamrd: PathBuf::from("vsamrd"),
            baseline: None,
            postgres_url: "postgres://localhost/x".into(),
            postgres_readers: 0,
            perf_dir: None,
            backends: backends.iter().map(|b| b.to_string()).collect(),
            connections: connections.to_vec(),
        }
    }

    #[test]
    fn a_narrowing_that_would_measure_nothing_is_refused() {
        assert!(settings(&[], &[1, 16]).check().is_ok());
        assert!(settings(&["memory", "postgres"], &[16]).check().is_ok());
        let typo = settings(&["mem"], &[1]).check().unwrap_err().to_string();
        assert!(
            typo.contains("\"mem\"") && typo.contains("memory, sqlite, postgres"),
            "{typo}"
        );
        assert!(settings(&[], &[0]).check().is_err());
        assert!(settings(&[], &[]).check().is_err());
    }
}
