//! `vsamr admin`: reload, status and plugin versions of a running vsamrd.

use super::migrate::MigrateArgs;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};
use vsam_client::admin::{AdminClient, DEFAULT_ADMIN, read_token};
use vsam_protocol::admin::{
    AdminAnswer, AdminCommand, ConnectionRow, MirrorsReport, ReloadReport, StatusReport,
};

/// Where the admin interface is and how to prove the right to use it.
#[derive(Args)]
pub struct AdminArgs {
    /// Admin address of the server.
    #[arg(long, env = "VSAMR_ADMIN", default_value = DEFAULT_ADMIN)]
    admin: String,
    /// The server's admin token file.
    #[arg(
        long,
        env = "VSAMR_ADMIN_TOKEN_FILE",
        default_value = "vsam-data/admin.token"
    )]
    token_file: PathBuf,
    /// The token itself (instead of --token-file). Given as an argument it
    /// shows in the process list, which every user of the machine may
    /// read: prefer VSAMR_ADMIN_TOKEN or --token-file.
    #[arg(long, env = "VSAMR_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Seconds to wait for the server's answer (0: as long as it takes).
    /// By default a command the server answers at once (status,
    /// connections, mirror status...) waits 60 s, and one that may take
    /// minutes (reload, migrate --finalize or --rollback, mirror resync or
    /// verify) as long as it takes.
    #[arg(long, env = "VSAMR_ADMIN_TIMEOUT", value_name = "SECS")]
    timeout: Option<u64>,
    #[command(subcommand)]
    command: AdminCommandArg,
}

#[derive(Subcommand)]
enum AdminCommandArg {
    /// Re-reads the configuration and plugin files and applies what changed
    /// (all or nothing); prints what changed or why nothing did.
    Reload,
    /// Shows the server, its backends and the last reload.
    Status,
    /// Lists loaded plugin versions: hash, load time, backends, calls in flight.
    Plugins,
    /// Lists the connections open now: number, address, who and what
    /// client, age, idle time, requests, open datasets, records held for
    /// update and in a unit of work (a refusal X'14' names the connection
    /// that holds the record).
    Connections,
    /// Ends a connection that holds records others need (`connections`
    /// lists them): its request under way is answered, then it is told
    /// and closed, its unit of work rolled back and its records released.
    Disconnect {
        /// The connection.
        connection: u64,
    },
    /// Rolls back the unit of work of a connection (`status` lists the
    /// units holding changes, with their connections): its records are
    /// free at once, and the connection's next request is told.
    RollbackUnit {
        /// The connection.
        connection: u64,
    },
    /// Moves a dataset to another backend while programs keep using it:
    /// copy (writes reach both), verify (count and checksum), cut over.
    /// The old copy follows every write until --finalize removes it;
    /// --rollback returns to it before that.
    Migrate(MigrateArgs),
    /// The mirrors that keep other backends in step with datasets, and
    /// the change stream: lag, queue, last error; pause, resume, resync,
    /// verify.
    #[command(subcommand)]
    Mirror(MirrorArg),
}

#[derive(Subcommand)]
enum MirrorArg {
    /// Every mirror's phase, queue (changes not applied yet), lag and
    /// last error, and where the change stream is.
    Status,
    /// Stops applying changes to a mirror; they wait in the change log.
    Pause {
        /// The mirror backend.
        backend: String,
    },
    /// Applies changes to a paused mirror again.
    Resume {
        /// The mirror backend.
        backend: String,
    },
    /// Copies every dataset to the mirror again, then follows: for a
    /// mirror that drifted or stopped.
    Resync {
        /// The mirror backend.
        backend: String,
    },
    /// Compares a dataset on its backend and on a mirror: count and
    /// checksum, batch by batch.
    Verify {
        /// The mirror backend.
        backend: String,
        /// The dataset.
        dataset: String,
    },
}

/// Runs an admin command.
pub async fn run(args: AdminArgs, tls: Option<vsam_client::TlsOptions>, json: bool) -> Result<()> {
    let token = match args.token {
        Some(token) => {
            if given_as_argument("--token") {
                eprintln!(
                    "vsamr: warning: --token shows the admin token in the process list, which every user of this machine may read; use VSAMR_ADMIN_TOKEN or --token-file"
                );
            }
            token
        }
        None => read_token(&args.token_file)?,
    };
    let mut client = AdminClient::connect_with(&args.admin, token, tls.as_ref()).await?;
    if let Some(seconds) = args.timeout {
        client.set_answer_limit((seconds > 0).then(|| Duration::from_secs(seconds)));
    }
    let command = match args.command {
        AdminCommandArg::Reload => AdminCommand::Reload,
        AdminCommandArg::Status => AdminCommand::Status,
        AdminCommandArg::Plugins => AdminCommand::Plugins,
        AdminCommandArg::RollbackUnit { connection } => AdminCommand::RollbackUnit { connection },
        AdminCommandArg::Connections => AdminCommand::Connections,
        AdminCommandArg::Disconnect { connection } => AdminCommand::Disconnect { connection },
        AdminCommandArg::Migrate(migrate) => {
            return super::migrate::run(client, migrate, json).await;
        }
        AdminCommandArg::Mirror(MirrorArg::Status) => AdminCommand::MirrorStatus,
        AdminCommandArg::Mirror(MirrorArg::Pause { backend }) => {
            AdminCommand::MirrorPause { backend }
        }
        AdminCommandArg::Mirror(MirrorArg::Resume { backend }) => {
            AdminCommand::MirrorResume { backend }
        }
        AdminCommandArg::Mirror(MirrorArg::Resync { backend }) => {
            AdminCommand::MirrorResync { backend }
        }
        AdminCommandArg::Mirror(MirrorArg::Verify { backend, dataset }) => {
            AdminCommand::MirrorVerify { backend, dataset }
        }
    };
    let answer = client.request(command).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        match &answer {
            AdminAnswer::Reload(report) => print_reload(report),
            AdminAnswer::Status(status) => print_status(status),
            AdminAnswer::Plugins { versions } => {
                outln!(
                    "{:<10} {:<12} {:<20} {:<9} {:>8} {:>9}  backends",
                    "plugin",
                    "hash",
                    "loaded",
                    "state",
                    "datasets",
                    "in-flight"
                );
                for v in versions {
                    outln!(
                        "{:<10} {:<12} {:<20} {:<9} {:>8} {:>9}  {}",
                        v.plugin,
                        &v.hash[..v.hash.len().min(12)],
                        timestamp(v.loaded_at),
                        v.state,
                        v.datasets,
                        v.in_flight,
                        if v.backends.is_empty() {
                            "-".to_string()
                        } else {
                            v.backends.join(", ")
                        }
                    );
                }
            }
            AdminAnswer::Migration(row) => outln!("{row:?}"),
            AdminAnswer::UnitRolledBack(unit) => outln!(
                "connection {}: its unit of work ({} changed records of {}, {} old) is rolled back; its records are free",
                unit.connection,
                unit.records,
                unit.datasets.join(", "),
                humanize(Duration::from_secs(unit.age_s))
            ),
            AdminAnswer::Connections { connections } => print_connections(connections),
            AdminAnswer::Disconnected(row) => outln!(
                "connection {} ({} from {}, {}) is ended: it is told once its request under way is answered; {} record(s) it held for update and {} in its unit of work are released",
                row.connection,
                row.identity,
                row.peer,
                row.client,
                row.held_for_update,
                row.unit_records
            ),
            AdminAnswer::Mirrors(report) => print_mirrors(report),
            AdminAnswer::MirrorVerified(row) => outln!(
                "{} on mirror {}: equal, {} records, SHA-256 {}",
                row.dataset,
                row.backend,
                row.count,
                row.checksum
            ),
            AdminAnswer::Error { message } => anyhow::bail!("{message}"),
        }
    }
    if let AdminAnswer::Reload(ReloadReport {
        error: Some(error), ..
    }) = &answer
    {
        anyhow::bail!("reload refused: {error}");
    }
    Ok(())
}

fn print_connections(connections: &[ConnectionRow]) {
    if connections.is_empty() {
        outln!("no connection");
        return;
    }
    outln!(
        "{:>6} {:<22} {:<12} {:<16} {:>8} {:>8} {:>8} {:>5} {:>5}  datasets",
        "conn",
        "peer",
        "identity",
        "client",
        "age",
        "idle",
        "requests",
        "upd",
        "unit"
    );
    for c in connections {
        outln!(
            "{:>6} {:<22} {:<12} {:<16} {:>8} {:>8} {:>8} {:>5} {:>5}  {}",
            c.connection,
            c.peer,
            c.identity,
            c.client,
            humanize(Duration::from_secs(c.connected_s)),
            humanize(Duration::from_secs(c.idle_s)),
            c.requests,
            c.held_for_update,
            c.unit_records,
            if c.datasets.is_empty() {
                "-".to_string()
            } else {
                c.datasets.join(", ")
            }
        );
    }
}

fn print_mirrors(report: &MirrorsReport) {
    outln!(
        "change log: {} changes committed, {} on disk",
        report.committed,
        bytes(report.log_bytes)
    );
    if report.mirrors.is_empty() {
        outln!("no mirror");
    } else {
        outln!(
            "{:<12} {:<16} {:<8} {:>10} {:>8} {:>8} {:>8} {:>8}  phase",
            "mirror",
            "datasets",
            "mode",
            "applied",
            "queued",
            "lag s",
            "p50 ms",
            "p99 ms"
        );
    }
    for m in &report.mirrors {
        outln!(
            "{:<12} {:<16} {:<8} {:>10} {:>8} {:>8.1} {:>8} {:>8}  {}",
            m.backend,
            m.datasets,
            m.mode,
            m.applied,
            m.queued,
            m.lag_seconds,
            m.lag_p50_ms,
            m.lag_p99_ms,
            m.phase
        );
        if let Some(error) = &m.last_error {
            outln!("  last error: {error}");
        }
        if let Some(why) = &m.refusing {
            outln!("  writes refused: {why}");
        }
    }
    match &report.stream {
        Some(stream) => {
            outln!(
                "change stream: up to sequence {} in {}",
                stream.written,
                stream.file
            );
            if let Some(error) = &stream.last_error {
                outln!("  last error: {error}");
            }
            if let Some(why) = &stream.missing {
                outln!("  incomplete: {why}");
            }
        }
        None => outln!("change stream: off"),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

fn print_reload(report: &ReloadReport) {
    match (&report.error, report.changes.is_empty()) {
        (Some(_), _) => outln!("reload refused after {} ms", report.took_ms),
        (None, true) => outln!("reload: nothing changed ({} ms)", report.took_ms),
        (None, false) => outln!("reload applied in {} ms:", report.took_ms),
    }
    for change in &report.changes {
        outln!("  {change}");
    }
    for note in &report.notes {
        outln!("  note: {note}");
    }
}

fn print_status(status: &StatusReport) {
    outln!("{}", status.server);
    outln!("  listening on  {}", status.listen);
    outln!("  config        {}", status.config);
    outln!(
        "  uptime        {}",
        humanize(Duration::from_secs(status.uptime_s))
    );
    outln!("  connections   {}", status.connections);
    for refusal in &status.refusing {
        outln!("  REFUSING      {refusal}");
    }
    outln!(
        "  {:<12} {:<10} {:<12} {:>8} {:>9} {:>8}",
        "backend",
        "plugin",
        "hash",
        "datasets",
        "in-flight",
        "draining"
    );
    for b in &status.backends {
        outln!(
            "  {:<12} {:<10} {:<12} {:>8} {:>9} {:>8}",
            b.name,
            b.plugin,
            &b.hash[..b.hash.len().min(12)],
            b.datasets,
            b.in_flight,
            b.draining
        );
    }
    for m in &status.migrations {
        outln!(
            "  migration     {} {} -> {}: {} ({} of ~{} copied{}){}",
            m.dataset,
            m.from,
            m.to,
            m.phase,
            m.copied,
            m.total,
            m.verified
                .map_or(String::new(), |v| format!(", {v} verified")),
            m.message
                .as_ref()
                .map_or(String::new(), |msg| format!(": {msg}"))
        );
    }
    for u in &status.units {
        outln!(
            "  unit          connection {} ({}): {} changed records held, {} KiB, {} old, on {}",
            u.connection,
            u.identity,
            u.records,
            u.bytes.div_ceil(1024),
            humanize(Duration::from_secs(u.age_s)),
            u.datasets.join(", ")
        );
    }
    if let Some(memory) = &status.units_memory {
        outln!(
            "  units memory  {} KiB of changed records held by all units, of {} MiB (server.units_memory_mb)",
            memory.used.div_ceil(1024),
            memory.limit >> 20
        );
    }
    for f in &status.fleet {
        outln!(
            "  fleet         {} on {}{}: from {}, connected {} ago, {} datasets open, {} record locks held",
            f.server,
            f.database,
            if f.this { " (this server)" } else { "" },
            f.address,
            humanize(Duration::from_secs(f.connected_s)),
            f.opens,
            f.locks
        );
    }
    match &status.last_reload {
        None => outln!("  last reload   none"),
        Some(report) => {
            let outcome = match &report.error {
                Some(error) => format!("REFUSED: {error}"),
                None if report.changes.is_empty() => "nothing changed".into(),
                None => format!("applied: {}", report.changes.join("; ")),
            };
            outln!(
                "  last reload   {} by {}, {outcome}",
                timestamp(report.at),
                report.trigger
            );
        }
    }
}

/// RFC 3339 time in UTC, to the second.
fn timestamp(unix: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(unix)).to_string()
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// Whether `option` (`--token`) is among the program's arguments, rather
/// than its value coming from the environment.
fn given_as_argument(option: &str) -> bool {
    std::env::args().any(|arg| arg == option || arg.starts_with(&format!("{option}=")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc() {
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp(1_795_651_199), "2026-11-25T23:59:59Z");
    }
}
