//! The change log on a full disk: a dataset on SQLite mirrored to another
//! SQLite database, its change log and change stream alone on a tmpfs that
//! fills up while a client commits units of work of 256 KB. The log keeps what it cannot
//! write in memory (64 MiB), then can take no more: the unit committed
//! then must still reach the mirror, before every later one, so the
//! backend's writes are refused, naming the log, until it has been taken
//! back from the backend's outbox. Once space is freed, writes resume, the
//! mirror verifies equal to the primary, which holds every acknowledged
//! unit and nothing of a refused one, and the stream's files replay to it,
//! numbered without gap or repeat (no line torn by the full disk).

use crate::ledger::Records;
use crate::records::{key, record};
use crate::stores;
use crate::tmpfs::Tmpfs;
use crate::vsamrd::Vsamrd;
use anyhow::{Result, bail};
use std::time::{Duration, Instant};
use vsam_client::admin::AdminClient;
use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::access;
use vsam_protocol::admin::{AdminAnswer, AdminCommand};

const DATASET: &str = "DISK.UNITS";
/// Room for the 64 MiB the log keeps in memory, written once space is
/// freed, its segments until the mirror has read them, and the stream
/// (records as hex: twice their size).
const TMPFS_MIB: u64 = 512;
const RECORD_LENGTH: usize = 4000;
const UNIT_RECORDS: u64 = 64;
/// Units written before the disk fills: 10 MiB, past the log's first
/// segment (`segment_mb = 8`).
const PRELUDE_UNITS: u64 = 40;
/// Room left beside the filler.
const ROOM: u64 = 2 << 20;
/// Units refused in a row after which the log counts as full.
const REFUSALS: u64 = 3;
/// Units written into the full disk at most: twice what the log can keep
/// in memory.
const MOST_UNITS: u64 = 2 * (64 << 20) / (UNIT_RECORDS * RECORD_LENGTH as u64);

/// What the run found.
struct Report {
    /// Units acknowledged while the disk was full.
    committed_while_full: u64,
    /// Units refused while it was full, and the first refusal's message.
    refused: u64,
    sample: String,
    /// From the filler's removal to the first unit committed again.
    resumed_after: Option<Duration>,
    /// Records every acknowledged unit wrote.
    records: usize,
    /// Keys the primary lacks, holds beside the ledger or holds otherwise.
    primary_differs: usize,
    /// The mirror's verification: its record count, or why it failed.
    mirror: std::result::Result<u64, String>,
    /// The stream's lines, and whether they replay to the ledger.
    stream_lines: u64,
    stream: std::result::Result<(), String>,
}

/// Runs the scenario and prints its figures; false when a promise broke.
pub async fn run() -> Result<bool> {
    let report = scenario().await?;
    println!(
        "\nThe change log on a full disk: a dataset on SQLite mirrored to SQLite, the log and the change stream alone on a {TMPFS_MIB} MiB tmpfs filled to {} MiB free, units of {UNIT_RECORDS} records of {RECORD_LENGTH} bytes until {REFUSALS} are refused in a row, then the filler removed",
        ROOM >> 20
    );
    println!(
        "    {} units acknowledged while full, {} refused: {}",
        report.committed_while_full,
        report.refused,
        report.sample.replace('\n', " ")
    );
    println!(
        "    writes resumed {} after space was freed",
        report
            .resumed_after
            .map_or("never".to_string(), |d| format!("{:.1} s", d.as_secs_f64()))
    );
    println!(
        "    {} records acknowledged: primary {}, mirror {}",
        report.records,
        match report.primary_differs {
            0 => "holds exactly them".to_string(),
            n => format!("differs at {n} keys"),
        },
        match &report.mirror {
            Ok(count) => format!("verified equal ({count} records)"),
            Err(why) => format!("NOT equal: {why}"),
        }
    );
    println!(
        "    change stream: {} lines, {}",
        report.stream_lines,
        match &report.stream {
            Ok(()) => "without gap or repeat, replaying to the primary's records".to_string(),
            Err(why) => format!("BROKEN: {why}"),
        }
    );
    Ok(report.committed_while_full > 0
        && report.refused >= REFUSALS
        && report.sample.contains("change log")
        && report.resumed_after.is_some()
        && report.primary_differs == 0
        && report.mirror == Ok(report.records as u64)
        && report.stream.is_ok())
}

async fn scenario() -> Result<Report> {
    let dir = tempfile::tempdir()?;
    let tmpfs = Tmpfs::mount_sized(&dir.path().join("small"), TMPFS_MIB)?;
    let root = dir.path().display();
    let sections = format!(
        "[plugins.sql]\npath = \"builtin:sql\"\n\
         [backends.sqlite]\nplugin = \"sql\"\ndatabase = \"sqlite:{root}/vsam.db\"\n\
         [backends.mirror]\nplugin = \"sql\"\ndatabase = \"sqlite:{root}/mirror.db\"\n\
         [routing]\ndefault = \"sqlite\"\n\
         [changes]\ndirectory = \"{}\"\nsegment_mb = 8\nstream = \"file\"\nstream_rotate_mb = 8\nstream_keep_files = 1000\n\
         [[mirrors]]\ndatasets = \"DISK.*\"\nbackends = [\"mirror\"]\n",
        tmpfs.0.join("changes").display()
    );
    let server = Vsamrd::start(dir.path(), "", &sections).await?;
    let conn = Connection::connect(&server.address).await?;
    vsam_client::define(&conn, stores::spec(DATASET, "sqlite", RECORD_LENGTH)).await?;
    let ds =
        Dataset::open_with_access(&conn, DATASET, OpenIntent::Update, access::COMMIT, 1).await?;
    let mut ledger = Records::new();
    let mut next = 0u64;
    // Past a segment of the log: it writes into one it started.
    for _ in 0..PRELUDE_UNITS {
        unit(&conn, &ds, &mut next, &mut ledger).await?;
    }
    let mut admin = server.admin().await?;
    caught_up(&mut admin).await?;

    // A little room left, which the log and the stream take between
    // them until a write meets the end of it halfway.
    let fillers = [tmpfs.fill(ROOM)?];
    let mut report = Report {
        committed_while_full: 0,
        refused: 0,
        sample: String::new(),
        resumed_after: None,
        records: 0,
        primary_differs: 0,
        mirror: Err("not checked".into()),
        stream_lines: 0,
        stream: Err("not checked".into()),
    };
    let mut in_a_row = 0;
    for _ in 0..MOST_UNITS {
        match unit(&conn, &ds, &mut next, &mut ledger).await {
            Ok(()) => {
                report.committed_while_full += 1;
                in_a_row = 0;
            }
            Err(error) => {
                if report.sample.is_empty() {
                    report.sample = error.to_string();
                }
                report.refused += 1;
                in_a_row += 1;
                if in_a_row == REFUSALS {
                    break;
                }
            }
        }
    }
    for filler in &fillers {
        std::fs::remove_file(filler)?;
    }
    let freed = Instant::now();
    while freed.elapsed() < Duration::from_secs(60) {
        if unit(&conn, &ds, &mut next, &mut ledger).await.is_ok() {
            report.resumed_after = Some(freed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if report.resumed_after.is_some() {
        for _ in 0..3 {
            unit(&conn, &ds, &mut next, &mut ledger).await?;
        }
    }
    ds.close().await?;
    caught_up(&mut admin).await?;

    report.records = ledger.len();
    let primary = stores::read_all(&server.address, DATASET).await?;
    report.primary_differs = ledger
        .keys()
        .chain(primary.keys())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .filter(|key| ledger.get(*key) != primary.get(*key))
        .count();
    report.mirror = match admin
        .request(AdminCommand::MirrorVerify {
            backend: "mirror".into(),
            dataset: DATASET.into(),
        })
        .await
    {
        Ok(AdminAnswer::MirrorVerified(row)) => Ok(row.count),
        Ok(other) => Err(format!("{other:?}")),
        Err(error) => Err(format!("{error:#}")),
    };
    let stream_dir = tmpfs.0.join("changes/stream");
    report.stream = match crate::mirrors::replay_stream(&stream_dir) {
        Ok((lines, replayed)) => {
            report.stream_lines = lines;
            match replayed {
                Ok(records) if records == ledger => Ok(()),
                Ok(records) => Err(format!(
                    "it replays to {} records, not the {} acknowledged",
                    records.len(),
                    ledger.len()
                )),
                Err(why) => Err(why),
            }
        }
        // A line that is not JSON: torn.
        Err(error) => Err(format!("{error:#}").chars().take(300).collect()),
    };
    server.kill()?;
    Ok(report)
}

/// Writes one unit of new records and commits it; the ledger takes them
/// once acknowledged. A unit whose COMMIT is refused is rolled back.
async fn unit(
    conn: &Connection,
    ds: &Dataset,
    next: &mut u64,
    ledger: &mut Records,
) -> std::result::Result<(), ClientError> {
    let mut written = Vec::new();
    let puts = async {
        for _ in 0..UNIT_RECORDS {
            let key = key(1, *next);
            *next += 1;
            let record = record(&key, 1, RECORD_LENGTH);
            ds.put(0, RplOptions::direct(), 0, record.clone()).await?;
            written.push((key, record));
        }
        vsam_client::commit(conn).await
    }
    .await;
    match puts {
        Ok(()) => {
            ledger.extend(written);
            Ok(())
        }
        Err(error) => {
            let _ = vsam_client::rollback(conn).await;
            Err(error)
        }
    }
}

/// Waits until the mirror has applied every committed change.
async fn caught_up(admin: &mut AdminClient) -> Result<()> {
    match admin
        .mirrors_caught_up(Duration::from_millis(50), Duration::from_secs(120))
        .await
    {
        Ok(_) => Ok(()),
        Err(error) => bail!("the mirror did not catch up: {error:#}"),
    }
}
