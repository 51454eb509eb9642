//! `vsam-reliability`: vsamrd killed, starved and overloaded, with a table
//! of figures for each:
//!
//! - `crash`: SIGKILL at random moments under write load, per backend
//!   (CSV, SQLite, PostgreSQL, object store); every acknowledged write is
//!   checked after each restart.
//! - `units`: SIGKILL at random moments while clients run units of work
//!   (COMMIT, ROLLBACK), per backend: every committed unit whole, nothing
//!   of the others, after each restart.
//! - `outage`: the PostgreSQL and S3 servers stopped and restarted under
//!   load.
//! - `disk-full`: the CSV and SQLite files on a small tmpfs that fills up,
//!   and a mirrored dataset's change log on one.
//! - `plugin-faults`: traps, panics, endless loops and memory bombs
//!   injected at random calls under load, beside healthy backends.
//! - `soak`: 1,000 connections of mixed traffic for 10 minutes: errors,
//!   RSS and latency.
//! - `blocked-calls`: a plugin that waits in host functions (sleeps in
//!   `get`, `insert`, `sync` and `init`, a long PostgreSQL statement, a
//!   locked row, an object store that never answers): every call ends at
//!   its limit, other clients are served, SIGTERM is prompt.
//! - `fleet`: three vsamrd on one PostgreSQL, clients transferring money
//!   between accounts over all of them in units of work, a server
//!   SIGKILLed and started again mid-run: the sum is unchanged, no update
//!   lost, every acknowledged transfer stored, no record lock left held.
//! - `shared-storage`: a second vsamrd pointed at the first one's CSV
//!   directory, SQLite file or local bucket is refused, naming the first.
//! - `mirrors`: a dataset on SQLite mirrored to PostgreSQL, the object
//!   store and CSV files, with the change stream on, SIGKILLed under load:
//!   after each restart every mirror verifies equal to the primary and the
//!   stream replays to it, numbered without gap or repeat; then PostgreSQL
//!   stopped under load: the primary goes on, the mirror queues and
//!   catches up. The same with a primary on PostgreSQL (through its
//!   outbox) mirrored to SQLite and CSV files, its stream to a table
//!   there, whose own PostgreSQL is
//!   stopped under load: writes fail meanwhile, then go on, and the
//!   mirrors and the stream still hold exactly what it holds.
//!
//! Exits non-zero when any promise is broken.

mod blocked;
mod change_log_full;
mod crash;
mod disk_full;
mod faults;
mod fleet;
mod ledger;
mod mirrors;
mod outage;
mod records;
mod shared;
mod soak;
mod stores;
mod tmpfs;
mod units;
mod vsamrd;

use anyhow::Result;
use clap::{Parser, ValueEnum};
use std::time::Duration;
use stores::{Rng, Services, Store};

/// Crash, fault and soak tests of vsamrd, printed as tables.
#[derive(Parser)]
#[command(name = "vsam-reliability", about)]
struct Args {
    /// The parts to run (default: all of them).
    #[arg(value_enum)]
    parts: Vec<Part>,
    /// Seed of the random moments and operations (default: the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// SIGKILLs per backend.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Clients writing during the kills and outages.
    #[arg(long, default_value_t = 4)]
    writers: usize,
    /// Seconds of each of the five phases of the plugin-fault run (normal
    /// and with faults, in turn).
    #[arg(long, default_value_t = 20)]
    fault_phase_secs: u64,
    /// Faults injected per second during the fault phase.
    #[arg(long, default_value_t = 4.0)]
    faults_per_sec: f64,
    /// Connections of the soak.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Seconds of the soak.
    #[arg(long, default_value_t = 600)]
    soak_secs: u64,
    /// Mean pause of each soak connection between two requests, in ms.
    #[arg(long, default_value_t = 500)]
    think_ms: u64,
    /// Largest RSS growth of vsamrd allowed over the soak, in MiB.
    #[arg(long, default_value_t = 16)]
    rss_bound_mib: u64,
    /// A short run of every part (3 kills per backend, 2 s outages, 3 s
    /// fault phases, 200 connections for 30 s), as the test suite runs it:
    /// every check is made except the throughput ratio and the RSS bound,
    /// which a short run cannot judge (they are printed).
    #[arg(long)]
    quick: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Crash,
    Units,
    Outage,
    DiskFull,
    PluginFaults,
    Soak,
    BlockedCalls,
    SharedStorage,
    Fleet,
    Mirrors,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn print_crash(rows: &[crash::Row]) -> bool {
    println!("\nSIGKILL under write load: every acknowledged write checked after each restart");
    println!(
        "{:<13} {:>5} {:>12} {:>10} {:>5} {:>9} {:>16} {:>15} {:>7}",
        "backend",
        "kills",
        "acknowledged",
        "found",
        "lost",
        "corrupted",
        "in doubt: stored",
        "restart p50/max",
        "errors"
    );
    let mut ok = true;
    for row in rows {
        let mut restarts = row.restarts.clone();
        restarts.sort();
        let p50 = restarts
            .get(restarts.len() / 2)
            .copied()
            .unwrap_or_default();
        let max = restarts.last().copied().unwrap_or_default();
        let c = &row.check;
        println!(
            "{:<13} {:>5} {:>12} {:>10} {:>5} {:>9} {:>10}/{:<5} {:>7.0}/{:<4.0}ms {:>7}",
            row.store.name(),
            row.kills,
            c.acknowledged,
            c.found,
            c.lost,
            c.corrupted,
            c.in_doubt_stored,
            c.in_doubt_stored + c.in_doubt_absent,
            ms(p50),
            ms(max),
            row.answered_errors.len()
        );
        for error in row.answered_errors.iter().take(3) {
            println!("    error: {error}");
        }
        for loss in &row.losses {
            println!("    lost: {loss}");
        }
        ok &= c.clean() && row.answered_errors.is_empty() && c.acknowledged > 0;
    }
    ok
}

fn print_units(rows: &[units::Row]) -> bool {
    println!(
        "\nSIGKILL while units of work run: every committed unit whole, nothing of the others, after each restart"
    );
    println!(
        "{:<13} {:>5} {:>10} {:>12} {:>22} {:>7} {:>7}",
        "backend",
        "kills",
        "committed",
        "rolled back",
        "in doubt: stored whole",
        "broken",
        "errors"
    );
    let mut ok = true;
    for row in rows {
        if let Some(refused) = &row.refused {
            let named = refused.contains("units.whole");
            println!(
                "{:<13} commit durability refused at OPEN, as it must be for a plugin that cannot keep units whole{}",
                row.store.name(),
                if named {
                    ""
                } else {
                    " (BUT the message does not say why)"
                }
            );
            ok &= named && row.store == Store::Objects;
            continue;
        }
        println!(
            "{:<13} {:>5} {:>10} {:>12} {:>15}/{:<6} {:>7} {:>7}",
            row.store.name(),
            row.kills,
            row.committed,
            row.rolled_back,
            row.in_doubt.1,
            row.in_doubt.0,
            row.broken.len(),
            row.errors.len()
        );
        for error in row.errors.iter().take(3) {
            println!("    error: {error}");
        }
        for broken in &row.broken {
            println!("    broken: {broken}");
        }
        ok &= row.broken.is_empty() && row.errors.is_empty() && row.committed > 0;
    }
    ok
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.kills = 3;
        args.fault_phase_secs = 3;
        args.connections = 200;
        args.soak_secs = 30;
    }
    let parts = if args.parts.is_empty() {
        Part::value_variants().to_vec()
    } else {
        args.parts.clone()
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    println!(
        "vsam-reliability: seed {seed}, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let ok = runtime.block_on(async {
        let mut rng = Rng::new(seed);
        let mut services = Services::default();
        let mut ok = true;
        for part in parts {
            ok &= match part {
                Part::Crash => {
                    let mut rows = Vec::new();
                    for store in Store::ALL {
                        rows.push(
                            crash::run(store, args.kills, args.writers, &mut services, &mut rng)
                                .await?,
                        );
                    }
                    print_crash(&rows)
                }
                Part::Units => {
                    let mut rows = Vec::new();
                    for store in Store::ALL {
                        rows.push(
                            units::run(store, args.kills, args.writers, &mut services, &mut rng)
                                .await?,
                        );
                    }
                    print_units(&rows)
                }
                Part::Outage => outage::run(&args, &mut services, &mut rng).await?,
                Part::DiskFull => disk_full::run(&args, &mut rng).await?,
                Part::PluginFaults => faults::run(&args, &mut rng).await?,
                Part::Soak => soak::run(&args, &mut rng).await?,
                Part::BlockedCalls => blocked::run(&args, &mut services).await?,
                Part::SharedStorage => shared::run(&args).await?,
                Part::Fleet => {
                    let (secs, kills) = if args.quick { (8, 1) } else { (60, 5) };
                    let report =
                        fleet::run(3, 24, 50, secs, kills, &mut services, &mut rng).await?;
                    fleet::print(&report)
                }
                Part::Mirrors => {
                    let mut kept = true;
                    for primary in [mirrors::Primary::Sqlite, mirrors::Primary::Postgres] {
                        let report = mirrors::run(
                            primary,
                            args.kills,
                            args.writers,
                            &mut services,
                            &mut rng,
                        )
                        .await?;
                        kept &= mirrors::print(&report);
                    }
                    kept
                }
            };
        }
        Ok::<_, anyhow::Error>(ok)
    })?;
    if !ok {
        anyhow::bail!("a promise was broken: see the tables above");
    }
    println!("\nall promises kept");
    Ok(())
}
