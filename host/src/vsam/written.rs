//! What a record must be to be written to a dataset, and how an answer
//! names a record written: shared by PUT and PUT CHAIN (inserts and
//! updates alike).

use super::request::Ctx;
use vsam_plugin_sdk::keys::key_number;
use vsam_protocol::{Organization, Record, Status, fdbk};

/// Checks the record length against the definition: an RRDS slot's record
/// is exactly the slot size, a VRRDS record (as a KSDS's or an ESDS's) any
/// length from the smallest to the largest.
pub(crate) fn check_length(ctx: &Ctx<'_>, record: &[u8]) -> Result<(), Status> {
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
pub(crate) fn key_field(ctx: &Ctx<'_>, record: &[u8]) -> Vec<u8> {
    let def = &ctx.state.def;
    let start = def.key_offset as usize;
    record[start..start + usize::from(def.key_length)].to_vec()
}

/// A record a PUT wrote, as its answer names it: the key, or the RRN or
/// RBA.
pub(crate) fn written_record(ctx: &Ctx<'_>, key: Vec<u8>) -> Record {
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
