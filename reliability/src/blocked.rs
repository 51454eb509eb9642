//! A hostile plugin that waits in host functions rather than computing:
//! it sleeps in `get`, `insert`, `sync` and `init`, waits on a PostgreSQL
//! statement and on a row another session holds, and on an object store
//! that falls silent (its connections accepted and held, never answered). Every such call must end
//! within its limit plus the grace, answered R15=12 (or, where the store
//! gave up first, answered normally), while a client of the same backend
//! and a healthy backend keep being served; SIGTERM must end vsamrd
//! promptly with a sleeper inside.

use crate::stores::{self, Services};
use crate::vsamrd::Vsamrd;
use anyhow::{Context, Result};
use std::io::Write;
use std::time::{Duration, Instant};
use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};
use vsam_tests::relay::Relay;

/// The hostile backends' call limit.
const CALL_TIMEOUT_MS: u64 = 500;
/// The grace vsamrd documents past the limit.
const GRACE: Duration = Duration::from_millis(100);
/// Room for a loaded machine on top of the grace: the judged bound is the
/// limit, the grace and this.
const SLACK: Duration = Duration::from_millis(900);
const RECORD_LENGTH: usize = 40;

/// One call site: what the plugin waits on there.
struct Site {
    name: &'static str,
    backend: &'static str,
    key: &'static str,
    write: bool,
}

const SITES: [Site; 6] = [
    Site {
        name: "get: WASI sleep",
        backend: "hostile",
        key: "SLEP",
        write: false,
    },
    Site {
        name: "insert: WASI sleep",
        backend: "hostile",
        key: "SLEP",
        write: true,
    },
    Site {
        name: "sync: WASI sleep",
        backend: "hostile",
        key: "SSYN",
        write: true,
    },
    Site {
        name: "get: pg_sleep(120)",
        backend: "hostile_pg",
        key: "PGSL",
        write: false,
    },
    Site {
        name: "get: row lock held",
        backend: "hostile_pg",
        key: "SQLW",
        write: false,
    },
    Site {
        name: "get: silent object store",
        backend: "hostile",
        key: "OBJG",
        write: false,
    },
];

/// What one site did over its attempts.
struct Row {
    name: String,
    attempts: u32,
    longest: Duration,
    timed_out: u32,
    answered: u32,
    other: Vec<String>,
    bystander_longest: Duration,
    healthy_errors: u32,
}

fn key(prefix: &str, n: u32) -> Vec<u8> {
    format!("{prefix}{n:04}").into_bytes()
}

/// Runs every call site, the `init` and SIGTERM checks, and prints the
/// table. Needs PostgreSQL and SeaweedFS (started here).
pub async fn run(args: &crate::Args, services: &mut Services) -> Result<bool> {
    let attempts = if args.quick { 2 } else { 10 };
    // A real bucket behind a relay that falls silent once vsamrd has
    // started (and claimed the bucket): connections accepted and held, never
    // answered.
    let (endpoint, table) = {
        let seaweed = services.seaweed()?;
        (seaweed.endpoint.clone(), seaweed.bucket_table())
    };
    let relay = Relay::start(endpoint.trim_start_matches("http://")).await;
    let bucket = table.replace(&endpoint, &format!("http://{}", relay.address));
    let postgres = services.postgres()?;
    postgres.psql(
        "vsam",
        "create table if not exists held (id text primary key, note text); \
         insert into held values ('HELD', '') on conflict do nothing",
    )?;
    let dir = tempfile::tempdir()?;
    let plugin = vsam_tests::FAULTY_WASM;
    let sections = format!(
        "[plugins.faulty]\npath = \"{plugin}\"\n[plugins.sql]\npath = \"builtin:sql\"\n\
         [backends.hostile]\nplugin = \"faulty\"\ncall_timeout_ms = {CALL_TIMEOUT_MS}\n\
         bucket = {bucket}\n\
         [backends.hostile_pg]\nplugin = \"faulty\"\ncall_timeout_ms = {CALL_TIMEOUT_MS}\ndatabase = \"{}\"\n\
         [backends.sqlite]\nplugin = \"sql\"\ndatabase = \"sqlite:healthy.db\"\n",
        postgres.url
    );
    let server = Vsamrd::start(dir.path(), "", &sections).await?;
    relay.fall_silent();
    let conn = Connection::connect(&server.address).await?;
    for (dataset, backend) in [
        ("HOSTILE.KSDS", "hostile"),
        ("HOSTILE.PG", "hostile_pg"),
        ("HEALTHY.KSDS", "sqlite"),
    ] {
        vsam_client::define(&conn, stores::spec(dataset, backend, RECORD_LENGTH)).await?;
    }
    // Another session holds the row the `SQLW` calls update.
    let mut holder = std::process::Command::new("psql")
        .args(["-X", "-q", &postgres.url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting psql to hold a row lock")?;
    holder
        .stdin
        .as_mut()
        .context("psql's input")?
        .write_all(b"begin; select * from held where id = 'HELD' for update;\n")?;

    let limit = Duration::from_millis(CALL_TIMEOUT_MS);
    let bound = limit + GRACE + SLACK;
    let mut rows = Vec::new();
    for site in &SITES {
        let dataset = if site.backend == "hostile_pg" {
            "HOSTILE.PG"
        } else {
            "HOSTILE.KSDS"
        };
        let mut row = Row {
            name: site.name.to_string(),
            attempts,
            longest: Duration::ZERO,
            timed_out: 0,
            answered: 0,
            other: Vec::new(),
            bystander_longest: Duration::ZERO,
            healthy_errors: 0,
        };
        for n in 0..attempts {
            let address = server.address.clone();
            // A client of the same backend and one of a healthy backend,
            // asking while the call waits.
            let bystanders = tokio::spawn(bystanders(address, dataset));
            tokio::time::sleep(Duration::from_millis(50)).await;
            let conn = Connection::connect(&server.address).await?;
            let ds = Dataset::open(&conn, dataset, OpenIntent::Update, 1).await?;
            let started = Instant::now();
            let answer: Result<(), ClientError> = if site.write {
                let mut record = key(site.key, n);
                record.resize(RECORD_LENGTH, b'-');
                ds.put(0, RplOptions::direct(), 0, record).await.map(drop)
            } else {
                ds.reading(RplOptions::direct())
                    .key(&key(site.key, n))
                    .records()
                    .await
                    .map(drop)
            };
            row.longest = row.longest.max(started.elapsed());
            match answer {
                Err(e)
                    if e.vsam().is_some_and(|v| v.r15() == 12)
                        && e.to_string().contains("ran longer than the limit") =>
                {
                    row.timed_out += 1
                }
                // The store's own limit came first; the plugin answered.
                Ok(()) => row.answered += 1,
                Err(e) if e.vsam().is_some_and(|v| v.r15() == 8) => row.answered += 1,
                Err(e) => row.other.push(e.to_string()),
            }
            let (same, healthy_errors) = bystanders.await??;
            row.bystander_longest = row.bystander_longest.max(same);
            row.healthy_errors += healthy_errors;
        }
        rows.push(row);
    }
    let _ = holder.kill();
    let _ = holder.wait();

    // SIGTERM while a call sleeps.
    let sleeper_address = server.address.clone();
    let sleeper = tokio::spawn(async move {
        let conn = Connection::connect(&sleeper_address).await?;
        let ds = Dataset::open(&conn, "HOSTILE.KSDS", OpenIntent::Input, 1).await?;
        let _ = ds
            .reading(RplOptions::direct())
            .key(b"SLEP9999")
            .records()
            .await;
        Ok::<_, anyhow::Error>(())
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopping = Instant::now();
    server.terminate().await?;
    let sigterm = stopping.elapsed();
    let _ = sleeper.await;

    // Start-up with an `init` that sleeps.
    let init_dir = tempfile::tempdir()?;
    let started = Instant::now();
    let init = Vsamrd::start(
        init_dir.path(),
        "",
        &format!(
            "[plugins.faulty]\npath = \"{plugin}\"\n[backends.hostile]\nplugin = \"faulty\"\ncall_timeout_ms = {CALL_TIMEOUT_MS}\nparams = {{ init = \"sleep\" }}\n"
        ),
    )
    .await;
    let init_took = started.elapsed();
    let init_refused = match init {
        Ok(server) => {
            server.kill()?;
            false
        }
        Err(error) => format!("{error:#}").contains("ran longer than the limit"),
    };

    println!(
        "\nA plugin waiting in host functions (call limit {CALL_TIMEOUT_MS} ms, grace {} ms; judged bound {} ms): {attempts} calls per site, each beside a client of the same backend and one of a healthy backend",
        GRACE.as_millis(),
        bound.as_millis()
    );
    println!(
        "{:<26} {:>6} {:>12} {:>10} {:>9} {:>15} {:>15} {:>6}",
        "call site",
        "calls",
        "longest ms",
        "timed out",
        "answered",
        "same backend ms",
        "healthy errors",
        "other"
    );
    let mut ok = true;
    for row in &rows {
        println!(
            "{:<26} {:>6} {:>12.0} {:>10} {:>9} {:>15.0} {:>15} {:>6}",
            row.name,
            row.attempts,
            crate::ms(row.longest),
            row.timed_out,
            row.answered,
            crate::ms(row.bystander_longest),
            row.healthy_errors,
            row.other.len()
        );
        for other in row.other.iter().take(2) {
            println!("    other: {other}");
        }
        ok &= row.longest <= bound
            && row.bystander_longest <= bound + limit
            && row.healthy_errors == 0
            && row.other.is_empty()
            && row.timed_out + row.answered == row.attempts;
    }
    println!(
        "{:<26} {:>6} {:>12.0} {:>10}",
        "init: WASI sleep (start)",
        1,
        crate::ms(init_took),
        if init_refused {
            "refused"
        } else {
            "NOT REFUSED"
        }
    );
    println!(
        "{:<26} {:>6} {:>12.0}   (SIGTERM to exit, a call sleeping inside)",
        "SIGTERM",
        1,
        crate::ms(sigterm)
    );
    ok &= init_refused && init_took <= bound + Duration::from_secs(10);
    ok &= sigterm <= bound + Duration::from_secs(1);
    Ok(ok)
}

/// For about one second: GETs on `dataset` (the hostile backend) and on
/// the healthy one; the longest wait of the former, the errors of the
/// latter.
async fn bystanders(address: String, dataset: &'static str) -> Result<(Duration, u32)> {
    let conn = Connection::connect(&address).await?;
    let same = Dataset::open(&conn, dataset, OpenIntent::Input, 1).await?;
    let healthy = Dataset::open(&conn, "HEALTHY.KSDS", OpenIntent::Input, 1).await?;
    let started = Instant::now();
    let mut longest = Duration::ZERO;
    let mut errors = 0;
    while started.elapsed() < Duration::from_millis(1000) {
        let asked = Instant::now();
        // Not found is the expected answer: the key was never written.
        let _ = same
            .reading(RplOptions::direct())
            .key(b"GOOD0001")
            .records()
            .await;
        longest = longest.max(asked.elapsed());
        match healthy
            .reading(RplOptions::direct())
            .key(b"GOOD0001")
            .records()
            .await
        {
            Err(e) if e.vsam().is_some_and(|v| v.r15() == 8) => {}
            Err(_) => errors += 1,
            Ok(_) => {}
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok((longest, errors))
}
