//! `vsamr admin migrate`: starts a live migration and follows it with a
//! progress bar (records/s, ETA) until it has cut over, or finalizes or
//! rolls one back.

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;
use vsam_client::admin::AdminClient;
use vsam_protocol::admin::{AdminAnswer, AdminCommand, MigrationRow};

/// `vsamr admin migrate`.
#[derive(Args)]
pub(super) struct MigrateArgs {
    /// The dataset.
    dataset: String,
    /// The backend to move it to.
    #[arg(long, required_unless_present_any = ["finalize", "rollback"])]
    to: Option<String>,
    /// End a cut-over migration: remove the old copy.
    #[arg(long, conflicts_with_all = ["to", "rollback"])]
    finalize: bool,
    /// Return the dataset to its old backend (before --finalize).
    #[arg(long, conflicts_with = "to")]
    rollback: bool,
    /// Start the migration and return at once (vsamr admin status follows it).
    #[arg(long)]
    no_wait: bool,
}

/// Runs the command.
pub async fn run(mut client: AdminClient, args: MigrateArgs, json: bool) -> Result<()> {
    let dataset = args.dataset.to_ascii_uppercase();
    let command = match (&args.to, args.finalize, args.rollback) {
        (_, true, _) => AdminCommand::Finalize { dataset },
        (_, _, true) => AdminCommand::Rollback { dataset },
        (Some(to), _, _) => AdminCommand::Migrate {
            dataset,
            to: to.clone(),
        },
        (None, false, false) => anyhow::bail!("give --to BACKEND, --finalize or --rollback"),
    };
    let following = matches!(command, AdminCommand::Migrate { .. }) && !args.no_wait;
    let AdminAnswer::Migration(mut row) = client.request(command).await? else {
        anyhow::bail!("the server did not answer with a migration");
    };
    if following {
        row = follow(&mut client, row, json).await?;
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&row)?);
    } else {
        print_outcome(&row);
    }
    match row.phase.as_str() {
        "failed" => anyhow::bail!(
            "migration of {} failed and was rolled back: {}",
            row.dataset,
            row.message.unwrap_or_default()
        ),
        _ => Ok(()),
    }
}

/// Polls the status until the migration has cut over or ended.
async fn follow(
    client: &mut AdminClient,
    mut row: MigrationRow,
    json: bool,
) -> Result<MigrationRow> {
    let bar = if json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(0)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {pos}/{len} records, {per_sec}, ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    loop {
        bar.set_length(row.total.max(row.copied));
        bar.set_position(row.copied);
        bar.set_message(row.phase.clone());
        if !matches!(row.phase.as_str(), "counting" | "copying" | "verifying") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let AdminAnswer::Status(status) = client.request(AdminCommand::Status).await? else {
            anyhow::bail!("the server did not answer with a status");
        };
        let dataset = row.dataset.clone();
        row = status
            .migrations
            .into_iter()
            .rev()
            .find(|m| m.dataset == dataset)
            .ok_or_else(|| {
                anyhow::anyhow!("the server no longer shows the migration of {dataset}")
            })?;
    }
    bar.finish_and_clear();
    Ok(row)
}

fn print_outcome(row: &MigrationRow) {
    let verified = match (&row.verified, &row.checksum) {
        (Some(count), Some(checksum)) => {
            format!(
                "; verified {count} records, SHA-256 {}",
                &checksum[..16.min(checksum.len())]
            )
        }
        _ => String::new(),
    };
    match row.phase.as_str() {
        "cut-over" => outln!(
            "{}: now on {} ({} records copied at {:.0} records/s in {:.1} s{verified}); the copy on {} follows every write until `vsamr admin migrate {} --finalize` removes it (or --rollback returns to it)",
            row.dataset,
            row.to,
            row.copied,
            row.rate,
            row.elapsed_s,
            row.from,
            row.dataset
        ),
        "finalized" => outln!(
            "{}: migration to {} finalized; the old copy on {} is removed",
            row.dataset,
            row.to,
            row.from
        ),
        "rolled-back" => outln!(
            "{}: back on {}{verified}; the copy on {} is removed",
            row.dataset,
            row.from,
            row.to
        ),
        phase => outln!(
            "{}: {} -> {}: {phase} ({} of ~{} copied){}",
            row.dataset,
            row.from,
            row.to,
            row.copied,
            row.total,
            row.message
                .as_ref()
                .map_or(String::new(), |m| format!(": {m}"))
        ),
    }
}
