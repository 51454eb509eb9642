//! Mirrors and the change stream under SIGKILL and store outages: a
//! dataset on SQLite mirrored asynchronously to PostgreSQL and to the
//! object store (SeaweedFS), synchronously to CSV files, with the change
//! stream on. After each restart every mirror must hold exactly what the
//! primary holds once it has caught up (verified record by record), and
//! the stream's lines must be numbered without a gap or a repeat and
//! replay to exactly the primary's records. Then PostgreSQL and SeaweedFS
//! are stopped under load: the primary's writes go on, their mirrors queue
//! and catch up.

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

/// Apart from the names other parts define on the same PostgreSQL database
/// (whose shared catalog every server on it follows).
const DATASET: &str = "MIRROR.KSDS";
const RECORD_LENGTH: usize = 64;
/// The mirror backends.
const MIRRORS: [&str; 3] = ["pg", "s3", "files"];

/// What the part found.
#[derive(Default)]
pub struct Report {
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
    /// Writes to the primary that failed during the outage.
    pub outage_failures: Vec<String>,
}

fn sections(services: &mut Services) -> Result<String> {
    let url = services.postgres()?.url.clone();
    let bucket = services.seaweed()?.bucket_table();
    Ok(format!(
        "[plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n[plugins.s3]\npath = \"builtin:s3\"\n\
         [backends.b]\nplugin = \"sql\"\ndatabase = \"sqlite:primary.db\"\n\
         [backends.pg]\nplugin = \"sql\"\ndatabase = \"{url}\"\n\
         [backends.s3]\nplugin = \"s3\"\nbucket = {bucket}\nparams = {{ prefix = \"mirror/\" }}\n\
         [backends.files]\nplugin = \"csv\"\ndirectory = \"files\"\n\
         [routing]\ndefault = \"b\"\n\
         [changes]\nstream = \"file\"\nstream_rotate_mb = 1\nstream_keep_files = 1000\n\
         [[mirrors]]\ndatasets = \"MIRROR.**\"\nbackends = [\"pg\", \"s3\"]\n\
         [[mirrors]]\ndatasets = \"MIRROR.**\"\nbackends = [\"files\"]\nmode = \"sync\"\n"
    ))
}

/// Waits until every mirror has applied every committed change.
async fn caught_up(admin: &mut AdminClient, limit: Duration) -> Result<MirrorsReport> {
    admin
        .mirrors_caught_up(Duration::from_millis(50), limit)
        .await
}

/// Checks the mirrors and the stream against the primary's `records`.
async fn check_followers(
    server: &Vsamrd,
    dir: &Path,
    records: &Records,
    report: &mut Report,
    when: &str,
) -> Result<()> {
    let mut admin = server.admin().await?;
    caught_up(&mut admin, Duration::from_secs(120)).await?;
    let mut equal = true;
    for mirror in MIRRORS {
        let command = AdminCommand::MirrorVerify {
            backend: mirror.into(),
            dataset: DATASET.into(),
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
    let (lines, replayed) = replay_stream(&dir.join("data/changes/stream"))?;
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
    (0..text.len())
        .step_by(2)
        .map(|i| {
            Ok(u8::from_str_radix(
                text.get(i..i + 2).context("odd hex")?,
                16,
            )?)
        })
        .collect()
}

/// Reads every stream file in order: the number of lines, and the records
/// replaying them gives (or the first gap or repeat of a sequence number).
fn replay_stream(dir: &Path) -> Result<(u64, Result<Records, String>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    // The stream's files, not its saved position.
    files.retain(|path| path.extension().is_some_and(|e| e == "jsonl"));
    files.sort();
    let mut records = Records::new();
    let mut last = 0u64;
    for path in files {
        let text = std::fs::read_to_string(&path)?;
        for line in text.lines() {
            let value: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}: not JSON: {line}", path.display()))?;
            let sequence = value["sequence"].as_u64().context("no sequence")?;
            if sequence != last + 1 {
                return Ok((
                    last,
                    Err(format!(
                        "sequence {sequence} follows {last} in {}",
                        path.display()
                    )),
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
    }
    Ok((last, Ok(records)))
}

/// Kills vsamrd `kills` times while `writers` clients write, checking the
/// primary, the mirrors and the stream after each restart; then stops
/// PostgreSQL under load.
pub async fn run(
    kills: usize,
    writers: usize,
    services: &mut Services,
    rng: &mut Rng,
) -> Result<Report> {
    let dir = tempfile::tempdir()?;
    let sections = sections(services)?;
    let mut ledgers: Vec<Ledger> = (0..writers)
        .map(|w| Ledger::new(w, RECORD_LENGTH))
        .collect();
    let mut report = Report {
        kills,
        ..Report::default()
    };
    for round in 0..=kills {
        let server = Vsamrd::start(dir.path(), "", &sections).await?;
        if round == 0 {
            let conn = Connection::connect(&server.address).await?;
            vsam_client::define(&conn, stores::spec(DATASET, "b", RECORD_LENGTH)).await?;
        } else {
            let found = stores::read_all(&server.address, DATASET).await?;
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
                &server,
                dir.path(),
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
                write_until_killed_on(DATASET, address, ledger, seed)
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

/// Writers go on while PostgreSQL and SeaweedFS are stopped for 2 s: the
/// primary (SQLite) answers every write, the PostgreSQL and object store
/// mirrors queue and catch up.
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
    let tasks: Vec<_> = ledgers
        .into_iter()
        .map(|ledger| tokio::spawn(insert_until(server.address.clone(), ledger, stop.clone())))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| {
        services.postgres()?.stop()?;
        services.seaweed()?.stop()
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
        services.seaweed()?.restart()
    })?;
    let restarted = Instant::now();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let mut ledgers = Vec::new();
    for task in tasks {
        let (ledger, failures) = task.await?;
        ledgers.push(ledger);
        report.outage_failures.extend(failures);
    }
    // A new connection: the restart may have taken longer than vsamrd
    // keeps an idle one.
    let mut admin = server.admin().await?;
    caught_up(&mut admin, Duration::from_secs(120)).await?;
    report.caught_up_after = Some(restarted.elapsed());
    let found = stores::read_all(&server.address, DATASET).await?;
    let (split, _) = ledger::by_writer(found.clone(), ledgers.len());
    for (ledger, found) in ledgers.iter_mut().zip(&split) {
        report.check += ledger.check(found);
        for loss in ledger.losses.drain(..) {
            report.broken.push(format!("after the outage: lost {loss}"));
        }
    }
    check_followers(
        server,
        dir,
        &found,
        report,
        "after the PostgreSQL and SeaweedFS outage",
    )
    .await
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

/// Inserts until `stop`; every failure is reported (the primary never
/// depends on an async mirror), and a writer that failed
/// [`MOST_FAILURES`] times stops (the promise is broken by then).
async fn insert_until(
    address: String,
    mut ledger: Ledger,
    stop: Arc<AtomicBool>,
) -> (Ledger, Vec<String>) {
    let mut failures = Vec::new();
    let ds = match Connection::connect(&address).await {
        Ok(conn) => Dataset::open(&conn, DATASET, OpenIntent::Update, 1).await,
        Err(error) => Err(error),
    };
    let ds = match ds {
        Ok(ds) => ds,
        Err(error) => return (ledger, vec![error.to_string()]),
    };
    while !stop.load(Ordering::Relaxed) {
        let key = ledger.new_key();
        let version = ledger.new_version();
        let record = ledger.record(&key, version);
        match ds.put(0, RplOptions::direct(), 0, record).await {
            Ok(_) => ledger.acknowledge(key, State::Present(version)),
            Err(error) => {
                ledger.in_doubt(key, State::Present(version));
                failures.push(error.to_string());
                if failures.len() >= MOST_FAILURES {
                    break;
                }
                // A server that is gone fails at once: give the runtime
                // back its thread.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    (ledger, failures)
}

/// Prints the part's table; false if a promise was broken.
pub fn print(report: &Report) -> bool {
    println!(
        "\nMirrors (SQLite -> PostgreSQL and object store async, CSV sync) and the change stream: SIGKILL under load, then PostgreSQL and SeaweedFS stopped for 2 s"
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
    println!(
        "PostgreSQL and SeaweedFS outage: {} changes queued at most for PostgreSQL, {} for the object store, caught up {:.1} s after both were back, {} primary writes failed",
        report.outage_queue,
        report.outage_queue_objects,
        report.caught_up_after.map_or(f64::NAN, |d| d.as_secs_f64()),
        report.outage_failures.len()
    );
    for broken in report.broken.iter().take(10) {
        println!("    broken: {broken}");
    }
    for failure in report.outage_failures.iter().take(3) {
        println!("    failed during the outage: {failure}");
    }
    c.clean()
        && c.acknowledged > 0
        && report.broken.is_empty()
        && report.outage_failures.is_empty()
        && report.mirrors_equal == report.kills + 1
        && report.outage_queue > 0
        && report.outage_queue_objects > 0
}
