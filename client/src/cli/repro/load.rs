//! `vsamr load`: REPRO into a dataset, as IDCAMS does it: records go as
//! PUT CHAINs, several in flight; a record the dataset refuses (a key or
//! slot taken, a bad length) is reported and left out, and the load stops
//! once more than the error limit were (ERRORLIMIT); REPLACE replaces the
//! record under a key or slot that is taken, REUSE empties the dataset
//! first, and FROMKEY/TOKEY/SKIP/COUNT select the records.

use super::format::{FileArgs, read_records};
use super::select::{SelectArgs, Selection, Verdict};
use crate::cli::Output;
use crate::cli::records::Codec;
use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use vsam_client::{
    ChainedRecord, ClientError, Connection, Dataset, OpenIntent, Organization, RplOptions,
    VsamError,
};
use vsam_protocol::{Processing, access, fdbk, r15};

/// Arguments of load.
#[derive(Args)]
pub struct LoadArgs {
    #[command(flatten)]
    target: FileArgs,
    #[command(flatten)]
    select: SelectArgs,
    /// REPLACE: a record whose key (or RRDS slot) is taken replaces the
    /// record there; without it such a record is refused and left out.
    #[arg(long)]
    replace: bool,
    /// REUSE: empty the dataset first (nobody else may have it open).
    #[arg(long)]
    reuse: bool,
    /// ERRORLIMIT: records the dataset may refuse (reported, left out)
    /// before the load stops; 0 stops at the first.
    #[arg(long, default_value_t = 4)]
    error_limit: usize,
}

/// Records per PUT CHAIN during a load (one commit each on the server).
const CHAIN: usize = 2048;
/// Chains in flight during a load, so that the server never waits for the
/// client.
const CHAINS_IN_FLIGHT: usize = 4;

/// A record of the file, by its number in it (from 1).
struct Numbered {
    number: usize,
    record: ChainedRecord,
}

/// What became of one chain.
#[derive(Default)]
struct Stored {
    /// Records stored (inserted or replaced).
    written: usize,
    /// Records refused, by number, with the reason.
    refused: Vec<(usize, VsamError)>,
    /// The failure that stopped the chain for good (the store failed, the
    /// connection went), and how many of its records it left unstored.
    stopped: Option<(ClientError, usize)>,
}

pub async fn load(conn: &Connection, args: LoadArgs) -> Result<()> {
    let name = args.target.name.to_ascii_uppercase();
    if args.reuse {
        let emptied = Dataset::open_with_access(conn, &name, OpenIntent::Output, access::RESET, 1)
            .await
            .context("REUSE (emptying the dataset first)")?;
        emptied.close().await?;
    }
    // REPLACE updates records in place: that needs an open for update.
    let intent = match args.replace {
        true => OpenIntent::Update,
        false => OpenIntent::Output,
    };
    let dataset = Dataset::open(conn, &name, intent, 1).await?;
    let spec = dataset.spec().clone();
    let codec = Codec::new(
        &spec,
        Output {
            json: false,
            hex: false,
        },
    )?;
    let mut selection = Selection::new(&args.select, &spec, &codec)?;
    let mut bytes = Vec::new();
    if args.target.file.as_os_str() == "-" {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(&args.target.file)
            .with_context(|| format!("reading {}", args.target.file.display()))?;
    }
    let records = read_records(&bytes, args.target.format, &codec)?;
    drop(bytes);
    let total = records.len();
    let organization = spec.organization;
    let mut selected = Vec::with_capacity(total);
    for (i, record) in records.into_iter().enumerate() {
        match selection.judge(&record, false) {
            Verdict::Take => selected.push(Numbered {
                number: i + 1,
                record: ChainedRecord {
                    // An RRDS file's records go to slots 1, 2, ... in order.
                    address: match organization {
                        Organization::Rrds | Organization::Vrrds => i as u64 + 1,
                        _ => 0,
                    },
                    record,
                },
            }),
            Verdict::Pass => {}
            Verdict::Stop => break,
        }
    }
    let started = Instant::now();
    let mut selected = selected.into_iter();
    let mut chains = std::iter::from_fn(|| {
        let chain: Vec<Numbered> = selected.by_ref().take(CHAIN).collect();
        (!chain.is_empty()).then_some(chain)
    });
    // Refusals so far, of every chain: past the limit, none goes on.
    let refusals = Arc::new(AtomicUsize::new(0));
    let send = |chain: Vec<Numbered>| {
        let dataset = dataset.clone();
        let refusals = refusals.clone();
        let limit = Limit {
            refusals,
            most: args.error_limit,
        };
        async move { store_chain(&dataset, chain, args.replace, &limit).await }
    };
    let mut in_flight = FuturesOrdered::new();
    for chain in chains.by_ref().take(CHAINS_IN_FLIGHT) {
        in_flight.push_back(send(chain));
    }
    let mut loaded = 0usize;
    let mut refused: Vec<(usize, VsamError)> = Vec::new();
    let mut stopped: Option<(ClientError, usize)> = None;
    while let Some(stored) = in_flight.next().await {
        loaded += stored.written;
        refused.extend(stored.refused);
        if stopped.is_none() {
            stopped = stored.stopped;
        }
        if stopped.is_none()
            && refused.len() <= args.error_limit
            && let Some(chain) = chains.next()
        {
            in_flight.push_back(send(chain));
        }
    }
    let unsent: usize = chains.map(|chain| chain.len()).sum();
    refused.sort_by_key(|(number, _)| *number);
    let file = args.target.file.display();
    for (number, error) in &refused {
        eprintln!("vsamr: record {number} of {file} left out: {error}");
    }
    let over_limit = refused.len() > args.error_limit;
    if let Some((error, _)) = stopped {
        bail!(
            "{error}: {loaded} of {total} records of {file} were loaded and acknowledged, {} left out; the rest were not (those in flight when it failed may be stored): read the dataset before loading the rest",
            refused.len()
        );
    }
    if over_limit {
        let (number, _) = refused[args.error_limit];
        let limit = match args.error_limit {
            0 => "the first refused record stops a load (--error-limit 0)".to_string(),
            n => format!("more than --error-limit {n} records were refused"),
        };
        bail!(
            "stopped at record {number} of {file}: {limit}: loaded {loaded} of {total} records, {} left out, {unsent} not sent{}",
            refused.len(),
            if args.replace {
                ""
            } else {
                " (--replace replaces records whose key or slot is taken)"
            }
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let summary = format!(
        "loaded {loaded} of {total} records into {} in {seconds:.2} s ({:.0} records/s)",
        spec.name,
        loaded as f64 / seconds.max(1e-9)
    );
    dataset.close().await?;
    if !refused.is_empty() {
        bail!(
            "{summary}; {} refused and left out (listed above){}",
            refused.len(),
            if args.replace {
                ""
            } else {
                "; --replace replaces records whose key or slot is taken"
            }
        );
    }
    println!("{summary}");
    Ok(())
}

/// How many refusals a load takes, counted over all its chains.
struct Limit {
    refusals: Arc<AtomicUsize>,
    most: usize,
}

impl Limit {
    /// Counts a refusal; true while the load may go on.
    fn refused(&self) -> bool {
        self.refusals.fetch_add(1, Ordering::SeqCst) < self.most
    }
}

/// Stores one chain: records the dataset refuses are left out and the
/// rest sent again, while the load is within its error limit; with
/// `replace`, a record whose key or slot is taken is sent as an update
/// (PUT CHAIN with UPD), and the records after it go on as updates until
/// one is not there.
async fn store_chain(
    dataset: &Dataset,
    chain: Vec<Numbered>,
    replace: bool,
    limit: &Limit,
) -> Stored {
    let organization = dataset.spec().organization;
    let insert = match organization {
        Organization::Esds => RplOptions::addressed(Processing::Sequential),
        Organization::Ksds | Organization::Rrds | Organization::Vrrds => RplOptions::direct(),
    };
    let mut stored = Stored::default();
    let mut rest = chain;
    let mut updating = false;
    while !rest.is_empty() {
        let options = if updating { insert.update() } else { insert };
        let records = rest
            .iter()
            .map(|numbered| numbered.record.clone())
            .collect();
        let outcome = match dataset.put_chain(0, options, records).await {
            Ok(outcome) => outcome,
            Err(error) => {
                stored.stopped = Some((error, rest.len()));
                return stored;
            }
        };
        let done = outcome.written.len();
        stored.written += done;
        let Some(failure) = outcome.failure else {
            return stored;
        };
        let taken = failure.r15() == r15::LOGICAL && failure.fdbk() == fdbk::DUPLICATE_KEY.0;
        let gone = failure.r15() == r15::LOGICAL && failure.fdbk() == fdbk::NOT_FOUND.0;
        if replace && ((!updating && taken) || (updating && gone)) {
            // The same record again, the other way.
            updating = !updating;
            rest.drain(..done);
            continue;
        }
        if failure.r15() != r15::LOGICAL {
            stored.stopped = Some((ClientError::Vsam(failure), rest.len() - done));
            return stored;
        }
        let refused = rest[done].number;
        stored.refused.push((refused, failure));
        rest.drain(..=done);
        updating = false;
        if !limit.refused() {
            return stored;
        }
    }
    stored
}
