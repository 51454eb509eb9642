//! Mirrors and the change stream under SIGKILL and store outages, on two
//! primaries:
//! - a dataset on SQLite mirrored asynchronously to PostgreSQL and to the
//!   object store (SeaweedFS), synchronously to CSV files;
//! - a dataset on PostgreSQL (its groups recorded through its outbox
//!   table) mirrored asynchronously to SQLite, synchronously to CSV files.
//!
//! The change stream is on. After each restart every mirror must hold
//! exactly what the primary holds once it has caught up (verified record
//! by record), and the stream's lines must be numbered without a gap or a
//! repeat and replay to exactly the primary's records. Then the stores are
//! stopped under load. On SQLite, PostgreSQL and SeaweedFS stop: the
//! primary's writes go on, their mirrors queue and catch up. On
//! PostgreSQL, the primary itself stops: writes fail meanwhile (a COMMIT
//! cut off is in doubt), and once it is back they go on, and the mirrors
//! and the stream still hold exactly what it holds.

use crate::crash::write_until_killed_on;
use crate::ledger::{self, Check, Ledger, Records, State};
use crate::stores::{self, Rng, Services};
use crate::vsamrd::Vsamrd;
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use vsam_client::admin::AdminClient;
use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};
use vsam_protocol::admin::{AdminAnswer, AdminCommand, MirrorsReport};

const RECORD_LENGTH: usize = 64;

/// The primary store the part runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Primary {
    /// SQLite, mirrored to PostgreSQL, the object store and CSV files.
    #[default]
    Sqlite,
    /// PostgreSQL, mirrored to SQLite and CSV files.
    Postgres,
}

/// The stream's table (its default name) on the PostgreSQL primary's
/// database: there the stream goes to a table, on SQLite to files.
const STREAM_TABLE: &str = "_vsamrd_change_stream";

impl Primary {
    /// The dataset written: apart from the names other parts define on the
    /// same PostgreSQL database (whose shared catalog every server on it
    /// follows).
    fn dataset(self) -> &'static str {
        match self {
            Primary::Sqlite => "MIRROR.KSDS",
            Primary::Postgres => "MIRRORPG.KSDS",
        }
    }

    /// The mirror backends.
    fn mirrors(self) -> &'static [&'static str] {
        match self {
            Primary::Sqlite => &["pg", "s3", "files"],
            Primary::Postgres => &["local", "files"],
        }
    }

    fn sections(self, services: &mut Services) -> Result<String> {
        let url = services.postgres()?.url.clone();
        let stream = match self {
            Primary::Sqlite => {
                "[changes]\nstream = \"file\"\nstream_rotate_mb = 1\nstream_keep_files = 1000\n"
                    .to_string()
            }
            Primary::Postgres => {
                format!("[changes]\nstream = \"postgres\"\nstream_database = \"{url}\"\n")
            }
        };
        Ok(match self {
            Primary::Sqlite => {
                let bucket = services.seaweed()?.bucket_table();
                format!(
                    "[plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n[plugins.s3]\npath = \"builtin:s3\"\n\
                     [backends.b]\nplugin = \"sql\"\ndatabase = \"sqlite:primary.db\"\n\
                     [backends.pg]\nplugin = \"sql\"\ndatabase = \"{url}\"\n\
                     [backends.s3]\nplugin = \"s3\"\nbucket = {bucket}\nparams = {{ prefix = \"mirror/\" }}\n\
                     [backends.files]\nplugin = \"csv\"\ndirectory = \"files\"\n\
                     [routing]\ndefault = \"b\"\n{stream}\
                     [[mirrors]]\ndatasets = \"MIRROR.**\"\nbackends = [\"pg\", \"s3\"]\n\
                     [[mirrors]]\ndatasets = \"MIRROR.**\"\nbackends = [\"files\"]\nmode = \"sync\"\n"
                )
            }
            Primary::Postgres => format!(
                "[plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n\
                 [backends.b]\nplugin = \"sql\"\ndatabase = \"{url}\"\n\
                 [backends.local]\nplugin = \"sql\"\ndatabase = \"sqlite:mirror.db\"\n\
                 [backends.files]\nplugin = \"csv\"\ndirectory = \"files\"\n\
                 [routing]\ndefault = \"b\"\n{stream}\
                 [[mirrors]]\ndatasets = \"MIRRORPG.**\"\nbackends = [\"local\"]\n\
                 [[mirrors]]\ndatasets = \"MIRRORPG.**\"\nbackends = [\"files\"]\nmode = \"sync\"\n"
            ),
        })
    }
}

/// What the part found.
#[derive(Default)]
pub struct Report {
    /// The primary it ran on.
    pub primary: Primary,
    /// SIGKILLs sent.
    pub kills: usize,
    /// The primary's acknowledged writes, checked after each restart.
    pub check: Check,
    /// Restarts after which every mirror verified equal to the primary.
    pub mirrors_equal: usize,
    /// Lines of the stream at the end.
    pub stream_lines: u64,
    /// Broken promises: a mirror that differs, a gap or a repeat in the
    /// stream, a stream that does not replay to the primary.
    pub broken: Vec<String>,
    /// Most changes the PostgreSQL mirror had waiting during its outage.
    pub outage_queue: u64,
    /// Most changes the object store mirror had waiting during its outage.
    pub outage_queue_objects: u64,
    /// From the restart of PostgreSQL and SeaweedFS to the mirrors having
    /// caught up.
    pub caught_up_after: Option<Duration>,
    /// Writes to the primary that failed during the outage: none may on
    /// SQLite; on PostgreSQL, those while it was down.
    pub outage_failures: Vec<String>,
    /// On PostgreSQL: writes acknowledged once it was back.
    pub written_after_outage: u64,
}

/// Waits until every mirror has applied every committed change.
async fn caught_up(admin: &mut AdminClient, limit: Duration) -> Result<MirrorsReport> {
    admin
        .mirrors_caught_up(Duration::from_millis(50), limit)
        .await
}

/// Checks the mirrors and the stream against the primary's `records`.
async fn check_followers(
    primary: Primary,
    server: &Vsamrd,
    dir: &Path,
    services: &mut Services,
    records: &Records,
    report: &mut Report,
    when: &str,
) -> Result<()> {
    let mut admin = server.admin().await?;
    caught_up(&mut admin, Duration::from_secs(120)).await?;
    let mut equal = true;
    for mirror in primary.mirrors() {
        let command = AdminCommand::MirrorVerify {
            backend: mirror.to_string(),
            dataset: primary.dataset().into(),
        };
        match admin.request(command).await {
            Ok(AdminAnswer::MirrorVerified(row)) if row.count == records.len() as u64 => {}
            Ok(other) => {
                equal = false;
                report
                    .broken
                    .push(format!("{when}: mirror {mirror}: {other:?}"));
            }
            Err(error) => {
                equal = false;
                report
                    .broken
                    .push(format!("{when}: mirror {mirror}: {error}"));
            }
        }
    }
    report.mirrors_equal += usize::from(equal);
    let (lines, replayed) = match primary {
        Primary::Sqlite => replay_stream(&dir.join("data/changes/stream"))?,
        Primary::Postgres => {
            let rows = services.postgres()?.psql(
                "vsam",
                &format!("select change::text from {STREAM_TABLE} order by sequence"),
            )?;
            replay_lines(
                rows.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| (STREAM_TABLE.to_string(), l.to_string())),
            )?
        }
    };
    report.stream_lines = lines;
    if let Err(problem) = replayed {
        report
            .broken
            .push(format!("{when}: change stream: {problem}"));
    } else if replayed.as_ref().ok() != Some(records) {
        let replayed = replayed.unwrap_or_default();
        let missing = records
            .keys()
            .filter(|k| !replayed.contains_key(*k))
            .count();
        let extra = replayed
            .keys()
            .filter(|k| !records.contains_key(*k))
            .count();
        let differ = records
            .iter()
            .filter(|(k, v)| replayed.get(*k).is_some_and(|r| r != *v))
            .count();
        report.broken.push(format!(
            "{when}: the change stream replays to other records than the primary's: {missing} missing, {extra} extra, {differ} different"
        ));
    }
    Ok(())
}

fn unhex(text: &str) -> Result<Vec<u8>> {
    hex::decode(text).with_context(|| format!("{text:?} is not hex"))
}

/// Reads every stream file in order: the number of lines, and the records
/// replaying them gives (or the first gap or repeat of a sequence number).
pub(crate) fn replay_stream(dir: &Path) -> Result<(u64, Result<Records, String>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    // The stream's files, not its saved position.
    files.retain(|path| path.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    let mut lines = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        let place = path.display().to_string();
        lines.extend(text.lines().map(|line| (place.clone(), line.to_string())));
    }
    replay_lines(lines.into_iter())
}

/// Replays stream lines (each with where it was read): the number of
/// lines, and the records they give (or the first gap or repeat of a
/// sequence number).
fn replay_lines(
    lines: impl Iterator<Item = (String, String)>,
) -> Result<(u64, Result<Records, String>)> {
    let mut records = Records::new();
    let mut last = 0u64;
    for (place, line) in lines {
        let value: serde_json::Value =
            serde_json::from_str(&line).with_context(|| format!("{place}: not JSON: {line}"))?;
        let sequence = value["sequence"].as_u64().context("no sequence")?;
        if sequence != last + 1 {
            return Ok((
                last,
                Err(format!("sequence {sequence} follows {last} in {place}")),
            ));
        }
        last = sequence;
        let key = || unhex(value["key"].as_str().unwrap_or_default());
        match value["operation"].as_str().unwrap_or_default() {
            "insert" | "replace" => {
                records.insert(key()?, unhex(value["record"].as_str().unwrap_or_default())?);
            }
            "erase" => {
                records.remove(&key()?);
            }
            "define" | "delete" => records.clear(),
            other => return Ok((last, Err(format!("operation {other:?}")))),
        }
    }
    Ok((last, Ok(records)))
}

/// Kills vsamrd `kills` times while `writers` clients write on `primary`,
/// checking the primary, the mirrors and the stream after each restart;
/// then stops PostgreSQL (and SeaweedFS) under load.
pub async fn run(
    primary: Primary,
    kills: usize,
    writers: usize,
    services: &mut Services,
    rng: &mut Rng,
) -> Result<Report> {
    let dir = tempfile::tempdir()?;
    let sections = primary.sections(services)?;
    let dataset = primary.dataset();
    let mut ledgers: Vec<Ledger> = (0..writers)
        .map(|w| Ledger::new(w, RECORD_LENGTH))
        .collect();
    let mut report = Report {
        primary,
        kills,
        ..Report::default()
    };
    for round in 0..=kills {
        let server = Vsamrd::start(dir.path(), "", &sections).await?;
        if round == 0 {
            let conn = Connection::connect(&server.address).await?;
            vsam_client::define(&conn, stores::spec(dataset, "b", RECORD_LENGTH)).await?;
        } else {
            let found = stores::read_all(&server.address, dataset).await?;
            let (split, foreign) = ledger::by_writer(found.clone(), writers);
            report.check.corrupted += foreign;
            for (ledger, found) in ledgers.iter_mut().zip(&split) {
                report.check += ledger.check(found);
                for loss in ledger.losses.drain(..) {
                    report
                        .broken
                        .push(format!("after kill {round}: lost {loss}"));
                }
            }
            check_followers(
                primary,
                &server,
                dir.path(),
                services,
                &found,
                &mut report,
                &format!("after kill {round}"),
            )
            .await?;
        }
        if round == kills {
            outage(&server, dir.path(), ledgers, services, &mut report).await?;
            server.terminate().await?;
            break;
        }
        let clients = std::mem::take(&mut ledgers);
        for (ledger, errors) in server
            .kill_during(clients, 300, rng, |address, ledger, seed| {
                write_until_killed_on(dataset, address, ledger, seed)
            })
            .await?
        {
            ledgers.push(ledger);
            report
                .broken
                .extend(errors.into_iter().map(|e| format!("a write failed: {e}")));
        }
        server.kill()?;
    }
    Ok(report)
}

/// Writers go on while PostgreSQL and SeaweedFS are stopped for 2 s. On
/// SQLite the primary answers every write, the PostgreSQL and object store
/// mirrors queue and catch up. On PostgreSQL (SeaweedFS is not used) the
/// writes fail until it is back, then go on.
async fn outage(
    server: &Vsamrd,
    dir: &Path,
    ledgers: Vec<Ledger>,
    services: &mut Services,
    report: &mut Report,
) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    // The writers stop however this ends (an error too).
    let _stop_writers = StopOnDrop(stop.clone());
    let primary = report.primary;
    let back = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = ledgers
        .into_iter()
        .map(|ledger| {
            tokio::spawn(insert_until(
                server.address.clone(),
                primary,
                ledger,
                stop.clone(),
                back.clone(),
            ))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| {
        services.postgres()?.stop()?;
        match primary {
            Primary::Sqlite => services.seaweed()?.stop(),
            Primary::Postgres => Ok(()),
        }
    })?;
    // Connected once both are down: SeaweedFS may take up to 10 s to stop,
    // longer than vsamrd keeps an idle admin connection.
    let mut admin = server.admin().await?;
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(2) {
        for mirror in admin.mirror_status().await?.mirrors {
            match mirror.backend.as_str() {
                "pg" => report.outage_queue = report.outage_queue.max(mirror.queued),
                "s3" => {
                    report.outage_queue_objects = report.outage_queue_objects.max(mirror.queued)
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::task::block_in_place(|| {
        services.postgres()?.restart()?;
        match primary {
            Primary::Sqlite => services.seaweed()?.restart(),
            Primary::Postgres => Ok(()),
        }
    })?;
    let restarted = Instant::now();
    back.store(true, Ordering::Relaxed);
    // On PostgreSQL, long enough for a COMMIT cut off to be settled (the
    // backend's writes wait for that) and writes to go on.
    tokio::time::sleep(match primary {
        Primary::Sqlite => Duration::from_millis(500),
        Primary::Postgres => Duration::from_secs(5),
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut ledgers = Vec::new();
    for task in tasks {
        let (ledger, failures, written_after) = task.await?;
        ledgers.push(ledger);
        report.outage_failures.extend(failures);
        report.written_after_outage += written_after;
    }
    // A new connection: the restart may have taken longer than vsamrd
    // keeps an idle one.
    let mut admin = server.admin().await?;
    caught_up(&mut admin, Duration::from_secs(120)).await?;
    report.caught_up_after = Some(restarted.elapsed());
    let found = stores::read_all(&server.address, primary.dataset()).await?;
    let (split, _) = ledger::by_writer(found.clone(), ledgers.len());
    for (ledger, found) in ledgers.iter_mut().zip(&split) {
        report.check += ledger.check(found);
        for loss in ledger.losses.drain(..) {
            report.broken.push(format!("after the outage: lost {loss}"));
        }
    }
    let when = match primary {
        Primary::Sqlite => "after the PostgreSQL and SeaweedFS outage",
        Primary::Postgres => "after the PostgreSQL outage",
    };
    check_followers(primary, server, dir, services, &found, report, when).await
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Most failures one writer reports before it gives up.
const MOST_FAILURES: usize = 100;

/// Inserts until `stop`, and returns the failures and the writes
/// acknowledged once `back` was set. Every failure is reported: on SQLite
/// the primary never depends on an async mirror, and a writer that failed
/// [`MOST_FAILURES`] times stops (the promise is broken by then); on
/// PostgreSQL writes fail while it is down, and the writer goes on.
async fn insert_until(
    address: String,
    primary: Primary,
    mut ledger: Ledger,
    stop: Arc<AtomicBool>,
    back: Arc<AtomicBool>,
) -> (Ledger, Vec<String>, u64) {
    let mut failures = Vec::new();
    let mut written_after = 0;
    let ds = match Connection::connect(&address).await {
        Ok(conn) => Dataset::open(&conn, primary.dataset(), OpenIntent::Update, 1).await,
        Err(error) => Err(error),
    };
    let ds = match ds {
        Ok(ds) => ds,
        Err(error) => return (ledger, vec![error.to_string()], 0),
    };
    while !stop.load(Ordering::Relaxed) {
        let key = ledger.new_key();
        let version = ledger.new_version();
        let record = ledger.record(&key, version);
        match ds.put(0, RplOptions::direct(), 0, record).await {
            Ok(_) => {
                ledger.acknowledge(key, State::Present(version));
                written_after += u64::from(back.load(Ordering::Relaxed));
            }
            Err(error) => {
                ledger.in_doubt(key, State::Present(version));
                failures.push(error.to_string());
                if primary == Primary::Sqlite && failures.len() >= MOST_FAILURES {
                    break;
                }
                // A server that is gone fails at once: give the runtime
                // back its thread.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    (ledger, failures, written_after)
}

/// Prints the part's table; false if a promise was broken.
pub fn print(report: &Report) -> bool {
    println!(
        "\n{}",
        match report.primary {
            Primary::Sqlite =>
                "Mirrors (SQLite -> PostgreSQL and object store async, CSV sync) and the change stream: SIGKILL under load, then PostgreSQL and SeaweedFS stopped for 2 s",
            Primary::Postgres =>
                "Mirrors (PostgreSQL through its outbox -> SQLite async, CSV sync) and the change stream to a PostgreSQL table: SIGKILL under load, then the primary's PostgreSQL stopped for 2 s",
        }
    );
    let c = &report.check;
    println!(
        "kills {}: {} acknowledged writes, {} lost, {} corrupted; every mirror equal to the primary after {} of {} checks; stream of {} lines without gap or repeat: {}",
        report.kills,
        c.acknowledged,
        c.lost,
        c.corrupted,
        report.mirrors_equal,
        report.kills + 1,
        report.stream_lines,
        if report.broken.iter().any(|b| b.contains("stream")) {
            "NO"
        } else {
            "yes"
        }
    );
    let caught_up = report.caught_up_after.map_or(f64::NAN, |d| d.as_secs_f64());
    match report.primary {
        Primary::Sqlite => println!(
            "PostgreSQL and SeaweedFS outage: {} changes queued at most for PostgreSQL, {} for the object store, caught up {caught_up:.1} s after both were back, {} primary writes failed",
            report.outage_queue,
            report.outage_queue_objects,
            report.outage_failures.len()
        ),
        Primary::Postgres => println!(
            "PostgreSQL outage: {} writes failed while it was down ({} of them refused while a COMMIT whose answer the stop cut off was settled), {} acknowledged in the 5 s of writing once it was back; mirrors and stream caught up {caught_up:.1} s after it was back",
            report.outage_failures.len(),
            report
                .outage_failures
                .iter()
                .filter(|failure| failure.contains("got no answer"))
                .count(),
            report.written_after_outage
        ),
    }
    for broken in report.broken.iter().take(10) {
        println!("    broken: {broken}");
    }
    for failure in report.outage_failures.iter().take(3) {
        println!("    failed during the outage: {failure}");
    }
    let outage_kept = match report.primary {
        Primary::Sqlite => {
            report.outage_failures.is_empty()
                && report.outage_queue > 0
                && report.outage_queue_objects > 0
        }
        Primary::Postgres => report.written_after_outage > 0,
    };
    c.clean()
        && c.acknowledged > 0
        && report.broken.is_empty()
        && report.mirrors_equal == report.kills + 1
        && outage_kept
}
