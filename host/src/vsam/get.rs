//! GET: direct, skip-sequential and sequential retrieval, forward and
//! backward, with update intent and batched browsing.

use super::Outcome;
use super::rpl::{Cursor, Held};
use super::search::{self, Search};
use super::session::Ctx;
use vsam_plugin_sdk::{Direction, Entry, Start};
use vsam_protocol::{Get, Intent, OpenIntent, Processing, RplOptions, fdbk};

/// How much one batched GET may return.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimit {
    /// Most records (the server's `max_batch`).
    pub records: u32,
    /// Most bytes of keys and records, so the answer fits the client's frame.
    pub bytes: usize,
}

/// Runs a GET on one string.
pub(crate) async fn get(
    mut ctx: Ctx<'_>,
    options: RplOptions,
    req: &Get,
    limit: BatchLimit,
) -> Outcome {
    ctx.release_held();
    search::check_access(&ctx, options)?;
    if ctx.intent == OpenIntent::Output {
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "GET on a dataset opened for output: OPEN it for input or update",
        ));
    }
    let update = options.intent == Intent::Update;
    if update && ctx.intent != OpenIntent::Update {
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "GET for update (UPD) needs the dataset opened for update",
        ));
    }
    let batch = req.max_records.max(1);
    if batch > 1 && (options.processing != Processing::Sequential || update) {
        return Err(ctx.error(
            fdbk::INVALID_OPTIONS,
            format!(
                "a batch of {batch} records needs sequential processing (SEQ) without update (UPD)"
            ),
        ));
    }
    match options.processing {
        Processing::Direct | Processing::SkipSequential => direct(&mut ctx, options, req).await,
        Processing::Sequential => {
            sequential(&mut ctx, options, batch.min(limit.records), limit.bytes).await
        }
    }
}

async fn direct(ctx: &mut Ctx<'_>, options: RplOptions, req: &Get) -> Outcome {
    let search = search::search_arg(ctx, options, &req.key, req.generic_length, req.address)?;
    let version = ctx.state.version();
    let Some(entry) = search::locate(ctx, &search).await? else {
        ctx.rpl.set_cursor(None);
        return Err(search::not_found(ctx, &search));
    };
    let direction = search::direction(options);
    let entry = if options.intent == Intent::Update {
        hold(ctx, entry, version).await?
    } else {
        entry
    };
    let keeps_position = options.processing == Processing::SkipSequential
        || matches!(
            options.intent,
            Intent::Update | Intent::NoUpdateKeepPosition
        )
        || matches!(search, Search::Last);
    ctx.rpl
        .set_cursor(keeps_position.then(|| Cursor::after(entry.key.clone(), direction)));
    Ok(vec![search::record(ctx, entry)])
}

async fn sequential(
    ctx: &mut Ctx<'_>,
    options: RplOptions,
    batch: u32,
    max_bytes: usize,
) -> Outcome {
    let direction = search::direction(options);
    if options.last_record {
        ctx.rpl.set_cursor(Some(Cursor {
            start: Start::Edge,
            direction: Direction::Backward,
        }));
    }
    let Some(cursor) = ctx.rpl.cursor.clone() else {
        return Err(ctx.error(
            fdbk::NO_POSITION,
            "sequential GET with no position: POINT first (position is lost after ENDREQ, a direct GET without NSP, or a record-not-found error)",
        ));
    };
    if cursor.start == Start::Edge && cursor.direction != direction {
        return Err(ctx.error(
            fdbk::NO_POSITION,
            "backward sequential GET with no backward position: POINT with BWD,LRD or to a key first",
        ));
    }
    if cursor.direction != direction {
        ctx.rpl.read_ahead.clear();
        ctx.rpl.streak = 0;
    }
    let update = options.intent == Intent::Update;
    let version = ctx.state.version();
    let entries = if batch > 1 {
        ctx.rpl.read_ahead.clear();
        let mut entries = ctx
            .state
            .scan(ctx.request, cursor.start.clone(), direction, batch)
            .await?;
        entries.truncate(fitting(&entries, max_bytes));
        entries
    } else {
        next_one(ctx, &cursor.start, direction, update)
            .await?
            .into_iter()
            .collect()
    };
    let Some(last) = entries.last() else {
        return Err(ctx.error(fdbk::END_OF_DATA, "end of data"));
    };
    ctx.rpl.cursor = Some(Cursor::after(last.key.clone(), direction));
    if !update {
        return Ok(entries
            .into_iter()
            .map(|entry| search::record(ctx, entry))
            .collect());
    }
    let entry = entries.into_iter().next().expect("one entry");
    let key = entry.key.clone();
    match hold(ctx, entry, version).await {
        Ok(entry) => Ok(vec![search::record(ctx, entry)]),
        Err(status) => {
            // Not returned: the next GET tries the same record again.
            ctx.rpl.set_cursor(Some(Cursor::at(key, direction)));
            Err(status)
        }
    }
}

/// How many of `entries` fit in `max_bytes` of answer (always at least one:
/// a single record always fits a frame).
fn fitting(entries: &[Entry], max_bytes: usize) -> usize {
    let mut total = 0usize;
    entries
        .iter()
        .take_while(|entry| {
            total += entry.key.len() + entry.value.len() + 16;
            total <= max_bytes
        })
        .count()
        .max(1)
        .min(entries.len())
}

/// The next record from `start`, through the string's read-ahead.
async fn next_one(
    ctx: &mut Ctx<'_>,
    start: &Start,
    direction: Direction,
    update: bool,
) -> Result<Option<Entry>, vsam_protocol::Status> {
    let version = ctx.state.version();
    if !update
        && ctx.rpl.read_ahead_version == version
        && let Some(entry) = ctx.rpl.read_ahead.pop_front()
    {
        return Ok(Some(entry));
    }
    let size = if update { 1 } else { ctx.rpl.next_fetch_size() };
    let mut entries: std::collections::VecDeque<Entry> = ctx
        .state
        .scan(ctx.request, start.clone(), direction, size)
        .await?
        .into();
    let first = entries.pop_front();
    ctx.rpl.read_ahead = if update { Default::default() } else { entries };
    ctx.rpl.read_ahead_version = version;
    Ok(first)
}

/// Takes exclusive control of a found record for GET UPD. If another writer
/// changed the dataset meanwhile, the record is read again under the lock.
/// `version` is the write counter from before the record was read.
pub(crate) async fn hold(
    ctx: &mut Ctx<'_>,
    entry: Entry,
    version: u64,
) -> Result<Entry, vsam_protocol::Status> {
    if let Err(holder) = ctx.state.lock(&entry.key, ctx.owner) {
        return Err(ctx.error(
            fdbk::EXCLUSIVE_CONTROL,
            format!(
                "the record is held for update by connection {} (string {}); retry after it is released",
                holder.session, holder.string
            ),
        ));
    }
    let entry = if ctx.state.version() != version {
        match ctx.state.get(ctx.request, &entry.key).await? {
            Some(value) => Entry {
                key: entry.key,
                value,
            },
            None => {
                ctx.state.unlock(&entry.key, ctx.owner);
                return Err(ctx.error(
                    fdbk::NOT_FOUND,
                    "the record was erased by another requester",
                ));
            }
        }
    } else {
        entry
    };
    ctx.rpl.held = Some(Held {
        key: entry.key.clone(),
        length: entry.value.len(),
    });
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_cut_to_fit_the_answer_frame() {
        let entries: Vec<Entry> = (0..10u8)
            .map(|i| Entry {
                key: vec![i; 4],
                value: vec![0; 80],
            })
            .collect();
        assert_eq!(fitting(&entries, 10_000), 10);
        assert_eq!(fitting(&entries, 300), 3);
        assert_eq!(fitting(&entries, 10), 1, "one record always goes");
        assert_eq!(fitting(&[], 10), 0);
    }
}
