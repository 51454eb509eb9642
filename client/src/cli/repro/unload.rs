//! `vsamr unload`: REPRO out of a dataset into a file, in key (or RBA,
//! RRN) order, FROMKEY/TOKEY/SKIP/COUNT selecting the records.

use super::format::{FileArgs, create_output, write_record};
use super::select::{SelectArgs, Selection, Verdict};
use crate::cli::Output;
use crate::cli::browse::next_batch;
use crate::cli::records::Codec;
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use vsam_client::{Connection, Dataset, OpenIntent, Organization, Record, RplOptions};
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
    let selection = Selection::new(&args.select, dataset.spec(), &codec)?;
    let path = &args.target.file;
    let mut out = create_output(path)?;
    let mut count = 0usize;
    let mut records = SelectedRecords::new(&dataset, selection).await?;
    // Each batch is written as it comes: a dataset of any size goes
    // through the memory of one batch (and reaches a pipe as it is read).
    let written: Result<()> = async {
        while let Some(batch) = records.next_batch().await? {
            for record in &batch {
                write_record(&mut out, &record.data, args.target.format, &codec)
                    .with_context(|| format!("record {}", count + 1))?;
                count += 1;
            }
        }
        out.flush()?;
        Ok(())
    }
    .await;
    if let Err(error) = written {
        if crate::cli::stdout::is_standard_stream(path) {
            return Err(error);
        }
        return Err(error.context(format!(
            "{} holds only the first {count} records of {}: the unload failed",
            path.display(),
            dataset.spec().name
        )));
    }
    if !crate::cli::stdout::is_standard_stream(path) {
        outln!(
            "unloaded {count} records from {} to {}",
            dataset.spec().name,
            path.display()
        );
    }
    dataset.close().await?;
    Ok(())
}

/// The records a selection takes from an open dataset, in key (RBA, RRN)
/// order, read a batch at a time: REPRO and PRINT read their input so.
pub struct SelectedRecords<'a> {
    dataset: &'a Dataset,
    selection: Selection,
    options: RplOptions,
    browsing: bool,
}

impl<'a> SelectedRecords<'a> {
    /// Positions the dataset's string 0 at the selection's start (FROMKEY:
    /// the first key at or after it, a generic one if shorter than the
    /// dataset's keys).
    pub async fn new(dataset: &'a Dataset, selection: Selection) -> Result<Self> {
        let options = match dataset.spec().organization {
            Organization::Esds => RplOptions::addressed(Processing::Sequential),
            _ => RplOptions::sequential(),
        };
        // Nothing at or after FROMKEY is an empty input.
        let browsing = match &selection.from_key {
            Some(key) => match point_at(dataset, key).await {
                Ok(()) => true,
                Err(e) if e.is_end_of_data() => false,
                Err(e) => return Err(e.into()),
            },
            None => true,
        };
        Ok(Self {
            dataset,
            selection,
            options,
            browsing,
        })
    }

    /// The next selected records; `None` at the end.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<Record>>> {
        while self.browsing {
            let records = next_batch(self.dataset, self.options, 1000).await?;
            if records.is_empty() {
                break;
            }
            let mut taken = Vec::with_capacity(records.len());
            for record in records {
                match self.selection.judge(&record.data, true) {
                    Verdict::Take => taken.push(record),
                    Verdict::Pass => {}
                    Verdict::Stop => {
                        self.browsing = false;
                        break;
                    }
                }
            }
            if !taken.is_empty() {
                return Ok(Some(taken));
            }
        }
        self.browsing = false;
        Ok(None)
    }
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
