//! The direct baseline of the SQL backend: the same SQL the plugin runs,
//! issued by a native Rust client over the same kind of connection
//! (rusqlite on the same file, tokio-postgres to the same server), on the
//! table vsamrd just loaded.

use crate::{Figure, KEY_LENGTH, record};
use anyhow::Result;
use hdrhistogram::Histogram;
use std::path::Path;
use std::time::Instant;

const GET: &str = "SELECT vsam_record FROM bench_ksds WHERE vsam_key = ";
const BROWSE: &str = "SELECT vsam_key, vsam_record FROM bench_ksds WHERE vsam_key > ";

pub(crate) fn key(c: usize, i: u64, half: u64) -> (u64, Vec<u8>) {
    let n = (i.wrapping_mul(2_654_435_761).wrapping_add(c as u64 * 97)) % half;
    (n, format!("{n:010}").into_bytes())
}

/// Random GETs at 1 and 16 connections and a batched browse, on SQLite.
pub async fn sqlite(db: &Path, gets: u64, browse: u64, half: u64) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for connections in [1usize, 16] {
        let per = gets / connections as u64;
        let started = Instant::now();
        let threads: Vec<_> = (0..connections)
            .map(|c| {
                let db = db.to_path_buf();
                std::thread::spawn(move || -> Result<Histogram<u64>> {
                    let conn = rusqlite::Connection::open(db)?;
                    let mut statement = conn.prepare(&format!("{GET}?1"))?;
                    let mut histogram = Histogram::<u64>::new(3)?;
                    for i in 0..per {
                        let t = Instant::now();
                        let (n, key) = key(c, i, half);
                        let found: Vec<u8> = statement.query_row([key], |r| r.get(0))?;
                        anyhow::ensure!(found == record(n), "wrong record");
                        histogram.record(t.elapsed().as_nanos() as u64).ok();
                    }
                    Ok(histogram)
                })
            })
            .collect();
        let mut total = Histogram::<u64>::new(3)?;
        for thread in threads {
            total.add(thread.join().expect("thread")?).ok();
        }
        figures.push(Figure::of(
            "sqlite (direct)",
            "random GET",
            connections,
            per,
            started.elapsed(),
            total,
        ));
    }
    let conn = rusqlite::Connection::open(db)?;
    let mut statement = conn.prepare(&format!("{BROWSE}?1 ORDER BY vsam_key LIMIT 1000"))?;
    figures.push(
        browse_figure("sqlite (direct)", browse, async |from| {
            let rows: Vec<(Vec<u8>, Vec<u8>)> = statement
                .query_map([from], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            Ok(rows.into_iter().map(|(key, _record)| key).collect())
        })
        .await?,
    );
    Ok(figures)
}

/// Connects a tokio-postgres client, its connection served by a task.
async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// The same on PostgreSQL, one client per connection.
pub async fn postgres(url: &str, gets: u64, browse: u64, half: u64) -> Result<Vec<Figure>> {
    let mut figures = postgres_gets(url, "bench_ksds", gets, half, &[1, 16]).await?;
    let client = connect(url).await?;
    let statement = client
        .prepare(&format!("{BROWSE}$1 ORDER BY vsam_key LIMIT 1000"))
        .await?;
    figures.push(
        browse_figure("postgres (direct)", browse, async |from| {
            let rows = client.query(&statement, &[&from]).await?;
            Ok(rows.iter().map(|row| row.get(0)).collect())
        })
        .await?,
    );
    Ok(figures)
}

/// Browses in batches of 1,000 from the first key, starting over at the
/// end, until `browse` records were read; `next(from)` reads the batch after
/// `from` and returns its keys.
pub(crate) async fn browse_figure(
    store: &'static str,
    browse: u64,
    mut next: impl AsyncFnMut(Vec<u8>) -> Result<Vec<Vec<u8>>>,
) -> Result<Figure> {
    let started = Instant::now();
    let mut latency = Histogram::<u64>::new(3)?;
    let mut read = 0u64;
    let mut from = vec![0u8; KEY_LENGTH];
    while read < browse {
        let t = Instant::now();
        let keys = next(from.clone()).await?;
        from = keys
            .last()
            .cloned()
            .unwrap_or_else(|| vec![0u8; KEY_LENGTH]);
        read += keys.len() as u64;
        latency
            .record(t.elapsed().as_nanos() as u64 / keys.len().max(1) as u64)
            .ok();
    }
    Ok(Figure::browse(store, read, started.elapsed(), latency))
}

/// Random GETs by key of the SQL plugin's table `table` (keys below
/// `half`) at each of `counts` connections, one tokio-postgres client each, with
/// the statement the plugin prepares.
pub async fn postgres_gets(
    url: &str,
    table: &str,
    gets: u64,
    half: u64,
    counts: &[usize],
) -> Result<Vec<Figure>> {
    let get = format!("SELECT vsam_record FROM {table} WHERE vsam_key = $1");
    let mut figures = Vec::new();
    for &connections in counts {
        let per = gets / connections as u64;
        let mut clients = Vec::new();
        for _ in 0..connections {
            let client = connect(url).await?;
            let statement = client.prepare(&get).await?;
            clients.push((client, statement));
        }
        let run = crate::each(
            clients,
            per,
            move |(client, statement): (tokio_postgres::Client, tokio_postgres::Statement),
                  c,
                  i| async move {
                let (n, key) = key(c, i, half);
                let row = client.query_one(&statement, &[&key]).await?;
                let found: Vec<u8> = row.get(0);
                anyhow::ensure!(found == record(n), "wrong record");
                Ok((client, statement))
            },
        )
        .await?;
        figures.push(Figure::measured(
            "postgres (direct)",
            "random GET",
            connections,
            per,
            run,
        ));
    }
    Ok(figures)
}
