//! Search arguments of GET and POINT: what record a request names, checked
//! against the dataset's organization, and finding it.

use super::request::Ctx;
use super::rpl::Cursor;
use vsam_plugin_sdk::keys::{key_number, number_key};
use vsam_plugin_sdk::{Direction, Entry, Start};
use vsam_protocol::{Access, Intent, Organization, Processing, Record, RplOptions, Status, fdbk};

/// What a direct request looks for.
pub(crate) enum Search {
    /// A KSDS key: full or a generic prefix; equal or greater-or-equal.
    Key {
        key: Vec<u8>,
        generic: bool,
        greater_or_equal: bool,
    },
    /// An ESDS RBA or RRDS RRN, as its 8-byte key.
    Number {
        key: Vec<u8>,
        greater_or_equal: bool,
    },
    /// The last record (LRD).
    Last,
}

/// Refuses access types the organization does not have.
pub(crate) fn check_access(ctx: &Ctx<'_>, options: RplOptions) -> Result<(), Status> {
    match (ctx.state.def.organization, options.access) {
        (Organization::Esds, Access::Key) => Err(ctx.error(
            fdbk::KEYED_ON_ESDS,
            "keyed request against an ESDS: address its records by RBA (ADR)",
        )),
        (Organization::Rrds | Organization::Vrrds, Access::Address) => Err(ctx.error(
            fdbk::ADDRESSED_ON_RRDS,
            "addressed request against a relative dataset: address its records by relative record number (KEY)",
        )),
        (Organization::Ksds, Access::Address) => Err(ctx.error(
            fdbk::INVALID_OPTIONS,
            "addressed (RBA) access to a KSDS is not supported by the redirector: use KEY",
        )),
        _ => Ok(()),
    }
}

/// Checks an RRN: 1 to 4,294,967,295.
pub(crate) fn rrn_key(ctx: &Ctx<'_>, rrn: u64) -> Result<Vec<u8>, Status> {
    if rrn == 0 || rrn > u64::from(u32::MAX) {
        return Err(ctx.error(
            fdbk::INVALID_RRN,
            format!(
                "relative record number {rrn} is invalid: slots are numbered from 1 to 4294967295"
            ),
        ));
    }
    Ok(number_key(rrn))
}

/// Builds the search argument of a direct GET or POINT.
pub(crate) fn search_arg(
    ctx: &Ctx<'_>,
    options: RplOptions,
    key: &[u8],
    generic_length: u16,
    address: u64,
) -> Result<Search, Status> {
    if options.last_record {
        return Ok(Search::Last);
    }
    let def = &ctx.state.def;
    match def.organization {
        Organization::Ksds => {
            let key_length = usize::from(def.key_length);
            if options.generic {
                let length = usize::from(generic_length);
                if length == 0 || length > key_length || key.len() < length {
                    return Err(ctx.error(
                        fdbk::INVALID_KEY_LENGTH,
                        format!(
                            "generic key length {length} is invalid: it must be 1 to {key_length} and the argument ({} bytes) at least that long",
                            key.len()
                        ),
                    ));
                }
                Ok(Search::Key {
                    key: key[..length].to_vec(),
                    generic: true,
                    greater_or_equal: options.greater_or_equal,
                })
            } else if key.len() != key_length {
                Err(ctx.error(
                    fdbk::INVALID_KEY_LENGTH,
                    format!("full key (FKS) of {} bytes given, the key length is {key_length}; pad it or use GEN", key.len()),
                ))
            } else {
                Ok(Search::Key {
                    key: key.to_vec(),
                    generic: false,
                    greater_or_equal: options.greater_or_equal,
                })
            }
        }
        Organization::Esds => Ok(Search::Number {
            key: number_key(address),
            greater_or_equal: options.greater_or_equal,
        }),
        Organization::Rrds | Organization::Vrrds => Ok(Search::Number {
            key: rrn_key(ctx, address)?,
            greater_or_equal: options.greater_or_equal,
        }),
    }
}

/// The first record a search argument names, if any.
pub(crate) async fn locate(ctx: &Ctx<'_>, search: &Search) -> Result<Option<Entry>, Status> {
    let first_from = |start: Start, direction: Direction| async move {
        Ok::<_, Status>(ctx.scan(start, direction, 1).await?.into_iter().next())
    };
    match search {
        Search::Last => first_from(Start::Edge, Direction::Backward).await,
        Search::Key {
            key,
            generic: false,
            greater_or_equal: false,
        }
        | Search::Number {
            key,
            greater_or_equal: false,
        } => Ok(ctx.read(key).await?.map(|value| Entry {
            key: key.clone(),
            value,
        })),
        Search::Key {
            key,
            generic,
            greater_or_equal,
        } => {
            let found = first_from(Start::Inclusive(key.clone()), Direction::Forward).await?;
            Ok(found.filter(|entry| *greater_or_equal || !*generic || entry.key.starts_with(key)))
        }
        Search::Number {
            key,
            greater_or_equal: true,
        } => first_from(Start::Inclusive(key.clone()), Direction::Forward).await,
    }
}

/// The feedback code for "no such record": an ESDS RBA that starts no record
/// is X'20', everything else X'10'.
pub(crate) fn not_found(ctx: &Ctx<'_>, search: &Search) -> Status {
    match (ctx.state.def.organization, search) {
        (Organization::Esds, Search::Number { key, .. }) => ctx.error(
            fdbk::BAD_RBA,
            format!(
                "RBA {} is not the start of a record",
                key_number(key).unwrap_or(0)
            ),
        ),
        (Organization::Rrds | Organization::Vrrds, Search::Number { key, .. }) => ctx.error(
            fdbk::NOT_FOUND,
            format!("slot {} is empty", key_number(key).unwrap_or(0)),
        ),
        _ => ctx.error(fdbk::NOT_FOUND, "no record with this key"),
    }
}

/// A stored entry as a protocol record, with its RBA or RRN.
pub(crate) fn record(ctx: &Ctx<'_>, entry: Entry) -> Record {
    let address = match ctx.state.def.organization {
        Organization::Ksds => 0,
        _ => key_number(&entry.key).unwrap_or(0),
    };
    Record {
        address,
        key: entry.key,
        data: entry.value,
    }
}

/// The direction of a request.
pub(crate) fn direction(options: RplOptions) -> Direction {
    if options.backward {
        Direction::Backward
    } else {
        Direction::Forward
    }
}

/// Whether a direct GET leaves a position for the sequential GETs after
/// it: skip-sequential processing, update intent, NUP with NSP, and a GET
/// of the last record (LRD). Shared by GETs on a base cluster and through
/// a path, which VSAM positions alike.
pub(crate) fn keeps_position(options: RplOptions, last_record: bool) -> bool {
    options.processing == Processing::SkipSequential
        || matches!(
            options.intent,
            Intent::Update | Intent::NoUpdateKeepPosition
        )
        || last_record
}

/// Where a sequential GET reads on from, on a base cluster or through a
/// path: LRD first positions at the last record, backward; without a
/// position (none yet, or lost), or backward from a forward edge, the GET
/// is refused with FDBK X'58' and what to do.
pub(crate) fn sequential_start(
    ctx: &mut Ctx<'_>,
    options: RplOptions,
    direction: Direction,
) -> Result<Cursor, Status> {
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
    Ok(cursor)
}
