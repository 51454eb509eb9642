//! PUT: insert a record (keyed, sequential, appended or into a slot), or
//! update the record held by a GET UPD; PUT CHAIN: many inserts on one
//! string, run by the backend as one job that shares one commit (with UPD,
//! many updates by key: see `update_chain`).

use super::alternate::upgrade::Upgraded;
use super::request::Ctx;
use super::request::{Done, Outcome};
use super::rpl::Cursor;
use super::search;
use super::update_chain::update_chain;
use super::writes;
use super::written::{check_length, key_field, written_record};
use crate::runtime::call::{Call, Reply};
use vsam_plugin_sdk::Start;
use vsam_plugin_sdk::keys::key_number;
use vsam_protocol::{
    Access, ChainedRecord, Intent, OpenIntent, Organization, Processing, Put, Record, RplOptions,
    Status, fdbk,
};

/// Runs a PUT on one string.
pub(crate) async fn put(mut ctx: Ctx<'_>, req: Put) -> Outcome {
    let options = ctx.options;
    if options.intent == Intent::Update {
        update(&mut ctx, &req.record).await
    } else {
        ctx.release_held();
        let record = ChainedRecord {
            address: req.address,
            record: req.record,
        };
        let (written, outcome) = insert(&mut ctx, options, vec![record]).await;
        outcome.map(|()| written)
    }
}

/// Runs a PUT CHAIN: inserts (or with UPD updates) in order until the
/// first that fails. Returns the records written (all durable, or staged
/// in the unit of work) and the failure, if any.
pub(crate) async fn put_chain(
    mut ctx: Ctx<'_>,
    records: Vec<ChainedRecord>,
    max_chain: u32,
) -> (Done, Result<(), Status>) {
    let options = ctx.options;
    ctx.release_held();
    if records.len() > max_chain as usize {
        let refused = ctx.error(
            fdbk::INVALID_OPTIONS,
            format!(
                "a chain of {} records is longer than this server's max_batch of {max_chain}; send shorter chains",
                records.len()
            ),
        );
        return (Done::default(), Err(refused));
    }
    if options.intent == Intent::Update {
        return update_chain(&mut ctx, records).await;
    }
    let total = records.len();
    let (written, outcome) = insert(&mut ctx, options, records).await;
    let outcome = outcome.map_err(|mut status| {
        let n = written.records.len();
        status.message = format!(
            "{} (record {} of {total} in the chain; the {n} before it are written)",
            status.message,
            n + 1
        );
        status
    });
    (written, outcome)
}

async fn update(ctx: &mut Ctx<'_>, record: &[u8]) -> Outcome {
    if ctx.intent != OpenIntent::Update {
        ctx.release_held();
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "PUT for update needs the dataset opened for update",
        ));
    }
    let Some(held) = ctx.rpl.held.take() else {
        return Err(ctx.error(
            fdbk::NO_GET_UPDATE,
            "PUT for update without a preceding GET for update (UPD) on this string",
        ));
    };
    let outcome =
        async {
            check_length(ctx, record)?;
            let def = &ctx.state.def;
            match def.organization {
                Organization::Ksds if key_field(ctx, record) != held.key => {
                    return Err(ctx.error(
                        fdbk::KEY_CHANGED,
                        "the prime key may not change on update; ERASE and insert instead",
                    ));
                }
                Organization::Esds if record.len() != held.length => {
                    return Err(ctx.error(
                        fdbk::LENGTH_CHANGED,
                        format!(
                            "an ESDS record keeps its length on update: {} bytes, not {}",
                            held.length,
                            record.len()
                        ),
                    ));
                }
                _ => {}
            }
            ctx.not_in_own_unit(&held.key)?;
            let upgraded = if ctx.in_unit() {
                // Read from the store, or changed before in the unit (whose
                // change knows whether the store holds it).
                let duplicate = ctx
                    .stage_record(held.key.clone(), true, record.to_vec())
                    .await?;
                Upgraded { duplicate }
            } else {
                ctx.still_held(held.fleet)?;
                writes::replace(ctx.state, ctx.name(), held.key.clone(), record.to_vec()).await?
            };
            Ok(Done::from(vec![written_record(ctx, held.key.clone())])
                .duplicate_if(upgraded.duplicate))
        }
        .await;
    ctx.state.unlock(&held.key, ctx.owner);
    outcome
}

/// Inserts records in order until the first that fails: the checks run
/// here, then the backend runs the calls as one job. The records written
/// (with X'08' if one gave a NONUNIQUEKEY index a key it held), and the
/// failure.
async fn insert(
    ctx: &mut Ctx<'_>,
    options: RplOptions,
    records: Vec<ChainedRecord>,
) -> (Done, Result<(), Status>) {
    if let Err(refused) = check_insert(ctx, options) {
        return (Done::default(), Err(refused));
    }
    let sequential = options.processing == Processing::Sequential;
    // Keys planned so far (None: an ESDS record, whose RBA the backend picks).
    let mut planned: Vec<(Option<Vec<u8>>, Vec<u8>)> = Vec::with_capacity(records.len());
    let mut refused = None;
    let start = position(ctx);
    for chained in records {
        let previous = match planned.last() {
            Some((last, _)) => last.as_deref(),
            None => start.as_deref(),
        };
        let key =
            plan(ctx, sequential, previous, chained.address, &chained.record).and_then(|key| {
                match &key {
                    Some(key) => not_held(ctx, key).map(|()| Some(key.clone())),
                    None => Ok(None),
                }
            });
        match key {
            Ok(key) => planned.push((key, chained.record)),
            Err(status) => {
                refused = Some(status);
                break;
            }
        }
    }
    // ESDS records go to the store at once also in a unit of work: an
    // ESDS addition cannot be backed out (as in CICS).
    let (written, mut failure, upgraded) = if ctx.in_unit()
        && ctx.state.def.organization != Organization::Esds
    {
        stage_inserts(ctx, planned).await
    } else {
        // On a shared store, a key another server's unit of work holds
        // is refused as this server refuses one its own units hold.
        if !ctx.state.in_fleet() {
            store_inserts(ctx, planned).await
        } else {
            let keys: Vec<Vec<u8>> = planned.iter().filter_map(|(key, _)| key.clone()).collect();
            let keys: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let held = match ctx.state.hold_for_inserts(&keys).await {
                Ok(generation) => generation,
                Err((at, refusal)) => {
                    planned.truncate(at);
                    refused = Some(ctx.refused(refusal));
                    None
                }
            };
            let stored = store_inserts(ctx, planned).await;
            ctx.state.release_inserts(&keys, held);
            stored
        }
    };
    if failure.is_none() {
        failure = refused;
    }
    if sequential && let Some(last) = written.last() {
        ctx.rpl.set_cursor(Some(Cursor::after(
            last.clone(),
            vsam_plugin_sdk::Direction::Forward,
        )));
    }
    let written: Vec<Record> = written
        .into_iter()
        .map(|key| written_record(ctx, key))
        .collect();
    (
        Done::from(written).duplicate_if(upgraded.duplicate),
        failure.map_or(Ok(()), Err),
    )
}

/// A planned insert may not take a key another connection's unit of work
/// holds (inserted, or erased and not committed).
fn not_held(ctx: &Ctx<'_>, key: &[u8]) -> Result<(), Status> {
    match ctx.state.unit_holder(key, ctx.owner.session) {
        Some(holder) => Err(ctx.held(holder)),
        None => ctx.not_in_own_unit(key),
    }
}

/// Runs planned inserts on the store as one job: the keys written, the
/// failure that stopped them, and what the alternate indexes reported.
async fn store_inserts(
    ctx: &Ctx<'_>,
    planned: Vec<(Option<Vec<u8>>, Vec<u8>)>,
) -> (Vec<Vec<u8>>, Option<Status>, Upgraded) {
    let dataset = &ctx.state.plugin_dataset;
    let (keys, calls): (Vec<_>, Vec<_>) = planned
        .into_iter()
        .map(|(key, record)| {
            let call = match &key {
                Some(key) => Call::Insert(dataset.clone(), key.clone(), record),
                None => Call::Append(dataset.clone(), record),
            };
            (key, call)
        })
        .unzip();
    let (results, upgraded) = writes::write_chain(ctx.state, ctx.name(), calls).await;
    let mut written = Vec::with_capacity(results.len());
    let mut failure = None;
    for (result, key) in results.into_iter().zip(keys) {
        match (result, key) {
            (Ok(_), Some(key)) => written.push(key),
            (Ok(Reply::Key(key)), None) => written.push(key),
            (Ok(other), None) => {
                failure = Some(ctx.state.protocol_violation(ctx.name(), &other));
                break;
            }
            (Err(status), key) => {
                failure = Some(match key {
                    Some(key) if status.fdbk == fdbk::DUPLICATE_KEY => duplicate(ctx, &key),
                    _ => status,
                });
                break;
            }
        }
    }
    (written, failure, upgraded)
}

/// Records planned inserts in the connection's unit of work, each checked
/// against what the connection sees (its unit over the store): the keys
/// staged, the failure that stopped them, and what the alternate indexes
/// reported.
async fn stage_inserts(
    ctx: &mut Ctx<'_>,
    planned: Vec<(Option<Vec<u8>>, Vec<u8>)>,
) -> (Vec<Vec<u8>>, Option<Status>, Upgraded) {
    let mut written = Vec::with_capacity(planned.len());
    let mut upgraded = Upgraded::default();
    for (key, record) in planned {
        let key = key.expect("keyed records in a unit");
        let staged = match ctx.taken(&key).await {
            Ok(true) => Err(duplicate(ctx, &key)),
            Ok(false) => ctx.stage_record(key.clone(), false, record).await,
            Err(status) => Err(status),
        };
        match staged {
            Ok(duplicate) => {
                upgraded.duplicate |= duplicate;
                written.push(key);
            }
            Err(status) => return (written, Some(status), upgraded),
        }
    }
    (written, None, upgraded)
}

/// The checks that concern the request, not one record.
fn check_insert(ctx: &Ctx<'_>, options: RplOptions) -> Result<(), Status> {
    if ctx.intent == OpenIntent::Input {
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "PUT on a dataset opened for input: OPEN it for output or update",
        ));
    }
    if options.backward {
        return Err(ctx.error(
            fdbk::INSERT_BACKWARD,
            "records cannot be inserted in backward mode (BWD)",
        ));
    }
    match (ctx.state.def.organization, options.access) {
        (Organization::Ksds, Access::Address) => Err(ctx.error(
            fdbk::ADDRESSED_INSERT_KSDS,
            "addressed insert into a KSDS: insert by key (KEY)",
        )),
        _ => search::check_access(ctx, options),
    }
}

/// Checks one record and finds the key it goes under (None: an ESDS
/// record, appended). `previous` is the key a sequential insert follows:
/// the chain's record before, or the string's position.
fn plan(
    ctx: &Ctx<'_>,
    sequential: bool,
    previous: Option<&[u8]>,
    address: u64,
    record: &[u8],
) -> Result<Option<Vec<u8>>, Status> {
    check_length(ctx, record)?;
    match ctx.state.def.organization {
        Organization::Ksds => {
            let key = key_field(ctx, record);
            if sequential {
                check_ascending(ctx, previous, &key)?;
            }
            Ok(Some(key))
        }
        Organization::Esds => Ok(None),
        Organization::Rrds | Organization::Vrrds => {
            let rrn = if sequential {
                previous.and_then(key_number).map_or(1, |rrn| rrn + 1)
            } else {
                address
            };
            search::rrn_key(ctx, rrn).map(Some)
        }
    }
}

/// The key a sequential insert follows, from the string's position: the
/// record last written or read (an RRDS slot after a POINT: the one before).
fn position(ctx: &Ctx<'_>) -> Option<Vec<u8>> {
    let rrds = ctx.state.def.organization.relative();
    match &ctx.rpl.cursor {
        Some(Cursor {
            start: Start::Exclusive(key),
            direction,
        }) if rrds || *direction == vsam_plugin_sdk::Direction::Forward => Some(key.clone()),
        Some(Cursor {
            start: Start::Inclusive(key),
            ..
        }) if rrds => {
            key_number(key).map(|rrn| vsam_plugin_sdk::keys::number_key(rrn.saturating_sub(1)))
        }
        _ => None,
    }
}

fn duplicate(ctx: &Ctx<'_>, key: &[u8]) -> Status {
    match ctx.state.def.organization {
        Organization::Rrds | Organization::Vrrds => ctx.error(
            fdbk::DUPLICATE_KEY,
            format!(
                "slot {} already holds a record",
                key_number(key).unwrap_or(0)
            ),
        ),
        _ => ctx.error(fdbk::DUPLICATE_KEY, "a record with this key exists"),
    }
}

/// Sequential inserts into a KSDS must come in ascending key order.
fn check_ascending(ctx: &Ctx<'_>, previous: Option<&[u8]>, key: &[u8]) -> Result<(), Status> {
    let Some(previous) = previous else {
        return Ok(());
    };
    if key == previous {
        Err(ctx.error(fdbk::DUPLICATE_KEY, "a record with this key exists"))
    } else if key < previous {
        Err(ctx.error(
            fdbk::SEQUENCE_ERROR,
            "sequential insert with a key below the previous record's key",
        ))
    } else {
        Ok(())
    }
}
