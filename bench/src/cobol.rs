//! A COBOL batch job on GnuCOBOL's own file handler and through the bridge
//! to vsamrd on SQLite, in the same run: `bench/cobol/batch.cbl` loads
//! 100,000 records, reads them all sequentially, and reads them again
//! rewriting every tenth. The same binary serves both sides (the bridge
//! hands unmapped files to GnuCOBOL's handler), so only the file handling
//! differs.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const SOURCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/cobol/batch.cbl");

/// The directory holding `libvsamextfh.so` (built beside this binary as a
/// dependency).
fn bridge_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().context("binary directory")?;
    [dir.join("deps"), dir.to_path_buf()]
        .into_iter()
        .find(|d| d.join("libvsamextfh.so").exists())
        .context("libvsamextfh.so is not built: cargo build --release -p vsam-bench")
}

fn compile(out: &Path) -> Result<()> {
    let lib = bridge_dir()?;
    let status = Command::new("cobc")
        .args(["-x", "-fcallfh=vsamextfh", SOURCE, "-o"])
        .arg(out)
        .arg("-Q")
        .arg(format!("-L{0} -lvsamextfh -Wl,-rpath,{0}", lib.display()))
        .status()
        .context("cobc (GnuCOBOL: scripts/setup installs it)")?;
    anyhow::ensure!(status.success(), "cobc failed on {SOURCE}");
    Ok(())
}

/// Runs one phase; returns its seconds and the program's summary line.
async fn phase(
    program: &Path,
    dir: &Path,
    mode: &str,
    records: u64,
    server: Option<&str>,
    settings: &[(&str, &str)],
) -> Result<(f64, String)> {
    let mut command = Command::new(program);
    command
        .current_dir(dir)
        .env_remove("LD_LIBRARY_PATH")
        .env("BATCH_MODE", mode)
        .env("BATCH_RECORDS", records.to_string());
    if let Some(server) = server {
        command
            .env("VSAMFH_SERVER", server)
            .env("VSAMFH_FILE_ACCOUNTS", "BENCH.ACCOUNTS")
            .env("VSAMFH_DEFINE", "1")
            .env("VSAMFH_BACKEND", "b")
            .envs(settings.iter().copied());
    }
    let started = Instant::now();
    let output = tokio::task::spawn_blocking(move || command.output()).await??;
    let seconds = started.elapsed().as_secs_f64();
    let out = String::from_utf8_lossy(&output.stdout).trim().to_string();
    anyhow::ensure!(
        output.status.success() && out.contains(&format!("RECORDS {records:09}")),
        "the COBOL batch ({mode}) failed: {out}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((seconds, out))
}

/// One measured run: the program's mode, what the report calls it, and the
/// bridge's settings.
type Run<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

/// Runs the batch both ways and returns the report lines.
pub async fn run(records: u64) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let program = dir.path().join("batch");
    compile(&program)?;
    let local = dir.path().join("local");
    std::fs::create_dir(&local)?;
    let server = crate::start("sqlite (wasm)", dir.path(), None, 0).await?;
    let address = server.addr.to_string();
    let mut lines = vec![format!(
        "COBOL batch ({records} records of 100 bytes, indexed, sequential access): GnuCOBOL's own handler (BDB) vs the bridge + vsamrd + SQLite, same binary"
    )];
    let commit = [("VSAMFH_DURABILITY", "commit")];
    let checkpoint = [
        ("VSAMFH_DURABILITY", "commit"),
        ("VSAMFH_CHECKPOINT", "1000"),
    ];
    let runs: [Run; 7] = [
        ("LOAD", "load (WRITE each), sync", &[]),
        ("LOAD", "load, commit at CLOSE", &commit),
        ("SCAN", "read all (READ NEXT)", &[]),
        ("UPDATE", "read all, REWRITE 10%, sync", &[]),
        ("UPDATE", "REWRITE 10%, commit at CLOSE", &commit),
        ("UPDATE", "REWRITE 10%, checkpoint 1000", &checkpoint),
        ("LOAD", "load, checkpoint 1000", &checkpoint),
    ];
    for (mode, what, settings) in runs {
        let (native, native_out) = phase(&program, &local, mode, records, None, &[]).await?;
        let (bridged, bridged_out) = phase(
            &program,
            dir.path(),
            mode,
            records,
            Some(&address),
            settings,
        )
        .await
        .with_context(|| format!("the bridge's run of {what}"))?;
        anyhow::ensure!(
            native_out == bridged_out,
            "{what}: the runs differ: {native_out:?} vs {bridged_out:?}"
        );
        lines.push(format!(
            "  {what:<30} GnuCOBOL {native:6.2} s ({:>8.0} rec/s)   bridge {bridged:6.2} s ({:>8.0} rec/s)   ratio {:.1}",
            records as f64 / native,
            records as f64 / bridged,
            bridged / native
        ));
    }
    server.stop().await;
    Ok(lines)
}
