//! GET: direct, skip-sequential and sequential retrieval, forward and
//! backward, with update intent and batched browsing.

use super::request::Ctx;
use super::request::Outcome;
use super::rpl::{Cursor, Held};
use super::search::{self, Search};
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

/// Bytes an answer frame holds besides its records: frame header, status
/// and a short message.
pub(crate) const ANSWER_OVERHEAD: usize = 4 * 1024;

/// Bytes a record takes in an answer: address, key and data with their
/// lengths.
pub(crate) fn answer_bytes(key: &[u8], data: &[u8]) -> usize {
    16 + key.len() + data.len()
}

/// The error for a record too large for the client's answer frames: VSAM's
/// "work area too small", with the record's length.
pub(crate) fn too_large(ctx: &Ctx<'_>, bytes: usize, room: usize) -> vsam_protocol::Status {
    ctx.error(
        fdbk::AREA_TOO_SMALL,
        format!(
            "the record takes {bytes} bytes of answer, more than the {room} bytes an answer to this client holds (its HELLO max_frame): connect with a max_frame of at least {} bytes",
            bytes + ANSWER_OVERHEAD
        ),
    )
}

/// Runs a GET on one string.
pub(crate) async fn get(mut ctx: Ctx<'_>, req: &Get, limit: BatchLimit) -> Outcome {
    let options = ctx.options;
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
        Processing::Direct | Processing::SkipSequential => {
            direct(&mut ctx, options, req, limit.bytes).await
        }
        Processing::Sequential => {
            sequential(&mut ctx, options, batch.min(limit.records), limit.bytes).await
        }
    }
}

async fn direct(ctx: &mut Ctx<'_>, options: RplOptions, req: &Get, room: usize) -> Outcome {
    let search = search::search_arg(ctx, options, &req.key, req.generic_length, req.address)?;
    let version = ctx.state.version();
    let Some(entry) = search::locate(ctx, &search).await? else {
        ctx.rpl.set_cursor(None);
        return Err(search::not_found(ctx, &search));
    };
    let bytes = answer_bytes(&entry.key, &entry.value);
    if bytes > room {
        return Err(too_large(ctx, bytes, room));
    }
    let direction = search::direction(options);
    let entry = if options.intent == Intent::Update {
        hold(ctx, entry, version).await?
    } else {
        entry
    };
    let keeps_position = search::keeps_position(options, matches!(search, Search::Last));
    ctx.rpl
        .set_cursor(keeps_position.then(|| Cursor::after(entry.key.clone(), direction)));
    Ok(vec![search::record(ctx, entry)].into())
}

async fn sequential(
    ctx: &mut Ctx<'_>,
    options: RplOptions,
    batch: u32,
    max_bytes: usize,
) -> Outcome {
    let direction = search::direction(options);
    let cursor = search::sequential_start(ctx, options, direction)?;
    if cursor.direction != direction {
        ctx.rpl.read_ahead.clear();
        ctx.rpl.streak = 0;
    }
    let update = options.intent == Intent::Update;
    let version = ctx.state.version();
    let entries = if batch > 1 {
        ctx.rpl.read_ahead.clear();
        let mut entries =
            batch_within(ctx, cursor.start.clone(), direction, batch, max_bytes).await?;
        let fit = fitting(&entries, max_bytes);
        if fit == 0
            && let Some(first) = entries.first()
        {
            let bytes = answer_bytes(&first.key, &first.value);
            return Err(too_large(ctx, bytes, max_bytes));
        }
        entries.truncate(fit);
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
    if batch == 1 {
        let bytes = answer_bytes(&last.key, &last.value);
        if bytes > max_bytes {
            // Not returned: the position stays before it, and what was
            // read ahead after it is read again.
            ctx.rpl.read_ahead.clear();
            return Err(too_large(ctx, bytes, max_bytes));
        }
    }
    ctx.rpl.cursor = Some(Cursor::after(last.key.clone(), direction));
    if !update {
        let records: Vec<_> = entries
            .into_iter()
            .map(|entry| search::record(ctx, entry))
            .collect();
        return Ok(records.into());
    }
    let entry = entries.into_iter().next().expect("one entry");
    let key = entry.key.clone();
    match hold(ctx, entry, version).await {
        Ok(entry) => Ok(vec![search::record(ctx, entry)].into()),
        Err(status) => {
            // Not returned: the next GET tries the same record again.
            ctx.rpl.set_cursor(Some(Cursor::at(key, direction)));
            Err(status)
        }
    }
}

/// Up to `batch` entries from `start` in `direction`, read a piece at a
/// time until they fill `max_bytes` of answer: a piece asks for as many
/// records as fit at their longest. A batch of 10,000 records of a
/// megabyte is not read whole (10 GB) only to be cut to the frame.
async fn batch_within(
    ctx: &mut Ctx<'_>,
    mut from: Start,
    direction: Direction,
    batch: u32,
    max_bytes: usize,
) -> Result<Vec<Entry>, vsam_protocol::Status> {
    let per_piece = ctx.state.def.records_in(max_bytes, batch);
    let mut entries: Vec<Entry> = Vec::new();
    let mut bytes = 0;
    loop {
        let asked = batch
            .saturating_sub(u32::try_from(entries.len()).unwrap_or(u32::MAX))
            .min(per_piece);
        let piece = ctx.scan(from.clone(), direction, asked).await?;
        let ended = piece.len() < asked as usize;
        bytes += piece
            .iter()
            .map(|entry| answer_bytes(&entry.key, &entry.value))
            .sum::<usize>();
        entries.extend(piece);
        if ended || entries.len() >= batch as usize || bytes >= max_bytes {
            return Ok(entries);
        }
        let last = entries.last().expect("a full piece holds an entry");
        from = Start::Exclusive(last.key.clone());
    }
}

/// How many of `entries` fit in `max_bytes` of answer (none if the first
/// does not).
fn fitting(entries: &[Entry], max_bytes: usize) -> usize {
    let mut total = 0usize;
    entries
        .iter()
        .take_while(|entry| {
            total += answer_bytes(&entry.key, &entry.value);
            total <= max_bytes
        })
        .count()
}

/// The next record from `start`, through the string's read-ahead.
async fn next_one(
    ctx: &mut Ctx<'_>,
    start: &Start,
    direction: Direction,
    update: bool,
) -> Result<Option<Entry>, vsam_protocol::Status> {
    // The scope is read before the write counter, so that a change of
    // either after the fetch leaves the read-ahead unused.
    let scope = ctx.state.read_ahead_scope();
    let version = ctx.state.version();
    let ahead = !update && scope.is_some();
    if ahead
        && ctx.rpl.read_ahead_version == version
        && ctx.rpl.read_ahead_scope == scope
        && let Some(entry) = ctx.rpl.read_ahead.pop_front()
    {
        return Ok(Some(entry));
    }
    let size = match ahead {
        true => ctx.rpl.next_fetch_size(ctx.state.def.max_record),
        false => 1,
    };
    let mut entries: std::collections::VecDeque<Entry> =
        ctx.scan(start.clone(), direction, size).await?.into();
    let first = entries.pop_front();
    ctx.rpl.read_ahead = if ahead { entries } else { Default::default() };
    ctx.rpl.read_ahead_version = version;
    ctx.rpl.read_ahead_scope = scope;
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
    let fleet = ctx.take(&entry.key).await?;
    // Read again if another writer may have changed it since: one of this
    // server, or any of the fleet's.
    let entry = if ctx.state.version() != version || fleet.is_some() {
        match ctx.read(&entry.key).await? {
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
        fleet,
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
        assert_eq!(fitting(&entries, 100), 1);
        assert_eq!(
            fitting(&entries, 99),
            0,
            "a record larger than the room is not sent (the GET answers X'2C')"
        );
        assert_eq!(fitting(&[], 10), 0);
    }
}
