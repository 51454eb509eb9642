//! Two servers pointed at one local storage: a CSV directory, an SQLite
//! file, a local bucket. The second must be refused at start, naming the
//! first (pid and data dir), however often it tries while the first
//! writes; once the first has stopped, the second takes the storage over
//! and finds every record the first acknowledged.

use crate::stores;
use crate::vsamrd::Vsamrd;
use anyhow::Result;
use std::time::{Duration, Instant};
use vsam_client::{Connection, Dataset, OpenIntent, RplOptions};

const RECORD_LENGTH: usize = 40;

/// The kinds of local storage, as a backend section over `shared`.
fn kinds(shared: &std::path::Path) -> [(&'static str, String); 3] {
    [
        (
            "CSV directory",
            format!(
                "plugin = \"csv\"\ndirectory = \"{}\"",
                shared.join("csv").display()
            ),
        ),
        (
            "SQLite file",
            format!(
                "plugin = \"sql\"\ndatabase = \"sqlite:{}\"",
                shared.join("vsam.db").display()
            ),
        ),
        (
            "local bucket",
            format!(
                "plugin = \"s3\"\nbucket = {{ directory = \"{}\" }}",
                shared.join("objects").display()
            ),
        ),
    ]
}

const PLUGINS: &str = "[plugins.csv]\npath = \"builtin:csv\"\n[plugins.sql]\npath = \"builtin:sql\"\n[plugins.s3]\npath = \"builtin:s3\"\n";

struct Row {
    kind: &'static str,
    tries: u32,
    refused: u32,
    named_holder: u32,
    refusal_ms: f64,
    acknowledged: usize,
    found_after: usize,
}

/// Runs every kind and prints the table.
pub async fn run(args: &crate::Args) -> Result<bool> {
    let tries = if args.quick { 2 } else { 5 };
    let writes_per_try = if args.quick { 20 } else { 200 };
    let mut rows = Vec::new();
    let root = tempfile::tempdir()?;
    for (index, (kind, backend)) in kinds(&root.path().join("shared")).into_iter().enumerate() {
        let sections = format!("{PLUGINS}[backends.b]\n{backend}\n");
        let first_dir = root.path().join(format!("first-{index}"));
        let second_dir = root.path().join(format!("second-{index}"));
        std::fs::create_dir_all(&first_dir)?;
        std::fs::create_dir_all(&second_dir)?;
        let first = Vsamrd::start(&first_dir, "", &sections).await?;
        let first_pid = first.pid();
        let conn = Connection::connect(&first.address).await?;
        vsam_client::define(&conn, stores::spec("SHARED.KSDS", "b", RECORD_LENGTH)).await?;
        let ds = Dataset::open(&conn, "SHARED.KSDS", OpenIntent::Update, 1).await?;
        let mut row = Row {
            kind,
            tries,
            refused: 0,
            named_holder: 0,
            refusal_ms: 0.0,
            acknowledged: 0,
            found_after: 0,
        };
        let holder = format!(
            "pid {first_pid}, data dir {}",
            first_dir.join("data").display()
        );
        for _ in 0..tries {
            for _ in 0..writes_per_try {
                let mut record = format!("K{:07}", row.acknowledged).into_bytes();
                record.resize(RECORD_LENGTH, b'-');
                ds.put(0, RplOptions::direct(), 0, record).await?;
                row.acknowledged += 1;
            }
            let started = Instant::now();
            match Vsamrd::start(&second_dir, "", &sections).await {
                Ok(second) => second.kill()?,
                Err(error) => {
                    let text = format!("{error:#}");
                    if text.contains("in use by another vsamrd") {
                        row.refused += 1;
                    }
                    if text.contains(&holder) {
                        row.named_holder += 1;
                    }
                    row.refusal_ms = row.refusal_ms.max(crate::ms(started.elapsed()));
                }
            }
        }
        ds.close().await?;
        first.terminate().await?;
        // The first has stopped: the storage is free, and holds everything.
        let second = Vsamrd::start(&second_dir, "", &sections).await?;
        // The second server's catalog does not know the dataset yet.
        let conn = Connection::connect(&second.address).await?;
        vsam_client::define(&conn, stores::spec("SHARED.KSDS", "b", RECORD_LENGTH)).await?;
        row.found_after = stores::read_all(&second.address, "SHARED.KSDS")
            .await?
            .len();
        second.terminate().await?;
        rows.push(row);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    println!(
        "\nTwo servers on one local storage: the second started {tries} times while the first writes, then after it stopped"
    );
    println!(
        "{:<14} {:>6} {:>8} {:>13} {:>14} {:>13} {:>12}",
        "storage",
        "tries",
        "refused",
        "named holder",
        "refusal ms max",
        "acknowledged",
        "found after"
    );
    let mut ok = true;
    for row in &rows {
        println!(
            "{:<14} {:>6} {:>8} {:>13} {:>14.0} {:>13} {:>12}",
            row.kind,
            row.tries,
            row.refused,
            row.named_holder,
            row.refusal_ms,
            row.acknowledged,
            row.found_after
        );
        ok &= row.refused == row.tries
            && row.named_holder == row.tries
            && row.found_after == row.acknowledged;
    }
    Ok(ok)
}
