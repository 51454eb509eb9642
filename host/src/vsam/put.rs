//! PUT: insert a record (keyed, sequential, appended or into a slot), or
//! update the record held by a GET UPD.

use super::Outcome;
use super::rpl::Cursor;
use super::search;
use super::session::Ctx;
use vsam_plugin_sdk::Start;
use vsam_plugin_sdk::keys::key_number;
use vsam_protocol::{
    Access, Intent, OpenIntent, Organization, Processing, Put, Record, RplOptions, Status, fdbk,
};

/// Runs a PUT on one string.
pub(crate) async fn put(mut ctx: Ctx<'_>, options: RplOptions, req: &Put) -> Outcome {
    if options.intent == Intent::Update {
        update(&mut ctx, &req.record).await
    } else {
        ctx.release_held();
        insert(&mut ctx, options, req).await
    }
}

/// Checks the record length against the definition.
fn check_length(ctx: &Ctx<'_>, record: &[u8]) -> Result<(), Status> {
    let def = &ctx.state.def;
    let length = record.len() as u64;
    let key_end = u64::from(def.key_offset) + u64::from(def.key_length);
    let problem = if def.organization == Organization::Rrds && length != u64::from(def.max_record) {
        Some(format!(
            "an RRDS slot holds exactly {} bytes",
            def.max_record
        ))
    } else if length == 0
        || length > u64::from(def.max_record)
        || length < u64::from(def.min_record)
    {
        Some(format!(
            "records must be {} to {} bytes",
            def.min_record, def.max_record
        ))
    } else if def.organization == Organization::Ksds && length < key_end {
        Some(format!(
            "the record must reach the end of the key at byte {key_end}"
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ctx.error(
            fdbk::INVALID_LENGTH,
            format!("record length {length} is invalid: {problem}"),
        )),
        None => Ok(()),
    }
}

/// The prime key field of a KSDS record.
fn key_field(ctx: &Ctx<'_>, record: &[u8]) -> Vec<u8> {
    let def = &ctx.state.def;
    let start = def.key_offset as usize;
    record[start..start + usize::from(def.key_length)].to_vec()
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
    let outcome = async {
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
        ctx.state
            .replace(ctx.request, held.key.clone(), record.to_vec())
            .await?;
        Ok(vec![written(ctx, held.key.clone())])
    }
    .await;
    ctx.state.unlock(&held.key, ctx.owner);
    outcome
}

fn written(ctx: &Ctx<'_>, key: Vec<u8>) -> Record {
    let address = match ctx.state.def.organization {
        Organization::Ksds => 0,
        _ => key_number(&key).unwrap_or(0),
    };
    Record {
        address,
        key,
        data: Vec::new(),
    }
}

async fn insert(ctx: &mut Ctx<'_>, options: RplOptions, req: &Put) -> Outcome {
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
    let organization = ctx.state.def.organization;
    match (organization, options.access) {
        (Organization::Ksds, Access::Address) => {
            return Err(ctx.error(
                fdbk::ADDRESSED_INSERT_KSDS,
                "addressed insert into a KSDS: insert by key (KEY)",
            ));
        }
        _ => search::check_access(ctx, options)?,
    }
    check_length(ctx, &req.record)?;
    let sequential = options.processing == Processing::Sequential;
    let key = match organization {
        Organization::Ksds => {
            let key = key_field(ctx, &req.record);
            if sequential {
                check_ascending(ctx, &key)?;
            }
            ctx.state
                .insert(ctx.request, key.clone(), req.record.clone())
                .await?;
            key
        }
        Organization::Esds => ctx.state.append(ctx.request, req.record.clone()).await?,
        Organization::Rrds => {
            let rrn = if sequential {
                next_slot(ctx)
            } else {
                req.address
            };
            let key = search::rrn_key(ctx, rrn)?;
            ctx.state
                .insert(ctx.request, key.clone(), req.record.clone())
                .await
                .map_err(|status| {
                    if status.fdbk == fdbk::DUPLICATE_KEY {
                        ctx.error(
                            fdbk::DUPLICATE_KEY,
                            format!("slot {rrn} already holds a record"),
                        )
                    } else {
                        status
                    }
                })?;
            key
        }
    };
    if sequential {
        ctx.rpl.set_cursor(Some(Cursor::after(
            key.clone(),
            vsam_plugin_sdk::Direction::Forward,
        )));
    }
    Ok(vec![written(ctx, key)])
}

/// Sequential inserts into a KSDS must come in ascending key order.
fn check_ascending(ctx: &Ctx<'_>, key: &[u8]) -> Result<(), Status> {
    let previous = match &ctx.rpl.cursor {
        Some(Cursor {
            start: Start::Exclusive(previous),
            direction: vsam_plugin_sdk::Direction::Forward,
        }) => previous,
        _ => return Ok(()),
    };
    if key == previous.as_slice() {
        Err(ctx.error(fdbk::DUPLICATE_KEY, "a record with this key exists"))
    } else if key < previous.as_slice() {
        Err(ctx.error(
            fdbk::SEQUENCE_ERROR,
            "sequential insert with a key below the previous record's key",
        ))
    } else {
        Ok(())
    }
}

/// The slot a sequential RRDS insert goes to: the one after the position.
fn next_slot(ctx: &Ctx<'_>) -> u64 {
    match &ctx.rpl.cursor {
        Some(Cursor {
            start: Start::Exclusive(key),
            ..
        }) => key_number(key).map_or(1, |rrn| rrn + 1),
        Some(Cursor {
            start: Start::Inclusive(key),
            ..
        }) => key_number(key).unwrap_or(1),
        _ => 1,
    }
}
