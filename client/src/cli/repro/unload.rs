//! `vsamr unload`: REPRO out of a dataset into a file, in key (or RBA,
//! RRN) order, FROMKEY/TOKEY/SKIP/COUNT selecting the records.

use super::format::{FileArgs, write_record};
use super::select::{SelectArgs, Selection, Verdict};
use crate::cli::Output;
use crate::cli::browse::next_batch;
use crate::cli::records::Codec;
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use vsam_client::{Connection, Dataset, OpenIntent, Organization, RplOptions};
use vsam_protocol::Processing;

/// Arguments of unload.
#[derive(Args)]
pub struct UnloadArgs {
    #[command(flatten)]
    target: FileArgs,
    #[command(flatten)]
    select: SelectArgs,
}

pub async fn unload(conn: &Connection, args: UnloadArgs, output: Output) -> Result<()> {
    let dataset = Dataset::open(
        conn,
        &args.target.name.to_ascii_uppercase(),
        OpenIntent::Input,
        1,
    )
    .await?;
    let codec = Codec::new(
        dataset.spec(),
        Output {
            json: false,
            hex: output.hex,
        },
    )?;
    let mut selection = Selection::new(&args.select, dataset.spec(), &codec)?;
    let options = match dataset.spec().organization {
        Organization::Esds => RplOptions::addressed(Processing::Sequential),
        _ => RplOptions::sequential(),
    };
    let mut out = Vec::new();
    let mut count = 0usize;
    // FROMKEY: the browse starts there (a generic key: at the first key it
    // begins); nothing at or after it is an empty unload.
    let mut browsing = match &selection.from_key {
        Some(key) => match point_at(&dataset, key).await {
            Ok(()) => true,
            Err(e) if e.is_end_of_data() => false,
            Err(e) => return Err(e.into()),
        },
        None => true,
    };
    while browsing {
        let records = next_batch(&dataset, options, 1000).await?;
        if records.is_empty() {
            break;
        }
        for record in &records {
            match selection.judge(&record.data, true) {
                Verdict::Take => {}
                Verdict::Pass => continue,
                Verdict::Stop => {
                    browsing = false;
                    break;
                }
            }
            write_record(&mut out, &record.data, args.target.format, &codec)
                .with_context(|| format!("record {}", count + 1))?;
            count += 1;
        }
    }
    if args.target.file.as_os_str() == "-" {
        std::io::stdout().write_all(&out)?;
    } else {
        std::fs::write(&args.target.file, &out)
            .with_context(|| format!("writing {}", args.target.file.display()))?;
        println!(
            "unloaded {count} records from {} to {}",
            dataset.spec().name,
            args.target.file.display()
        );
    }
    dataset.close().await?;
    Ok(())
}

/// POINT at the first key at or after `key`, a generic one when it is
/// shorter than the dataset's keys.
async fn point_at(dataset: &Dataset, key: &[u8]) -> Result<(), vsam_client::ClientError> {
    let at_or_after = RplOptions::sequential().greater_or_equal();
    if key.len() < usize::from(dataset.spec().key_length) {
        dataset
            .point(0, at_or_after.generic(), key, key.len() as u16, 0)
            .await
    } else {
        dataset.point(0, at_or_after, key, 0, 0).await
    }
}
