//! Answers of many records taken from a plugin in pieces.
//!
//! wasmtime lifts at most 128 MiB from a guest in one call ("hostcall
//! fuel"), and traps past it: a scan of 32 records of 4 MiB, which a
//! sequential read's read-ahead asks for, failed with R15=12 and dropped
//! the instance. So a `scan` or a `get-many` whose records could pass
//! [`ANSWER_BYTES`] is asked of the plugin a piece at a time, each within
//! it, and the pieces joined: to every caller the answer is the one call's
//! it would have been (a scan short only at the end of the records, a
//! get-many an answer for each key). The pieces run on the same instance
//! one after another, with nothing between them.

use crate::runtime::bindings::{wit_store, wit_types};
use crate::runtime::convert;
use wasmtime::Store;
use wasmtime::component::TypedFunc;

use super::instance::InstanceState;
use vsam_plugin_sdk as sdk;

/// The most bytes of records one piece may hold: a quarter of wasmtime's
/// 128 MiB, for the lists' own bytes and the keys beside the records.
pub const ANSWER_BYTES: u64 = 32 << 20;

/// How many records of `ds` one piece asks for (at least one): records of
/// its longest length, with their keys and the lists' own bytes.
pub fn records_per_piece(ds: &sdk::Dataset) -> u32 {
    let entry = u64::from(ds.max_record_length) + u64::from(ds.key_length.max(8)) + 64;
    u32::try_from((ANSWER_BYTES / entry).max(1)).unwrap_or(u32::MAX)
}

/// `lookup.get-many`, typed (the optional `lookup` interface's call).
pub(super) type GetMany = TypedFunc<
    (wit_types::Dataset, Vec<Vec<u8>>),
    (Result<Vec<Option<Vec<u8>>>, wit_types::StoreError>,),
>;

/// What a plugin call answers: the plugin's own error, or a trap.
type Answer<T> = wasmtime::Result<Result<T, wit_types::StoreError>>;

/// Up to `limit` entries of `ds` from `from` in `dir`, a piece at a time.
pub async fn scan(
    guest: &wit_store::Guest,
    store: &mut Store<InstanceState>,
    ds: &sdk::Dataset,
    from: &sdk::Start,
    dir: sdk::Direction,
    limit: u32,
) -> Answer<Vec<sdk::Entry>> {
    let per_piece = records_per_piece(ds);
    let dataset = convert::dataset(ds);
    let mut from = from.clone();
    let mut entries: Vec<sdk::Entry> = Vec::new();
    loop {
        let asked = limit
            .saturating_sub(u32::try_from(entries.len()).unwrap_or(u32::MAX))
            .min(per_piece);
        let piece = match guest
            .call_scan(
                &mut *store,
                &dataset,
                &convert::start(&from),
                convert::direction(dir),
                asked,
            )
            .await?
        {
            Ok(piece) => piece,
            Err(error) => return Ok(Err(error)),
        };
        // Fewer than asked: the records ended. (More than asked is the
        // plugin's error, which the caller's checks name.)
        let ended = piece.len() < asked as usize;
        entries.extend(piece.into_iter().map(convert::entry));
        if ended || entries.len() >= limit as usize {
            return Ok(Ok(entries));
        }
        let last = entries.last().expect("a full piece holds an entry");
        from = sdk::Start::Exclusive(last.key.clone());
    }
}

/// The record of each key of `ds` (`None` where there is none), through the
/// plugin's `get-many`, a piece of keys at a time.
pub async fn get_many(
    get_many: &GetMany,
    store: &mut Store<InstanceState>,
    ds: &sdk::Dataset,
    keys: &[Vec<u8>],
) -> Answer<Vec<Option<Vec<u8>>>> {
    let per_piece = records_per_piece(ds) as usize;
    let dataset = convert::dataset(ds);
    let mut records = Vec::with_capacity(keys.len());
    for piece in keys.chunks(per_piece) {
        match get_many
            .call_async(&mut *store, (dataset.clone(), piece.to_vec()))
            .await?
        {
            (Ok(answers),) => {
                // An answer for each key, or the caller's check of the
                // count names the plugin's error.
                let whole = answers.len() == piece.len();
                records.extend(answers);
                if !whole {
                    return Ok(Ok(records));
                }
            }
            (Err(error),) => return Ok(Err(error)),
        }
    }
    Ok(Ok(records))
}
