//! POINT: position a string for the sequential requests that follow.

use super::request::Ctx;
use super::request::{Done, Outcome};
use super::rpl::Cursor;
use super::search::{self, Search};
use vsam_plugin_sdk::{Direction, Start};
use vsam_protocol::{OpenIntent, Point, fdbk};

/// Runs a POINT on one string.
pub(crate) async fn point(mut ctx: Ctx<'_>, req: &Point) -> Outcome {
    let options = ctx.options;
    ctx.release_held();
    search::check_access(&ctx, options)?;
    if ctx.intent == OpenIntent::Output {
        return Err(ctx.error(
            fdbk::NOT_ALLOWED_BY_OPEN,
            "POINT on a dataset opened for output",
        ));
    }
    let direction = search::direction(options);
    let search = search::search_arg(&ctx, options, &req.key, req.generic_length, req.address)?;
    if let Search::Last = search {
        // Position after the last record, for backward browsing.
        let last = search::locate(&ctx, &search).await?;
        ctx.rpl.set_cursor(Some(Cursor {
            start: Start::Edge,
            direction: Direction::Backward,
        }));
        return match last {
            Some(_) => Ok(Done::default()),
            None => Err(ctx.error(fdbk::END_OF_DATA, "the dataset is empty")),
        };
    }
    match search::locate(&ctx, &search).await? {
        Some(entry) => {
            ctx.rpl.set_cursor(Some(Cursor::at(entry.key, direction)));
            Ok(Done::default())
        }
        None if options.greater_or_equal => {
            ctx.rpl.set_cursor(None);
            Err(ctx.error(
                fdbk::END_OF_DATA,
                "no record at or after this key: end of data",
            ))
        }
        None => {
            ctx.rpl.set_cursor(None);
            Err(search::not_found(&ctx, &search))
        }
    }
}
