//! PUT CHAIN with UPD (1.4): records replaced by key, in order, each as a
//! GET UPD of its key followed by a PUT UPD would, until the first that
//! fails. A batch job rewriting the records it read sends them together:
//! the stored records are read in one backend job, and then staged in the
//! connection's unit of work, or written as one job that shares one sync.

use super::alternate::upgrade::Upgraded;
use super::request::{Ctx, Done};
use super::search;
use super::writes;
use super::written::{check_length, key_field, written_record};
use vsam_plugin_sdk::keys::number_key;
use vsam_protocol::{ChainedRecord, OpenIntent, Organization, Record, Status, fdbk};

/// Runs a PUT CHAIN with UPD: the records updated, and the failure that
/// stopped the chain (its message says which record of the chain).
pub(crate) async fn update_chain(
    ctx: &mut Ctx<'_>,
    records: Vec<ChainedRecord>,
) -> (Done, Result<(), Status>) {
    if ctx.intent != OpenIntent::Update {
        let refused = ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "PUT CHAIN for update needs the dataset opened for update",
        );
        return (Done::default(), Err(refused));
    }
    let total = records.len();
    let (updated, failure) = update(ctx, records).await;
    let n = updated.len();
    let done = Done::from(updated.records).duplicate_if(updated.duplicate);
    let outcome = match failure {
        None => Ok(()),
        Some(mut status) => {
            status.message = format!(
                "{} (record {} of {total} in the chain; the {n} before it are updated)",
                status.message,
                n + 1
            );
            Err(status)
        }
    };
    (done, outcome)
}

/// What a chain updated.
#[derive(Default)]
struct Updated {
    records: Vec<Record>,
    duplicate: bool,
}

impl Updated {
    fn len(&self) -> usize {
        self.records.len()
    }
}

/// Plans, takes, reads, checks and applies the chain's records; each
/// step stops at the first record that fails, so the failure reported is
/// the first in the chain's order and only the records before it change.
async fn update(ctx: &mut Ctx<'_>, records: Vec<ChainedRecord>) -> (Updated, Option<Status>) {
    let mut failure = None;
    let mut planned = Vec::with_capacity(records.len());
    for chained in records {
        match plan(ctx, &chained) {
            Ok(key) => planned.push((key, chained.record)),
            Err(status) => {
                failure = Some(status);
                break;
            }
        }
    }
    // Take each record under exclusive control, as a GET UPD would.
    let mut taken = 0;
    for (key, _) in &planned {
        if let Err(status) = ctx.take(key).await {
            failure = Some(status);
            break;
        }
        taken += 1;
    }
    let held: Vec<Vec<u8>> = planned[..taken]
        .iter()
        .map(|(key, _)| key.clone())
        .collect();
    planned.truncate(taken);
    let outcome = match current(ctx, &held).await {
        Ok(images) => {
            let checked = check(ctx, &planned, &images);
            if let Err((at, status)) = checked {
                planned.truncate(at);
                failure = Some(status);
            }
            let (updated, applied) = apply(ctx, planned).await;
            (updated, applied.or(failure))
        }
        Err(status) => (Updated::default(), Some(status)),
    };
    for key in &held {
        ctx.state.unlock(key, ctx.owner);
    }
    outcome
}

/// The key a record of the chain replaces: a KSDS record's key field, the
/// RRN of an RRDS slot or the RBA of an ESDS record (in `address`); and
/// the length checks.
fn plan(ctx: &Ctx<'_>, chained: &ChainedRecord) -> Result<Vec<u8>, Status> {
    check_length(ctx, &chained.record)?;
    match ctx.state.def.organization {
        Organization::Ksds => Ok(key_field(ctx, &chained.record)),
        Organization::Rrds | Organization::Vrrds => search::rrn_key(ctx, chained.address),
        Organization::Esds => Ok(number_key(chained.address)),
    }
}

/// The records under `keys` as this connection sees them (its unit's
/// changes over the store); the store is read in one job.
async fn current(ctx: &Ctx<'_>, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, Status> {
    let name = &ctx.state.def.name;
    let changed: Vec<Option<Option<Vec<u8>>>> = keys
        .iter()
        .map(|key| {
            ctx.unit
                .as_deref()
                .and_then(|unit| unit.change(name, key))
                .map(|change| change.image.clone())
        })
        .collect();
    let missing: Vec<Vec<u8>> = keys
        .iter()
        .zip(&changed)
        .filter(|(_, change)| change.is_none())
        .map(|(key, _)| key.clone())
        .collect();
    let mut stored = ctx.state.get_many(ctx.name(), &missing).await?.into_iter();
    Ok(changed
        .into_iter()
        .map(|change| change.unwrap_or_else(|| stored.next().flatten()))
        .collect())
}

/// Checks each record against the one it replaces; `Err` names the first
/// that fails and why.
fn check(
    ctx: &Ctx<'_>,
    planned: &[(Vec<u8>, Vec<u8>)],
    images: &[Option<Vec<u8>>],
) -> Result<(), (usize, Status)> {
    for (at, ((key, record), image)) in planned.iter().zip(images).enumerate() {
        let refused = match image {
            None => Some(ctx.error(fdbk::NOT_FOUND, "no record with this key to update")),
            Some(stored)
                if ctx.state.def.organization == Organization::Esds
                    && stored.len() != record.len() =>
            {
                Some(ctx.error(
                    fdbk::LENGTH_CHANGED,
                    format!(
                        "an ESDS record keeps its length on update: {} bytes, not {}",
                        stored.len(),
                        record.len()
                    ),
                ))
            }
            Some(_) => ctx.not_in_own_unit(key).err(),
        };
        if let Some(status) = refused {
            return Err((at, status));
        }
    }
    Ok(())
}

/// Applies checked updates: staged in the unit of work, or written to the
/// store as one job.
async fn apply(ctx: &mut Ctx<'_>, planned: Vec<(Vec<u8>, Vec<u8>)>) -> (Updated, Option<Status>) {
    let mut updated = Updated::default();
    if ctx.in_unit() {
        for (key, record) in planned {
            match ctx.stage_record(key.clone(), true, record).await {
                Ok(duplicate) => updated.duplicate |= duplicate,
                Err(status) => return (updated, Some(status)),
            }
            updated.records.push(written_record(ctx, key));
        }
        return (updated, None);
    }
    let keys: Vec<Vec<u8>> = planned.iter().map(|(key, _)| key.clone()).collect();
    let (results, upgraded): (Vec<Result<(), Status>>, Upgraded) =
        writes::replace_chain(ctx.state, ctx.name(), planned).await;
    updated.duplicate = upgraded.duplicate;
    for (result, key) in results.into_iter().zip(keys) {
        match result {
            Ok(()) => updated.records.push(written_record(ctx, key)),
            Err(status) => return (updated, Some(status)),
        }
    }
    (updated, None)
}
