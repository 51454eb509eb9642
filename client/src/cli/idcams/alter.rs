//! ALTER NEWNAME and VERIFY.

use super::Context;
use super::define::dataset_of;
use super::listing::cc;
use super::syntax::{Atom, Item, Params, SyntaxError, kw};

/// ALTER: NEWNAME renames an entry; the attributes that mean nothing here
/// are accepted and ignored.
pub async fn run(cx: &mut Context<'_>, mut params: Params) -> Result<u8, SyntaxError> {
    let name = match params.first() {
        Some(Item {
            atom: Some(Atom::Word(name)),
            args: None,
        }) => name.to_ascii_uppercase(),
        Some(other) => return Err(SyntaxError::item(other, "AN ENTRY NAME IS EXPECTED")),
        None => return Err(SyntaxError::missing("ENTRYNAME", "ALTER")),
    };
    if name.contains(['*', '%']) {
        return Err(SyntaxError::other(format!(
            "ALTER OF THE GENERIC NAME {name} IS NOT SUPPORTED: ALTER EACH ENTRY BY ITS NAME"
        )));
    }
    let new_name = params.name(kw::NEWNAME)?;
    params.drop_ignored(&[]);
    let notes = params.finish()?;
    for note in notes {
        cx.listing.message(note);
    }
    let Some(new_name) = new_name else {
        // Only ignored attributes: the entry must still exist.
        return Ok(match vsam_client::info(cx.conn, &name).await {
            Ok(_) => {
                cx.listing.message(format!("IDC0531I ENTRY {name} ALTERED"));
                cc::OK
            }
            Err(error) => cx.listing.client_error(&name, &error),
        });
    };
    match vsam_client::rename(cx.conn, &name, &new_name).await {
        Ok(summary) => {
            cx.listing.message(format!("IDC0531I ENTRY {name} ALTERED"));
            cx.listing.message(format!("VSR0531I {summary}"));
            Ok(cc::OK)
        }
        Err(error) => Ok(cx.listing.client_error(&name, &error)),
    }
}

/// VERIFY: checks that the dataset is there; the server keeps no
/// end-of-data marks that a failure could leave wrong, so there is
/// nothing to repair.
pub async fn verify(cx: &mut Context<'_>, mut params: Params) -> Result<u8, SyntaxError> {
    let name = dataset_of(cx, &mut params, kw::DATASET, kw::FILE, "VERIFY")?;
    params.finish()?;
    match vsam_client::info(cx.conn, &name).await {
        Ok(_) => {
            cx.listing.message(format!(
                "VSR0015I {name} VERIFIED: THE SERVER KEEPS NO END-OF-DATA MARKS, NOTHING TO REPAIR"
            ));
            Ok(cc::OK)
        }
        Err(error) => Ok(cx.listing.client_error(&name, &error).max(cc::FAILED)),
    }
}
