//! The CSV directory and the SQLite file on a small tmpfs that fills up:
//! writes are refused with FDBK X'1C' (or R15=12) and a message naming the
//! dataset, reads go on, a CLOSE while full leaves no half-written copy,
//! nothing refused is stored or half-written, and once space is freed
//! writes resume, also after a SIGKILL. Then vsamrd's own files (data
//! dir, migrations journal, log) on a full disk: every admin request is
//! answered, with the reason when it cannot be done.

use crate::ledger::{Check, Ledger, State};
use crate::stores::{self, Rng, Services, Store};
use crate::tmpfs::Tmpfs;
use crate::vsamrd::Vsamrd;
use anyhow::{Result, bail};
use std::path::Path;
use std::time::{Duration, Instant};
use vsam_client::{ClientError, Connection, Dataset, OpenIntent, RplOptions};

const DATASET: &str = "DISK.KSDS";
const RECORD_LENGTH: usize = 1000;
/// Size of the tmpfs.
const TMPFS_MIB: u64 = 16;
/// Room left beside the filler file when the run starts.
const ROOM: u64 = 2 << 20;
/// Failed writes in a row after which the disk counts as full.
const REFUSALS: usize = 20;

/// One backend's figures.
struct Row {
    store: Store,
    check: Check,
    refused_no_space: u64,
    refused_r15_12: u64,
    other_failures: Vec<String>,
    reads_while_full: (u64, u64),
    /// How the CLOSE while full ended (the CSV backend rewrites its file
    /// there), and the files that were left beside the store's own.
    close_while_full: String,
    left_behind: Vec<String>,
    resumed_after: Option<Duration>,
    after_restart: Check,
    sample: String,
    /// Which writes were lost, if any.
    losses: Vec<String>,
}

/// Fills the disk under the CSV and the SQLite backend; prints the table.
pub async fn run(_args: &crate::Args, rng: &mut Rng) -> Result<bool> {
    let mut rows = Vec::new();
    for store in [Store::Csv, Store::Sqlite] {
        rows.push(one(store, rng).await?);
    }
    let admin = admin_while_full().await?;
    println!(
        "\nDisk full: the backend's files on a {TMPFS_MIB} MiB tmpfs filled to {} MiB free, records of {RECORD_LENGTH} bytes until {REFUSALS} writes in a row are refused, then the filler removed",
        ROOM >> 20
    );
    println!(
        "{:<8} {:>12} {:>5} {:>9} {:>15} {:>13} {:>13} {:>17} {:>14}",
        "backend",
        "acknowledged",
        "lost",
        "corrupted",
        "refused X'1C'",
        "refused R15=12",
        "reads ok",
        "refused, stored",
        "resumed in"
    );
    let mut ok = true;
    for row in &rows {
        println!(
            "{:<8} {:>12} {:>5} {:>9} {:>15} {:>13} {:>7}/{:<5} {:>17} {:>14}",
            row.store.name(),
            row.check.acknowledged,
            row.check.lost + row.after_restart.lost,
            row.check.corrupted + row.after_restart.corrupted,
            row.refused_no_space,
            row.refused_r15_12,
            row.reads_while_full.0,
            row.reads_while_full.1,
            row.check.refused_stored,
            row.resumed_after.map_or("never".to_string(), |d| format!(
                "{:.0} ms",
                d.as_secs_f64() * 1e3
            ))
        );
        println!("    {}", row.sample.replace('\n', "\n    "));
        println!(
            "    CLOSE while full: {}; files left behind: {}",
            row.close_while_full.replace('\n', " "),
            if row.left_behind.is_empty() {
                "none".to_string()
            } else {
                row.left_behind.join(", ")
            }
        );
        println!(
            "    after SIGKILL and restart: {} lost, {} corrupted",
            row.after_restart.lost, row.after_restart.corrupted
        );
        for other in row.other_failures.iter().take(3) {
            println!("    other failure: {other}");
        }
        for loss in &row.losses {
            println!("    lost: {loss}");
        }
        ok &= row.check.clean()
            && row.after_restart.clean()
            && row.other_failures.is_empty()
            && row.left_behind.is_empty()
            && row.refused_no_space + row.refused_r15_12 > 0
            && row.reads_while_full.0 == row.reads_while_full.1
            && row.resumed_after.is_some()
            && row.sample.contains(DATASET);
    }
    println!(
        "\nAdmin requests with vsamrd's data dir and log on the full disk, a migration cut over:"
    );
    for line in &admin.answers {
        println!("    {line}");
    }
    println!(
        "    status rows of the dataset: {:?}; after space was freed: {}",
        admin.rows, admin.after
    );
    ok &= admin.closed == 0
        && admin.rows.iter().all(|&rows| rows == 1)
        && admin.after == "rolled-back";
    ok &= crate::change_log_full::run().await?;
    Ok(ok)
}

/// How admin requests fared on a full disk.
struct AdminOnFullDisk {
    /// One line per request: what it answered.
    answers: Vec<String>,
    /// Requests whose connection closed without an answer.
    closed: usize,
    /// Rows `status` showed for the dataset, each time.
    rows: Vec<usize>,
    /// The phase of a rollback once space was freed.
    after: String,
}

/// vsamrd with everything on the tmpfs: a dataset migrated from SQLite to
/// CSV and cut over, then the disk filled; status, finalize and rollback
/// must be answered (refusals with the reason), and the rollback goes
/// through once space is freed.
async fn admin_while_full() -> Result<AdminOnFullDisk> {
    use vsam_protocol::admin::{AdminAnswer, AdminCommand};
    let dir = tempfile::tempdir()?;
    let tmpfs = Tmpfs::mount_sized(&dir.path().join("small"), TMPFS_MIB)?;
    let root = tmpfs.0.display().to_string();
    let sections = format!(
        "[plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n\
         [backends.sqlite]\nplugin = \"sql\"\ndatabase = \"sqlite:{root}/vsam.db\"\n\
         [backends.csv]\nplugin = \"csv\"\ndirectory = \"{root}/csv\"\n[routing]\ndefault = \"sqlite\"\n"
    );
    let server = Vsamrd::start(&tmpfs.0, "", &sections).await?;
    let conn = Connection::connect(&server.address).await?;
    vsam_client::define(&conn, stores::spec("DISK.MOVED", "sqlite", 200)).await?;
    let ds = Dataset::open(&conn, "DISK.MOVED", OpenIntent::Output, 1).await?;
    for n in 0..500u32 {
        ds.put(
            0,
            RplOptions::direct(),
            0,
            format!("{n:08}-moving").into_bytes(),
        )
        .await?;
    }
    ds.close().await?;
    let mut admin = server.admin().await?;
    admin
        .request(AdminCommand::Migrate {
            dataset: "DISK.MOVED".into(),
            to: "csv".into(),
        })
        .await?;
    let phase = |answer: AdminAnswer| -> Result<(String, usize)> {
        let AdminAnswer::Status(status) = answer else {
            bail!("status answered {answer:?}");
        };
        let rows: Vec<_> = status
            .migrations
            .into_iter()
            .filter(|m| m.dataset == "DISK.MOVED")
            .collect();
        let phase = rows.last().map_or("none".into(), |m| m.phase.clone());
        Ok((phase, rows.len()))
    };
    let started = Instant::now();
    while phase(admin.request(AdminCommand::Status).await?)?.0 != "cut-over" {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the migration did not cut over within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fillers = tmpfs.fill_up()?;
    let mut report = AdminOnFullDisk {
        answers: Vec::new(),
        closed: 0,
        rows: Vec::new(),
        after: String::new(),
    };
    let dataset = || "DISK.MOVED".to_string();
    for command in [
        AdminCommand::Status,
        AdminCommand::Finalize { dataset: dataset() },
        AdminCommand::Rollback { dataset: dataset() },
        AdminCommand::Reload,
        AdminCommand::Status,
    ] {
        let name = format!("{command:?}");
        let name = name.split([' ', '{']).next().unwrap_or("?").to_string();
        // A fresh connection each time, as `vsamr admin` makes.
        let answer = match server.admin().await {
            Ok(mut client) => client.request(command).await,
            Err(error) => Err(error),
        };
        match answer {
            Ok(answer @ AdminAnswer::Status(_)) => {
                let (phase, rows) = phase(answer)?;
                report.rows.push(rows);
                report.answers.push(format!("{name}: answered, {phase}"));
            }
            Ok(_) => report.answers.push(format!("{name}: answered")),
            Err(error) => {
                let message = format!("{error:#}");
                if message.contains("closed the admin connection") {
                    report.closed += 1;
                }
                report.answers.push(format!("{name}: {message}"));
            }
        }
    }
    for filler in &fillers {
        std::fs::remove_file(filler)?;
    }
    let mut admin = server.admin().await?;
    report.after = match admin
        .request(AdminCommand::Rollback { dataset: dataset() })
        .await
    {
        Ok(AdminAnswer::Migration(row)) => row.phase,
        Ok(other) => format!("{other:?}"),
        Err(error) => format!("{error:#}"),
    };
    report
        .rows
        .push(phase(admin.request(AdminCommand::Status).await?)?.1);
    server.kill()?;
    Ok(report)
}

async fn one(store: Store, rng: &mut Rng) -> Result<Row> {
    let dir = tempfile::tempdir()?;
    let tmpfs = Tmpfs::mount_sized(&dir.path().join("small"), TMPFS_MIB)?;
    let place = tmpfs.0.join(match store {
        Store::Csv => "csv",
        _ => "disk",
    });
    let sections = Services::default().sections(store, &place.display().to_string())?;
    let server = Vsamrd::start(dir.path(), "", &sections).await?;
    let conn = Connection::connect(&server.address).await?;
    vsam_client::define(&conn, stores::spec(DATASET, "b", RECORD_LENGTH)).await?;
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Update, 1).await?;
    let mut ledger = Ledger::new(0, RECORD_LENGTH);
    let mut row = Row {
        store,
        check: Check::default(),
        refused_no_space: 0,
        refused_r15_12: 0,
        other_failures: Vec::new(),
        reads_while_full: (0, 0),
        close_while_full: String::new(),
        left_behind: Vec::new(),
        resumed_after: None,
        after_restart: Check::default(),
        sample: String::new(),
        losses: Vec::new(),
    };
    let filler = tmpfs.fill(ROOM)?;

    // Write until the disk refuses REFUSALS writes in a row.
    let mut in_a_row = 0;
    let mut writes = 0u64;
    while in_a_row < REFUSALS {
        writes += 1;
        if writes > 100_000 {
            bail!("{}: 100,000 writes and the disk never filled", store.name());
        }
        let refused = write(&ds, &mut ledger, rng, &mut row).await?;
        in_a_row = if refused { in_a_row + 1 } else { 0 };
    }
    // Reads go on while the disk is full.
    for _ in 0..20 {
        let Some(key) = ledger.present_key(rng.next()) else {
            break;
        };
        let State::Present(version) = ledger.state(&key) else {
            unreachable!("a present key")
        };
        row.reads_while_full.1 += 1;
        if let Ok(records) = ds.reading(RplOptions::direct()).key(&key).records().await
            && records.first().map(|r| r.data.clone()) == Some(ledger.record(&key, version))
        {
            row.reads_while_full.0 += 1;
        }
    }

    // CLOSE while full: the CSV backend rewrites its whole file there. A
    // rewrite that cannot finish must leave no half-written copy holding
    // the space, and lose nothing (the journal still holds every record).
    let before = files(&tmpfs.0)?;
    row.close_while_full = match ds.close().await {
        Ok(()) => "closed".into(),
        Err(error) => match error.vsam() {
            Some(vsam) if vsam.fdbk() == vsam_protocol::fdbk::NO_SPACE || vsam.r15() == 12 => {
                format!("refused: {error}")
            }
            _ => {
                row.other_failures.push(format!("CLOSE: {error}"));
                format!("failed: {error}")
            }
        },
    };
    row.left_behind = files(&tmpfs.0)?
        .into_iter()
        .filter(|file| !before.contains(file))
        .collect();
    let ds = Dataset::open(&conn, DATASET, OpenIntent::Update, 1).await?;

    // The operator frees space: writes resume on the same connection.
    std::fs::remove_file(&filler)?;
    let freed = Instant::now();
    while row.resumed_after.is_none() && freed.elapsed() < Duration::from_secs(30) {
        if !write(&ds, &mut ledger, rng, &mut row).await? {
            row.resumed_after = Some(freed.elapsed());
        } else {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    for _ in 0..50 {
        if write(&ds, &mut ledger, rng, &mut row).await? {
            row.other_failures
                .push("a write failed after space was freed".into());
        }
    }
    let found = stores::read_all(&server.address, DATASET).await?;
    row.check = ledger.check(&found);

    // And after a SIGKILL, the files hold the same.
    drop(ds);
    drop(conn);
    server.kill()?;
    let server = Vsamrd::start(dir.path(), "", &sections).await?;
    let found = stores::read_all(&server.address, DATASET).await?;
    row.after_restart = ledger.check(&found);
    row.losses = ledger.losses;
    server.kill()?;
    Ok(row)
}

/// The names of the files under `dir`, recursively (relative to it).
fn files(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                names.push(path.strip_prefix(dir)?.display().to_string());
            }
        }
    }
    Ok(names)
}

/// One insert or a PUT CHAIN of 10 inserts; true when refused. A refusal
/// must be FDBK X'1C' or R15=12 with a message naming the dataset.
async fn write(ds: &Dataset, ledger: &mut Ledger, rng: &mut Rng, row: &mut Row) -> Result<bool> {
    let (chain, records) = ledger.new_chain(if rng.below(5) == 0 { 10 } else { 1 });
    let (written, failure) = match ds.put_chain(0, RplOptions::direct(), records).await {
        Ok(outcome) => (
            outcome.written.len(),
            outcome.failure.map(ClientError::Vsam),
        ),
        Err(error) => (0, Some(error)),
    };
    for (index, (key, version)) in chain.into_iter().enumerate() {
        if index < written {
            ledger.acknowledge(key, State::Present(version));
        } else {
            ledger.refused(key, State::Present(version));
        }
    }
    let Some(error) = failure else {
        return Ok(false);
    };
    match error.vsam() {
        Some(vsam) if vsam.fdbk() == vsam_protocol::fdbk::NO_SPACE && vsam.r15() == 8 => {
            row.refused_no_space += 1
        }
        Some(vsam) if vsam.r15() == 12 => row.refused_r15_12 += 1,
        _ => row.other_failures.push(error.to_string()),
    }
    if row.sample.is_empty() {
        row.sample = error.to_string();
    }
    Ok(true)
}
