//! ERASE: delete the record the string holds from a GET UPD.

use super::request::Ctx;
use super::request::{Done, Outcome};
use super::writes;
use vsam_protocol::{OpenIntent, Organization, fdbk};

/// Runs an ERASE on one string.
pub(crate) async fn erase(mut ctx: Ctx<'_>) -> Outcome {
    if ctx.state.def.organization == Organization::Esds {
        ctx.release_held();
        return Err(ctx.error(fdbk::ERASE_ON_ESDS, "records of an ESDS cannot be erased"));
    }
    if ctx.intent != OpenIntent::Update {
        ctx.release_held();
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "ERASE needs the dataset opened for update",
        ));
    }
    let Some(held) = ctx.rpl.held.take() else {
        return Err(ctx.error(
            fdbk::NO_GET_UPDATE,
            "ERASE without a preceding GET for update (UPD) on this string",
        ));
    };
    let result = if let Err(status) = ctx.not_in_own_unit(&held.key) {
        Err(status)
    } else if ctx.in_unit() {
        ctx.stage(held.key.clone(), true, None).await
    } else if let Err(status) = ctx.still_held(held.fleet) {
        Err(status)
    } else {
        writes::delete(ctx.state, ctx.name(), held.key.clone()).await
    };
    ctx.state.unlock(&held.key, ctx.owner);
    result.map(|()| Done::default())
}
