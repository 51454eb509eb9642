//! `vsamr browse`: records in key order, forward or backward, fetched in
//! batches (one round trip per batch, not per record).

use super::Output;
use super::records::Codec;
use anyhow::Result;
use clap::Args;
use vsam_client::{Connection, Dataset, OpenIntent, Organization, Record, RplOptions};
use vsam_protocol::Processing;

/// `vsamr browse`.
#[derive(Args)]
pub struct BrowseArgs {
    name: String,
    /// Start at this key (KSDS), RBA (ESDS) or RRN (RRDS).
    #[arg(long)]
    from: Option<String>,
    /// The --from key is a generic prefix.
    #[arg(long)]
    generic: bool,
    /// Start at the first key greater or equal to --from.
    #[arg(long)]
    ge: bool,
    /// Browse backward (from the last record, or from --from).
    #[arg(long)]
    backward: bool,
    /// Stop after this many records.
    #[arg(long)]
    limit: Option<u64>,
    /// Print records as the named fields of their copybook layout.
    #[arg(long)]
    fields: bool,
}

/// Records per batched GET.
const BATCH: u64 = 1000;

/// Positions a string for browsing and returns the options of the
/// sequential GETs that follow.
pub async fn position(
    dataset: &Dataset,
    codec: &Codec,
    args: &BrowseArgs,
) -> Result<Option<RplOptions>> {
    let spec = dataset.spec();
    let base = match spec.organization {
        Organization::Esds => RplOptions::addressed(Processing::Sequential),
        _ => RplOptions::sequential(),
    };
    let sequential = if args.backward { base.backward() } else { base };
    let point_result = match (&args.from, args.backward) {
        (None, false) => return Ok(Some(sequential)),
        (None, true) => dataset.point(0, base.last_record(), &[], 0, 0).await,
        (Some(from), backward) => {
            let mut options = if backward { base.backward() } else { base };
            let (key, generic_length, address) = match spec.organization {
                Organization::Ksds => {
                    let (key, generic_length) = codec.search_key(from, args.generic)?;
                    (key, generic_length, 0)
                }
                _ => (
                    Vec::new(),
                    0,
                    from.parse::<u64>().map_err(|_| {
                        anyhow::anyhow!(
                            "--from {from:?} must be a number for an ESDS (RBA) or a relative dataset (RRN)"
                        )
                    })?,
                ),
            };
            if args.generic {
                options = options.generic();
            }
            if args.ge {
                options = options.greater_or_equal();
            }
            dataset
                .point(0, options, &key, generic_length, address)
                .await
        }
    };
    match point_result {
        Ok(()) => Ok(Some(sequential)),
        Err(e) if e.is_end_of_data() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads the next batch; empty at end of data.
pub async fn next_batch(dataset: &Dataset, options: RplOptions, max: u64) -> Result<Vec<Record>> {
    match dataset
        .get(0, options, &[], 0, 0, max.min(u64::from(u32::MAX)) as u32)
        .await
    {
        Ok(records) => Ok(records),
        Err(e) if e.is_end_of_data() => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

pub async fn run(conn: &Connection, args: BrowseArgs, output: Output) -> Result<()> {
    let dataset =
        Dataset::open(conn, &args.name.to_ascii_uppercase(), OpenIntent::Input, 1).await?;
    let codec = Codec::new(dataset.spec(), output)?.with_fields(args.fields)?;
    let mut remaining = args.limit.unwrap_or(u64::MAX);
    if let Some(options) = position(&dataset, &codec, &args).await? {
        let mut out = super::stdout::Records::new();
        while remaining > 0 {
            let records = next_batch(&dataset, options, remaining.min(BATCH)).await?;
            if records.is_empty() {
                break;
            }
            remaining -= records.len() as u64;
            for record in &records {
                std::io::Write::write_all(&mut out, codec.format(record).as_bytes())?;
                std::io::Write::write_all(&mut out, b"\n")?;
            }
        }
        std::io::Write::flush(&mut out)?;
    }
    dataset.close().await?;
    Ok(())
}
