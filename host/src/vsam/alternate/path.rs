//! GET and POINT through a path: keyed requests search the alternate
//! index, and return (and hold) the base records its entries point to.
//! A string's position is a key of the index, so a browse runs in
//! alternate-key order, duplicates in the order they were stored. A GET
//! that returns a record whose alternate key the next record shares ends
//! with R15=0 FDBK X'08' (COBOL status 02).

use super::AixIndex;
use crate::vsam::get::hold;
use crate::vsam::get::{answer_bytes, too_large};
use crate::vsam::request::Ctx;
use crate::vsam::request::{Done, Outcome};
use crate::vsam::rpl::Cursor;
use vsam_plugin_sdk::keys::key_number;
use vsam_plugin_sdk::{Direction, Entry, Start};
use vsam_protocol::{
    Access, Get, Intent, OpenIntent, Organization, Point, Processing, Record, RplOptions, Status,
    fdbk,
};

/// What a keyed request through a path looks for.
enum Search {
    /// The first entry whose alternate key starts with `prefix` (all of
    /// it for a full key).
    Equal(Vec<u8>),
    /// The first entry at or after the key.
    AtOrAfter(Vec<u8>),
    /// The last entry.
    Last,
}

fn search(
    ctx: &Ctx<'_>,
    index: &AixIndex,
    options: RplOptions,
    key: &[u8],
    generic_length: u16,
) -> Result<Search, Status> {
    if options.access == Access::Address {
        return Err(ctx.error(
            fdbk::INVALID_OPTIONS,
            "addressed access through a path: a path is read by its alternate key (KEY)",
        ));
    }
    if options.last_record {
        return Ok(Search::Last);
    }
    let argument = if options.generic {
        let length = usize::from(generic_length);
        if length == 0 || length > index.key_length || key.len() < length {
            return Err(ctx.error(
                fdbk::INVALID_KEY_LENGTH,
                format!(
                    "generic key length {length} is invalid: it must be 1 to the alternate key length {} and the argument ({} bytes) at least that long",
                    index.key_length,
                    key.len()
                ),
            ));
        }
        key[..length].to_vec()
    } else if key.len() != index.key_length {
        return Err(ctx.error(
            fdbk::INVALID_KEY_LENGTH,
            format!(
                "full key (FKS) of {} bytes given, the alternate key length is {}",
                key.len(),
                index.key_length
            ),
        ));
    } else {
        key.to_vec()
    };
    Ok(if options.greater_or_equal {
        Search::AtOrAfter(argument)
    } else {
        Search::Equal(argument)
    })
}

/// The first valid entry (with its base record) a search names.
async fn locate(
    ctx: &Ctx<'_>,
    index: &AixIndex,
    search: &Search,
) -> Result<Option<(Entry, Entry)>, Status> {
    let base = ctx.state;
    let (from, dir) = match search {
        Search::Last => (Start::Edge, Direction::Backward),
        Search::Equal(key) | Search::AtOrAfter(key) => {
            (Start::Inclusive(key.clone()), Direction::Forward)
        }
    };
    let found = index.next_valid(base, ctx.name(), from, dir).await?;
    Ok(match search {
        Search::Equal(prefix) => found.filter(|(entry, _)| entry.key.starts_with(prefix)),
        _ => found,
    })
}

/// True if the valid entry after `entry` in `dir` has the same alternate
/// key (a NONUNIQUEKEY duplicate follows).
async fn duplicate_follows(
    ctx: &Ctx<'_>,
    index: &AixIndex,
    entry: &Entry,
    dir: Direction,
) -> Result<bool, Status> {
    if index.unique {
        return Ok(false);
    }
    let next = index
        .next_valid(
            ctx.state,
            ctx.name(),
            Start::Exclusive(entry.key.clone()),
            dir,
        )
        .await?;
    Ok(next.is_some_and(|(next, _)| {
        index.entry_alternate(&next.key) == index.entry_alternate(&entry.key)
    }))
}

/// The base record as the answer's record: its alternate key, and its RBA
/// for an ESDS base.
fn record(index: &AixIndex, entry: &Entry, base: Entry) -> Record {
    let address = match index.base_organization {
        Organization::Ksds => 0,
        _ => key_number(&base.key).unwrap_or(0),
    };
    Record {
        address,
        key: index.entry_alternate(&entry.key).to_vec(),
        data: base.value,
    }
}

fn not_found(ctx: &Ctx<'_>) -> Status {
    ctx.error(fdbk::NOT_FOUND, "no record with this alternate key")
}

/// GET through a path.
pub(crate) async fn get(
    mut ctx: Ctx<'_>,
    index: &AixIndex,
    req: &Get,
    limit: crate::vsam::get::BatchLimit,
) -> Outcome {
    let options = ctx.options;
    // A path browses as many records as the GET asks for, within the limit.
    let limit = crate::vsam::get::BatchLimit {
        records: req.max_records.max(1).min(limit.records),
        ..limit
    };
    ctx.release_held();
    if ctx.intent == OpenIntent::Output {
        return Err(ctx.error(fdbk::NOT_ALLOWED_BY_OPEN, "GET on a path opened for output"));
    }
    let update = options.intent == Intent::Update;
    if update && ctx.intent != OpenIntent::Update {
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "GET for update (UPD) needs the path opened for update",
        ));
    }
    let direction = crate::vsam::search::direction(options);
    let mut records = Vec::new();
    let mut duplicate = false;
    // The write counter before reading: GET UPD reads the record again
    // under exclusive control if another writer changed it meanwhile.
    let version = ctx.state.version();
    if options.processing != Processing::Sequential {
        let search = search(&ctx, index, options, &req.key, req.generic_length)?;
        let Some((entry, base)) = locate(&ctx, index, &search).await? else {
            ctx.rpl.set_cursor(None);
            return Err(not_found(&ctx));
        };
        let bytes = answer_bytes(&entry.key, &base.value);
        if bytes > limit.bytes {
            return Err(too_large(&ctx, bytes, limit.bytes));
        }
        let base = if update {
            hold(&mut ctx, base, version).await?
        } else {
            base
        };
        let keeps_position =
            crate::vsam::search::keeps_position(options, matches!(search, Search::Last));
        let cursor_direction = if matches!(search, Search::Last) {
            Direction::Backward
        } else {
            direction
        };
        duplicate = duplicate_follows(&ctx, index, &entry, cursor_direction).await?;
        ctx.rpl
            .set_cursor(keeps_position.then(|| Cursor::after(entry.key.clone(), cursor_direction)));
        records.push(record(index, &entry, base));
    } else {
        let cursor = crate::vsam::search::sequential_start(&mut ctx, options, direction)?;
        let batch = if update { 1 } else { limit.records.max(1) };
        let mut from = cursor.start;
        let mut total = 0usize;
        while records.len() < batch as usize {
            let Some((entry, base)) = index
                .next_valid(ctx.state, ctx.name(), from, direction)
                .await?
            else {
                break;
            };
            // A record that would not fit ends the batch before it (the
            // position stays before it); alone, it cannot be answered.
            let bytes = answer_bytes(&entry.key, &base.value);
            if total + bytes > limit.bytes {
                if records.is_empty() {
                    return Err(too_large(&ctx, bytes, limit.bytes));
                }
                break;
            }
            total += bytes;
            from = Start::Exclusive(entry.key.clone());
            ctx.rpl.cursor = Some(Cursor::after(entry.key.clone(), direction));
            let base = if update {
                hold(&mut ctx, base, version).await?
            } else {
                base
            };
            duplicate = duplicate_follows(&ctx, index, &entry, direction).await?;
            records.push(record(index, &entry, base));
        }
        if records.is_empty() {
            return Err(ctx.error(fdbk::END_OF_DATA, "end of data"));
        }
    }
    Ok(Done::from(records).duplicate_if(duplicate))
}

/// POINT through a path.
pub(crate) async fn point(mut ctx: Ctx<'_>, index: &AixIndex, req: &Point) -> Outcome {
    let options = ctx.options;
    ctx.release_held();
    if ctx.intent == OpenIntent::Output {
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "POINT on a path opened for output",
        ));
    }
    let direction = if options.backward {
        Direction::Backward
    } else {
        Direction::Forward
    };
    let search = search(&ctx, index, options, &req.key, req.generic_length)?;
    if let Search::Last = search {
        let last = locate(&ctx, index, &search).await?;
        ctx.rpl.set_cursor(Some(Cursor {
            start: Start::Edge,
            direction: Direction::Backward,
        }));
        return match last {
            Some(_) => Ok(Done::default()),
            None => Err(ctx.error(fdbk::END_OF_DATA, "the path has no records")),
        };
    }
    match locate(&ctx, index, &search).await? {
        Some((entry, _)) => {
            ctx.rpl.set_cursor(Some(Cursor::at(entry.key, direction)));
            Ok(Done::default())
        }
        None if options.greater_or_equal => {
            ctx.rpl.set_cursor(None);
            Err(ctx.error(
                fdbk::END_OF_DATA,
                "no record at or after this alternate key: end of data",
            ))
        }
        None => {
            ctx.rpl.set_cursor(None);
            Err(not_found(&ctx))
        }
    }
}
