//! `vsamr load`: REPRO into a dataset, as IDCAMS does it: records go as
//! PUT CHAINs, several in flight; a record the dataset refuses (a key or
//! slot taken, a bad length) is reported and left out, and the load stops
//! once more than the error limit were (ERRORLIMIT); REPLACE replaces the
//! record under a key or slot that is taken, REUSE empties the dataset
//! first, and FROMKEY/TOKEY/SKIP/COUNT select the records.

use super::format::{FileArgs, RecordReader, open_record_file};
use super::select::{SelectArgs, Selection, Verdict};
use crate::cli::Output;
use crate::cli::records::Codec;
use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use futures::stream::FuturesOrdered;
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
/// Bytes of records per PUT CHAIN: long records make shorter chains, so
/// that the chains in flight hold a few megabytes whatever the records'
/// length (a chain has at least one record).
const CHAIN_BYTES: usize = 4 << 20;

/// Whether `records` records of `bytes` bytes in all make a whole chain.
pub fn chain_full(records: usize, bytes: usize) -> bool {
    records >= CHAIN || bytes >= CHAIN_BYTES
}
/// Chains in flight during a load, so that the server never waits for the
/// client.
const CHAINS_IN_FLIGHT: usize = 4;

/// A record of the input, by its number in it (from 1).
#[derive(Clone)]
struct Numbered {
    number: usize,
    record: ChainedRecord,
}

/// What became of one chain.
#[derive(Default)]
struct Stored {
    /// Records stored (inserted or replaced).
    written: usize,
    /// Records refused, with the reason.
    refused: Vec<Refusal>,
    /// The failure that stopped the chain for good (the store failed, the
    /// connection went), and how many of its records it left unstored.
    stopped: Option<(ClientError, usize)>,
}

pub async fn load(conn: &Connection, args: LoadArgs) -> Result<()> {
    let name = args.target.name.to_ascii_uppercase();
    let input = open_record_file(&args.target.file, args.target.format)?;
    if args.reuse {
        empty(conn, &name)
            .await
            .context("REUSE (emptying the dataset first)")?;
    }
    let dataset = open_for_load(conn, &name, args.replace).await?;
    let spec = dataset.spec().clone();
    let codec = Codec::new(
        &spec,
        Output {
            json: false,
            hex: false,
        },
    )?;
    let mut selection = Selection::new(&args.select, &spec, &codec)?;
    let file = args.target.file.display();
    let mut reader = RecordReader::new(input, args.target.format, codec);
    let started = Instant::now();
    let mut loader = Loader::new(&dataset, args.replace, args.error_limit);
    // Read a chain's worth at a time while the chains before it are
    // stored, in the memory of the chains in flight whatever the file's
    // size.
    let mut total = 0;
    let mut read_failure = None;
    let mut selecting = true;
    // The selection (--to-key, --count) ended before the file did.
    let mut selection_ended = false;
    while selecting && loader.going() {
        let mut selected = Vec::new();
        let mut bytes = 0;
        while !chain_full(selected.len(), bytes) {
            let record = match reader.next_record() {
                Ok(Some(record)) => record,
                Ok(None) => {
                    selecting = false;
                    break;
                }
                Err(error) => {
                    read_failure = Some(error);
                    selecting = false;
                    break;
                }
            };
            total += 1;
            match selection.judge(&record, false) {
                Verdict::Take => {
                    bytes += record.len();
                    selected.push((total, in_slot(spec.organization, total, record)));
                }
                Verdict::Pass => {}
                Verdict::Stop => {
                    selection_ended = true;
                    selecting = false;
                    break;
                }
            }
        }
        loader.feed(selected).await;
    }
    let loaded = loader.finish().await;
    for refusal in &loaded.refused {
        eprintln!(
            "vsamr: record {} of {file} left out: {}",
            refusal.number, refusal.error
        );
    }
    let written = loaded.written;
    if let Some((error, _)) = loaded.stopped {
        bail!(
            "{error}: {written} of the {total} records read from {file} were loaded and acknowledged, {} left out; the rest were not (those in flight when it failed may be stored): read the dataset before loading the rest",
            loaded.refused.len()
        );
    }
    if loaded.over_limit {
        let number = loaded.refused[args.error_limit].number;
        let limit = match args.error_limit {
            0 => "the first refused record stops a load (--error-limit 0)".to_string(),
            n => format!("more than --error-limit {n} records were refused"),
        };
        bail!(
            "stopped at record {number} of {file}: {limit}: loaded {written} of the {total} records read, {} left out, {} not sent, the rest of the file not read{}",
            loaded.refused.len(),
            loaded.unsent,
            if args.replace {
                ""
            } else {
                " (--replace replaces records whose key or slot is taken)"
            }
        );
    }
    if let Some(error) = read_failure {
        if total == 0 {
            bail!("{file}: {error:#}: nothing was loaded; correct the file and load it again");
        }
        bail!(
            "{file}: {error:#}: the {written} records before it (of {total} read, {} left out) were loaded and acknowledged; correct the file, then load the rest with --skip {total}",
            loaded.refused.len()
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let of = match selection_ended {
        true => format!("of the first {total} records of {file} (the selection ended there)"),
        false => format!("of {total} records"),
    };
    let summary = format!(
        "loaded {written} {of} into {} in {seconds:.2} s ({:.0} records/s)",
        spec.name,
        written as f64 / seconds.max(1e-9)
    );
    dataset.close().await?;
    if !loaded.refused.is_empty() {
        bail!(
            "{summary}; {} refused and left out (listed above){}",
            loaded.refused.len(),
            if args.replace {
                ""
            } else {
                "; --replace replaces records whose key or slot is taken"
            }
        );
    }
    outln!("{summary}");
    Ok(())
}

/// REUSE: empties a dataset (nobody else may have it open).
pub async fn empty(conn: &Connection, name: &str) -> Result<(), ClientError> {
    Dataset::open_with_access(conn, name, OpenIntent::Output, access::RESET, 1)
        .await?
        .close()
        .await
}

/// Opens the dataset a load writes to: REPLACE updates records in place,
/// which needs an open for update.
pub async fn open_for_load(
    conn: &Connection,
    name: &str,
    replace: bool,
) -> Result<Dataset, ClientError> {
    let intent = match replace {
        true => OpenIntent::Update,
        false => OpenIntent::Output,
    };
    Dataset::open(conn, name, intent, 1).await
}

/// The `number`th record of an input as a load sends it: an RRDS's
/// records go to slots 1, 2, ... in input order.
pub fn in_slot(organization: Organization, number: usize, record: Vec<u8>) -> ChainedRecord {
    ChainedRecord {
        address: match organization {
            Organization::Rrds | Organization::Vrrds => number as u64,
            _ => 0,
        },
        record,
    }
}

/// A record the dataset refused during a load, left out.
pub struct Refusal {
    /// Its number among the input's records (from 1).
    pub number: usize,
    /// The record.
    pub record: Vec<u8>,
    /// Why.
    pub error: VsamError,
}

/// What a load did.
#[derive(Default)]
pub struct Loaded {
    /// Records stored (inserted or replaced) and acknowledged.
    pub written: usize,
    /// Records refused and left out, in input order.
    pub refused: Vec<Refusal>,
    /// The failure that stopped the load for good (the store failed, the
    /// connection went), and how many records of its chain it left unstored.
    pub stopped: Option<(ClientError, usize)>,
    /// More records were refused than the error limit allows: the load
    /// stopped there.
    pub over_limit: bool,
    /// Records given to the load that it stopped before sending.
    pub unsent: usize,
}

type Storing<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Stored> + Send + 'a>>;

/// A REPRO into an open dataset, fed records as they are read (from a
/// file or another dataset): chains of records go as PUT CHAINs, several
/// in flight, so that the server never waits for the reader.
pub struct Loader<'a> {
    dataset: &'a Dataset,
    replace: bool,
    limit: Arc<AtomicUsize>,
    error_limit: usize,
    in_flight: FuturesOrdered<Storing<'a>>,
    loaded: Loaded,
}

impl<'a> Loader<'a> {
    /// A load into `dataset`; `replace`: REPLACE; `error_limit`: refusals
    /// taken before the load stops (ERRORLIMIT).
    pub fn new(dataset: &'a Dataset, replace: bool, error_limit: usize) -> Self {
        Self {
            dataset,
            replace,
            limit: Arc::new(AtomicUsize::new(0)),
            error_limit,
            in_flight: FuturesOrdered::new(),
            loaded: Loaded::default(),
        }
    }

    /// False once the load has stopped (a failure, or the error limit):
    /// feeding more does nothing.
    pub fn going(&self) -> bool {
        self.loaded.stopped.is_none() && self.loaded.refused.len() <= self.error_limit
    }

    /// Sends the next records, each with its number in the input (from
    /// 1, for messages), in input order; waits while enough chains are in
    /// flight.
    pub async fn feed(&mut self, records: Vec<(usize, ChainedRecord)>) {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            let mut chain = Vec::new();
            let mut bytes = 0;
            while !chain_full(chain.len(), bytes)
                && let Some((number, record)) = records.next()
            {
                bytes += record.record.len();
                chain.push(Numbered { number, record });
            }
            while self.in_flight.len() >= CHAINS_IN_FLIGHT {
                self.settle_one().await;
            }
            if !self.going() {
                self.loaded.unsent += chain.len() + records.count();
                return;
            }
            let limit = Limit {
                refusals: self.limit.clone(),
                most: self.error_limit,
            };
            let dataset = self.dataset;
            let replace = self.replace;
            self.in_flight.push_back(Box::pin(async move {
                store_chain(dataset, chain, replace, &limit).await
            }));
        }
    }

    async fn settle_one(&mut self) {
        if let Some(stored) = self.in_flight.next().await {
            self.settled(stored);
        }
    }

    fn settled(&mut self, stored: Stored) {
        self.loaded.written += stored.written;
        self.loaded.refused.extend(stored.refused);
        if self.loaded.stopped.is_none() {
            self.loaded.stopped = stored.stopped;
        }
    }

    /// Awaits `work` (reading the next records, on the same connection
    /// perhaps) while the chains in flight go on.
    ///
    /// A chain's call left unpolled while other work awaits the same
    /// connection could stall both: callers of a connection take turns
    /// reading its socket (see `vsam_client`'s `Connection`), and the
    /// chain may hold that turn. So the chains are polled meanwhile.
    pub async fn alongside<T>(&mut self, work: impl Future<Output = T>) -> T {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return done,
                Some(stored) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.settled(stored);
                }
            }
        }
    }

    /// Waits for the chains in flight and tells what the load did.
    pub async fn finish(mut self) -> Loaded {
        while !self.in_flight.is_empty() {
            self.settle_one().await;
        }
        self.loaded.refused.sort_by_key(|refusal| refusal.number);
        self.loaded.over_limit = self.loaded.refused.len() > self.error_limit;
        self.loaded
    }
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
        let refused = rest.remove(done);
        stored.refused.push(Refusal {
            number: refused.number,
            record: refused.record.record,
            error: failure,
        });
        rest.drain(..done);
        updating = false;
        if !limit.refused() {
            return stored;
        }
    }
    stored
}
